"""Products with CSR weights on the CPU, checked: `spmv`, `spmm`, `linear_forward_csr`,
`im2col_patches` and `conv2d_forward_csr` -- what the sparse engine runs a pruned layer with.

Han et al. 2015 store pruned layers as sparse matrices (Sec. 5), in CSR as Deep Compression
(Han et al. 2016, Sec. 2) spells out; this module computes with them. Weights are
accepted only as a validated `CSRMatrix`, and every argument is checked before a Numba kernel
(`minprune.kernels.inference.csr_cpu`, no bounds checking) runs.
"""

from __future__ import annotations

import numpy as np

from minprune.kernels.checks import as_pair, require_array
from minprune.kernels.inference.csr_cpu import (
    conv2d_images_cpu,
    conv2d_images_serial,
    conv2d_patches_cpu,
    spmm_cpu,
    spmv_cpu,
    unsigned_index_views,
)
from minprune.kernels.training.im2col import conv_output_size, im2col_patches_cpu
from minprune.sparse.csr import CSRMatrix

__all__ = [
    "require_csr",
    "spmv",
    "spmm",
    "linear_forward_csr",
    "im2col_patches",
    "conv2d_output_size",
    "conv_filter_shape",
    "conv2d_forward_csr",
]

_FLOAT32 = np.float32


def require_csr(name: str, csr) -> None:
    """ValueError unless ``csr`` is a (validated, immutable) `CSRMatrix`."""
    if not isinstance(csr, CSRMatrix):
        raise ValueError(
            f"{name}: expected a minprune.sparse.CSRMatrix (it validates its index arrays), got "
            f"{type(csr).__name__}; build one with CSRMatrix.from_dense or CSRMatrix.from_scipy"
        )


def _bias_or_zeros(csr: CSRMatrix, bias) -> np.ndarray:
    if bias is None:
        return np.zeros(csr.shape[0], dtype=_FLOAT32)
    require_array("bias", bias, dtypes=_FLOAT32, shape=(csr.shape[0],))
    return bias


def _require_output(out, shape: tuple[int, ...], *inputs) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=_FLOAT32)
    require_array("out", out, dtypes=_FLOAT32, shape=shape)
    if any(np.may_share_memory(out, array) for array in inputs):
        raise ValueError("out: must not share memory with an input (the kernel would read it)")
    return out


