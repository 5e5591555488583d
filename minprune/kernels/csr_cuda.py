"""Numba CUDA kernels for CSR weights: SpMV, SpMM, im2col and sparse conv2d, with checked wrappers.

The GPU twins of `minprune.kernels.csr_cpu` (same contracts, same references). Importable without a
GPU; run under ``NUMBA_ENABLE_CUDASIM=1`` for testing. Transfers follow `cuda_support`: numpy in ->
numpy out, device arrays in -> device array out. A `CSRMatrix` is copied to the device on every
call; an engine should call `csr_to_device` once and pass the `DeviceCSR` instead.

Kernel designs (standard ones, see Bell & Garland, "Implementing sparse matrix-vector
multiplication on throughput-oriented processors", SC 2009):
- SpMV is "vector CSR": one 32-thread warp per row; lanes stride over the row's entries (coalesced
  reads of data and indices), then a shared-memory tree sums the 32 partial sums. Rows of AlexNet's
  fc6 at 9% hold ~830 entries, so a thread per row ("scalar CSR") would leave reads uncoalesced.
- SpMM (out = A @ dense, dense (cols, n)) and sparse conv use one thread per output element; the
  threads of a warp share a row of A (broadcast reads) and read consecutive columns of dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import cuda

from minprune.kernels.argument_checks import as_pair, is_device_array, require_array
from minprune.kernels.csr_ops import conv2d_output_size, require_csr
from minprune.kernels.cuda_support import blocks_for, finish, to_device
from minprune.sparse.csr import CSRMatrix

__all__ = [
    "DeviceCSR",
    "csr_to_device",
    "spmv_cuda",
    "spmm_cuda",
    "linear_forward_csr_cuda",
    "im2col_cuda",
    "conv2d_forward_csr_cuda",
]


def _require(name: str, array, **expected) -> None:
    """`argument_checks.require_array`, accepting device arrays as well as numpy arrays."""
    require_array(name, array, allow_device=True, **expected)


_LANES = 32  # threads cooperating on one row in SpMV (one warp)
_ROWS_PER_BLOCK = 4  # SpMV rows per block of 32 x 4 threads
_TILE = (32, 8)  # threads per block (x: fast axis, y) for the element-wise 2-D kernels


@dataclass(frozen=True)
class DeviceCSR:
    """A validated CSR matrix's arrays on the GPU; make one with `csr_to_device`."""

    indptr: object
    indices: object
    data: object
    shape: tuple[int, int]


def csr_to_device(csr: CSRMatrix) -> DeviceCSR:
    """Copy a (validated) `CSRMatrix` to the GPU once, for repeated kernel calls."""
    require_csr("csr", csr)
    return DeviceCSR(
        cuda.to_device(csr.indptr), cuda.to_device(csr.indices), cuda.to_device(csr.data), csr.shape
    )


def _device_csr(csr) -> DeviceCSR:
    if isinstance(csr, DeviceCSR):
        return csr
    require_csr("csr", csr)
    return csr_to_device(csr)


@cuda.jit
def _spmv_kernel(indptr, indices, data, bias, x, out):
    """out[row] = bias[row] + sum_k data[k] * x[indices[k]]; block (32, 4): threadIdx.y picks
    the row, threadIdx.x the lane."""
    partial = cuda.shared.array((_ROWS_PER_BLOCK, _LANES), numba.float32)
    lane = cuda.threadIdx.x
    slot = cuda.threadIdx.y
    row = cuda.blockIdx.x * _ROWS_PER_BLOCK + slot
    total = np.float32(0.0)
    if row < out.shape[0]:
        for k in range(indptr[row] + lane, indptr[row + 1], _LANES):
            total += data[k] * x[indices[k]]
    partial[slot, lane] = total
    cuda.syncthreads()
    width = _LANES // 2
    while width > 0:  # tree reduction; every thread reaches every barrier
        if lane < width:
            partial[slot, lane] += partial[slot, lane + width]
        cuda.syncthreads()
        width //= 2
    if lane == 0 and row < out.shape[0]:
        out[row] = partial[slot, 0] + bias[row]


