"""The conv and pooling kernels against their NumPy twins, on generated shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minprune.kernels.training import im2col as im2col_kernels
from minprune.kernels.training import pool as pool_kernels


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    height = draw(st.integers(max(1, kh - 2 * pad), 8))
    width = draw(st.integers(max(1, kw - 2 * pad), 8))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).standard_normal((n, c, height, width)).astype(np.float32)
    return x, kh, kw, stride, pad


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_im2col_matches_reference(case):
    x, kh, kw, stride, pad = case
    np.testing.assert_array_equal(
        im2col_kernels.im2col(x, kh, kw, stride, pad),
        im2col_kernels.im2col_reference(x, kh, kw, stride, stride, pad, pad).T,
    )


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_col2im_matches_reference_and_is_the_adjoint(case):
    x, kh, kw, stride, pad = case
    cols_shape = im2col_kernels.im2col_reference(x, kh, kw, stride, stride, pad, pad).T.shape
    cols = np.random.default_rng(1).standard_normal(cols_shape).astype(np.float32)
    dx = im2col_kernels.col2im(cols, x.shape, kh, kw, stride, pad)
    np.testing.assert_allclose(
        dx, im2col_kernels.col2im_reference(cols, x.shape, kh, kw, stride, pad), atol=1e-5
    )
    # <im2col(x), cols> == <x, col2im(cols)>: col2im is im2col's transpose.
    lhs = float((im2col_kernels.im2col(x, kh, kw, stride, pad) * cols).sum(dtype=np.float64))
    rhs = float((x * dx).sum(dtype=np.float64))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-4)


def _per_image(patches, n_images):
    """The reference's (K, N*P) patch matrix as `im2col_images`'s (N, K, P)."""
    taps = patches.shape[0]
    return patches.reshape(taps, n_images, -1).transpose(1, 0, 2)


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_per_image_im2col_and_col2im_match_references(case):
    x, kh, kw, stride, pad = case
    patches = im2col_kernels.im2col_reference(x, kh, kw, stride, stride, pad, pad)
    cols = im2col_kernels.im2col_images(x, kh, kw, stride, pad)
    np.testing.assert_array_equal(cols, _per_image(patches, len(x)))
    grad = np.random.default_rng(1).standard_normal(cols.shape).astype(np.float32)
    as_rows = grad.transpose(0, 2, 1).reshape(-1, grad.shape[1])  # im2col's layout
    np.testing.assert_allclose(
        im2col_kernels.col2im_images(grad, x.shape, kh, kw, stride, pad),
        im2col_kernels.col2im_reference(as_rows, x.shape, kh, kw, stride, pad),
        atol=1e-5,
    )


@st.composite
def pool_cases(draw):
    kernel, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height, width = draw(st.integers(kernel, 8)), draw(st.integers(kernel, 8))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):  # ties: small integers repeat inside windows
        x = rng.integers(-2, 3, size=(n, c, height, width)).astype(np.float32)
    else:
        x = rng.standard_normal((n, c, height, width)).astype(np.float32)
    return x, kernel, stride


@settings(max_examples=40, deadline=None)
@given(pool_cases())
def test_max_pool_matches_reference(case):
    x, kernel, stride = case
    out, argmax = pool_kernels.max_pool_forward(x, kernel, stride)
    ref_out, ref_argmax = pool_kernels.max_pool_forward_reference(x, kernel, stride)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(argmax, ref_argmax)
    grad = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    np.testing.assert_allclose(
        pool_kernels.max_pool_backward(grad, argmax, x.shape),
        pool_kernels.max_pool_backward_reference(grad, ref_argmax, x.shape),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "shape, kernel, stride, pad",
    [((3, 1, 28, 28), 5, 1, 0), ((3, 20, 12, 12), 5, 1, 0), ((2, 3, 13, 11), 5, 2, 2)],
    ids=["lenet5-conv1", "lenet5-conv2", "5x5-stride2-pad2"],
)
def test_im2col_and_col2im_at_lenet_kernel_sizes(shape, kernel, stride, pad):
    """The generated cases stop at 4 x 4; the kernels are compiled per size, so 5 x 5 is its own."""
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    cols = im2col_kernels.im2col(x, kernel, kernel, stride, pad)
    np.testing.assert_array_equal(
        cols, im2col_kernels.im2col_reference(x, kernel, kernel, stride, stride, pad, pad).T
    )
    grad = np.random.default_rng(4).standard_normal(cols.shape).astype(np.float32)
    want = im2col_kernels.col2im_reference(grad, shape, kernel, kernel, stride, pad)
    np.testing.assert_allclose(
        im2col_kernels.col2im(grad, shape, kernel, kernel, stride, pad), want, atol=1e-5
    )
    per_image = grad.reshape(shape[0], -1, grad.shape[1]).transpose(0, 2, 1)
    np.testing.assert_array_equal(
        im2col_kernels.im2col_images(x, kernel, kernel, stride, pad),
        cols.reshape(per_image.shape[0], per_image.shape[2], -1).transpose(0, 2, 1),
    )
    np.testing.assert_allclose(
        im2col_kernels.col2im_images(
            np.ascontiguousarray(per_image), shape, kernel, kernel, stride, pad
        ),
        want,
        atol=1e-5,
    )


def test_max_pool_lenet_shape():
    x = np.arange(2 * 20 * 24 * 24, dtype=np.float32).reshape(2, 20, 24, 24)
    out, argmax = pool_kernels.max_pool_forward(x, 2, 2)
    assert out.shape == (2, 20, 12, 12)
    # Increasing values: the bottom-right pixel of each window wins.
    assert out[0, 0, 0, 0] == x[0, 0, 1, 1] and argmax[0, 0, 0, 0] == 1 * 24 + 1


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5))
def test_layout_moves_match_numpy_transposes(n, channels, out_h, out_w):
    rng = np.random.default_rng(n * 100 + channels)
    rows = rng.standard_normal((n * out_h * out_w, channels)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    expected = (rows + bias).reshape(n, out_h, out_w, channels).transpose(0, 3, 1, 2)
    out = im2col_kernels.rows_to_nchw(rows, bias, (n, channels, out_h, out_w))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(im2col_kernels.nchw_to_rows(out), rows + bias)
