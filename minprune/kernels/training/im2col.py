"""im2col / col2im: convolution as one matrix multiply, as raw-array Numba kernels, with the one
`conv_output_size` every conv and pool in minprune uses.

Three layouts of the same patches, for three consumers:

- `im2col` (training, `minprune.autograd.ops.conv`): one row per output position, one column
  per weight tap, ``cols[(n*OH + oh)*OW + ow, (c*KH + i)*KW + j]``, so
  ``cols @ weight.reshape(O, -1).T`` is the convolution as one GEMM for the batch; `col2im` is
  its adjoint (the input gradient).
- `im2col_images` (training, the fast backend's per-image layout, `minprune.autograd.fast`, for
  layers with many output positions and few taps, such as LeNet-5's conv1): image by image, one
  row per tap, ``cols[n, (c*KH + i)*KW + j, oh*OW + ow]``, so ``weight.reshape(O, -1) @ cols``
  is one GEMM per image whose result is already NCHW; `col2im_images` is its adjoint. The
  training kernels run on one thread, beside BLAS.
- `im2col_patches` (the sparse engine's reference path, `minprune.inference.products` with
  ``patch_matrix=True``): the transpose, one row per weight tap, so each stored weight of a CSR
  filter scales one contiguous patch row.

``rows_to_nchw``/``nchw_to_rows`` move the multiply's (N*OH*OW, O) layout to and from
(N, O, OH, OW). Callers validate shapes first: the kernels do no bounds checking.

The training kernels are compiled once per kernel size (`_patch_kernels`): with KH and KW
compile-time constants LLVM unrolls the tap loop, faster than one loop whose length is known
only at run time.
"""

import functools

import numpy as np
from numba import njit, prange

__all__ = [
    "conv_output_size",
    "im2col",
    "im2col_patches_cpu",
    "col2im",
    "im2col_images",
    "col2im_images",
    "rows_to_nchw",
    "nchw_to_rows",
    "im2col_reference",
    "col2im_reference",
]


