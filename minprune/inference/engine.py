"""Sparse inference: `compile_model` turns a pruned ``Sequential`` model into a forward-only
`SparseNetwork` on the CSR kernels (Deep Compression, Han et al. 2016, Sec. 2: pruned layers
stored as CSR).

    network = compile_model(model)           # weights * weight_mask -> CSRMatrix, checked once
    logits = network(images)                 # (N, 1, 28, 28) or (N, 784) float32 -> (N, classes)

On the CPU each layer is a small stage (`engine_cpu`: `LinearStage`, `Conv2dStage`, ...); with
``fused=True`` (the default) each run of Linear (+ ReLU) layers becomes one `FusedFCChain`
instead. Under ``MINPRUNE_BACKEND=plain`` (`minprune.base.settings.backend`) the CPU runs
`engine_plain` instead: each layer as a few lines of NumPy, the code a reader reads, which the
tests hold equal to the fast stages. Backend "cuda" runs one stage per layer on the GPU
(`engine_cuda`). Departures from the dense forward, which the tests bound: float32 sums in
another order (rtol 1e-5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from minprune.base import settings
from minprune.inference.engine_cpu import fuse_fc_chains, per_layer_stages
from minprune.inference.engine_cuda import cuda_stages
from minprune.inference.engine_plain import plain_stages
from minprune.inference.products import conv2d_output_size
from minprune.kernels.checks import is_device_array
from minprune.kernels.cuda_support import cuda_available, finish, to_device
from minprune.kernels.training.im2col import conv_output_size
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.model_files import read_model_file

__all__ = [
    "compile_model",
    "SparseNetwork",
    "LayerSummary",
    "BACKENDS",
]

BACKENDS = ("cpu", "cuda")
_FLOAT32 = np.dtype(np.float32)
_SUPPORTED = "Linear, Conv2d (groups=1), ReLU, MaxPool2d, Flatten, Dropout"


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
    """One model layer after checking: the layer, its shapes and (Linear/Conv2d) CSR weights.
    The stage builders dispatch on ``type(op.layer)``; ``kind`` only names it in the summary."""

    name: str
    kind: str
    layer: object
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    csr: CSRMatrix | None = None
    bias: np.ndarray | None = None


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


# Each supported layer type's output shape (per sample) for an input ``shape``; a ValueError
# naming the layer when it cannot take that input.


def _linear_output(name: str, layer: Linear, shape: tuple[int, ...]) -> tuple[int, ...]:
    if shape != (layer.in_features,):
        raise ValueError(
            f"layer '{name}': Linear expects per-sample input ({layer.in_features},), but "
            f"receives {shape}; add a Flatten before it, or give one sample's shape: "
            f"compile_model(model, input_shape=(C, H, W) or (features,))"
        )
    return (layer.out_features,)


def _conv2d_output(name: str, layer: Conv2d, shape: tuple[int, ...]) -> tuple[int, ...]:
    if layer.groups != 1:
        raise ValueError(
            f"layer '{name}': the sparse engine cannot run a grouped Conv2d "
            f"(groups={layer.groups}); it runs Conv2d with groups=1"
        )
    if len(shape) != 3 or shape[0] != layer.in_channels:
        raise ValueError(
            f"layer '{name}': Conv2d expects per-sample input ({layer.in_channels}, H, W), "
            f"but receives {shape}; give one sample's shape: "
            f"compile_model(model, input_shape=({layer.in_channels}, H, W))"
        )
    try:
        out_h, out_w = conv2d_output_size(shape[1:], layer.kernel_size, layer.stride, layer.padding)
    except ValueError as error:
        raise ValueError(f"layer '{name}': {error}") from None
    return (layer.out_channels, out_h, out_w)


def _max_pool2d_output(name: str, layer: MaxPool2d, shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) != 3 or min(shape[1:]) < layer.kernel_size:
        raise ValueError(
            f"layer '{name}': MaxPool2d({layer.kernel_size}) expects per-sample input "
            f"(C, H, W) with H, W >= {layer.kernel_size}, but receives {shape}"
        )
    out_h, out_w = (conv_output_size(size, layer.kernel_size, layer.stride, 0)
                    for size in shape[1:])
    return (shape[0], out_h, out_w)


def _flatten_output(name: str, layer: Flatten, shape: tuple[int, ...]) -> tuple[int, ...]:
    return (int(np.prod(shape)),)


def _same_output(name: str, layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape


# The layer types the engine runs: type -> (its name in the summary, its output shape). Exact
# types, so a subclass with another forward is refused rather than run as its parent.
_LAYERS = {
    Linear: ("linear", _linear_output),
    Conv2d: ("conv2d", _conv2d_output),
    MaxPool2d: ("max_pool2d", _max_pool2d_output),
    Flatten: ("flatten", _flatten_output),
    ReLU: ("relu", _same_output),
    Dropout: ("dropout", _same_output),
}
_WEIGHTED = (Linear, Conv2d)  # the layers stored as CSR


def _check_op(name: str, layer, shape: tuple[int, ...]) -> _Op:
    """Turn one layer into an `_Op`, checking that it accepts ``shape`` (per sample)."""
    if type(layer) not in _LAYERS:
        raise ValueError(
            f"layer '{name}': the sparse engine cannot run a {type(layer).__name__}; it runs "
            f"{_SUPPORTED}"
        )
    kind, output_shape = _LAYERS[type(layer)]
    output = output_shape(name, layer, shape)
    csr, bias = _masked_csr(layer) if type(layer) in _WEIGHTED else (None, None)
    return _Op(name, kind, layer, shape, output, csr, bias)


def _layers_in_order(model: Sequential, prefix: str = ""):
    """Yield ``(dotted name, layer)`` for each layer of ``model``, nested ``Sequential``s (which
    `minprune.interop.torch.from_torch` makes of nested ``torch.nn.Sequential``s) opened in place:
    they run their layers in order, as the outer one does."""
    for name, layer in model._modules.items():
        if type(layer) is Sequential:
            yield from _layers_in_order(layer, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", layer


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
    ops = []
    for name, layer in _layers_in_order(model):
        ops.append(_check_op(name, layer, shape))
        shape = ops[-1].output_shape
    if not ops:
        raise ValueError("compile_model: the model has no layers")
    return ops


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
        # Dense copies the CPU engine keeps for speed, beside the CSR weights: the dense columns
        # of FC layers whose inputs have zeros, and the weights of convs run dense.
        self.dense_nbytes: int = sum(getattr(stage, "dense_nbytes", 0) for stage in stages)
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
                + self._one_sample_hint(tuple(x.shape))
            )
        return self._forward(x)

    def _one_sample_hint(self, shape: tuple[int, ...]) -> str:
        """For one sample without its batch axis (``images[0]``): say how to add it."""
        if shape not in self._accepted:
            return ""
        return f"; for one sample, add the batch axis: x[None] (shape {(1, *shape)})"

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
        lines = [f"SparseNetwork(backend={self.backend!r}, nnz={self.nnz}, nbytes={self.nbytes}, "
                 f"dense_nbytes={self.dense_nbytes})"]
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


def compile_model(model, backend: str = "cpu", input_shape=None, *,
                  fused: bool = True, parallel: bool = False) -> SparseNetwork:
    """Compile a (pruned) ``Sequential`` model into a `SparseNetwork` on ``backend`` ("cpu" or
    "cuda"). Each Linear/Conv2d weight is taken as ``weight * weight_mask`` and stored as a
    validated `CSRMatrix` (conv weights reshaped to (O, C*K*K)). ``input_shape`` is one sample's
    shape (default (1, 28, 28), MNIST's); it fixes every layer's shape, which is checked here,
    once. Nested ``Sequential``s run as their layers in order; Dropout is the identity.

    ``model`` may also be the path of a file written by `minprune.sparse.save_sparse(path,
    model)`: the model is rebuilt from it (`minprune.sparse.read_model_file`), and the input shape
    stored in it is used unless ``input_shape`` is given.
    ``fused=False`` keeps one stage per layer on the CPU (the per-layer engine the fused FC chain
    is tested against). The model is read, not kept: later changes to it do not reach the network.

    ``parallel=True`` runs the batched kernels (the conv image loop, the FC chain's SpMM blocks)
    on Numba's threads. Off by default: on a machine whose cores are busy (OpenBLAS's spinning
    workers, any dense NumPy work in the same process) a parallel region waits on descheduled
    threads (measured: `minprune.base.tuning`, beside ``MIN_BLOCK``).

    Which path runs each layer is chosen here, once: backend "cuda" -> `engine_cuda`; "cpu" under
    the "plain" backend (`minprune.base.settings.backend`, ``MINPRUNE_BACKEND``) ->
    `engine_plain` (``fused`` and ``parallel`` do not apply); "cpu" otherwise -> `engine_cpu`'s
    stages, each picked by `minprune.base.tuning`'s thresholds, then the fused FC chains.
    """
    if backend not in BACKENDS:
        raise ValueError(f"compile_model: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cuda" and not cuda_available():
        raise ValueError(
            "compile_model: backend 'cuda' needs a CUDA GPU, or NUMBA_ENABLE_CUDASIM=1 set before "
            "Numba is imported (the simulator)"
        )
    if isinstance(model, str | os.PathLike):
        model, stored_shape = read_model_file(model)
        input_shape = stored_shape if input_shape is None else input_shape
    if input_shape is None:
        input_shape = (1, 28, 28)
    ops = _check_model(model, input_shape)
    if backend == "cuda":
        stages, runs_as = cuda_stages(ops)
    elif settings.backend() == "plain":
        stages, runs_as = plain_stages(ops)
    else:
        stages, runs_as = per_layer_stages(ops, parallel)
        if fused:
            stages, runs_as = fuse_fc_chains(ops, stages, runs_as, parallel)
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
