"""The sparse engine's fast path for fully connected layers: a run of Linear (+ ReLU) layers packed
into one `PackedChain` and run by ONE Numba call per forward
(`minprune.kernels.inference.fc_chain_cpu`: sample by sample below
`minprune.base.tuning.SPMM_MIN_BATCH`, SpMM from there on). Each layer is held once, as a
`minprune.sparse.RelativeIndexMatrix` -- the paper's 8-bit relative indices -- by column (EIE:
zero inputs skipped) or by row, as `from_csr`'s flags say (the engine's choice:
`minprune.inference.engine_cpu`): the chain's resident weight bytes (`FusedFCChain.nbytes`) are
the sparse file's. The per-layer stages (`compile_model(fused=False)`)
compute the same thing and are its reference in the tests.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minprune.base.tuning import SPMM_MIN_BATCH
from minprune.kernels.inference import fc_chain_cpu as chain
from minprune.sparse.relative import RelativeIndexMatrix

__all__ = ["PackedChain", "pack_fc_chain", "FusedFCChain"]


class PackedChain(NamedTuple):
    """The packed FC chain (layout: `minprune.kernels.inference.fc_chain_cpu`); ``*chain`` gives the
    kernels' arguments in order."""

    plan: np.ndarray
    pointers: np.ndarray
    steps: np.ndarray
    values: np.ndarray
    biases: np.ndarray


def pack_fc_chain(matrices, biases, relu_after) -> PackedChain:
    """Pack `RelativeIndexMatrix` weights (layer by layer, each "csr" or "csc"), their float32
    biases (rows,) and one ReLU flag per layer into a `PackedChain`.

    Checks only what the kernels rely on beyond each matrix's own validation: each layer's
    columns match the previous layer's rows, and one bias of the right length per layer.
    """
    if not (len(matrices) == len(biases) == len(relu_after) > 0):
        raise ValueError(
            f"pack_fc_chain: expected one bias and one relu flag per matrix (at least one), got "
            f"{len(matrices)} matrices, {len(biases)} biases, {len(relu_after)} flags"
        )
    for layer, (matrix, bias) in enumerate(zip(matrices, biases, strict=True)):
        if not isinstance(matrix, RelativeIndexMatrix):
            raise ValueError(f"pack_fc_chain: layer {layer} is a {type(matrix).__name__}, "
                             "expected a minprune.sparse.RelativeIndexMatrix")
        if layer and matrix.shape[1] != matrices[layer - 1].shape[0]:
            raise ValueError(
                f"pack_fc_chain: layer {layer} has {matrix.shape[1]} columns but layer "
                f"{layer - 1} gives {matrices[layer - 1].shape[0]} outputs"
            )
        if np.shape(bias) != (matrix.shape[0],):
            raise ValueError(
                f"pack_fc_chain: layer {layer} has {matrix.shape[0]} rows, so its bias must have "
                f"shape ({matrix.shape[0]},), got {np.shape(bias)}"
            )
    plan = np.zeros((len(matrices), chain.PLAN_COLUMNS), dtype=np.int64)
    offsets = {"pointers": 0, "entries": 0, "biases": 0}
    for layer, (matrix, relu) in enumerate(zip(matrices, relu_after, strict=True)):
        plan[layer, chain.ROWS], plan[layer, chain.COLS] = matrix.shape
        plan[layer, chain.RELU] = bool(relu)
        plan[layer, chain.LAYOUT] = chain.BY_COLUMN if matrix.layout == "csc" else chain.BY_ROW
        plan[layer, chain.POINTERS] = offsets["pointers"]
        plan[layer, chain.ENTRIES], plan[layer, chain.COUNT] = offsets["entries"], matrix.entries
        plan[layer, chain.BIAS] = offsets["biases"]
        offsets["pointers"] += matrix.pointers.shape[0]
        offsets["entries"] += matrix.entries
        offsets["biases"] += matrix.shape[0]
    return PackedChain(
        plan,
        np.concatenate([m.pointers for m in matrices]),
        np.concatenate([m.steps for m in matrices]),
        np.concatenate([m.values for m in matrices]),
        np.concatenate([np.asarray(b, dtype=np.float32) for b in biases]),
    )


class FusedFCChain:
    """Consecutive Linear (+ ReLU) layers as one stage: ``chain(x)`` maps (batch, in) -- or any
    (batch, ...) of that many features -- to float32 (batch, out). Below `tuning.SPMM_MIN_BATCH`
    samples it runs `fc_chain_cpu.fc_chain_per_sample`, from there on `fc_chain_spmm` (or, with
    ``parallel``, `fc_chain_batched` on `fc_chain_cpu.spmm_blocks` blocks).

    ``matrices`` are `RelativeIndexMatrix` weights; `from_csr` builds them from `CSRMatrix`
    weights, by column where ``inputs_have_zeros`` says so.
    """

    def __init__(self, matrices, biases, relu_after, parallel: bool = False):
        self.packed = pack_fc_chain(matrices, biases, relu_after)
        self.in_features = matrices[0].shape[1]
        self.out_features = matrices[-1].shape[0]
        self.parallel = parallel
        self.layouts = tuple(m.layout for m in matrices)
        # Resident weight bytes: values, steps, pointers -- the only copy of the weights.
        self.nbytes = sum(m.nbytes for m in matrices)

    @classmethod
    def from_csr(cls, matrices, biases, relu_after, inputs_have_zeros=None,
                 parallel: bool = False) -> FusedFCChain:
        """The chain of `CSRMatrix` weights: each stored by column (CSC) where its flag in
        ``inputs_have_zeros`` is set (default: every layer), else by row."""
        flags = [True] * len(matrices) if inputs_have_zeros is None else list(inputs_have_zeros)
        if len(flags) != len(matrices):
            raise ValueError(f"FusedFCChain.from_csr: expected one inputs_have_zeros flag per "
                             f"matrix, got {len(flags)} for {len(matrices)}")
        relative = [RelativeIndexMatrix.from_csr(m, "csc" if zeros else "csr")
                    for m, zeros in zip(matrices, flags, strict=True)]
        return cls(relative, biases, relu_after, parallel)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        x = x.reshape(batch, self.in_features)
        out = np.empty((batch, self.out_features), dtype=np.float32)
        if batch < SPMM_MIN_BATCH:
            chain.fc_chain_per_sample(x, *self.packed, out)
            return out
        blocks = chain.spmm_blocks(batch) if self.parallel else 1
        if blocks == 1:  # no parallel region to start
            chain.fc_chain_spmm(x, *self.packed, out)
        else:
            chain.fc_chain_batched(x, *self.packed, blocks, out)
        return out