def _conv_output_size(size, kernel, stride, padding):
    """Output length along one axis: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


# Jitted too, so the kernels below call the same formula (a plain function under NUMBA_DISABLE_JIT).
conv_output_size = njit(cache=True)(_conv_output_size)


@functools.cache
def _patch_kernels(kh, kw):
    """im2col and col2im in both layouts, into given arrays, for one kernel size (KH and KW
    constants in the code): (im2col, col2im, im2col_images, col2im_images)."""

    def im2col_into(x, stride, pad, cols):
        n_images, channels, height, width = x.shape
        out_h = conv_output_size(height, kh, stride, pad)
        out_w = conv_output_size(width, kw, stride, pad)
        for n in range(n_images):
            for oh in range(out_h):
                for ow in range(out_w):
                    row = (n * out_h + oh) * out_w + ow
                    w0 = ow * stride - pad
                    for c in range(channels):
                        for i in range(kh):
                            h = oh * stride + i - pad
                            base = (c * kh + i) * kw
                            if pad == 0:  # no bounds test: the common case, unrolled
                                for j in range(kw):
                                    cols[row, base + j] = x[n, c, h, w0 + j]
                            elif 0 <= h < height:
                                for j in range(kw):
                                    w = w0 + j
                                    inside = 0 <= w < width
                                    cols[row, base + j] = x[n, c, h, w] if inside else 0.0
                            else:
                                for j in range(kw):
                                    cols[row, base + j] = 0.0

    def col2im_into(cols, stride, pad, dx):
        n_images, channels, height, width = dx.shape
        out_h = conv_output_size(height, kh, stride, pad)
        out_w = conv_output_size(width, kw, stride, pad)
        for n in range(n_images):
            dx[n] = 0.0
            for oh in range(out_h):
                for ow in range(out_w):
                    row = (n * out_h + oh) * out_w + ow
                    w0 = ow * stride - pad
                    for c in range(channels):
                        for i in range(kh):
                            h = oh * stride + i - pad
                            base = (c * kh + i) * kw
                            if pad == 0:
                                for j in range(kw):
                                    dx[n, c, h, w0 + j] += cols[row, base + j]
                            elif 0 <= h < height:
                                for j in range(kw):
                                    if 0 <= w0 + j < width:
                                        dx[n, c, h, w0 + j] += cols[row, base + j]

    def im2col_images_into(x, stride, pad, cols):
        n_images, channels, height, width = x.shape
        out_h = conv_output_size(height, kh, stride, pad)
        out_w = conv_output_size(width, kw, stride, pad)
        for n in range(n_images):
            for c in range(channels):
                for i in range(kh):
                    for j in range(kw):
                        tap = (c * kh + i) * kw + j
                        for oh in range(out_h):
                            h = oh * stride + i - pad
                            start = oh * out_w
                            if 0 <= h < height:
                                for ow in range(out_w):
                                    w = ow * stride + j - pad
                                    inside = 0 <= w < width
                                    cols[n, tap, start + ow] = x[n, c, h, w] if inside else 0.0
                            else:
                                for ow in range(out_w):
                                    cols[n, tap, start + ow] = 0.0

    def col2im_images_into(cols, stride, pad, dx):
        n_images, channels, height, width = dx.shape
        out_h = conv_output_size(height, kh, stride, pad)
        out_w = conv_output_size(width, kw, stride, pad)
        for n in range(n_images):
            dx[n] = 0.0
            for c in range(channels):
                for i in range(kh):
                    for j in range(kw):
                        tap = (c * kh + i) * kw + j
                        for oh in range(out_h):
                            h = oh * stride + i - pad
                            if 0 <= h < height:
                                for ow in range(out_w):
                                    w = ow * stride + j - pad
                                    if 0 <= w < width:
                                        dx[n, c, h, w] += cols[n, tap, oh * out_w + ow]

    return tuple(
        njit(cache=True)(kernel)
        for kernel in (im2col_into, col2im_into, im2col_images_into, col2im_images_into)
    )


def _rows_to_nchw(rows, bias, out):
    """out is (N, O, OH*OW): rows are read in order, each scattered across the O planes."""
    n_images, channels, positions = out.shape
    for n in range(n_images):
        for p in range(positions):
            row = n * positions + p
            for c in range(channels):
                out[n, c, p] = rows[row, c] + bias[c]


def _nchw_to_rows(grad, rows):
    """grad is (N, O, OH*OW): rows are written in order, each gathered from the O planes."""
    n_images, channels, positions = grad.shape
    for n in range(n_images):
        for p in range(positions):
            row = n * positions + p
            for c in range(channels):
                rows[row, c] = grad[n, c, p]


def _im2col_patches(images, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, patches):
    """The transposed layout, for the sparse convolution (CSR rows times patch rows):

    patches[(c*kh + ky)*kw + kx, (n*oh + oy)*ow + ox]
        = images[n, c, oy*sh - ph + ky, ox*sw - pw + kx]    (0 where that falls in the padding)

    One patch row per prange iteration (inference only: threads are allowed here).
    """
    batch, channels, height, width = images.shape
    out_h = conv_output_size(height, kernel_h, stride_h, pad_h)
    out_w = conv_output_size(width, kernel_w, stride_w, pad_w)
    for row in prange(channels * kernel_h * kernel_w):
        c = row // (kernel_h * kernel_w)
        ky = (row // kernel_w) % kernel_h
        kx = row % kernel_w
        for n in range(batch):
            for oy in range(out_h):
                iy = oy * stride_h - pad_h + ky
                start = (n * out_h + oy) * out_w
                for ox in range(out_w):
                    ix = ox * stride_w - pad_w + kx
                    if 0 <= iy < height and 0 <= ix < width:
                        patches[row, start + ox] = images[n, c, iy, ix]
                    else:
                        patches[row, start + ox] = 0.0


im2col_patches_cpu = njit(parallel=True, cache=True)(_im2col_patches)
_rows_to_nchw_jit = njit(cache=True)(_rows_to_nchw)
_nchw_to_rows_jit = njit(cache=True)(_nchw_to_rows)


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """Patch matrix of ``x`` (N, C, H, W), shape (N*OH*OW, C*KH*KW); see the module docstring."""
    n_images, channels, height, width = x.shape
    out_h = conv_output_size(height, kh, stride, pad)
    out_w = conv_output_size(width, kw, stride, pad)
    cols = np.empty((n_images * out_h * out_w, channels * kh * kw), dtype=x.dtype)
    im2col_into = _patch_kernels(kh, kw)[0]
    im2col_into(np.ascontiguousarray(x), stride, pad, cols)
    return cols


def col2im(cols, input_shape, kh: int, kw: int, stride: int, pad: int):
    """Adjoint of :func:`im2col`: sum patch entries back into an array of ``input_shape``."""
    dx = np.empty(input_shape, dtype=cols.dtype)
    col2im_into = _patch_kernels(kh, kw)[1]
    col2im_into(np.ascontiguousarray(cols), stride, pad, dx)
    return dx


def im2col_images(x, kh: int, kw: int, stride: int, pad: int):
    """Patches image by image, shape (N, C*KH*KW, OH*OW): ``weight.reshape(O, -1) @ cols`` is the
    convolution, already (N, O, OH*OW); see the module docstring."""
    n_images, channels, height, width = x.shape
    out_h = conv_output_size(height, kh, stride, pad)
    out_w = conv_output_size(width, kw, stride, pad)
    cols = np.empty((n_images, channels * kh * kw, out_h * out_w), dtype=x.dtype)
    _patch_kernels(kh, kw)[2](np.ascontiguousarray(x), stride, pad, cols)
    return cols


def col2im_images(cols, input_shape, kh: int, kw: int, stride: int, pad: int):
    """Adjoint of :func:`im2col_images`."""
    dx = np.empty(input_shape, dtype=cols.dtype)
    _patch_kernels(kh, kw)[3](np.ascontiguousarray(cols), stride, pad, dx)
    return dx


def rows_to_nchw(rows, bias, shape):
    """(N*OH*OW, O) rows plus ``bias`` (O,) -> a new (N, O, OH, OW) array of ``shape``."""
    n_images, channels, out_h, out_w = shape
    out = np.empty((n_images, channels, out_h * out_w), dtype=rows.dtype)
    if bias is None:
        bias = np.zeros(channels, dtype=rows.dtype)
    _rows_to_nchw_jit(np.ascontiguousarray(rows), bias, out)
    return out.reshape(shape)


def nchw_to_rows(grad):
    """(N, O, OH, OW) -> a new (N*OH*OW, O) array: the inverse layout move of rows_to_nchw."""
    n_images, channels, out_h, out_w = grad.shape
    rows = np.empty((n_images * out_h * out_w, channels), dtype=grad.dtype)
    planes = np.ascontiguousarray(grad).reshape(n_images, channels, out_h * out_w)
    _nchw_to_rows_jit(planes, rows)
    return rows


def im2col_reference(images, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w) -> np.ndarray:
    """Plain loops: the patch matrix (channels*kh*kw, batch*out_h*out_w) of ``images``, i.e.
    `im2col_patches`'s layout; `im2col`'s layout is its transpose.

    patches[(c * kernel_h + ky) * kernel_w + kx, (n * out_h + oy) * out_w + ox]
        = images[n, c, oy * stride_h - pad_h + ky, ox * stride_w - pad_w + kx]   (0 outside)
    """
    batch, channels, height, width = images.shape
    out_h = conv_output_size(height, kernel_h, stride_h, pad_h)
    out_w = conv_output_size(width, kernel_w, stride_w, pad_w)
    patches = np.zeros((channels * kernel_h * kernel_w, batch * out_h * out_w), dtype=images.dtype)
    for c in range(channels):
        for ky in range(kernel_h):
            for kx in range(kernel_w):
                row = (c * kernel_h + ky) * kernel_w + kx
                for n in range(batch):
                    for oy in range(out_h):
                        for ox in range(out_w):
                            iy = oy * stride_h - pad_h + ky
                            ix = ox * stride_w - pad_w + kx
                            if 0 <= iy < height and 0 <= ix < width:
                                patches[row, (n * out_h + oy) * out_w + ox] = images[n, c, iy, ix]
    return patches


def col2im_reference(cols, input_shape, kh, kw, stride, pad):
    """NumPy twin of :func:`col2im`: loop over taps, add each into a padded buffer."""
    n_images, channels, height, width = input_shape
    out_h = conv_output_size(height, kh, stride, pad)
    out_w = conv_output_size(width, kw, stride, pad)
    patches = cols.reshape(n_images, out_h, out_w, channels, kh, kw)
    padded = np.zeros((n_images, channels, height + 2 * pad, width + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * out_h, stride)
            columns = slice(j, j + stride * out_w, stride)
            padded[:, :, rows, columns] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return padded[:, :, pad : pad + height, pad : pad + width]
