"""Huffman coding (Deep Compression Sec. 4): round trips, the entropy bound, canonical codes,
the length cap, and every refusal of `decode`."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minprune.compress.huffman import (
    MAX_CODE_LENGTH,
    HuffmanError,
    canonical_codes,
    code_lengths,
    coded_bits,
    decode,
    encode,
    entropy_bits,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=300), st.integers(1, 64))
def test_round_trip_and_the_entropy_bound(symbols, alphabet):
    symbols = np.asarray(symbols) % alphabet
    counts = np.bincount(symbols, minlength=alphabet)
    lengths = code_lengths(counts)
    data, bits = encode(symbols, lengths)
    assert bits == coded_bits(counts, lengths)
    np.testing.assert_array_equal(decode(data, bits, lengths, symbols.size), symbols)
    average = bits / symbols.size
    entropy = entropy_bits(counts)
    if np.count_nonzero(counts) > 1:  # Huffman: H <= L < H + 1
        assert entropy - 1e-9 <= average < entropy + 1
    else:
        assert average == 1  # one symbol still costs a bit


def test_a_skewed_source_codes_close_to_its_entropy():
    counts = np.array([900, 50, 30, 15, 5])
    lengths = code_lengths(counts)
    assert lengths.tolist() == [1, 2, 3, 4, 4]
    assert coded_bits(counts, lengths) / counts.sum() == pytest.approx(1.17)
    assert entropy_bits(counts) == pytest.approx(0.6338, abs=1e-4)  # -sum p log2 p


def test_canonical_codes_are_ordered_by_length_then_symbol():
    lengths = np.array([2, 1, 3, 3], dtype=np.uint8)
    assert canonical_codes(lengths).tolist() == [0b10, 0b0, 0b110, 0b111]


def test_unused_symbols_get_no_codeword():
    lengths = code_lengths(np.array([0, 5, 0, 5]))
    assert lengths.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="has no codeword"):
        encode(np.array([0]), lengths)


def test_lengths_are_capped_and_still_a_prefix_code():
    counts = np.array([2 ** k for k in range(30)])  # Fibonacci-like: a very deep tree
    lengths = code_lengths(counts, max_length=8)
    assert lengths.max() <= 8
    assert np.sum(2.0 ** -lengths.astype(float)) <= 1
    symbols = np.repeat(np.arange(30), 3)
    data, bits = encode(symbols, lengths)
    np.testing.assert_array_equal(decode(data, bits, lengths, symbols.size), symbols)


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="non-negative ints"):
        code_lengths(np.array([1.5, 2.0]))
    with pytest.raises(ValueError, match="max_length"):
        code_lengths(np.array([1, 2]), max_length=MAX_CODE_LENGTH + 1)
    with pytest.raises(ValueError, match="cannot have codes"):
        code_lengths(np.ones(5, dtype=int), max_length=2)


def _stream():
    symbols = np.array([0, 1, 2, 0, 0, 3, 1])
    lengths = code_lengths(np.bincount(symbols))
    data, bits = encode(symbols, lengths)
    return symbols, lengths, data, bits


@pytest.mark.parametrize("change, message", [
    (lambda s: {**s, "lengths": np.array([1, 1, 1, 1], np.uint8)}, "Kraft"),
    (lambda s: {**s, "lengths": s["lengths"].astype(np.int64)}, "uint8"),
    (lambda s: {**s, "lengths": np.array([30, 1, 0, 0], np.uint8)}, "longer than"),
    (lambda s: {**s, "lengths": np.zeros(4, np.uint8)}, "no symbol has a codeword"),
    (lambda s: {**s, "data": s["data"][:-1]}, "take 2 bytes"),
    (lambda s: {**s, "bits": s["bits"] - 1}, "ends inside|starts no codeword|left after"),
    (lambda s: {**s, "count": s["count"] + 1}, "ends after"),
    (lambda s: {**s, "count": s["count"] - 1}, "left after"),
    (lambda s: {**s, "count": 100}, "cannot fit"),
    (lambda s: {**s, "count": 0}, "no symbols"),
    (lambda s: {**s, "data": s["data"].astype(np.int16)}, "uint8 bytes"),
])
def test_decode_refuses_what_no_encoder_wrote(change, message):
    _, lengths, data, bits = _stream()
    case = change({"lengths": lengths, "data": data, "bits": bits, "count": 7})
    with pytest.raises(HuffmanError, match=message):
        decode(case["data"], case["bits"], case["lengths"], case["count"])


def test_a_bit_pattern_that_is_no_codeword_is_refused():
    lengths = np.array([1, 2, 0], dtype=np.uint8)  # codes 0 and 10; 11 is no codeword
    with pytest.raises(HuffmanError, match="bit 0 starts no codeword"):
        decode(np.array([0b11000000], np.uint8), 2, lengths, 1)


def test_an_empty_stream_decodes_to_nothing():
    assert decode(np.zeros(0, np.uint8), 0, np.array([1, 1], np.uint8), 0).size == 0
