"""The sparse engine's CUDA backend: one stage per layer, activations stay on the device.

Weights are copied to the GPU once (`products_cuda.csr_to_device`); Linear and Conv2d run the CSR
kernels, ReLU and max-pooling `minprune.kernels.inference.pool_relu_cuda`. Used by
`minprune.inference.engine.compile_model(model, backend="cuda")`, which has checked every layer.
"""

from __future__ import annotations

import numpy as np

from minprune.kernels.cuda_support import blocks_for
from minprune.kernels.inference import pool_relu_cuda
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU

__all__ = ["cuda_stages"]

_CUDA_THREADS = 256


def cuda_stages(ops) -> tuple[list, list[str]]:
    """One callable per layer of the compiled ``ops`` (the engine's checked layer list), and what
    each runs as; Dropout is skipped (inference)."""
    from numba import cuda

    from minprune.inference.products_cuda import (
        conv2d_forward_csr_cuda,
        csr_to_device,
        linear_forward_csr_cuda,
    )

    def linear(op):
        matrix, bias = csr_to_device(op.csr), cuda.to_device(op.bias)
        return lambda x: linear_forward_csr_cuda(matrix, x, bias)

    def conv(op):
        matrix, bias = csr_to_device(op.csr), cuda.to_device(op.bias)
        layer = op.layer
        return lambda x: conv2d_forward_csr_cuda(
            matrix, x, bias, kernel_size=layer.kernel_size, stride=layer.stride,
            padding=layer.padding,
        )

    def relu(x):
        flat, out = x.reshape(x.size), cuda.device_array(x.size, dtype=np.float32)
        pool_relu_cuda.relu_cuda_kernel[blocks_for(x.size, _CUDA_THREADS), _CUDA_THREADS](flat, out)
        return out.reshape(x.shape)

    def max_pool(op):
        kernel, stride = op.layer.kernel_size, op.layer.stride

        def run(x):
            out = cuda.device_array((x.shape[0], *op.output_shape), dtype=np.float32)
            blocks = blocks_for(out.size, _CUDA_THREADS)
            pool_relu_cuda.max_pool_cuda_kernel[blocks, _CUDA_THREADS](x, kernel, stride, out)
            return out

        return run

    def reshape(op):
        return lambda x: x.reshape(x.shape[0], *op.output_shape)

    build = {  # layer type -> (its stage from the op, what it runs as)
        Linear: (linear, "products_cuda.linear_forward_csr_cuda"),
        Conv2d: (conv, "products_cuda.conv2d_forward_csr_cuda"),
        MaxPool2d: (max_pool, "pool_relu_cuda.max_pool_cuda_kernel"),
        ReLU: (lambda op: relu, "pool_relu_cuda.relu_cuda_kernel"),
        Flatten: (reshape, "reshape on the device"),
    }
    stages, runs_as = [], []
    for op in ops:
        if op.type is Dropout:
            runs_as.append("identity (inference)")
            continue
        make, label = build[op.type]
        stages.append(make(op))
        runs_as.append(label)
    return stages, runs_as
