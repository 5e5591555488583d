"""Numba CUDA kernels for masked dense layers: masked matmul forward/backward and the fused masked
SGD-momentum update. GPU twins of `minprune.kernels.masked_cpu`, same contracts and references.

Importable without a GPU; tested under ``NUMBA_ENABLE_CUDASIM=1``. numpy in -> numpy out, device
arrays in -> device arrays out (the update works in place either way). Masks are float32 or bool;
masking is a select (``value if mask != 0 else 0``), so pruned entries are exactly +0.0.

The matrix product is a classic shared-memory tiled kernel (16 x 16 tiles): each block stages a
tile of op(A) and op(B) in shared memory, where op is an optional transpose chosen per call, so one
kernel serves Y = X W_m^T, dX = dY W_m and dW = dY^T X.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from minprune.kernels.argument_checks import is_device_array, require_array
from minprune.kernels.cuda_support import blocks_for, finish, to_device
from minprune.kernels.masked_ops import MASK_DTYPES, validate_sgd_arguments

__all__ = [
    "masked_linear_forward_cuda",
    "masked_linear_backward_cuda",
    "masked_sgd_momentum_update_cuda",
]


def _require(name: str, array, **expected) -> None:
    """`argument_checks.require_array`, accepting device arrays as well as numpy arrays."""
    require_array(name, array, allow_device=True, **expected)


_TILE = 16
_THREADS_1D = 256


@cuda.jit
def _select_masked_kernel(values, mask, out):
    """out[r, c] = values[r, c] if mask[r, c] != 0 else 0 (out may be values)."""
    col, row = cuda.grid(2)
    if row < values.shape[0] and col < values.shape[1]:
        out[row, col] = values[row, col] if mask[row, col] != 0 else 0.0


@cuda.jit
def _matmul_kernel(a, b, out, transpose_a, transpose_b):
    """out (m, n) = op(a) (m, inner) @ op(b) (inner, n); op = transpose when the flag is set."""
    tile_a = cuda.shared.array((_TILE, _TILE), numba.float32)
    tile_b = cuda.shared.array((_TILE, _TILE), numba.float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * _TILE + ty
    col = cuda.blockIdx.x * _TILE + tx
    inner = a.shape[0] if transpose_a else a.shape[1]
    total = np.float32(0.0)
    for start in range(0, inner, _TILE):
        k_a = start + tx  # this thread loads op(a)[row, k_a] and op(b)[k_b, col]
        if row < out.shape[0] and k_a < inner:
            tile_a[ty, tx] = a[k_a, row] if transpose_a else a[row, k_a]
        else:
            tile_a[ty, tx] = 0.0
        k_b = start + ty
        if k_b < inner and col < out.shape[1]:
            tile_b[ty, tx] = b[col, k_b] if transpose_b else b[k_b, col]
        else:
            tile_b[ty, tx] = 0.0
        cuda.syncthreads()
        for i in range(_TILE):
            total += tile_a[ty, i] * tile_b[i, tx]
        cuda.syncthreads()
    if row < out.shape[0] and col < out.shape[1]:
        out[row, col] = total


@cuda.jit
def _masked_sgd_momentum_kernel(weight, velocity, grad, mask, lr, momentum, weight_decay, l1):
    """The fused update of `masked_cpu._masked_sgd_momentum`, one thread per element."""
    i = cuda.grid(1)
    if i >= weight.shape[0]:
        return
    if mask[i] == 0:
        weight[i] = 0.0
        velocity[i] = 0.0
    else:
        w = weight[i]
        sign = np.float32(1.0) if w > 0 else (np.float32(-1.0) if w < 0 else np.float32(0.0))
        g = grad[i] + weight_decay * w + l1 * sign
        v = momentum * velocity[i] + g
        velocity[i] = v
        weight[i] = w - lr * v


def _select_masked(values, mask, out):
    blocks = (blocks_for(values.shape[1], _TILE), blocks_for(values.shape[0], _TILE))
    _select_masked_kernel[blocks, (_TILE, _TILE)](values, mask, out)
    return out


def _matmul(a, b, m: int, n: int, transpose_a: bool, transpose_b: bool):
    out = cuda.device_array((m, n), dtype=np.float32)
    blocks = (blocks_for(n, _TILE), blocks_for(m, _TILE))
    _matmul_kernel[blocks, (_TILE, _TILE)](a, b, out, transpose_a, transpose_b)
    return out


def _check_weight_and_mask(weight, mask):
    _require("weight", weight, dtypes=np.float32, shape=(None, None))
    _require("mask", mask, dtypes=MASK_DTYPES, shape=tuple(weight.shape))
    return weight.shape


def masked_linear_forward_cuda(x, weight, mask):
    """Y = X @ (W * M).T on the GPU; X (batch, in), W and M (out, in)."""
    out_features, in_features = _check_weight_and_mask(weight, mask)
    _require("x", x, dtypes=np.float32, shape=(None, in_features))
    device_weight = to_device(weight)
    masked_weight = _select_masked(
        device_weight, to_device(mask), cuda.device_array_like(device_weight)
    )
    y = _matmul(to_device(x), masked_weight, x.shape[0], out_features, False, True)
    return finish(y, not is_device_array(x))


def masked_linear_backward_cuda(grad_out, x, weight, mask):
    """(dX, dW) = (dY @ (W * M), (dY.T @ X) * M) on the GPU."""
    out_features, in_features = _check_weight_and_mask(weight, mask)
    _require("x", x, dtypes=np.float32, shape=(None, in_features))
    _require("grad_out", grad_out, dtypes=np.float32, shape=(x.shape[0], out_features))
    device_weight, device_mask = to_device(weight), to_device(mask)
    device_grad_out, device_x = to_device(grad_out), to_device(x)
    masked_weight = _select_masked(
        device_weight, device_mask, cuda.device_array_like(device_weight)
    )
    grad_x = _matmul(device_grad_out, masked_weight, x.shape[0], in_features, False, False)
    grad_weight = _matmul(device_grad_out, device_x, out_features, in_features, True, False)
    _select_masked(grad_weight, device_mask, grad_weight)
    return_numpy = not is_device_array(grad_out)
    return finish(grad_x, return_numpy), finish(grad_weight, return_numpy)


def masked_sgd_momentum_update_cuda(
    weight, velocity, grad, mask, *, lr, momentum, weight_decay=0.0, l1=0.0
) -> None:
    """In-place masked SGD-momentum step on the GPU (formula in `masked_ops`). Numpy arguments are
    copied to the device and the new weight and velocity copied back into them."""
    hyper = validate_sgd_arguments(
        weight, velocity, grad, mask, lr, momentum, weight_decay, l1, allow_device=True
    )
    device = {
        name: to_device(array)
        for name, array in (
            ("weight", weight),
            ("velocity", velocity),
            ("grad", grad),
            ("mask", mask),
        )
    }
    size = int(np.prod(weight.shape))
    _masked_sgd_momentum_kernel[blocks_for(size, _THREADS_1D), _THREADS_1D](
        device["weight"].reshape(size),
        device["velocity"].reshape(size),
        device["grad"].reshape(size),
        device["mask"].reshape(size),
        hyper["lr"],
        hyper["momentum"],
        hyper["weight_decay"],
        hyper["l1"],
    )
    for name, array in (("weight", weight), ("velocity", velocity)):
        if not is_device_array(array):
            device[name].copy_to_host(array)
