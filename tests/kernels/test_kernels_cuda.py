"""CUDA kernels against the same references as the CPU kernels.

Runs on a real GPU (``pytest -m cuda``) or on Numba's CPU simulator
(``NUMBA_ENABLE_CUDASIM=1 pytest -m cuda``), and skips, saying why, when neither is available.
The simulator runs every GPU thread as a Python thread, so cases stay tiny and few.
"""

import numpy as np
import pytest

from minprune.kernels.cuda_support import cuda_available, simulator_enabled
from minprune.kernels.inference import csr_reference
from minprune.kernels.training import masked_sgd_reference as masked_reference
from minprune.kernels.training.im2col import im2col_reference
from minprune.sparse.csr import CSRMatrix

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not cuda_available(),
        reason="no CUDA GPU found and NUMBA_ENABLE_CUDASIM is not set "
        "(run `NUMBA_ENABLE_CUDASIM=1 pytest -m cuda` to use Numba's simulator)",
    ),
]

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def _sparse(rng, shape, density):
    dense = rng.standard_normal(shape).astype(np.float32)
    mask = (rng.random(shape) < density).astype(np.float32)
    return CSRMatrix.from_dense(dense, mask), np.where(mask != 0, dense, 0).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture(scope="module")
def cuda_modules():
    from numba import cuda

    from minprune.inference import products_cuda
    from minprune.kernels.training import masked_sgd_cuda

    return cuda, products_cuda, masked_sgd_cuda


def test_reports_how_it_runs():
    assert cuda_available()
    assert isinstance(simulator_enabled(), bool)


@pytest.mark.parametrize(
    ("shape", "density"), [((5, 80), 0.8), ((3, 4), 0.0), ((1, 7), 1.0), ((6, 1), 1.0)]
)
def test_spmv(cuda_modules, rng, shape, density):
    """Includes rows longer than a warp (~64 entries), so lanes loop and the tree reduces."""
    _, products_cuda, _ = cuda_modules
    csr, dense = _sparse(rng, shape, density)
    x = rng.standard_normal(shape[1]).astype(np.float32)
    bias = rng.standard_normal(shape[0]).astype(np.float32)
    got = products_cuda.spmv_cuda(csr, x, bias)
    want = csr_reference.spmv_reference(csr.indptr, csr.indices, csr.data, x, bias)
    np.testing.assert_allclose(got, want, **TOLERANCE)


