"""Relative index steps (Deep Compression Sec. 2, Fig. 2): round trips, fillers, refusals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minprune.compress.relative_index import (
    StepCodeError,
    best_index_bits,
    decode_steps,
    encode_steps,
)


def test_steps_count_from_minus_one_with_code_0_as_filler():
    # span 3 (2 bits): position 0 -> step 1; 2 -> 2; 9 -> step 7 = filler 3 + filler 3 + 1
    assert encode_steps([0, 2, 9], 2).tolist() == [1, 2, 0, 0, 1]
    assert decode_steps(np.array([1, 2, 0, 0, 1]), 2, 10).tolist() == [0, 2, 9]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.floats(0, 1), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_round_trip(size, density, index_bits, seed):
    rng = np.random.default_rng(seed)
    positions = np.flatnonzero(rng.random(size) < density)
    codes = encode_steps(positions, index_bits)
    assert codes.max(initial=0) < 2 ** index_bits
    np.testing.assert_array_equal(decode_steps(codes, index_bits, size), positions)


@pytest.mark.parametrize("codes, size, message", [
    (np.array([1, 4]), 10, r"codes in 0\.\.3"),
    (np.array([1, 0]), 10, "ends with a filler"),
    (np.array([3, 3, 3, 3]), 10, "position 11 is past the layer's 10"),
    (np.array([1.0]), 10, "int array"),
])
def test_bad_step_codes_are_refused(codes, size, message):
    with pytest.raises(StepCodeError, match=message):
        decode_steps(codes, 2, size)


def test_unsorted_positions_are_refused():
    with pytest.raises(ValueError, match="increasing"):
        encode_steps([3, 1], 4)


def test_the_chosen_width_is_the_smallest_coded_stream():
    # entries every 8 positions: 3 bits need a filler each time, 4 bits code one symbol
    positions = np.arange(0, 8000, 8)
    assert best_index_bits(positions) == 4
