"""Slow, obviously correct twins of the CSR kernels: plain Python loops, float64 accumulation.

The fast kernels (``csr_cpu``, ``csr_cuda``) are tested against these on generated matrices. They
take the same raw arrays as the kernels (CSR = indptr, indices, data; see `minprune.sparse.csr`)
but *return* float64 results instead of writing into an output array, and assume valid input.
"""

from __future__ import annotations

import numpy as np

from minprune.kernels.training.im2col import conv_output_size

__all__ = [
    "spmv_reference",
    "spmm_reference",
    "linear_reference",
    "conv2d_patches_reference",
    "conv2d_reference",
]


def spmv_reference(indptr, indices, data, x, bias=None) -> np.ndarray:
    """y = A x + bias for the CSR matrix A: y[r] = bias[r] + sum over row r's entries k of
    data[k] * x[indices[k]] (bias defaults to 0)."""
    rows = len(indptr) - 1
    y = np.zeros(rows, dtype=np.float64) if bias is None else np.array(bias, dtype=np.float64)
    for row in range(rows):
        for k in range(indptr[row], indptr[row + 1]):
            y[row] += float(data[k]) * float(x[indices[k]])
    return y


def spmm_reference(indptr, indices, data, bias, dense) -> np.ndarray:
    """out = A @ dense + bias[:, None]; A is (rows, cols) CSR, dense is (cols, n), out (rows, n)."""
    rows = len(indptr) - 1
    out = np.zeros((rows, dense.shape[1]), dtype=np.float64)
    for row in range(rows):
        for j in range(dense.shape[1]):
            total = float(bias[row])
            for k in range(indptr[row], indptr[row + 1]):
                total += float(data[k]) * float(dense[indices[k], j])
            out[row, j] = total
    return out


def linear_reference(x, weight, bias=None) -> np.ndarray:
    """A fully connected layer, y = x @ weight.T + bias, in float64 (weight is dense (out, in))."""
    y = np.asarray(x, dtype=np.float64) @ np.asarray(weight, dtype=np.float64).T
    return y if bias is None else y + np.asarray(bias, dtype=np.float64)


def conv2d_patches_reference(indptr, indices, data, bias, patches, batch) -> np.ndarray:
    """The sparse conv kernel's contract: out[n, o, s] = bias[o] + sum_k W[o, k] patches[k, n*S+s]
    with W the (out_channels, in*kh*kw) CSR matrix and S = patches.shape[1] // batch output
    positions per image. Returns (batch, out_channels, S).
    """
    product = spmm_reference(indptr, indices, data, bias, patches)  # (out_channels, batch * S)
    positions = patches.shape[1] // batch
    return product.reshape(len(indptr) - 1, batch, positions).transpose(1, 0, 2)


def conv2d_reference(images, weight, bias, stride_h, stride_w, pad_h, pad_w) -> np.ndarray:
    """Direct convolution (cross-correlation, as in Caffe/PyTorch) with a dense (out, in, kh, kw)
    weight, by the definition, in float64: no im2col, so it also checks `im2col.im2col_reference`.
    """
    batch, channels, height, width = images.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h = conv_output_size(height, kernel_h, stride_h, pad_h)
    out_w = conv_output_size(width, kernel_w, stride_w, pad_w)
    padded = np.zeros((batch, channels, height + 2 * pad_h, width + 2 * pad_w), dtype=np.float64)
    padded[:, :, pad_h : pad_h + height, pad_w : pad_w + width] = images
    out = np.zeros((batch, out_channels, out_h, out_w), dtype=np.float64)
    for n in range(batch):
        for o in range(out_channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    window = padded[
                        n,
                        :,
                        oy * stride_h : oy * stride_h + kernel_h,
                        ox * stride_w : ox * stride_w + kernel_w,
                    ]
                    out[n, o, oy, ox] = np.sum(window * weight[o]) + (
                        0.0 if bias is None else bias[o]
                    )
    return out
