"""The sparse engine's fast CPU stages: one small callable per layer of a compiled model, and the
fusion of each run of Linear (+ ReLU) layers into one `FusedFCChain`. `minprune.inference.engine`
checks the model and hands over its layers ("ops": the layer, shapes, CSR weights); the stage
builders dispatch on the layer's type (`_STAGES`).

Every pruned layer is held once, in the paper's 8-bit relative-index format
(`minprune.sparse.RelativeIndexMatrix`): a conv's filters by row, read by
`minprune.kernels.inference.relative_cpu` -- straight from the input at stride 1 without padding
(`WideConv2dStage`), through patches otherwise (`Conv2dStage`) -- and each run of Linear layers as
one `FusedFCChain`. No stage keeps a dense copy, unless asked: ``dense_above`` (a density) runs a
conv denser than it dense (`DenseConv2dStage`, `minprune.base.tuning` says where that pays).
The batched kernels run on one thread unless the stages are built with ``parallel=True``
(`compile_model`'s docstring says why). `minprune.inference.engine_plain` is the NumPy twin.
"""

from __future__ import annotations

import numpy as np

from minprune.autograd.ops.conv import Conv2d as ConvFunction
from minprune.inference.fused_chain import FusedFCChain
from minprune.inference.layer_checks import reads_the_input
from minprune.inference.products import linear_forward_csr
from minprune.kernels.inference import relative_cpu
from minprune.kernels.training.pool import max_pool_forward
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from minprune.sparse.relative import RelativeIndexMatrix

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
    """A pruned Linear layer: ``x @ W.T + bias`` with W as int32 CSR
    (`products.linear_forward_csr`): the per-layer engine's plain form, which the fused chain is
    tested against."""

    runs_as = "products.linear_forward_csr (SpMV / SpMM)"

    def __init__(self, op):
        self.csr, self.bias = op.csr, op.bias
        self.nbytes = op.csr.nbytes

    def __call__(self, x):
        return linear_forward_csr(self.csr, x, self.bias)


class _RelativeConv:
    """What both sparse conv stages hold: the filters by row in the paper's format."""

    def __init__(self, op, parallel: bool):
        self.filters = RelativeIndexMatrix.from_csr(op.csr, "csr")
        self.bias, self.parallel, self.output_shape = op.bias, parallel, op.output_shape
        self.kernel_size = op.layer.kernel_size
        self.nbytes = self.filters.nbytes

    def _output(self, x):
        return np.empty((x.shape[0], *self.output_shape), dtype=np.float32)


class Conv2dStage(_RelativeConv):
    """A pruned Conv2d layer with stride or padding: each image's patches built in cache, times
    the filters read as stored (`relative_cpu.conv2d_images`)."""

    runs_as = "relative_cpu.conv2d_images (patches; 8-bit steps)"

    def __init__(self, op, parallel: bool = False):
        super().__init__(op, parallel)
        self.stride, self.padding = op.layer.stride, op.layer.padding

    def __call__(self, x):
        x = np.ascontiguousarray(x)
        out = self._output(x)
        kernel = (relative_cpu.conv2d_images_parallel if self.parallel and x.shape[0] > 1
                  else relative_cpu.conv2d_images)
        f = self.filters
        kernel(f.pointers, f.steps, f.values, self.bias, x, self.kernel_size, self.kernel_size,
               self.stride, self.stride, self.padding, self.padding, out)
        return out


class WideConv2dStage(_RelativeConv):
    """A pruned Conv2d layer with stride 1 and no padding: the filters read as stored straight
    from the images, each tap's window one contiguous run (`relative_cpu.conv2d_wide`)."""

    runs_as = "relative_cpu.conv2d_wide (no patches; 8-bit steps)"

    def __init__(self, op, parallel: bool = False):
        super().__init__(op, parallel)
        channels, height, width = op.input_shape
        # Where each tap's window starts in a flattened image: a table of the layer's shape.
        self.starts = relative_cpu.conv2d_wide_starts(channels, self.kernel_size,
                                                      self.kernel_size, height, width)
        self.nbytes += self.starts.nbytes

    def __call__(self, x):
        x = np.ascontiguousarray(x)
        out = self._output(x)
        kernel = (relative_cpu.conv2d_wide_parallel if self.parallel and x.shape[0] > 1
                  else relative_cpu.conv2d_wide)
        f = self.filters
        kernel(f.pointers, f.steps, f.values, self.bias, self.starts, x, out)
        return out


