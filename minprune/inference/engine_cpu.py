"""The sparse engine's fast CPU stages: one small callable per layer of a compiled model, and the
fusion of each run of Linear (+ ReLU) layers into one `FusedFCChain`. `minprune.inference.engine`
checks the model and hands over its layers ("ops": the layer, shapes, CSR weights); the stage
builders dispatch on the layer's type (`_STAGES`).

A conv layer with stride 1 and no padding runs straight from its input (`WideConv2dStage`), others
through patches (`Conv2dStage`); denser than `tuning.SPARSE_WIDE_CONV_MAX_DENSITY` or
`tuning.SPARSE_CONV_MAX_DENSITY` respectively, it runs dense (`DenseConv2dStage`): per layer, the
engine takes the path that was measured faster at that density (`minprune.base.tuning`). The
batched kernels run on one thread unless the stages are built with ``parallel=True``
(`compile_model`'s docstring says why). `minprune.inference.engine_plain` is the NumPy twin.
"""

from __future__ import annotations

import numpy as np

from minprune.autograd.ops.conv import Conv2d as ConvFunction
from minprune.base.tuning import SPARSE_CONV_MAX_DENSITY, SPARSE_WIDE_CONV_MAX_DENSITY
from minprune.inference.fused_chain import FusedFCChain
from minprune.inference.products import conv2d_forward_csr, linear_forward_csr
from minprune.kernels.inference.csr_cpu import (
    conv2d_wide_cpu,
    conv2d_wide_offsets,
    conv2d_wide_serial,
    unsigned_index_views,
)
from minprune.kernels.training.pool import max_pool_forward
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU

__all__ = [
    "LinearStage",
    "Conv2dStage",
    "WideConv2dStage",
    "DenseConv2dStage",
    "conv2d_stage",
    "MaxPoolStage",
    "ReLUStage",
    "ReshapeStage",
    "per_layer_stages",
    "fuse_fc_chains",
]


class LinearStage:
    """A pruned Linear layer: ``x @ W.T + bias`` with W as CSR (`products.linear_forward_csr`)."""

    runs_as = "products.linear_forward_csr (SpMV / SpMM)"

    def __init__(self, op):
        self.csr, self.bias = op.csr, op.bias

    def __call__(self, x):
        return linear_forward_csr(self.csr, x, self.bias)


class Conv2dStage:
    """A pruned Conv2d layer: im2col patches times the CSR filters, image by image (stride or
    padding, density up to `tuning.SPARSE_CONV_MAX_DENSITY`)."""

    runs_as = "products.conv2d_forward_csr (im2col + CSR)"

    def __init__(self, op, parallel: bool = False):
        self.csr, self.bias, self.layer, self.parallel = op.csr, op.bias, op.layer, parallel

    def __call__(self, x):
        layer = self.layer
        return conv2d_forward_csr(self.csr, np.ascontiguousarray(x), self.bias,
                                  kernel_size=layer.kernel_size, stride=layer.stride,
                                  padding=layer.padding, parallel=self.parallel)


class WideConv2dStage:
    """A pruned Conv2d layer with stride 1 and no padding: the CSR filters straight from the
    images, each stored weight's window one contiguous run (`csr_cpu.conv2d_wide_cpu`); density up
    to `tuning.SPARSE_WIDE_CONV_MAX_DENSITY`."""

    runs_as = "csr_cpu.conv2d_wide (CSR, no patches)"

    def __init__(self, op, parallel: bool = False):
        channels, height, width = op.input_shape
        kernel = op.layer.kernel_size
        self.csr, self.bias, self.parallel = op.csr, op.bias, parallel
        self.indptr, self.indices = unsigned_index_views(op.csr.indptr, op.csr.indices)
        self.offsets = conv2d_wide_offsets(op.csr.indices, kernel, kernel, height, width)
        self.output_shape = op.output_shape

    def __call__(self, x):
        x = np.ascontiguousarray(x)
        out = np.empty((x.shape[0], *self.output_shape), dtype=np.float32)
        kernel = conv2d_wide_cpu if self.parallel and x.shape[0] > 1 else conv2d_wide_serial
        kernel(self.indptr, self.indices, self.csr.data, self.offsets, self.bias, x, out)
        return out


class DenseConv2dStage:
    """A Conv2d layer too dense for the CSR product to pay (above `tuning.SPARSE_CONV_MAX_DENSITY`,
    or `tuning.SPARSE_WIDE_CONV_MAX_DENSITY` at stride 1 without padding): its masked weight
    through the training op's dense forward (im2col + one BLAS GEMM), no autograd."""

    runs_as = "dense im2col + GEMM (above the sparse break-even density)"

    def __init__(self, op):
        layer = op.layer
        self.weight = np.ascontiguousarray(op.csr.to_dense().reshape(layer.weight.data.shape))
        self.bias, self.stride, self.padding = op.bias, layer.stride, layer.padding
        self.dense_nbytes = self.weight.nbytes

    def __call__(self, x):
        return ConvFunction().forward(np.ascontiguousarray(x), self.weight, self.bias,
                                      self.stride, self.padding)


