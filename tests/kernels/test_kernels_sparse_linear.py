"""The sparse-training kernels of a pruned Linear layer against their NumPy references, on
generated shapes (1 x N, N x 1 included), mask densities (0 and 1 included) and batch sizes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_strategies import KERNEL_SETTINGS, float32_arrays, masks

from minprune.kernels.training import pattern as ops
from minprune.kernels.training import pattern_reference as reference


@st.composite
def linear_cases(draw):
    out_features, in_features = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    batch = draw(st.integers(1, 6))
    return (
        draw(masks((out_features, in_features))),
        draw(float32_arrays((batch, in_features))),
        draw(float32_arrays((out_features, in_features))),
        draw(st.none() | float32_arrays((out_features,))),
        draw(float32_arrays((batch, out_features))),
    )


@KERNEL_SETTINGS
@given(linear_cases())
def test_forward_and_backward_match_the_reference(case):
    mask, x, weight, bias, grad_y = case
    pattern = ops.LinearPattern(mask)
    y, saved = ops.sparse_linear_forward(pattern, x, weight, bias)
    expected = reference.reference_forward(mask, x, weight, bias)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-4)
    grads = ops.sparse_linear_backward(pattern, grad_y, saved)
    for got, want in zip(grads, reference.reference_backward(mask, x, weight, grad_y), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert not grads[1][mask == 0].any()  # no gradient reaches a pruned weight


def test_pattern_lists_each_kept_connection_in_both_orientations():
    mask = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 1]], np.float32)
    pattern = ops.LinearPattern(mask)
    assert pattern.nnz == 4 and pattern.density == pytest.approx(4 / 9)
    np.testing.assert_array_equal(pattern.positions, [0, 2, 7, 8])
    np.testing.assert_array_equal(pattern.pointers, [0, 2, 2, 4])
    np.testing.assert_array_equal(pattern.indices, [0, 2, 1, 2])
    np.testing.assert_array_equal(pattern.transpose_pointers, [0, 1, 2, 4])
    np.testing.assert_array_equal(pattern.transpose_indices, [0, 2, 0, 2])
    np.testing.assert_array_equal(pattern.positions[pattern.transpose_order], [0, 7, 2, 8])


def test_backward_skips_what_is_not_needed():
    mask = np.ones((2, 3), np.float32)
    x, weight = np.ones((4, 3), np.float32), np.ones((2, 3), np.float32)
    pattern = ops.LinearPattern(mask)
    _, saved = ops.sparse_linear_forward(pattern, x, weight, None)
    grad_x, grad_weight, grad_bias = ops.sparse_linear_backward(
        pattern, np.ones((4, 2), np.float32), saved, need_x=False, need_weight=False
    )
    assert grad_x is None and grad_weight is None
    np.testing.assert_array_equal(grad_bias, [4.0, 4.0])


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("x", {"x": np.ones((2, 4), np.float32)}, r"x: expected float32 array of shape \(any, 3\)"),
        ("x", {"x": np.ones((2, 3))}, "x: expected float32 .* got float64"),
        ("weight", {"weight": np.ones((3, 2), np.float32)}, r"weight: expected .*\(2, 3\)"),
        ("bias", {"bias": np.ones(3, np.float32)}, r"bias: expected .*\(2,\)"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(name, kwargs, message):
    arguments = {
        "x": np.ones((2, 3), np.float32),
        "weight": np.ones((2, 3), np.float32),
        "bias": np.ones(2, np.float32),
    } | kwargs
    pattern = ops.LinearPattern(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=message):
        ops.sparse_linear_forward(pattern, **arguments)
    with pytest.raises(ValueError, match="expected a 2-D numpy mask"):
        ops.LinearPattern(np.ones(3))
