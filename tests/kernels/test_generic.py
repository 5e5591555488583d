"""The plain backend's conv and pool formulations (`minprune.autograd.plain`: what a GPU runs, and
the CPU under ``MINPRUNE_BACKEND=plain``), run here on NumPy arrays against the Numba kernels and
the NumPy references.

That is how the code a GPU runs is covered without a GPU: CuPy executes the same Python, slice
for slice. Cases include padding, strides larger and smaller than the kernel, 1 x 1 kernels,
AlexNet's 11 x 11 / stride 4 conv1 and its overlapping 3 x 3 / stride 2 pools, and ties.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minprune.autograd import plain
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


ALEXNET_CONV1 = (np.random.default_rng(0).standard_normal((2, 3, 23, 23)).astype(np.float32),
                 11, 11, 4, 0)
ALEXNET_CONV2 = (np.random.default_rng(1).standard_normal((1, 4, 7, 7)).astype(np.float32),
                 5, 5, 1, 2)


def _check_im2col(case):
    x, kh, kw, stride, pad = case
    want = im2col_kernels.im2col(x, kh, kw, stride, pad)
    got = plain.im2col(x, kh, kw, stride, pad)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def _check_col2im(case):
    x, kh, kw, stride, pad = case
    shape = im2col_kernels.im2col(x, kh, kw, stride, pad).shape
    cols = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    want = im2col_kernels.col2im(cols, x.shape, kh, kw, stride, pad)
    got = plain.col2im(cols, x.shape, kh, kw, stride, pad)
    assert got.shape == x.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(
        got, im2col_kernels.col2im_reference(cols, x.shape, kh, kw, stride, pad), atol=1e-5
    )


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_im2col_matches_the_numba_kernel(case):
    _check_im2col(case)


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_col2im_matches_the_numba_kernel_and_the_reference(case):
    _check_col2im(case)


@pytest.mark.parametrize("case", [ALEXNET_CONV1, ALEXNET_CONV2], ids=["11x11-s4", "5x5-p2"])
def test_im2col_and_col2im_on_alexnet_shapes(case):
    _check_im2col(case)
    _check_col2im(case)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5), st.booleans())
def test_layout_moves_match_the_numba_kernels(n, channels, out_h, out_w, with_bias):
    rng = np.random.default_rng(n * 100 + channels)
    rows = rng.standard_normal((n * out_h * out_w, channels)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32) if with_bias else None
    shape = (n, channels, out_h, out_w)
    out = plain.rows_to_nchw(rows, bias, shape)
    np.testing.assert_array_equal(out, im2col_kernels.rows_to_nchw(rows, bias, shape))
    assert out.flags.c_contiguous
    back = plain.nchw_to_rows(out)
    np.testing.assert_array_equal(back, im2col_kernels.nchw_to_rows(out))
    assert back.flags.c_contiguous


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


def _check_pool(x, kernel, stride):
    out, argmax = pool_kernels.max_pool_forward(x, kernel, stride)
    got_out, got_argmax = plain.max_pool_forward(x, kernel, stride)
    np.testing.assert_array_equal(got_out, out)
    np.testing.assert_array_equal(got_argmax, argmax)  # same winner on ties: the first
    assert got_argmax.dtype == np.int32
    grad = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    got = plain.max_pool_backward(grad, got_argmax, x.shape, kernel, stride)
    want = pool_kernels.max_pool_backward(grad, argmax, x.shape)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(
        got, pool_kernels.max_pool_backward_reference(grad, argmax, x.shape), atol=1e-6
    )


@settings(max_examples=60, deadline=None)
@given(pool_cases())
def test_max_pool_matches_the_numba_kernels(case):
    _check_pool(*case)


@pytest.mark.parametrize("ties", [False, True])
def test_overlapping_pool_as_alexnet_uses_it(ties):
    """3 x 3 windows at stride 2 (Krizhevsky et al. 2012, Sec. 3.4): a pixel on a window edge
    belongs to up to four windows, so its gradient sums several contributions."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 13, 13)).astype(np.float32)
    if ties:
        x = np.zeros_like(x)  # every window ties: the first pixel of each wins
    _check_pool(x, 3, 2)
