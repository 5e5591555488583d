"""The sparse engine's fast path for fully connected layers: a run of Linear (+ ReLU) layers packed
into one `PackedChain` and run by ONE Numba call per forward
(`minprune.kernels.inference.fc_chain_cpu`: gather, scatter or dense columns per sample below
`minprune.base.tuning.SPMM_MIN_BATCH`, SpMM from there on). The per-layer stages
(`compile_model(fused=False)`) compute the same thing and are its reference in the tests. """

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minprune.base.tuning import DENSE_COST, SCATTER_RATIO, SPMM_MIN_BATCH
from minprune.kernels.inference import fc_chain_cpu as chain

__all__ = ["PackedChain", "pack_fc_chain", "FusedFCChain"]


class PackedChain(NamedTuple):
    """The packed FC chain (layout: `minprune.kernels.inference.fc_chain_cpu`); ``*chain`` gives the
    kernels' arguments in order."""

    plan: np.ndarray
    pointers: np.ndarray
    indices: np.ndarray
    values: np.ndarray


def pack_fc_chain(matrices, biases, relu_after, dense_columns=None) -> PackedChain:
    """Pack validated CSR matrices (`minprune.sparse.CSRMatrix`, layer by layer), their float32
    biases (rows,) and one ReLU flag per layer into a `PackedChain`. ``dense_columns`` (one flag
    per layer, default none) also stores a layer's dense W.T, for the per-sample kernel's
    dense-columns form: worth its memory (in x out floats) where the layer's inputs have zeros.

    Checks only what the kernels rely on beyond each matrix's own validation: each layer's
    columns match the previous layer's rows, and one bias of the right length per layer.
    """
    if not (len(matrices) == len(biases) == len(relu_after) > 0):
        raise ValueError(
            f"pack_fc_chain: expected one bias and one relu flag per matrix (at least one), got "
            f"{len(matrices)} matrices, {len(biases)} biases, {len(relu_after)} flags"
        )
    for layer, (matrix, bias) in enumerate(zip(matrices, biases, strict=True)):
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
    dense_columns = [False] * len(matrices) if dense_columns is None else list(dense_columns)
    if len(dense_columns) != len(matrices):
        raise ValueError(f"pack_fc_chain: expected one dense_columns flag per matrix, got "
                         f"{len(dense_columns)} for {len(matrices)}")
    plan = np.zeros((len(matrices), chain.PLAN_COLUMNS), dtype=np.int64)
    parts = {"pointers": [], "indices": [], "values": []}
    sizes = dict.fromkeys(parts, 0)

    def put(kind, array):
        """Append ``array`` to the ``kind`` array; return the offset it starts at."""
        start = sizes[kind]
        parts[kind].append(array)
        sizes[kind] += array.shape[0]
        return start

    for layer, (matrix, bias, relu) in enumerate(zip(matrices, biases, relu_after, strict=True)):
        transposed = matrix.transpose()
        plan[layer, chain.ROWS], plan[layer, chain.COLS] = matrix.shape
        plan[layer, chain.RELU], plan[layer, chain.NNZ] = bool(relu), matrix.nnz
        for csr, form in (
            (matrix, (chain.ROW_POINTERS, chain.ROW_INDICES, chain.ROW_VALUES)),
            (transposed, (chain.COL_POINTERS, chain.COL_INDICES, chain.COL_VALUES)),
        ):
            plan[layer, form[0]] = put("pointers", csr.indptr)
            plan[layer, form[1]] = put("indices", csr.indices)
            plan[layer, form[2]] = put("values", csr.data)
        plan[layer, chain.BIAS] = put("values", np.asarray(bias, dtype=np.float32))
        plan[layer, chain.DENSE] = -1
        if dense_columns[layer]:
            plan[layer, chain.DENSE] = put("values", transposed.to_dense().reshape(-1))
    # Unsigned: exact, the indices are validated >= 0 (see `minprune.kernels.inference.csr_cpu`).
    return PackedChain(
        plan,
        np.concatenate(parts["pointers"]).astype(np.int64).view(np.uint64),
        np.concatenate(parts["indices"]).astype(np.int32).view(np.uint32),
        np.concatenate(parts["values"]).astype(np.float32),
    )


class FusedFCChain:
    """Consecutive Linear (+ ReLU) layers as one stage: ``chain(x)`` maps (batch, in) -- or any
    (batch, ...) of that many features -- to float32 (batch, out). Below `tuning.SPMM_MIN_BATCH`
    samples it runs `fc_chain_cpu.fc_chain_per_sample`, from there on `fc_chain_spmm` (or, with
    ``parallel``, `fc_chain_batched` on `fc_chain_cpu.spmm_blocks` blocks)."""

    def __init__(self, matrices, biases, relu_after, scatter_ratio: float = SCATTER_RATIO,
                 dense_columns=None, dense_cost: float = DENSE_COST, parallel: bool = False):
        flags = [False] * len(matrices) if dense_columns is None else list(dense_columns)
        self.packed = pack_fc_chain(matrices, biases, relu_after, flags)
        self.in_features = matrices[0].shape[1]
        self.out_features = matrices[-1].shape[0]
        self.scatter_ratio, self.dense_cost, self.parallel = scatter_ratio, dense_cost, parallel
        self._per_sample_arguments = (*self.packed, scatter_ratio, dense_cost)
        # Memory the dense W.T copies take beside the CSR weights (float32).
        self.dense_nbytes = sum(4 * m.shape[0] * m.shape[1]
                                for m, kept in zip(matrices, flags, strict=True) if kept)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        x = x.reshape(batch, self.in_features)
        out = np.empty((batch, self.out_features), dtype=np.float32)
        if batch < SPMM_MIN_BATCH:
            chain.fc_chain_per_sample(x, *self._per_sample_arguments, out)
            return out
        blocks = chain.spmm_blocks(batch) if self.parallel else 1
        if blocks == 1:  # no parallel region to start
            chain.fc_chain_spmm(x, *self.packed, out)
        else:
            chain.fc_chain_batched(x, *self.packed, blocks, out)
        return out
