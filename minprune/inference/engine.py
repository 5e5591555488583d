"""Sparse inference: `compile_model` turns a pruned ``Sequential`` model, or the sparse file it
was saved to, into a forward-only `SparseNetwork` whose weights are held as the paper stores
them (Han et al. 2015, Sec. 5: 8-bit relative indices; EIE, Han et al. 2016: FC weights by
column so zero inputs are skipped).

    network = compile_model(model)           # weights * weight_mask, checked once
    network = compile_model("pruned.npz")    # the same from a save_sparse file, never dense
    logits = network(images)                 # (N, 1, 28, 28) or (N, 784) float32 -> (N, classes)
    network.nbytes, network.file_nbytes      # resident weight bytes, the file's weight bytes

On the CPU each layer is a small stage (`engine_cpu`: `Conv2dStage`, ...); with ``fused=True``
(the default) each run of Linear (+ ReLU) layers becomes one `FusedFCChain`; ``fused=False``
runs each Linear on int32 CSR (`LinearStage`), the plain form the fast one is tested against.
Under ``MINPRUNE_BACKEND=plain`` (`minprune.base.settings.backend`) the CPU runs `engine_plain`:
each layer as a few lines of NumPy, the code a reader reads, which the tests hold equal to the
fast stages. Backend "cuda" runs one stage per layer on the GPU
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
from minprune.inference.layer_checks import check_file, check_model, weight_shape
from minprune.kernels.checks import is_device_array
from minprune.kernels.cuda_support import cuda_available, finish, to_device
from minprune.sparse.file_steps import sparse_file_weight_bytes
from minprune.sparse.model_files import read_network_file

__all__ = [
    "compile_model",
    "SparseNetwork",
    "LayerSummary",
    "BACKENDS",
]

BACKENDS = ("cpu", "cuda")
_FLOAT32 = np.dtype(np.float32)


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


# -- the compiled network -----------------------------------------------------------------------


class SparseNetwork:
    """A forward-only network on CSR weights; build it with `compile_model`.

    ``stages`` are the callables a forward runs in order; ``layers`` describe each model layer and
    what runs it (``summary()`` prints them). ``network(x)`` takes float32 (N, *input_shape) or
    (N, prod(input_shape)) -- other float or int dtypes are converted -- and returns float32
    logits (N, classes). Backend "cuda" also takes a Numba device array and then returns one.
    """

    def __init__(self, backend, stages, layers, input_shape, nbytes, file_nbytes):
        self.backend = backend
        self.layers: tuple[LayerSummary, ...] = layers
        self.input_shape: tuple[int, ...] = input_shape
        # Resident weight bytes: every array the stages hold for the weights (values, indices or
        # steps, pointers, any dense copy); biases not counted.
        self.nbytes: int = nbytes
        # The same weights' bytes in a sparse file (`minprune.sparse.save_sparse`: step codes,
        # step pointers, values): what nbytes is measured against.
        self.file_nbytes: int = file_nbytes
        # Of nbytes, the dense arrays: convs run dense by compile_model(dense_above=...); else 0.
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
        lines = [f"SparseNetwork(backend={self.backend!r}, nnz={self.nnz}, nbytes={self.nbytes} "
                 f"({self.nbytes / max(self.file_nbytes, 1):.2f}x the file's {self.file_nbytes}), "
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
                  fused: bool = True, parallel: bool = False,
                  dense_above: float | None = None) -> SparseNetwork:
    """Compile a (pruned) ``Sequential`` model into a `SparseNetwork` on ``backend`` ("cpu" or
    "cuda"). Each Linear/Conv2d weight is taken as ``weight * weight_mask`` and stored as a
    validated `CSRMatrix` (conv weights reshaped to (O, C*K*K)). ``input_shape`` is one sample's
    shape (default (1, 28, 28), MNIST's); it fixes every layer's shape, which is checked here,
    once. Nested ``Sequential``s run as their layers in order; Dropout is the identity.

    ``model`` may also be the path of a file written by `minprune.sparse.save_sparse(path,
    model)`: its layer sequence and CSR weights are read (`minprune.sparse.read_network_file`),
    no model and no dense weight built, and the input shape stored in it is used unless
    ``input_shape`` is given.
    ``fused=False`` keeps one stage per layer on the CPU (the per-layer engine the fused FC chain
    is tested against). The model is read, not kept: later changes to it do not reach the network.

    ``parallel=True`` runs the batched kernels (the conv image loop, the FC chain's SpMM blocks)
    on Numba's threads. Off by default: on a machine whose cores are busy (OpenBLAS's spinning
    workers, any dense NumPy work in the same process) a parallel region waits on descheduled
    threads (measured: `minprune.base.tuning`, beside ``MIN_BLOCK``).

    Which path runs each layer is chosen here, once: backend "cuda" -> `engine_cuda`; "cpu" under
    the "plain" backend (`minprune.base.settings.backend`, ``MINPRUNE_BACKEND``) ->
    `engine_plain` (``fused`` and ``parallel`` do not apply); "cpu" otherwise -> `engine_cpu`'s
    stages, then the fused FC chains.

    The CPU engine holds every pruned weight once, in the paper's 8-bit relative-index format:
    ``network.nbytes`` against ``network.file_nbytes``. ``dense_above`` (a density, default
    None: never) runs a conv layer denser than it dense instead, which pays in time above
    `minprune.base.tuning.SPARSE_CONV_MAX_DENSITY` (patches) or `SPARSE_WIDE_CONV_MAX_DENSITY`
    (stride 1, no padding) and costs a dense copy of its weights (``dense_nbytes``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"compile_model: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cuda" and not cuda_available():
        raise ValueError(
            "compile_model: backend 'cuda' needs a CUDA GPU, or NUMBA_ENABLE_CUDASIM=1 set before "
            "Numba is imported (the simulator)"
        )
    if dense_above is not None and (isinstance(dense_above, bool) or not (
            isinstance(dense_above, int | float) and 0.0 <= dense_above <= 1.0)):
        raise ValueError(f"compile_model: dense_above must be None or a density in [0, 1], got "
                         f"{dense_above!r}")
    if isinstance(model, str | os.PathLike):
        stored = read_network_file(model)
        input_shape = stored.input_shape if input_shape is None else input_shape
        ops = check_file(stored, (1, 28, 28) if input_shape is None else input_shape)
    else:
        ops = check_model(model, (1, 28, 28) if input_shape is None else input_shape)
    input_shape = ops[0].input_shape
    if backend == "cuda":
        stages, runs_as = cuda_stages(ops)
    elif settings.backend() == "plain":
        stages, runs_as = plain_stages(ops)
    else:
        stages, runs_as = per_layer_stages(ops, parallel, dense_above)
        if fused:
            stages, runs_as = fuse_fc_chains(ops, stages, runs_as, parallel)
    layers = tuple(
        LayerSummary(
            name=op.name,
            kind=op.kind,
            input_shape=op.input_shape,
            output_shape=op.output_shape,
            weight_shape=None if op.csr is None else weight_shape(op),
            nnz=None if op.csr is None else op.csr.nnz,
            density=None if op.csr is None else op.csr.density,
            runs_as=label,
        )
        for op, label in zip(ops, runs_as, strict=True)
    )
    weighted = [op for op in ops if op.csr is not None]
    if settings.backend() != "plain" or backend == "cuda":
        nbytes = sum(getattr(stage, "nbytes", 0) for stage in stages)
    else:  # the plain stages hold int32 CSR
        nbytes = sum(op.csr.nbytes for op in weighted)
    file_nbytes = sum(sparse_file_weight_bytes(op.csr) for op in weighted)
    return SparseNetwork(backend, stages, layers, input_shape, nbytes, file_nbytes)
