"""Sparse inference: `compile_model` turns a pruned ``Sequential`` model into a forward-only
`SparseNetwork` on the CSR kernels (Han et al. 2015, Sec. 4: pruned layers stored as CSR).

    network = compile_model(model)           # weights * weight_mask -> CSRMatrix, checked once
    logits = network(images)                 # (N, 1, 28, 28) or (N, 784) float32 -> (N, classes)

On the CPU each layer is a small stage (`LinearStage`, `Conv2dStage`, `MaxPoolStage`, ...); with
``fused=True`` (the default) each run of Linear (+ ReLU) layers becomes one `FusedFCChain`
instead. Backend "cuda" runs one stage per layer on the GPU (`engine_cuda`). Departures from the
dense forward, which the tests bound: float32 sums in another order (rtol 1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minprune.kernels.argument_checks import is_device_array
from minprune.kernels.cuda_support import cuda_available, finish, to_device
from minprune.kernels.im2col import conv_output_size
from minprune.kernels.pool import max_pool_forward
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.engine_cuda import cuda_stages
from minprune.sparse.fused_chain import SPMM_MIN_BATCH, FusedFCChain
from minprune.sparse.products import conv2d_forward_csr, conv2d_output_size, linear_forward_csr

__all__ = [
    "compile_model",
    "SparseNetwork",
    "LayerSummary",
    "BACKENDS",
    "SPMM_MIN_BATCH",
    "LinearStage",
    "Conv2dStage",
    "MaxPoolStage",
    "ReLUStage",
    "ReshapeStage",
]

BACKENDS = ("cpu", "cuda")
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
        out_h, out_w = (conv_output_size(size, layer.kernel_size, layer.stride, 0)
                        for size in shape[1:])
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
            f"compile_model: expected a minprune.nn.Sequential (layers run in order), got "
            f"{type(model).__name__}"
        )
    try:
        shape = tuple(int(n) for n in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(n < 1 for n in shape) or tuple(input_shape) != shape:
        raise ValueError(f"compile_model: input_shape must be positive ints, got {input_shape!r}")
    if len(model) == 0:
        raise ValueError("compile_model: the model has no layers")
    ops = []
    for layer in model:
        ops.append(_check_op(layer.name, layer, shape))
        shape = ops[-1].output_shape
    return ops


# -- the CPU stages: one small callable per layer ------------------------------------------------


class LinearStage:
    """A pruned Linear layer: ``x @ W.T + bias`` with W as CSR (`products.linear_forward_csr`)."""

    runs_as = "products.linear_forward_csr (SpMV / SpMM)"

    def __init__(self, op: _Op):
        self.csr, self.bias = op.csr, op.bias

    def __call__(self, x):
        return linear_forward_csr(self.csr, x, self.bias)


class Conv2dStage:
    """A pruned Conv2d layer: im2col patches times the CSR filters."""

    runs_as = "products.conv2d_forward_csr (im2col + CSR)"

    def __init__(self, op: _Op):
        self.csr, self.bias, self.layer = op.csr, op.bias, op.layer

    def __call__(self, x):
        layer = self.layer
        return conv2d_forward_csr(self.csr, np.ascontiguousarray(x), self.bias,
                                  kernel_size=layer.kernel_size, stride=layer.stride,
                                  padding=layer.padding)


class MaxPoolStage:
    """Max-pooling with the training path's kernel (`minprune.kernels.pool`), argmax unused."""

    runs_as = "pool.max_pool_forward"

    def __init__(self, op: _Op):
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


_STAGES = {"linear": LinearStage, "conv2d": Conv2dStage, "max_pool2d": MaxPoolStage}


def _per_layer_stages(ops: list[_Op]) -> tuple[list, list[str]]:
    """One stage per layer (Dropout: none, the identity at inference); returns (stages, runs_as
    per op). The plain engine, and the reference the fused chain is tested against."""
    stages, runs_as = [], []
    if ops[0].kind not in ("linear", "flatten"):
        stages.append(ReshapeStage(ops[0].input_shape))  # a flat (N, C*H*W) input -> (N, C, H, W)
    for op in ops:
        if op.kind == "dropout":
            runs_as.append("identity (inference)")
            continue
        if op.kind in _STAGES:
            stage = _STAGES[op.kind](op)
        elif op.kind == "relu":
            stage = ReLUStage()
        else:  # flatten
            stage = ReshapeStage(op.output_shape)
        stages.append(stage)
        runs_as.append(stage.runs_as)
    return stages, runs_as


