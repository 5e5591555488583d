"""Sparse inference: `compile` a pruned ``Sequential`` model into a forward-only `SparseNetwork`
that runs on the CSR kernels.

Han et al. 2015 prune to shrink storage (Sec. 4, CSR) and argue the pruned network is also cheaper
to run; this module is where that is put to the test on a CPU (benchmarks/sparse_lenet.py):

    network = compile(model)                 # weights * weight_mask -> CSRMatrix, validated once
    logits = network(images)                 # (N, 1, 28, 28) or (N, 784) float32 -> (N, classes)
    labels = network.predict(images)

What each layer becomes (backend "cpu"):

- A run of ``Linear`` layers, each optionally followed by ``ReLU``, becomes ONE fused stage
  (`engine_kernels`): below batch `SPMM_MIN_BATCH` a single Numba call runs every layer for
  each sample, skipping zero activations where that is cheaper (each layer is held in CSR and
  in CSC form, so the chain takes twice ``nbytes`` in memory); from `SPMM_MIN_BATCH` on, one
  call runs an SpMM per layer on transposed activations. LeNet-300-100 is a single such stage.
- ``Conv2d``: weight (O, C, K, K) * mask -> CSR (O, C*K*K), run by
  `minprune.kernels.csr_ops.conv2d_forward_csr` (im2col, then CSR times patches).
- ``MaxPool2d`` -> `engine_kernels.max_pool_cpu`; ``ReLU`` elsewhere -> ``np.maximum``;
  ``Flatten`` -> a reshape; ``Dropout`` -> the identity (inference).

Backend "cuda" (`engine_cuda`) runs layer by layer on `minprune.kernels.csr_cuda` (weights
copied once, activations stay on the device between layers; numpy in, numpy out). Any other
layer type is a ValueError naming the layer.

Everything is checked when compiling: layer types, shapes flowing from ``input_shape`` through
every layer, the CSR arrays. A call then checks only the input's shape (ValueError naming the
expected and the actual shape) and converts it to float32 if needed.

Departures from minprune's dense forward, which the tests bound: float32 sums in another order
(rtol 1e-5); no ReLU fused after a convolution (the LeNets have none, as in Caffe).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minprune.kernels.csr_ops import conv2d_forward_csr, conv2d_output_size
from minprune.kernels.cuda_support import cuda_available
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from minprune.sparse import engine_kernels
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.engine_cuda import cuda_stages
from minprune.sparse.engine_kernels import SCATTER_RATIO

__all__ = ["compile", "SparseNetwork", "LayerSummary", "BACKENDS", "SPMM_MIN_BATCH"]

BACKENDS = ("cpu", "cuda")
# From this batch size on, the fused FC chain uses SpMM instead of one SpMV chain per image
# (crossover measured with benchmarks/sparse_lenet.py --crossover).
SPMM_MIN_BATCH = 12
_FLOAT32 = np.dtype(np.float32)
_SUPPORTED = "Linear, Conv2d, ReLU, MaxPool2d, Flatten, Dropout"


@dataclass(frozen=True)
class LayerSummary:
    """One layer of a compiled network: what it was, and what runs it.

    Shapes are per sample (no batch axis). ``nnz`` and ``density`` are None for layers without
    weights. ``runs_as`` names the code path, e.g. "fused CSR chain 0 (SpMV / SpMM)".
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight_shape: tuple[int, ...] | None
    nnz: int | None
    density: float | None
    runs_as: str


# -- compile: walk the layers, check shapes, build CSR weights ----------------------------------


