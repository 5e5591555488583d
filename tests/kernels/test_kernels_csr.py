"""CPU CSR kernels (SpMV, SpMM, Linear, im2col, sparse conv2d) against their NumPy references."""

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given
from hypothesis import strategies as st
from kernel_strategies import KERNEL_SETTINGS, csr_matrices, float32_arrays

from minprune.inference import products
from minprune.kernels.inference import csr_cpu
from minprune.kernels.inference import csr_reference as reference
from minprune.kernels.training.im2col import im2col_reference
from minprune.sparse.csr import CSRMatrix

TOLERANCE = {"rtol": 1e-5, "atol": 1e-4}


@st.composite
def csr_with_vector(draw):
    csr, dense = draw(csr_matrices())
    x = draw(float32_arrays((csr.shape[1],)))
    bias = draw(st.none() | float32_arrays((csr.shape[0],)))
    return csr, dense, x, bias


@KERNEL_SETTINGS
@given(csr_with_vector())
def test_spmv_matches_reference(case):
    csr, dense, x, bias = case
    want = reference.spmv_reference(csr.indptr, csr.indices, csr.data, x, bias)
    np.testing.assert_allclose(products.spmv(csr, x, bias), want, **TOLERANCE)
    np.testing.assert_allclose(want, dense.astype(np.float64) @ x + (0 if bias is None else bias))


@KERNEL_SETTINGS
@given(csr_with_vector())
def test_raw_spmv_kernel_matches_reference(case):
    csr, _, x, _ = case
    out = np.full(csr.shape[0], np.nan, dtype=np.float32)
    indptr, indices = csr_cpu.unsigned_index_views(csr.indptr, csr.indices)
    csr_cpu.spmv_cpu(indptr, indices, csr.data, np.zeros(csr.shape[0], np.float32), x, out)
    want = reference.spmv_reference(csr.indptr, csr.indices, csr.data, x)
    np.testing.assert_allclose(out, want, **TOLERANCE)


@st.composite
def csr_with_dense_batch(draw):
    csr, dense = draw(csr_matrices())
    columns = draw(st.integers(0, 9))
    batch_t = draw(float32_arrays((csr.shape[1], columns)))
    bias = draw(st.none() | float32_arrays((csr.shape[0],)))
    return csr, dense, batch_t, bias


@KERNEL_SETTINGS
@given(csr_with_dense_batch())
def test_spmm_matches_reference(case):
    csr, dense, batch_t, bias = case
    zeros = np.zeros(csr.shape[0], np.float32)
    want = reference.spmm_reference(
        csr.indptr, csr.indices, csr.data, zeros if bias is None else bias, batch_t
    )
    got = products.spmm(csr, batch_t, bias)
    assert got.shape == (csr.shape[0], batch_t.shape[1])
    np.testing.assert_allclose(got, want, **TOLERANCE)


@KERNEL_SETTINGS
@given(csr_with_dense_batch(), st.booleans())
def test_linear_forward_matches_dense_layer(case, fortran_input):
    csr, dense, batch_t, bias = case
    x = batch_t.T if fortran_input else np.ascontiguousarray(batch_t.T)  # (batch, in)
    got = products.linear_forward_csr(csr, x, bias)
    assert got.shape == (x.shape[0], csr.shape[0]) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference.linear_reference(x, dense, bias), **TOLERANCE)
    if x.shape[0]:
        single = products.linear_forward_csr(csr, np.ascontiguousarray(x[0]), bias)
        np.testing.assert_allclose(single, got[0], **TOLERANCE)