def test_spmm_and_linear_on_host_and_device(cuda_modules, rng):
    cuda, products_cuda, _ = cuda_modules
    csr, dense = _sparse(rng, (6, 9), 0.4)
    x = rng.standard_normal((3, 9)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    want = csr_reference.linear_reference(x, dense, bias)
    np.testing.assert_allclose(
        products_cuda.spmm_cuda(csr, np.ascontiguousarray(x.T), bias).T, want, **TOLERANCE
    )
    got = products_cuda.linear_forward_csr_cuda(csr, x, bias)
    np.testing.assert_allclose(got, want, **TOLERANCE)
    on_device = products_cuda.linear_forward_csr_cuda(
        products_cuda.csr_to_device(csr), cuda.to_device(x), bias
    )
    assert not isinstance(on_device, np.ndarray)  # device in, device out
    np.testing.assert_allclose(on_device.copy_to_host(), want, **TOLERANCE)


@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_linear_in_the_8_bit_layout_by_row_and_by_column(cuda_modules, rng, layout):
    """The GPU twins of the fused chain's two layouts: a 300-wide layer, so a line's steps need
    fillers (gaps past 256), zeros in x for the column kernel to skip, host and device inputs."""
    cuda, products_cuda, _ = cuda_modules
    from minprune.sparse.relative import RelativeIndexMatrix

    csr, dense = _sparse(rng, (300, 300), 0.01)
    dense[5, [0, 299]], dense[[0, 299], 9] = (1.5, -2.0), (0.5, 0.25)  # gaps of 299 positions
    csr = CSRMatrix.from_dense(dense, dense != 0)
    matrix = RelativeIndexMatrix.from_csr(csr, layout)
    assert matrix.fillers > 0
    device = products_cuda.relative_to_device(matrix)
    x = rng.standard_normal((2, 300)).astype(np.float32)
    x[:, ::2] = 0.0
    bias = rng.standard_normal(300).astype(np.float32)
    expected = x.astype(np.float64) @ dense.T.astype(np.float64) + bias
    host = products_cuda.linear_forward_relative_cuda(device, x, bias)
    np.testing.assert_allclose(host, expected, **TOLERANCE)
    on_device = products_cuda.linear_forward_relative_cuda(device, cuda.to_device(x), bias)
    np.testing.assert_allclose(on_device.copy_to_host(), expected, **TOLERANCE)
    with pytest.raises(ValueError, match="expected a minprune.sparse.RelativeIndexMatrix"):
        products_cuda.relative_to_device(csr)


def test_im2col_and_conv2d(cuda_modules, rng):
    _, products_cuda, _ = cuda_modules
    images = rng.standard_normal((2, 2, 5, 4)).astype(np.float32)
    csr, dense = _sparse(rng, (3, 2 * 3 * 2), 0.5)
    bias = rng.standard_normal(3).astype(np.float32)
    kernel, stride, padding = (3, 2), (2, 1), (1, 0)
    patches = products_cuda.im2col_cuda(images, kernel, stride, padding)
    np.testing.assert_array_equal(
        patches, im2col_reference(images, *kernel, *stride, *padding)
    )
    got = products_cuda.conv2d_forward_csr_cuda(
        csr, images, bias, kernel_size=kernel, stride=stride, padding=padding
    )
    weight = dense.reshape(3, 2, *kernel)
    want = csr_reference.conv2d_reference(images, weight, bias, *stride, *padding)
    np.testing.assert_allclose(got, want, **TOLERANCE)


def test_cuda_wrappers_validate_before_launch(cuda_modules, rng):
    _, products_cuda, masked_sgd_cuda = cuda_modules
    csr, _ = _sparse(rng, (4, 5), 0.5)
    with pytest.raises(ValueError, match=r"x: expected float32 array of shape \(5,\)"):
        products_cuda.spmv_cuda(csr, np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="csr: expected a minprune.sparse.CSRMatrix"):
        products_cuda.spmv_cuda(np.eye(5, dtype=np.float32), np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"mask: expected float32 or bool array of shape \(2, 3\)"):
        weight = np.zeros((2, 3), np.float32)
        masked_sgd_cuda.masked_sgd_momentum_update_cuda(
            weight, np.zeros_like(weight), np.zeros_like(weight), np.zeros((3, 2), np.float32),
            lr=0.1, momentum=0.9,
        )


def test_masked_sgd_update_host_and_device(cuda_modules, rng):
    cuda, _, masked_sgd_cuda = cuda_modules
    shape = (4, 5)
    weight = rng.standard_normal(shape).astype(np.float32)
    velocity = rng.standard_normal(shape).astype(np.float32)
    grad = rng.standard_normal(shape).astype(np.float32)
    mask = (rng.random(shape) < 0.5).astype(np.float32)
    hyper = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "l1": 1e-3}
    want_weight, want_velocity = masked_reference.masked_sgd_momentum_reference(
        weight, velocity, grad, mask, **hyper
    )
    device_weight, device_velocity = cuda.to_device(weight), cuda.to_device(velocity)
    masked_sgd_cuda.masked_sgd_momentum_update_cuda(weight, velocity, grad, mask, **hyper)
    np.testing.assert_allclose(weight, want_weight, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(velocity, want_velocity, rtol=1e-6, atol=1e-6)
    assert np.all(weight[mask == 0] == 0) and np.all(velocity[mask == 0] == 0)
    masked_sgd_cuda.masked_sgd_momentum_update_cuda(
        device_weight, device_velocity, cuda.to_device(grad), cuda.to_device(mask), **hyper
    )
    np.testing.assert_allclose(device_weight.copy_to_host(), want_weight, rtol=1e-6, atol=1e-6)
