"""The sparse engine's CUDA backend: one stage per layer, activations stay on the device.

Weights are copied to the GPU once. Linear layers are held as on the CPU, in the paper's 8-bit
relative-index layout -- by column (EIE) where the layer reads the network's input, by row
elsewhere -- and run by `minprune.kernels.inference.relative_cuda`; Conv2d runs the int32 CSR
kernels (`csr_cuda`), ReLU and max-pooling `minprune.kernels.inference.pool_relu_cuda`. Used by
`minprune.inference.engine.compile_model(model, backend="cuda")`, which has checked every layer.
"""

from __future__ import annotations

import numpy as np

from minprune.inference.layer_checks import reads_the_input
from minprune.kernels.cuda_support import blocks_for
from minprune.kernels.inference import pool_relu_cuda
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from minprune.sparse.relative import RelativeIndexMatrix

__all__ = ["cuda_stages"]

_CUDA_THREADS = 256


def cuda_stages(ops) -> tuple[list, list[str]]:
    """One callable per layer of the compiled ``ops`` (the engine's checked layer list), and what
    each runs as; Dropout is skipped (inference)."""
    from numba import cuda

    from minprune.inference.products_cuda import (
        conv2d_forward_csr_cuda,
        csr_to_device,
        linear_forward_relative_cuda,
        relative_to_device,
    )

    reads_input = {id(op): reads_the_input(ops, position) for position, op in enumerate(ops)}

    def linear(op):
        layout = "csc" if reads_input[id(op)] else "csr"
        matrix = relative_to_device(RelativeIndexMatrix.from_csr(op.csr, layout))
        bias = cuda.to_device(op.bias)

        def run(x):
            return linear_forward_relative_cuda(matrix, x.reshape(x.shape[0], -1), bias)

        run.nbytes = matrix.nbytes
        return run

    def conv(op):
        matrix, bias = csr_to_device(op.csr), cuda.to_device(op.bias)
        layer = op.layer

        def run(x):
            return conv2d_forward_csr_cuda(matrix, x, bias, kernel_size=layer.kernel_size,
                                           stride=layer.stride, padding=layer.padding)

        run.nbytes = op.csr.nbytes
        return run

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
        Linear: (linear, "products_cuda.linear_forward_relative_cuda (8-bit steps)"),
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