def test_linear_output_chains_without_copies():
    rng = np.random.default_rng(0)
    first = CSRMatrix.from_dense(rng.standard_normal((6, 5)).astype(np.float32))
    second = CSRMatrix.from_dense(rng.standard_normal((3, 6)).astype(np.float32))
    x = rng.standard_normal((4, 5)).astype(np.float32)
    hidden = products.linear_forward_csr(first, x)
    assert hidden.flags.f_contiguous  # the transpose of a C-contiguous (out, batch) product
    out = products.linear_forward_csr(second, np.maximum(hidden, 0))
    want = np.maximum(x @ first.to_dense().T, 0) @ second.to_dense().T
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "dense",
    [
        np.zeros((4, 7), np.float32),  # all-zero: every row empty
        np.array([[0, 0, 0], [1, 0, 2], [0, 0, 0], [0, 3, 0]], np.float32),  # empty rows
        np.arange(1, 8, dtype=np.float32).reshape(1, 7),  # 1 x N, density 1
        np.arange(1, 8, dtype=np.float32).reshape(7, 1),  # N x 1, density 1
        np.zeros((0, 5), np.float32),  # no rows
        np.zeros((3, 0), np.float32),  # no columns
    ],
)
def test_edge_shapes(dense):
    csr = CSRMatrix.from_dense(dense)
    x = np.linspace(-1, 1, dense.shape[1]).astype(np.float32)
    np.testing.assert_allclose(products.spmv(csr, x), dense @ x, atol=1e-6)
    batch = np.linspace(-1, 1, 3 * dense.shape[1]).astype(np.float32).reshape(3, dense.shape[1])
    np.testing.assert_allclose(products.linear_forward_csr(csr, batch), batch @ dense.T, atol=1e-6)


@st.composite
def conv_cases(draw):
    batch = draw(st.integers(0, 2))
    in_channels = draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    height = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 7))
    width = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 7))
    images = draw(float32_arrays((batch, in_channels, height, width)))
    out_channels = draw(st.integers(1, 4))
    csr, dense = draw(csr_matrices(rows=out_channels, cols=in_channels * kernel[0] * kernel[1]))
    weight = dense.reshape(out_channels, in_channels, *kernel)
    bias = draw(st.none() | float32_arrays((out_channels,)))
    return images, csr, weight, bias, kernel, stride, padding


@KERNEL_SETTINGS
@given(conv_cases())
def test_im2col_matches_reference(case):
    images, _, _, _, kernel, stride, padding = case
    got = products.im2col_patches(images, kernel, stride, padding)
    want = im2col_reference(images, *kernel, *stride, *padding)
    np.testing.assert_array_equal(got, want)


@KERNEL_SETTINGS
@given(conv_cases())
def test_conv2d_matches_direct_convolution(case):
    """Both paths: image by image (the default) and through the batch's patch matrix."""
    images, csr, weight, bias, kernel, stride, padding = case
    want = reference.conv2d_reference(images, weight, bias, *stride, *padding)
    for patch_matrix in (False, True):
        got = products.conv2d_forward_csr(
            csr, images, bias, kernel_size=kernel, stride=stride, padding=padding,
            patch_matrix=patch_matrix,
        )
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **TOLERANCE)


@KERNEL_SETTINGS
@given(conv_cases())
def test_raw_conv_kernel_matches_patch_reference(case):
    images, csr, _, bias, kernel, stride, padding = case
    bias = np.zeros(csr.shape[0], np.float32) if bias is None else bias
    patches = im2col_reference(images, *kernel, *stride, *padding).astype(np.float32)
    batch = images.shape[0]
    positions = patches.shape[1] // batch if batch else 0
    out = np.full((batch, csr.shape[0], positions), np.nan, dtype=np.float32)
    indptr, indices = csr_cpu.unsigned_index_views(csr.indptr, csr.indices)
    csr_cpu.conv2d_patches_cpu(indptr, indices, csr.data, bias, patches, out)
    if batch:
        want = reference.conv2d_patches_reference(
            csr.indptr, csr.indices, csr.data, bias, patches, batch
        )
        np.testing.assert_allclose(out, want, **TOLERANCE)


def test_references_agree_with_scipy():
    rng = np.random.default_rng(1)
    matrix = scipy.sparse.random(9, 13, density=0.3, format="csr", dtype=np.float32, rng=rng)
    csr = CSRMatrix.from_scipy(matrix)
    x = rng.standard_normal(13).astype(np.float32)
    np.testing.assert_allclose(
        reference.spmv_reference(csr.indptr, csr.indices, csr.data, x), matrix @ x, rtol=1e-5
    )
    dense = rng.standard_normal((13, 4)).astype(np.float32)
    bias = np.zeros(9, np.float32)
    got = reference.spmm_reference(csr.indptr, csr.indices, csr.data, bias, dense)
    np.testing.assert_allclose(got, matrix @ dense, rtol=1e-5, atol=1e-6)