@cuda.jit
def _spmm_kernel(indptr, indices, data, bias, dense, out):
    """out[row, j] = bias[row] + sum_k data[k] * dense[indices[k], j]; one thread per (row, j)."""
    j, row = cuda.grid(2)
    if row < out.shape[0] and j < out.shape[1]:
        total = bias[row]
        for k in range(indptr[row], indptr[row + 1]):
            total += data[k] * dense[indices[k], j]
        out[row, j] = total


@cuda.jit
def _transpose_kernel(source, target):
    """target[j, i] = source[i, j]."""
    j, i = cuda.grid(2)
    if i < source.shape[0] and j < source.shape[1]:
        target[j, i] = source[i, j]


@cuda.jit
def _im2col_kernel(images, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, patches):
    """Same layout as `csr_reference.im2col_reference`; one thread per patch-matrix element."""
    column, row = cuda.grid(2)
    if row >= patches.shape[0] or column >= patches.shape[1]:
        return
    height = images.shape[2]
    width = images.shape[3]
    out_h = (height + 2 * pad_h - kernel_h) // stride_h + 1
    out_w = (width + 2 * pad_w - kernel_w) // stride_w + 1
    c = row // (kernel_h * kernel_w)
    ky = (row // kernel_w) % kernel_h
    kx = row % kernel_w
    n = column // (out_h * out_w)
    oy = (column // out_w) % out_h
    ox = column % out_w
    iy = oy * stride_h - pad_h + ky
    ix = ox * stride_w - pad_w + kx
    if 0 <= iy < height and 0 <= ix < width:
        patches[row, column] = images[n, c, iy, ix]
    else:
        patches[row, column] = 0.0


@cuda.jit
def _conv2d_patches_kernel(indptr, indices, data, bias, patches, out):
    """out[n, o, s] = bias[o] + sum_k W[o, k] * patches[k, n * positions + s]."""
    column, o = cuda.grid(2)
    positions = out.shape[2]
    if o < out.shape[1] and column < patches.shape[1]:
        total = bias[o]
        for k in range(indptr[o], indptr[o + 1]):
            total += data[k] * patches[indices[k], column]
        out[column // positions, o, column % positions] = total


def _grid_2d(columns: int, rows: int) -> tuple[tuple[int, int], tuple[int, int]]:
    return (blocks_for(columns, _TILE[0]), blocks_for(rows, _TILE[1])), _TILE


def _bias_on_device(bias, rows: int):
    if bias is None:
        return cuda.to_device(np.zeros(rows, dtype=np.float32))
    _require("bias", bias, dtypes=np.float32, shape=(rows,))
    return to_device(bias)


def spmv_cuda(csr, x, bias=None):
    """y = A x (+ bias) on the GPU; ``csr`` a `CSRMatrix` or `DeviceCSR`, x float32 (cols,)."""
    matrix = _device_csr(csr)
    rows, cols = matrix.shape
    _require("x", x, dtypes=np.float32, shape=(cols,))
    out = cuda.device_array(rows, dtype=np.float32)
    threads = (_LANES, _ROWS_PER_BLOCK)
    blocks = blocks_for(rows, _ROWS_PER_BLOCK)
    _spmv_kernel[blocks, threads](
        matrix.indptr, matrix.indices, matrix.data, _bias_on_device(bias, rows), to_device(x), out
    )
    return finish(out, not is_device_array(x))


def spmm_cuda(csr, dense, bias=None):
    """out (rows, n) = A @ dense (cols, n) + bias[:, None] on the GPU; dense C-contiguous."""
    matrix = _device_csr(csr)
    rows, cols = matrix.shape
    _require("dense", dense, dtypes=np.float32, shape=(cols, None))
    out = cuda.device_array((rows, dense.shape[1]), dtype=np.float32)
    blocks, threads = _grid_2d(dense.shape[1], rows)
    _spmm_kernel[blocks, threads](
        matrix.indptr,
        matrix.indices,
        matrix.data,
        _bias_on_device(bias, rows),
        to_device(dense),
        out,
    )
    return finish(out, not is_device_array(dense))


def _transpose_on_device(matrix):
    target = cuda.device_array((matrix.shape[1], matrix.shape[0]), dtype=matrix.dtype)
    blocks, threads = _grid_2d(matrix.shape[1], matrix.shape[0])
    _transpose_kernel[blocks, threads](matrix, target)
    return target


def linear_forward_csr_cuda(csr, x, bias=None):
    """y = x @ W.T + bias with W (out, in) as CSR, on the GPU. ``x`` (in,) uses SpMV; x (batch, in)
    is transposed on the device, multiplied as SpMM (Y^T = W X^T) and transposed back."""
    matrix = _device_csr(csr)
    _, in_features = matrix.shape
    if len(getattr(x, "shape", ())) == 1:
        return spmv_cuda(matrix, x, bias)
    _require("x", x, dtypes=np.float32, shape=(None, in_features))
    y_transposed = spmm_cuda(matrix, _transpose_on_device(to_device(x)), bias)
    return finish(_transpose_on_device(y_transposed), not is_device_array(x))


def im2col_cuda(images, kernel_size, stride=1, padding=0):
    """Patch matrix of float32 images (batch, channels, h, w) on the GPU (layout as on the CPU)."""
    _require("images", images, dtypes=np.float32, shape=(None, None, None, None))
    kernel_h, kernel_w = as_pair("kernel_size", kernel_size, minimum=1)
    stride_h, stride_w = as_pair("stride", stride, minimum=1)
    pad_h, pad_w = as_pair("padding", padding, minimum=0)
    batch, channels, height, width = images.shape
    out_h, out_w = conv2d_output_size((height, width), kernel_size, stride, padding)
    patches = cuda.device_array(
        (channels * kernel_h * kernel_w, batch * out_h * out_w), dtype=np.float32
    )
    blocks, threads = _grid_2d(patches.shape[1], patches.shape[0])
    _im2col_kernel[blocks, threads](
        to_device(images), kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, patches
    )
    return finish(patches, not is_device_array(images))


def conv2d_forward_csr_cuda(csr, images, bias=None, *, kernel_size, stride=1, padding=0):
    """GPU twin of `csr_ops.conv2d_forward_csr`: returns (batch, out, out_h, out_w)."""
    matrix = _device_csr(csr)
    kernel_h, kernel_w = as_pair("kernel_size", kernel_size, minimum=1)
    out_channels, patch_size = matrix.shape
    if patch_size % (kernel_h * kernel_w):
        raise ValueError(
            f"kernel_size: {kernel_h} x {kernel_w} does not divide the CSR's {patch_size} columns "
            "(expected in_channels * kh * kw)"
        )
    in_channels = patch_size // (kernel_h * kernel_w)
    _require("images", images, dtypes=np.float32, shape=(None, in_channels, None, None))
    device_bias = _bias_on_device(bias, out_channels)
    patches = im2col_cuda(to_device(images), (kernel_h, kernel_w), stride, padding)
    batch = images.shape[0]
    out_h, out_w = conv2d_output_size(images.shape[2:], (kernel_h, kernel_w), stride, padding)
    out = cuda.device_array((batch, out_channels, out_h * out_w), dtype=np.float32)
    blocks, threads = _grid_2d(patches.shape[1], out_channels)
    _conv2d_patches_kernel[blocks, threads](
        matrix.indptr, matrix.indices, matrix.data, device_bias, patches, out
    )
    result = out.reshape(batch, out_channels, out_h, out_w)
    return finish(result, not is_device_array(images))
