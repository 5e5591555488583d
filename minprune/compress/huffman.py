"""Huffman coding, Deep Compression's third stage (Han, Mao & Dally 2016, Sec. 4).

"A Huffman code is an optimal prefix code commonly used for lossless data compression. It uses
variable-length codewords to encode source symbols ... more common symbols are represented with
fewer bits." Deep Compression codes two streams per layer this way: the quantized weights'
cluster indices and the sparse matrix's relative index steps (`minprune.compress.relative_index`).

Here:

- `code_lengths(counts)`: each symbol's codeword length, built by repeatedly joining the two
  rarest subtrees (Huffman 1952). Lengths are capped at `MAX_CODE_LENGTH` so that the decoder's
  lookup table stays small: when a tree is deeper, the counts are halved (kept >= 1) and the
  tree rebuilt -- a departure that costs nothing on LeNet's streams (their trees are far
  shallower than the cap).
- `canonical_codes(lengths)`: the codewords themselves, canonical (symbols ordered by length,
  then by value, each code the previous one plus 1, shifted), so that a file stores only one
  length per symbol -- the "Huffman table".
- `encode(symbols, lengths)` / `decode(data, bit_count, lengths, count)`: bits packed MSB first.
  `decode` trusts nothing: lengths that no prefix code can have (Kraft's sum above 1), a bit
  pattern that is no codeword, a stream that ends inside a codeword or holds bits left over are
  each a `HuffmanError` naming what is wrong.
- `entropy_bits(counts)`: the lower bound the code lengths are tested against (the average
  codeword length L of a Huffman code satisfies H <= L < H + 1).
"""

from __future__ import annotations

import heapq

import numpy as np

__all__ = [
    "MAX_CODE_LENGTH",
    "HuffmanError",
    "code_lengths",
    "canonical_codes",
    "encode",
    "decode",
    "entropy_bits",
    "coded_bits",
]

MAX_CODE_LENGTH = 20  # the decoder's table has 2**(longest length) entries


class HuffmanError(ValueError):
    """A Huffman table or bit stream that cannot be decoded."""