class MaxPoolStage:
    """Max-pooling with the training path's kernel (`minprune.kernels.training.pool`), argmax
    unused."""

    runs_as = "pool.max_pool_forward"

    def __init__(self, op):
        self.kernel_size, self.stride = op.layer.kernel_size, op.layer.stride

    def __call__(self, x):
        return max_pool_forward(x, self.kernel_size, self.stride)[0]


class ReLUStage:
    runs_as = "np.maximum"

    def __call__(self, x):
        return np.maximum(x, np.float32(0.0))


class ReshapeStage:
    """(N, ...) -> (N, *shape): Flatten, or a flat input to a conv layer's (C, H, W)."""

    runs_as = "reshape"

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def __call__(self, x):
        return x.reshape(x.shape[0], *self.shape)


def conv2d_stage(op, parallel: bool = False):
    """The stage of a pruned Conv2d: sparse below its path's break-even density, else dense."""
    if op.layer.stride == 1 and op.layer.padding == 0:
        if op.csr.density > SPARSE_WIDE_CONV_MAX_DENSITY:
            return DenseConv2dStage(op)
        return WideConv2dStage(op, parallel)
    if op.csr.density > SPARSE_CONV_MAX_DENSITY:
        return DenseConv2dStage(op)
    return Conv2dStage(op, parallel)


# Layer type -> its stage, built from (op, parallel). Dropout has none (the identity).
_STAGES = {
    Linear: lambda op, parallel: LinearStage(op),
    Conv2d: conv2d_stage,
    MaxPool2d: lambda op, parallel: MaxPoolStage(op),
    ReLU: lambda op, parallel: ReLUStage(),
    Flatten: lambda op, parallel: ReshapeStage(op.output_shape),
}
_FLAT_INPUT = (Linear, Flatten)  # layers that take the input as (N, features)


def per_layer_stages(ops: list, parallel: bool = False) -> tuple[list, list[str]]:
    """One stage per layer (Dropout: none, the identity at inference); returns (stages, runs_as
    per op). The per-layer engine, and the reference the fused chain is tested against."""
    stages, runs_as = [], []
    if type(ops[0].layer) not in _FLAT_INPUT:
        stages.append(ReshapeStage(ops[0].input_shape))  # a flat (N, C*H*W) input -> (N, C, H, W)
    for op in ops:
        if type(op.layer) is Dropout:
            runs_as.append("identity (inference)")
            continue
        stage = _STAGES[type(op.layer)](op, parallel)
        stages.append(stage)
        runs_as.append(stage.runs_as)
    return stages, runs_as


def _chain_at(ops: list, start: int) -> tuple[int, list, list[bool]]:
    """(end, linears, relu_after) of the run of Linear layers that starts at ``ops[start]``
    (after an optional Flatten), with the ReLU right after each Linear: ``ops[start:end]`` become
    one chain. Dropouts anywhere in it are passed over (the identity at inference), so Linear ->
    Dropout -> ReLU fuses as Linear -> ReLU does. No Linear there: ``(start, [], [])``."""
    if type(ops[start].layer) not in _FLAT_INPUT:
        return start, [], []
    end = start + (type(ops[start].layer) is Flatten)
    linears, relu_after, previous = [], [], None  # previous: the last kind that is not Dropout
    while end < len(ops):
        kind = type(ops[end].layer)
        if kind is Linear:
            linears.append(ops[end])
            relu_after.append(False)
        elif kind is ReLU and previous is Linear:
            relu_after[-1] = True
        elif kind is not Dropout:
            break  # anything else (a second ReLU too) runs as its own stage
        previous = previous if kind is Dropout else kind
        end += 1
    return (end, linears, relu_after) if linears else (start, [], [])


def fuse_fc_chains(ops: list, stages: list, runs_as: list[str],
                   parallel: bool = False) -> tuple[list, list[str]]:
    """Replace the stages of each run of Linear layers (`_chain_at`) by one `FusedFCChain`.
    ``stages`` and ``runs_as`` are `per_layer_stages`'s; returns the same for the fused engine."""
    fused, labels, chains = [], list(runs_as), 0
    remaining = iter(stages)
    if type(ops[0].layer) not in _FLAT_INPUT:
        fused.append(next(remaining))  # the input reshape
    index = 0
    while index < len(ops):
        end, linears, relu_after = _chain_at(ops, index)
        if not linears:
            if type(ops[index].layer) is not Dropout:  # Dropout has no stage
                fused.append(next(remaining))
            index += 1
            continue
        for position in range(index, end):
            if type(ops[position].layer) is not Dropout:
                next(remaining)  # a per-layer stage the chain replaces
                labels[position] = f"fused CSR chain {chains}"
        # Dense columns where the inputs have zeros to skip: the network's input (an MNIST image
        # is 82% zeros) and the output of a ReLU.
        dense_columns = [index == 0] + relu_after[:-1]
        fused.append(FusedFCChain([op.csr for op in linears], [op.bias for op in linears],
                                  relu_after, dense_columns=dense_columns, parallel=parallel))
        chains += 1
        index = end
    return fused, labels