def _fuse_fc_chains(ops: list[_Op], stages: list, runs_as: list[str]) -> tuple[list, list[str]]:
    """Replace each run of Linear stages -- with the ReLU right after each, a Flatten right
    before, Dropouts in between -- by one `FusedFCChain`. ``stages`` are `_per_layer_stages`'s."""
    fused, labels = [], list(runs_as)
    remaining = iter(stages)
    if ops[0].kind not in ("linear", "flatten"):
        fused.append(next(remaining))  # the input reshape
    index, chains = 0, 0
    while index < len(ops):
        op = ops[index]
        end = index
        if op.kind in ("flatten", "linear"):
            end = index + (op.kind == "flatten")
            linears, relu_after = [], []
            while end < len(ops) and ops[end].kind in ("linear", "relu", "dropout"):
                kind = ops[end].kind
                if kind == "linear":
                    linears.append(ops[end])
                    relu_after.append(False)
                elif kind == "relu" and ops[end - 1].kind == "linear":
                    relu_after[-1] = True
                elif kind == "relu":
                    break  # a ReLU after a Dropout runs on its own
                end += 1
        if end == index or not linears:
            if op.kind != "dropout":
                fused.append(next(remaining))
            index += 1
            continue
        for position in range(index, end):  # the stages this chain replaces
            if ops[position].kind != "dropout":
                next(remaining)
            if ops[position].kind != "dropout":
                labels[position] = f"fused CSR chain {chains}"
        fused.append(FusedFCChain([o.csr for o in linears], [o.bias for o in linears],
                                  relu_after))
        chains += 1
        index = end
    return fused, labels


# -- the compiled network -----------------------------------------------------------------------


class SparseNetwork:
    """A forward-only network on CSR weights; build it with `compile_model`.

    ``stages`` are the callables a forward runs in order; ``layers`` describe each model layer and
    what runs it (``summary()`` prints them). ``network(x)`` takes float32 (N, *input_shape) or
    (N, prod(input_shape)) -- other float or int dtypes are converted -- and returns float32
    logits (N, classes). Backend "cuda" also takes a Numba device array and then returns one.
    """

    def __init__(self, backend, stages, layers, input_shape, nbytes):
        self.backend = backend
        self.layers: tuple[LayerSummary, ...] = layers
        self.input_shape: tuple[int, ...] = input_shape
        self.nbytes: int = nbytes  # CSR weights (values, column indices, row pointers) + biases
        self.stages = stages
        flat = (int(np.prod(input_shape)),)
        self._accepted = (input_shape, flat)
        self._expected = f"(N, {', '.join(map(str, input_shape))})" + (
            f" or (N, {flat[0]})" if flat != input_shape else ""
        )
        if backend == "cuda":
            self._forward = self._cuda_forward
        elif len(stages) == 1:
            self._forward = stages[0]  # LeNet-300-100 fused: one chain, called directly
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
        for stage in self.stages:
            x = stage(x)
        return x

    def _cuda_forward(self, x):
        host_input = isinstance(x, np.ndarray)
        if x.shape[1:] != self.input_shape:
            x = x.reshape(x.shape[0], *self.input_shape)
        x = to_device(x)
        for stage in self.stages:
            x = stage(x)
        return finish(x, host_input)


def compile_model(model, backend: str = "cpu", input_shape=(1, 28, 28), *,
                  fused: bool = True) -> SparseNetwork:
    """Compile a (pruned) ``Sequential`` model into a `SparseNetwork` on ``backend`` ("cpu" or
    "cuda"). Each Linear/Conv2d weight is taken as ``weight * weight_mask`` and stored as a
    validated `CSRMatrix` (conv weights reshaped to (O, C*K*K)). ``input_shape`` is one sample's
    shape (MNIST: (1, 28, 28)); it fixes every layer's shape, which is checked here, once.
    ``fused=False`` keeps one stage per layer on the CPU (the plain engine the fused FC chain is
    tested against). The model is read, not kept: later changes to it do not reach the network.
    """
    if backend not in BACKENDS:
        raise ValueError(f"compile_model: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cuda" and not cuda_available():
        raise ValueError(
            "compile_model: backend 'cuda' needs a CUDA GPU, or NUMBA_ENABLE_CUDASIM=1 set before "
            "Numba is imported (the simulator)"
        )
    ops = _check_model(model, input_shape)
    if backend == "cuda":
        stages, runs_as = cuda_stages(ops)
    else:
        stages, runs_as = _per_layer_stages(ops)
        if fused:
            stages, runs_as = _fuse_fc_chains(ops, stages, runs_as)
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