def _tree_depths(counts: np.ndarray) -> np.ndarray:
    """Depth of each symbol in a Huffman tree over the non-zero ``counts`` (0 for the others)."""
    depths = np.zeros(counts.size, dtype=np.int64)
    used = np.flatnonzero(counts)
    if used.size == 1:
        depths[used] = 1  # one symbol still needs one bit per occurrence
        return depths
    # heap of (count, tie-breaker, symbols under this subtree)
    heap = [(int(counts[s]), int(s), [int(s)]) for s in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        count_a, tie_a, symbols_a = heapq.heappop(heap)
        count_b, tie_b, symbols_b = heapq.heappop(heap)
        joined = symbols_a + symbols_b
        depths[joined] += 1  # every symbol under the new node sits one level deeper
        heapq.heappush(heap, (count_a + count_b, min(tie_a, tie_b), joined))
    return depths


def code_lengths(counts, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman codeword length of each symbol (uint8; 0 for a symbol that never occurs), for
    symbol ``s`` occurring ``counts[s]`` times; no length exceeds ``max_length``."""
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.dtype.kind not in "iu" or (counts < 0).any():
        raise ValueError(f"code_lengths: counts must be a 1-D array of non-negative ints, got "
                         f"{counts.dtype} {counts.shape}")
    if not 1 <= max_length <= MAX_CODE_LENGTH:
        raise ValueError(f"code_lengths: max_length must be in 1..{MAX_CODE_LENGTH}, got "
                         f"{max_length}")
    if np.count_nonzero(counts) > 2 ** max_length:
        raise ValueError(f"code_lengths: {np.count_nonzero(counts)} symbols cannot have codes "
                         f"of at most {max_length} bits")
    counts = counts.astype(np.int64)
    depths = _tree_depths(counts)
    while depths.max(initial=0) > max_length:  # flatten the distribution until the tree fits
        counts = np.where(counts > 0, (counts + 1) // 2, 0)
        depths = _tree_depths(counts)
    return depths.astype(np.uint8)


def _check_lengths(lengths) -> np.ndarray:
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.dtype != np.uint8:
        raise HuffmanError(f"code lengths: expected a 1-D uint8 array, got {lengths.dtype} "
                           f"{lengths.shape}")
    if lengths.max(initial=0) > MAX_CODE_LENGTH:
        raise HuffmanError(f"code lengths: {int(lengths.max())} bits is longer than "
                           f"{MAX_CODE_LENGTH}")
    used = lengths[lengths > 0].astype(np.int64)
    # Kraft: a prefix code exists only if sum 2^-length <= 1 (exact, in units of 2^-MAX)
    if int(np.sum(np.left_shift(1, MAX_CODE_LENGTH - used))) > 1 << MAX_CODE_LENGTH:
        raise HuffmanError("code lengths: no prefix code has these lengths (Kraft's sum "
                           "exceeds 1)")
    return lengths


def canonical_codes(lengths) -> np.ndarray:
    """The canonical codeword of each symbol (uint32; its low ``lengths[s]`` bits, MSB first)."""
    lengths = _check_lengths(lengths)
    codes = np.zeros(lengths.size, dtype=np.uint32)
    order = np.lexsort((np.arange(lengths.size), lengths))
    code, previous = 0, 0
    for symbol in order[lengths[order] > 0]:
        length = int(lengths[symbol])
        code <<= length - previous
        codes[symbol] = code
        code, previous = code + 1, length
    return codes


def encode(symbols, lengths) -> tuple[np.ndarray, int]:
    """``(packed bytes as uint8, number of bits)``: each symbol's canonical codeword in turn."""
    symbols = np.asarray(symbols)
    lengths = _check_lengths(lengths)
    if symbols.ndim != 1 or symbols.dtype.kind not in "iu":
        raise ValueError(f"encode: symbols must be a 1-D int array, got {symbols.dtype} "
                         f"{symbols.shape}")
    if symbols.size and (symbols.min() < 0 or symbols.max() >= lengths.size
                         or (lengths[symbols] == 0).any()):
        raise ValueError("encode: a symbol has no codeword (outside the table or of count 0)")
    codes = canonical_codes(lengths)[symbols].astype(np.int64)
    sizes = lengths[symbols].astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    bits = np.zeros(int(starts[-1]), dtype=np.uint8)
    for j in range(int(sizes.max(initial=0))):  # the j-th bit of every codeword at once
        has = sizes > j
        bits[starts[:-1][has] + j] = (codes[has] >> (sizes[has] - 1 - j)) & 1
    return np.packbits(bits), int(starts[-1])


def decode(data, bit_count: int, lengths, count: int) -> np.ndarray:
    """The ``count`` symbols (int64) that `encode` packed into ``data`` (``bit_count`` bits)."""
    lengths = _check_lengths(lengths)
    data = np.asarray(data)
    if data.ndim != 1 or data.dtype != np.uint8:
        raise HuffmanError(f"stream: expected 1-D uint8 bytes, got {data.dtype} {data.shape}")
    if data.size != (bit_count + 7) // 8:
        raise HuffmanError(f"stream: {bit_count} bits take {(bit_count + 7) // 8} bytes, the "
                           f"stream holds {data.size}")
    if count > bit_count:  # every codeword is at least one bit
        raise HuffmanError(f"stream: {count} symbols cannot fit in {bit_count} bits")
    if count == 0:
        if bit_count:
            raise HuffmanError(f"stream: {bit_count} bits but no symbols")
        return np.zeros(0, dtype=np.int64)
    longest = int(lengths.max(initial=0))
    if longest == 0:
        raise HuffmanError("code lengths: no symbol has a codeword")
    # Lookup table over every `longest`-bit window: the symbol whose codeword starts it.
    codes = canonical_codes(lengths).astype(np.int64)
    table_symbol = np.zeros(1 << longest, dtype=np.int64)
    table_length = np.zeros(1 << longest, dtype=np.int64)  # 0: no codeword starts so
    for symbol in np.flatnonzero(lengths):
        shift = longest - int(lengths[symbol])
        table_symbol[codes[symbol] << shift:(codes[symbol] + 1) << shift] = symbol
        table_length[codes[symbol] << shift:(codes[symbol] + 1) << shift] = lengths[symbol]
    bits = np.concatenate([np.unpackbits(data)[:bit_count],
                           np.zeros(longest, dtype=np.uint8)]).astype(np.int64)
    window = np.zeros(bit_count, dtype=np.int64)
    for j in range(longest):
        window = (window << 1) | bits[j:j + bit_count]
    symbol_at, length_at = table_symbol[window].tolist(), table_length[window].tolist()
    out, position = [0] * count, 0
    for index in range(count):
        if position >= bit_count:
            raise HuffmanError(f"stream: ends after {index} of {count} symbols")
        length = length_at[position]
        if length == 0 or position + length > bit_count:
            raise HuffmanError(f"stream: bit {position} starts no codeword")
        out[index] = symbol_at[position]
        position += length
    if position != bit_count:
        raise HuffmanError(f"stream: {bit_count - position} bits left after {count} symbols")
    return np.asarray(out, dtype=np.int64)


def entropy_bits(counts) -> float:
    """Shannon entropy of the symbol frequencies, bits per symbol: no prefix code does better."""
    counts = np.asarray(counts, dtype=np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def coded_bits(counts, lengths) -> int:
    """Bits that ``counts`` symbols take with these code lengths (the stream's size)."""
    return int(np.dot(np.asarray(counts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)))