class DenseConv2dStage:
    """A Conv2d layer run dense, when ``compile_model(dense_above=d)`` asks for it at density
    above d: its masked weight through the training op's dense forward (im2col + one BLAS GEMM),
    no autograd. The only stage that holds a dense array (`nbytes` counts it)."""

    runs_as = "dense im2col + GEMM (dense_above)"

    def __init__(self, op):
        layer = op.layer
        self.weight = np.ascontiguousarray(
            op.csr.to_dense().reshape(layer.out_channels, layer.in_channels, layer.kernel_size,
                                      layer.kernel_size))
        self.bias, self.stride, self.padding = op.bias, layer.stride, layer.padding
        self.nbytes = self.dense_nbytes = self.weight.nbytes

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


def conv2d_stage(op, parallel: bool = False, dense_above: float | None = None):
    """The stage of a pruned Conv2d: sparse, read as stored; dense only above ``dense_above``."""
    if dense_above is not None and op.csr.density > dense_above:
        return DenseConv2dStage(op)
    if op.layer.stride == 1 and op.layer.padding == 0:
        return WideConv2dStage(op, parallel)
    return Conv2dStage(op, parallel)


# Layer type -> its stage, built from (op, parallel, dense_above). Dropout has none (identity).
_STAGES = {
    Linear: lambda op, parallel, dense_above: LinearStage(op),
    Conv2d: conv2d_stage,
    MaxPool2d: lambda op, parallel, dense_above: MaxPoolStage(op),
    ReLU: lambda op, parallel, dense_above: ReLUStage(),
    Flatten: lambda op, parallel, dense_above: ReshapeStage(op.output_shape),
}
_FLAT_INPUT = (Linear, Flatten)  # layers that take the input as (N, features)


def per_layer_stages(ops: list, parallel: bool = False,
                     dense_above: float | None = None) -> tuple[list, list[str]]:
    """One stage per layer (Dropout: none, the identity at inference); returns (stages, runs_as
    per op). The per-layer engine, and the reference the fused chain is tested against."""
    stages, runs_as = [], []
    if ops[0].type not in _FLAT_INPUT:
        stages.append(ReshapeStage(ops[0].input_shape))  # a flat (N, C*H*W) input -> (N, C, H, W)
    for op in ops:
        if op.type is Dropout:
            runs_as.append("identity (inference)")
            continue
        stage = _STAGES[op.type](op, parallel, dense_above)
        stages.append(stage)
        runs_as.append(stage.runs_as)
    return stages, runs_as


def _chain_at(ops: list, start: int) -> tuple[int, list, list[bool]]:
    """(end, linears, relu_after) of the run of Linear layers that starts at ``ops[start]``
    (after an optional Flatten), with the ReLU right after each Linear: ``ops[start:end]`` become
    one chain. Dropouts anywhere in it are passed over (the identity at inference), so Linear ->
    Dropout -> ReLU fuses as Linear -> ReLU does. No Linear there: ``(start, [], [])``."""
    if ops[start].type not in _FLAT_INPUT:
        return start, [], []
    end = start + (ops[start].type is Flatten)
    linears, relu_after, previous = [], [], None  # previous: the last kind that is not Dropout
    while end < len(ops):
        kind = ops[end].type
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
    if ops[0].type not in _FLAT_INPUT:
        fused.append(next(remaining))  # the input reshape
    index = 0
    while index < len(ops):
        end, linears, relu_after = _chain_at(ops, index)
        if not linears:
            if ops[index].type is not Dropout:  # Dropout has no stage
                fused.append(next(remaining))
            index += 1
            continue
        # By column (EIE) where the layer reads the network's input (an MNIST image is 82%
        # zeros), by row elsewhere (`minprune.base.tuning` says why not after a ReLU).
        inputs_have_zeros = [reads_the_input(ops, index)] + [False] * (len(linears) - 1)
        fused.append(FusedFCChain.from_csr([op.csr for op in linears],
                                           [op.bias for op in linears], relu_after,
                                           inputs_have_zeros, parallel=parallel))
        layouts = iter(fused[-1].layouts)
        for position in range(index, end):
            kind = ops[position].type
            if kind is not Dropout:
                next(remaining)  # a per-layer stage the chain replaces
                labels[position] = f"fused chain {chains}"
            if kind is Linear:
                by = "column (CSC)" if next(layouts) == "csc" else "row (CSR)"
                labels[position] += f", 8-bit steps by {by}"
        chains += 1
        index = end
    return fused, labels