def spmv(
    csr: CSRMatrix, x: np.ndarray, bias: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """y = A x (+ bias) for a CSR matrix A (rows, cols) and float32 x (cols,); returns y (rows,)."""
    require_csr("csr", csr)
    rows, cols = csr.shape
    require_array("x", x, dtypes=_FLOAT32, shape=(cols,))
    bias = _bias_or_zeros(csr, bias)
    out = _require_output(out, (rows,), x, bias)
    indptr, indices = unsigned_index_views(csr.indptr, csr.indices)
    spmv_cpu(indptr, indices, csr.data, bias, x, out)
    return out


def spmm(
    csr: CSRMatrix, dense: np.ndarray, bias: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """out (rows, n) = A (rows, cols) @ dense (cols, n) + bias[:, None]; dense C-contiguous.

    For a Linear layer pass dense = X^T (in, batch): the kernel's inner loop then runs over the
    batch, contiguously. `linear_forward_csr` does that transposition for you.
    """
    require_csr("csr", csr)
    rows, cols = csr.shape
    require_array("dense", dense, dtypes=_FLOAT32, shape=(cols, None))
    bias = _bias_or_zeros(csr, bias)
    out = _require_output(out, (rows, dense.shape[1]), dense, bias)
    indptr, indices = unsigned_index_views(csr.indptr, csr.indices)
    spmm_cpu(indptr, indices, csr.data, bias, dense, out)
    return out


def linear_forward_csr(csr: CSRMatrix, x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """A pruned fully connected layer, y = x @ W.T + bias, with W (out, in) stored as CSR.

    ``x`` is (in,) -> SpMV, returns (out,); or (batch, in) in any memory order -> SpMM on X^T,
    returns (batch, out) as the transpose of a C-contiguous (out, batch) array (Fortran order).
    Feeding that straight into the next `linear_forward_csr` makes its X^T free.
    """
    require_csr("csr", csr)
    out_features, in_features = csr.shape
    if getattr(x, "ndim", None) == 1:
        return spmv(csr, x, bias)
    require_array("x", x, dtypes=_FLOAT32, shape=(None, in_features), contiguous=False)
    if x.shape[0] == 1:
        return linear_forward_csr(csr, np.ascontiguousarray(x[0]), bias).reshape(1, out_features)
    return spmm(csr, np.ascontiguousarray(x.T), bias).T


def im2col_patches(images: np.ndarray, kernel_size, stride=1, padding=0) -> np.ndarray:
    """Patch matrix (channels*kh*kw, batch*out_h*out_w) of float32 images (batch, channels, h, w);
    layout as in `minprune.kernels.training.im2col.im2col_reference`."""
    require_array("images", images, dtypes=_FLOAT32, shape=(None, None, None, None))
    kernel_h, kernel_w = as_pair("kernel_size", kernel_size, minimum=1)
    stride_h, stride_w = as_pair("stride", stride, minimum=1)
    pad_h, pad_w = as_pair("padding", padding, minimum=0)
    batch, channels, height, width = images.shape
    out_h, out_w = conv2d_output_size((height, width), kernel_size, stride, padding)
    patches = np.empty((channels * kernel_h * kernel_w, batch * out_h * out_w), dtype=_FLOAT32)
    im2col_patches_cpu(images, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, patches)
    return patches


def conv2d_output_size(image_size, kernel_size, stride=1, padding=0) -> tuple[int, int]:
    """(out_h, out_w) = (size + 2 * padding - kernel) // stride + 1 per axis; ValueError if < 1."""
    sizes = as_pair("image_size", image_size, minimum=0)
    kernels = as_pair("kernel_size", kernel_size, minimum=1)
    strides = as_pair("stride", stride, minimum=1)
    paddings = as_pair("padding", padding, minimum=0)
    result = []
    for axis, size, kernel, step, pad in zip(
        ("height", "width"), sizes, kernels, strides, paddings, strict=True
    ):
        if size + 2 * pad < kernel:
            raise ValueError(
                f"images: {axis} {size} + 2 * padding {pad} is smaller than the kernel's {kernel}"
            )
        result.append(conv_output_size(size, kernel, step, pad))
    return result[0], result[1]


def conv_filter_shape(csr_shape, kernel_size) -> tuple[int, int, int]:
    """(kernel_h, kernel_w, in_channels) of conv filters stored as CSR (out, in * kh * kw)."""
    kernel_h, kernel_w = as_pair("kernel_size", kernel_size, minimum=1)
    patch_size = csr_shape[1]
    if patch_size % (kernel_h * kernel_w):
        raise ValueError(
            f"kernel_size: {kernel_h} x {kernel_w} does not divide the CSR's {patch_size} columns "
            "(expected in_channels * kh * kw)"
        )
    return kernel_h, kernel_w, patch_size // (kernel_h * kernel_w)


def conv2d_forward_csr(
    csr: CSRMatrix,
    images: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    kernel_size,
    stride=1,
    padding=0,
    patch_matrix: bool = False,
    parallel: bool = True,
) -> np.ndarray:
    """A pruned conv layer: weight (out, in, kh, kw) stored as CSR (out, in*kh*kw), applied to
    float32 images (batch, in, h, w) by im2col + sparse matrix product; returns
    (batch, out, out_h, out_w). Cross-correlation, as in Caffe and PyTorch.

    By default image by image, each image's patches built in a scratch array that stays in cache
    (`csr_cpu.conv2d_images_cpu`); ``patch_matrix=True`` builds the patch matrix of the whole batch
    first (`im2col_patches`, then `csr_cpu.conv2d_patches_cpu`): the plainer path, kept as the
    reference the tests hold the fast one to. ``parallel=False`` keeps the image loop on one
    thread (the sparse engine's default, see `minprune.inference.compile_model`).
    """
    require_csr("csr", csr)
    kernel_h, kernel_w, in_channels = conv_filter_shape(csr.shape, kernel_size)
    out_channels = csr.shape[0]
    require_array("images", images, dtypes=_FLOAT32, shape=(None, in_channels, None, None))
    bias = _bias_or_zeros(csr, bias)
    batch = images.shape[0]
    out_h, out_w = conv2d_output_size(images.shape[2:], (kernel_h, kernel_w), stride, padding)
    indptr, indices = unsigned_index_views(csr.indptr, csr.indices)
    if not patch_matrix:
        out = np.empty((batch, out_channels, out_h, out_w), dtype=_FLOAT32)
        stride_h, stride_w = as_pair("stride", stride, minimum=1)
        pad_h, pad_w = as_pair("padding", padding, minimum=0)
        kernel = conv2d_images_cpu if parallel and batch > 1 else conv2d_images_serial
        kernel(indptr, indices, csr.data, bias, images, kernel_h, kernel_w, stride_h, stride_w,
               pad_h, pad_w, out)
        return out
    patches = im2col_patches(images, (kernel_h, kernel_w), stride, padding)
    out = np.empty((batch, out_channels, out_h * out_w), dtype=_FLOAT32)
    conv2d_patches_cpu(indptr, indices, csr.data, bias, patches, out)
    return out.reshape(batch, out_channels, out_h, out_w)