@dataclass
class _Op:
    """One model layer after checking: its kind, shapes and (for Linear/Conv2d) CSR weights."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    csr: CSRMatrix | None = None
    bias: np.ndarray | None = None
    layer: object = None


def _masked_csr(layer) -> tuple[CSRMatrix, np.ndarray]:
    """(weight * weight_mask as CSR (out, fan_in), float32 bias): the pattern is the mask's, so a
    kept weight that is exactly 0.0 stays a stored entry, as in `CSRMatrix.from_dense`."""
    weight = np.asarray(layer.weight.data, dtype=np.float32)
    mask = np.asarray(layer.weight_mask)
    rows = weight.shape[0]
    matrix = (weight * mask).reshape(rows, -1)
    csr = CSRMatrix.from_dense(matrix, mask.reshape(rows, -1))
    if layer.bias is None:
        bias = np.zeros(rows, dtype=np.float32)
    else:
        bias = np.ascontiguousarray(layer.bias.data, dtype=np.float32)
    return csr, bias


def _check_op(name: str, layer, shape: tuple[int, ...]) -> _Op:
    """Turn one layer into an `_Op`, checking that it accepts ``shape`` (per sample)."""
    kind = type(layer)
    if kind is Linear:
        if shape != (layer.in_features,):
            raise ValueError(
                f"layer '{name}': Linear expects per-sample input ({layer.in_features},), but "
                f"receives {shape}; add a Flatten before it or pass compile(input_shape=...)"
            )
        csr, bias = _masked_csr(layer)
        return _Op(name, "linear", shape, (layer.out_features,), csr, bias, layer)
    if kind is Conv2d:
        if len(shape) != 3 or shape[0] != layer.in_channels:
            raise ValueError(
                f"layer '{name}': Conv2d expects per-sample input ({layer.in_channels}, H, W), "
                f"but receives {shape}"
            )
        try:
            out_h, out_w = conv2d_output_size(
                shape[1:], layer.kernel_size, layer.stride, layer.padding
            )
        except ValueError as error:
            raise ValueError(f"layer '{name}': {error}") from None
        csr, bias = _masked_csr(layer)
        return _Op(name, "conv2d", shape, (layer.out_channels, out_h, out_w), csr, bias, layer)
    if kind is MaxPool2d:
        if len(shape) != 3 or min(shape[1:]) < layer.kernel_size:
            raise ValueError(
                f"layer '{name}': MaxPool2d({layer.kernel_size}) expects per-sample input "
                f"(C, H, W) with H, W >= {layer.kernel_size}, but receives {shape}"
            )
        out_h, out_w = ((size - layer.kernel_size) // layer.stride + 1 for size in shape[1:])
        return _Op(name, "max_pool2d", shape, (shape[0], out_h, out_w), layer=layer)
    if kind is Flatten:
        return _Op(name, "flatten", shape, (int(np.prod(shape)),))
    if kind is ReLU:
        return _Op(name, "relu", shape, shape)
    if kind is Dropout:
        return _Op(name, "dropout", shape, shape)
    raise ValueError(
        f"layer '{name}': the sparse engine cannot run a {kind.__name__}; it runs {_SUPPORTED}"
    )


def _check_model(model, input_shape) -> list[_Op]:
    if not isinstance(model, Sequential):
        raise ValueError(
            f"compile: expected a minprune.nn.Sequential (layers run in order), got "
            f"{type(model).__name__}"
        )
    try:
        shape = tuple(int(n) for n in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(n < 1 for n in shape) or tuple(input_shape) != shape:
        raise ValueError(f"compile: input_shape must be positive ints, got {input_shape!r}")
    if len(model) == 0:
        raise ValueError("compile: the model has no layers")
    ops = []
    for layer in model:
        ops.append(_check_op(layer.name, layer, shape))
        shape = ops[-1].output_shape
    return ops


# -- the CPU stages ----------------------------------------------------------------------------


class _FCChain:
    """Consecutive Linear (+ ReLU) layers packed into one chain (layout: `engine_kernels`)."""

    def __init__(self, linears: list[_Op], relu_after: list[bool]):
        self.packed = engine_kernels.pack_fc_chain(
            [op.csr for op in linears], [op.bias for op in linears], relu_after
        )
        self.in_features = linears[0].csr.shape[1]
        self.out_features = linears[-1].csr.shape[0]
        self._per_sample_arguments = (*self.packed, SCATTER_RATIO)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        out = np.empty((batch, self.out_features), dtype=np.float32)
        if batch < SPMM_MIN_BATCH:
            engine_kernels.fc_chain_per_sample(
                x.reshape(batch, self.in_features), *self._per_sample_arguments, out
            )
        else:
            blocks = engine_kernels.spmm_blocks(batch)
            x = x.reshape(batch, self.in_features)
            if blocks == 1:  # no parallel region to start
                engine_kernels.fc_chain_spmm(x, *self.packed, out)
            else:
                engine_kernels.fc_chain_batched(x, *self.packed, blocks, out)
        return out


def _next_kind(ops: list[_Op], start: int) -> str | None:
    """The kind of the first op at or after ``start`` that is not a Dropout (identity)."""
    return next((op.kind for op in ops[start:] if op.kind != "dropout"), None)


def _cpu_stages(ops: list[_Op]) -> tuple[list, list[str]]:
    """Group ops into CPU stages (callables on numpy arrays); returns (stages, runs_as per op)."""
    stages, runs_as = [], []
    chain, relu_after, chains = [], [], 0

    def flush_chain():
        nonlocal chain, relu_after, chains
        if chain:
            stages.append(_FCChain(chain, relu_after))
            chain, relu_after, chains = [], [], chains + 1

    def conv(op):
        kernel, stride, padding = op.layer.kernel_size, op.layer.stride, op.layer.padding
        return lambda x: conv2d_forward_csr(
            op.csr,
            np.ascontiguousarray(x),
            op.bias,
            kernel_size=kernel,
            stride=stride,
            padding=padding,
        )

    def max_pool(op):
        def run(x):
            out = np.empty((x.shape[0], *op.output_shape), dtype=np.float32)
            engine_kernels.max_pool_cpu(x, op.layer.kernel_size, op.layer.stride, out)
            return out

        return run

    def reshape(shape):
        return lambda x: x.reshape(x.shape[0], *shape)

    if _next_kind(ops, 0) not in ("linear", "flatten"):
        stages.append(reshape(ops[0].input_shape))  # a flat (N, prod) input -> (N, C, H, W)
    for i, op in enumerate(ops):
        if op.kind == "linear":
            chain.append(op)
            relu_after.append(False)
            runs_as.append(f"fused CSR chain {chains} (SpMV / SpMM)")
        elif op.kind == "relu" and i and ops[i - 1].kind == "linear":
            relu_after[-1] = True
            runs_as.append(f"fused CSR chain {chains}")
        elif op.kind == "dropout":
            runs_as.append("identity (inference)")
        elif op.kind == "flatten" and _next_kind(ops, i + 1) == "linear":
            runs_as.append(f"reshape in fused CSR chain {chains}")
        else:
            flush_chain()
            make, label = {
                "conv2d": (conv, "csr_ops.conv2d_forward_csr (im2col + CSR)"),
                "max_pool2d": (max_pool, "engine_kernels.max_pool_cpu"),
                "relu": (lambda op: lambda x: np.maximum(x, np.float32(0.0)), "np.maximum"),
                "flatten": (lambda op: reshape(op.output_shape), "reshape"),  # no Linear next
            }[op.kind]
            stages.append(make(op))
            runs_as.append(label)
    flush_chain()
    return stages, runs_as


# -- the compiled network -----------------------------------------------------------------------


class SparseNetwork:
    """A forward-only network on CSR weights; build it with `compile`.

    ``network(x)`` takes float32 (N, *input_shape) or (N, prod(input_shape)) -- other float or int
    dtypes are converted -- and returns float32 logits (N, classes). Backend "cuda" also takes a
    Numba device array and then returns one.
    """

    def __init__(self, backend, stages, layers, input_shape, nbytes):
        self.backend = backend
        self.layers: tuple[LayerSummary, ...] = layers
        self.input_shape: tuple[int, ...] = input_shape
        self.nbytes: int = nbytes  # CSR weights (values, column indices, row pointers) + biases
        self._stages = stages
        flat = (int(np.prod(input_shape)),)
        self._accepted = (input_shape, flat)
        self._expected = f"(N, {', '.join(map(str, input_shape))})" + (
            f" or (N, {flat[0]})" if flat != input_shape else ""
        )
        if backend == "cuda":
            self._forward = self._cuda_forward
        elif len(stages) == 1:
            self._forward = stages[0]  # LeNet-300-100: the fused chain, called directly
        else:
            self._forward = self._cpu_forward

    def __call__(self, x):
        if type(x) is not np.ndarray or x.dtype is not _FLOAT32:  # identity: fast, and exact
            x = self._convert(x)
        if x.shape[1:] not in self._accepted:
            raise ValueError(
                f"SparseNetwork: expected input of shape {self._expected}, got {tuple(x.shape)}"
            )
        return self._forward(x)

    def predict(self, x) -> np.ndarray:
        """The predicted class of each input: argmax of the logits (int64, shape (N,))."""
        logits = self(x)
        if self.backend == "cuda" and not isinstance(logits, np.ndarray):
            logits = logits.copy_to_host()
        return np.argmax(logits, axis=1)

    @property
    def nnz(self) -> int:
        """Stored weights (survivors) over all Linear and Conv2d layers."""
        return sum(layer.nnz for layer in self.layers if layer.nnz is not None)

    def summary(self) -> str:
        """A table of the layers: name, kind, per-sample output shape, density, code path."""
        lines = [f"SparseNetwork(backend={self.backend!r}, nnz={self.nnz}, nbytes={self.nbytes})"]
        for layer in self.layers:
            density = "" if layer.density is None else f"{layer.density:7.2%}"
            lines.append(
                f"  {layer.name:<8} {layer.kind:<10} -> {str(layer.output_shape):<14} "
                f"{density:>7}  {layer.runs_as}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _convert(self, x):
        from minprune.kernels.argument_checks import is_device_array

        if self.backend == "cuda" and is_device_array(x):
            if x.dtype != _FLOAT32:
                raise ValueError(f"SparseNetwork: expected a float32 device array, got {x.dtype}")
            return x
        try:
            return np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"SparseNetwork: expected a float array of shape {self._expected}, got "
                f"{type(x).__name__} ({error})"
            ) from None

    def _cpu_forward(self, x):
        for stage in self._stages:
            x = stage(x)
        return x

    def _cuda_forward(self, x):
        from minprune.kernels.cuda_support import finish, to_device

        host_input = isinstance(x, np.ndarray)
        if x.shape[1:] != self.input_shape:
            x = x.reshape(x.shape[0], *self.input_shape)
        x = to_device(x)
        for stage in self._stages:
            x = stage(x)
        return finish(x, host_input)


def compile(model, backend: str = "cpu", input_shape=(1, 28, 28)) -> SparseNetwork:
    """Compile a (pruned) ``Sequential`` model into a `SparseNetwork` on ``backend`` ("cpu" or
    "cuda"). Each Linear/Conv2d weight is taken as ``weight * weight_mask`` and stored as a
    validated `CSRMatrix` (conv weights reshaped to (O, C*K*K)). ``input_shape`` is one sample's
    shape (MNIST: (1, 28, 28)); it fixes every layer's shape, which is checked here, once.

    The model is read, not kept: later changes to its weights or masks do not reach the network.
    """
    if backend not in BACKENDS:
        raise ValueError(f"compile: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cuda" and not cuda_available():
        raise ValueError(
            "compile: backend 'cuda' needs a CUDA GPU, or NUMBA_ENABLE_CUDASIM=1 set before "
            "Numba is imported (the simulator)"
        )
    ops = _check_model(model, input_shape)
    stages, runs_as = (_cpu_stages if backend == "cpu" else cuda_stages)(ops)
    layers = tuple(
        LayerSummary(
            name=op.name,
            kind=op.kind,
            input_shape=op.input_shape,
            output_shape=op.output_shape,
            weight_shape=None if op.csr is None else tuple(op.layer.weight.data.shape),
            nnz=None if op.csr is None else op.csr.nnz,
            density=None if op.csr is None else op.csr.density,
            runs_as=label,
        )
        for op, label in zip(ops, runs_as, strict=True)
    )
    nbytes = sum(op.csr.nbytes + op.bias.nbytes for op in ops if op.csr is not None)
    return SparseNetwork(backend, stages, layers, tuple(int(n) for n in input_shape), nbytes)
