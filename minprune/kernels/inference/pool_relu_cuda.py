"""The sparse engine's two small CUDA kernels: ReLU and max-pooling (forward only), beside the CSR
kernels of `csr_cuda`. Compiled on first launch; importing needs no GPU.
"""

from __future__ import annotations

from numba import cuda

__all__ = ["relu_cuda_kernel", "max_pool_cuda_kernel"]


@cuda.jit
def relu_cuda_kernel(values, out):
    """out[i] = max(values[i], 0) on flat device arrays; one thread per element."""
    i = cuda.grid(1)
    if i < values.shape[0]:
        out[i] = max(values[i], 0.0)


@cuda.jit
def max_pool_cuda_kernel(x, kernel, stride, out):
    """GPU twin of `pool.max_pool_forward` (without the argmax); one thread per element of out."""
    i = cuda.grid(1)
    channels, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
    if i >= out.shape[0] * channels * out_h * out_w:
        return
    ow = i % out_w
    oh = (i // out_w) % out_h
    c = (i // (out_w * out_h)) % channels
    n = i // (out_w * out_h * channels)
    h0, w0 = oh * stride, ow * stride
    best = x[n, c, h0, w0]
    for a in range(kernel):
        for b in range(kernel):
            value = x[n, c, h0 + a, w0 + b]
            if value > best:
                best = value
    out[n, c, oh, ow] = best
