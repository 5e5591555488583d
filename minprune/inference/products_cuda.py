"""Checked entry points of the CSR CUDA kernels (`minprune.kernels.inference.csr_cuda`): the GPU
twins of `minprune.inference.products`, used by the sparse engine's "cuda" backend.

Importable without a GPU; run under ``NUMBA_ENABLE_CUDASIM=1`` for testing. numpy in -> numpy out,
device arrays in -> device array out. A `CSRMatrix` is copied to the device on every call; call
`csr_to_device` once and pass the `DeviceCSR` instead for repeated calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import cuda

from minprune.inference.products import conv2d_output_size, conv_filter_shape, require_csr
from minprune.kernels.checks import as_pair, is_device_array, require_array
from minprune.kernels.cuda_support import blocks_for, finish, to_device
from minprune.kernels.inference import csr_cuda, relative_cuda
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.relative import RelativeIndexMatrix

__all__ = [
    "DeviceCSR",
    "csr_to_device",
    "spmv_cuda",
    "spmm_cuda",
    "linear_forward_csr_cuda",
    "DeviceRelative",
    "relative_to_device",
    "linear_forward_relative_cuda",
    "im2col_cuda",
    "conv2d_forward_csr_cuda",
]


def _require(name: str, array, **expected) -> None:
    """`minprune.kernels.checks.require_array`, accepting device arrays as well as numpy arrays."""
    require_array(name, array, allow_device=True, **expected)


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
    threads = (csr_cuda.LANES, csr_cuda.ROWS_PER_BLOCK)
    blocks = blocks_for(rows, csr_cuda.ROWS_PER_BLOCK)
    csr_cuda.spmv_kernel[blocks, threads](
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
    csr_cuda.spmm_kernel[blocks, threads](
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
    csr_cuda.transpose_kernel[blocks, threads](matrix, target)
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


@dataclass(frozen=True)
class DeviceRelative:
    """A `RelativeIndexMatrix`'s arrays on the GPU; make one with `relative_to_device`."""

    pointers: object
    steps: object
    values: object
    shape: tuple[int, int]
    layout: str
    nbytes: int


def relative_to_device(matrix: RelativeIndexMatrix) -> DeviceRelative:
    """Copy a (validated) `RelativeIndexMatrix` to the GPU once."""
    if not isinstance(matrix, RelativeIndexMatrix):
        raise ValueError(f"relative_to_device: expected a minprune.sparse.RelativeIndexMatrix, "
                         f"got {type(matrix).__name__}")
    return DeviceRelative(cuda.to_device(matrix.pointers), cuda.to_device(matrix.steps),
                          cuda.to_device(matrix.values), matrix.shape, matrix.layout,
                          matrix.nbytes)


def linear_forward_relative_cuda(matrix: DeviceRelative, x, bias):
    """y = x @ W.T + bias on the GPU, W (out, in) in the 8-bit layout: by row, a gather per
    (output, sample); by column, the bias first, then a scatter per non-zero (input, sample).
    ``x`` (batch, in), numpy or device; float32 ``bias`` (out,) on the device or host."""
    rows, in_features = matrix.shape
    _require("x", x, dtypes=np.float32, shape=(None, in_features))
    x_device, bias_device = to_device(x), _bias_on_device(bias, rows)
    out = cuda.device_array((x.shape[0], rows), dtype=np.float32)
    blocks, threads = _grid_2d(rows, x.shape[0])  # one thread per output element
    if matrix.layout == "csr":
        relative_cuda.by_row_kernel[blocks, threads](matrix.pointers, matrix.steps,
                                                     matrix.values, bias_device, x_device, out)
    else:
        relative_cuda.bias_rows_kernel[blocks, threads](bias_device, out)
        blocks, threads = _grid_2d(in_features, x.shape[0])
        relative_cuda.by_column_kernel[blocks, threads](matrix.pointers, matrix.steps,
                                                        matrix.values, x_device, out)
    return finish(out, not is_device_array(x))


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
    csr_cuda.im2col_kernel[blocks, threads](
        to_device(images), kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, patches
    )
    return finish(patches, not is_device_array(images))


def conv2d_forward_csr_cuda(csr, images, bias=None, *, kernel_size, stride=1, padding=0):
    """GPU twin of `products.conv2d_forward_csr`: returns (batch, out, out_h, out_w)."""
    matrix = _device_csr(csr)
    kernel_h, kernel_w, in_channels = conv_filter_shape(matrix.shape, kernel_size)
    out_channels = matrix.shape[0]
    _require("images", images, dtypes=np.float32, shape=(None, in_channels, None, None))
    device_bias = _bias_on_device(bias, out_channels)
    patches = im2col_cuda(to_device(images), (kernel_h, kernel_w), stride, padding)
    batch = images.shape[0]
    out_h, out_w = conv2d_output_size(images.shape[2:], (kernel_h, kernel_w), stride, padding)
    out = cuda.device_array((batch, out_channels, out_h * out_w), dtype=np.float32)
    blocks, threads = _grid_2d(patches.shape[1], out_channels)
    csr_cuda.conv2d_patches_kernel[blocks, threads](
        matrix.indptr, matrix.indices, matrix.data, device_bias, patches, out
    )
    result = out.reshape(batch, out_channels, out_h, out_w)
    return finish(result, not is_device_array(images))
