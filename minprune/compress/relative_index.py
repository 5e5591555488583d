"""Where the surviving weights sit: relative index steps (Han, Mao & Dally 2016, Sec. 2, Fig. 2).

Deep Compression stores a pruned layer in CSR or CSC form and writes each entry's position not as
an absolute index but as the step from the previous entry, in ``index_bits`` bits; "when we need
an index difference larger than the bound, we ... pad filler zero". The steps then go to the
Huffman coder (Sec. 4), whose gain comes from the steps' skewed distribution.

Here the steps run through the whole flattened weight (C order: row by row of ``weight.reshape(
out, -1)``), from position -1, so that a layer is one stream. Step code ``c`` in
``1 .. 2**index_bits - 1`` is an entry ``c`` positions after the previous one; code 0 is a
filler: "advance ``2**index_bits - 1`` positions, no entry".

Departure from Deep Compression's Fig. 2: its filler is an entry whose value is 0, which costs a
weight code as well and cannot be told from a surviving weight that is 0; here a filler costs one
step code and no weight (as in `minprune.sparse`'s files). ``index_bits`` is chosen per layer as
the width whose Huffman-coded stream is smallest (`best_index_bits`): with Huffman coding a wide
step costs nothing when it is rare, so the width is a trade between fillers and table size.
"""

from __future__ import annotations

import numpy as np

from minprune.compress.huffman import code_lengths, coded_bits

__all__ = ["encode_steps", "decode_steps", "best_index_bits", "stream_bits", "StepCodeError",
           "INDEX_BITS"]

INDEX_BITS = range(1, 9)  # the widths `best_index_bits` tries


class StepCodeError(ValueError):
    """Step codes that do not describe positions inside the layer."""


def _span(index_bits: int) -> int:
    if not isinstance(index_bits, int) or not 1 <= index_bits <= 16:
        raise ValueError(f"index_bits must be an int in 1..16, got {index_bits!r}")
    return (1 << index_bits) - 1


def encode_steps(positions, index_bits: int) -> np.ndarray:
    """Step codes (int64, in 0 .. 2**index_bits - 1) for the sorted flat ``positions``."""
    span = _span(index_bits)
    positions = np.asarray(positions, dtype=np.int64)
    if positions.ndim != 1 or (positions.size and (positions[0] < 0
                                                   or (np.diff(positions) <= 0).any())):
        raise ValueError("encode_steps: positions must be a 1-D array of distinct, increasing "
                         "non-negative ints")
    steps = np.diff(positions, prepend=-1)  # >= 1
    fillers = (steps - 1) // span
    codes_per_entry = fillers + 1
    ends = np.cumsum(codes_per_entry)
    codes = np.zeros(int(ends[-1]) if ends.size else 0, dtype=np.int64)
    codes[ends - 1] = steps - span * fillers  # in 1..span, after the entry's fillers
    return codes


def decode_steps(codes, index_bits: int, size: int) -> np.ndarray:
    """The flat positions (int64) that ``codes`` describe in a layer of ``size`` weights; codes
    outside the alphabet, a trailing filler or a position past the layer is an `StepCodeError`."""
    span = _span(index_bits)
    codes = np.asarray(codes)
    if codes.ndim != 1 or codes.dtype.kind not in "iu":
        raise StepCodeError(f"step codes: expected a 1-D int array, got {codes.dtype} "
                          f"{codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() > span):
        raise StepCodeError(f"step codes: expected codes in 0..{span}, found "
                          f"{int(codes.min())}..{int(codes.max())}")
    if codes.size and codes[-1] == 0:
        raise StepCodeError("step codes: the stream ends with a filler (no entry after it)")
    advance = np.where(codes == 0, span, codes).astype(np.int64)
    reached = np.cumsum(advance) - 1
    positions = reached[codes != 0]
    if positions.size and positions[-1] >= size:
        raise StepCodeError(f"step codes: position {int(positions[-1])} is past the layer's "
                          f"{size} weights")
    return positions


def stream_bits(codes, alphabet: int) -> tuple[int, np.ndarray]:
    """(bits of the Huffman-coded ``codes``, their code lengths) for an alphabet of that size."""
    counts = np.bincount(codes, minlength=alphabet)
    lengths = code_lengths(counts) if codes.size else np.zeros(alphabet, dtype=np.uint8)
    return coded_bits(counts, lengths), lengths


def best_index_bits(positions, choices=INDEX_BITS) -> int:
    """The step width whose Huffman-coded stream, with its table (one byte per code), is
    smallest."""
    sizes = {}
    for index_bits in choices:
        codes = encode_steps(positions, index_bits)
        bits, _ = stream_bits(codes, 1 << index_bits)
        sizes[index_bits] = (bits + 7) // 8 + (1 << index_bits)
    return min(sizes, key=lambda b: (sizes[b], b))
