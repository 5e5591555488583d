"""Raw-array kernels of the sparse engine's fused chain of CSR fully connected layers (packed by
`minprune.inference.fused_chain`; the plain per-layer engine is its reference).

A run of Linear (+ ReLU) layers is packed into three flat arrays and a plan table, so a whole
forward pass is ONE kernel call with few arguments (Numba unboxes every argument on each call):

    plan      int64 (layers, PLAN_COLUMNS)  per layer: sizes, ReLU flag, and where its arrays
                                            start in the three arrays below
    pointers  uint64   every layer's row pointers, in both orientations
    indices   uint32   every layer's column indices, in both orientations
    values    float32  every layer's weights (both orientations), biases and dense W.T

Each layer is stored as the CSR of W (for each output, its inputs: a *gather*, one dot product per
output) and of W.T (for each input, the outputs it feeds: a *scatter* that skips zero inputs, the
activation sparsity EIE (Han et al., ISCA 2016) exploits; 82% of an MNIST image's pixels are 0).
Per sample and layer `fc_chain_per_sample` scatters when the non-zero inputs' columns hold fewer
than ``scatter_ratio`` x nnz stored weights (`minprune.base.tuning.SCATTER_RATIO`), else gathers
(0.0 forces the gather, ``inf`` the scatter: how the tests cover both). A third form, where the
packed chain holds a layer's dense W.T, adds the dense column of each non-zero input, four inputs
a pass: more multiply-adds (the pruned ones too), but vectorised along the outputs, so it is
taken when its cost (``dense_cost``, `tuning.DENSE_COST`, per multiply-add) is the lowest: when
few inputs are non-zero (an MNIST image into fc1). Skipping a zero input assumes ``0 * w == 0``
(finite weights). From `tuning.SPMM_MIN_BATCH` samples on, `fc_chain_spmm` runs one SpMM per
layer on transposed activations (vectorised over the batch), `fc_chain_batched` one block of at
least `tuning.MIN_BLOCK` samples per thread.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from minprune.base.tuning import MIN_BLOCK

__all__ = [
    "PLAN_COLUMNS",
    "fc_chain_per_sample",
    "fc_chain_spmm",
    "fc_chain_batched",
    "spmm_blocks",
]

_FASTMATH = {"reassoc", "contract"}  # as in csr_cpu: lets LLVM split a row's sum over SIMD lanes

# Columns of the plan table (one row per layer): *_POINTERS are offsets into ``pointers``,
# *_INDICES into ``indices``, *_VALUES, BIAS and DENSE into ``values``. "ROW_" is the CSR form of
# W (out, in), "COL_" the CSR form of its transpose, DENSE the dense W.T (in, out) with the
# pruned weights as zeros (-1: not stored).
ROWS, COLS, RELU, NNZ = 0, 1, 2, 3
ROW_POINTERS, ROW_INDICES, ROW_VALUES = 4, 5, 6
COL_POINTERS, COL_INDICES, COL_VALUES = 7, 8, 9
BIAS = 10
DENSE = 11
PLAN_COLUMNS = 12


def _layer_arrays(plan, pointers, indices, values, layer, form):
    """(pointers, indices, values) of one layer in one form: form 0 the CSR of W, 1 of W.T."""
    if form == 0:
        starts, lines = plan[layer, ROW_POINTERS], plan[layer, ROWS]
        first, first_value = plan[layer, ROW_INDICES], plan[layer, ROW_VALUES]
    else:
        starts, lines = plan[layer, COL_POINTERS], plan[layer, COLS]
        first, first_value = plan[layer, COL_INDICES], plan[layer, COL_VALUES]
    nnz = plan[layer, NNZ]
    return (
        pointers[starts : starts + lines + 1],
        indices[first : first + nnz],
        values[first_value : first_value + nnz],
    )


def _fc_chain_per_sample(x, plan, pointers, indices, values, scatter_ratio, dense_cost, out):
    """out (batch, last rows) = the chain applied to each row of x (batch, in), sample by sample:

    for n in range(batch):
        source = x[n]
        for layer in range(layers):
            target = a scratch vector, or out[n] for the last layer
            count = the non-zero inputs;  touched = the stored weights in their columns
            cheapest of, in scattered multiply-adds:
              dense columns  count * rows * dense_cost   (if the layer stores its dense W.T)
              scatter        touched                     (must be < scatter_ratio * nnz)
              gather         scatter_ratio * nnz
            dense columns: target = bias;  target += source[j] * W.T[j, :] for each non-zero j,
                           four inputs a pass (vectorised along the outputs)
            scatter:       target = bias;  target[rows of col j] += source[j] * col j, each j
            gather:        target[r] = bias[r] + sum_k values[k] * source[indices[k]], each r
            ReLU if flagged;  source = target

    ``scatter_ratio`` 0.0 forces the gather, ``inf`` allows any scatter; ``dense_cost`` inf never
    takes the dense columns, 0.0 always does (where stored): how the tests cover every form.
    One flat function on purpose: split into small jitted helpers the same loops ran slower at
    batch 1 (`minprune.base.tuning`, kernel shapes).
    """
    layers = plan.shape[0]
    scratch = np.empty((2, plan[:, ROWS].max()), dtype=np.float32)  # layers alternate rows
    nonzero = np.empty(plan[:, COLS].max(), dtype=np.int64)
    for n in range(x.shape[0]):
        source = x[n]
        for layer in range(layers):
            rows = plan[layer, ROWS]
            target = out[n] if layer == layers - 1 else scratch[layer % 2, :rows]
            bias = values[plan[layer, BIAS] : plan[layer, BIAS] + rows]
            col_pointers, col_indices, col_values = _layer_arrays(
                plan, pointers, indices, values, layer, 1
            )
            touched, count = 0, 0  # one pass, vectorised
            for j in range(source.shape[0]):
                nonzero_input = source[j] != 0.0
                touched += np.int64(col_pointers[j + 1] - col_pointers[j]) if nonzero_input else 0
                count += nonzero_input
            gather_cost = scatter_ratio * plan[layer, NNZ]
            dense = plan[layer, DENSE]
            columns_cost = count * rows * dense_cost if dense >= 0 else np.inf
            use_columns = columns_cost < min(touched, gather_cost) or (
                columns_cost == 0.0 and dense >= 0
            )
            if use_columns or touched < gather_cost:  # both skip the zero inputs
                count = 0  # list the non-zero inputs, branch-free
                for j in range(source.shape[0]):
                    nonzero[count] = j
                    count += source[j] != 0.0
                for row in range(rows):
                    target[row] = bias[row]
            if use_columns:
                q = 0
                while q + 4 <= count:
                    j0, j1, j2, j3 = nonzero[q], nonzero[q + 1], nonzero[q + 2], nonzero[q + 3]
                    a0, a1, a2, a3 = source[j0], source[j1], source[j2], source[j3]
                    c0 = values[dense + j0 * rows : dense + (j0 + 1) * rows]
                    c1 = values[dense + j1 * rows : dense + (j1 + 1) * rows]
                    c2 = values[dense + j2 * rows : dense + (j2 + 1) * rows]
                    c3 = values[dense + j3 * rows : dense + (j3 + 1) * rows]
                    for row in range(rows):
                        target[row] += a0 * c0[row] + a1 * c1[row] + a2 * c2[row] + a3 * c3[row]
                    q += 4
                while q < count:
                    j0 = nonzero[q]
                    a0 = source[j0]
                    c0 = values[dense + j0 * rows : dense + (j0 + 1) * rows]
                    for row in range(rows):
                        target[row] += a0 * c0[row]
                    q += 1
            elif touched < gather_cost:
                for q in range(count):
                    j = nonzero[q]
                    activation = source[j]
                    for k in range(col_pointers[j], col_pointers[j + 1]):
                        target[col_indices[k]] += activation * col_values[k]
            else:
                row_pointers, row_indices, row_values = _layer_arrays(
                    plan, pointers, indices, values, layer, 0
                )
                for row in range(rows):
                    total = np.float32(0.0)
                    for k in range(row_pointers[row], row_pointers[row + 1]):
                        total += row_values[k] * source[row_indices[k]]
                    target[row] = total + bias[row]
            if plan[layer, RELU]:
                for row in range(rows):
                    if target[row] < 0.0:
                        target[row] = 0.0
            source = target


def _fc_chain_spmm(x, plan, pointers, indices, values, out):
    """out (batch, last rows) = the chain applied to x (batch, in), as one SpMM per layer on
    transposed activations (features, batch), with the row form of each layer; one thread:

    source = x.T                                            # (in, batch), a copy
    for layer in range(layers):
        target = empty (rows, batch)
        for row in range(rows):
            target[row, :] = bias[row]
            for k in range(row_pointers[row], row_pointers[row + 1]):
                target[row, :] += values[k] * source[row_indices[k], :]  # contiguous, vectorised
            if ReLU: target[row, :] = max(target[row, :], 0)
        source = target
    out = source.T
    """
    batch, features = x.shape
    source = np.empty((features, batch), dtype=np.float32)
    for j in range(features):
        for n in range(batch):
            source[j, n] = x[n, j]
    for layer in range(plan.shape[0]):
        rows = plan[layer, ROWS]
        row_pointers, row_indices, row_values = _layer_arrays(
            plan, pointers, indices, values, layer, 0
        )
        bias = values[plan[layer, BIAS] : plan[layer, BIAS] + rows]
        target = np.empty((rows, batch), dtype=np.float32)
        for row in range(rows):
            accumulator = target[row]
            for n in range(batch):
                accumulator[n] = bias[row]
            for k in range(row_pointers[row], row_pointers[row + 1]):
                value = row_values[k]
                activation = source[row_indices[k]]
                for n in range(batch):
                    accumulator[n] += value * activation[n]
            if plan[layer, RELU]:
                for n in range(batch):
                    if accumulator[n] < 0.0:
                        accumulator[n] = 0.0
        source = target
    for n in range(batch):
        for row in range(out.shape[1]):
            out[n, row] = source[row, n]


def spmm_blocks(batch: int) -> int:
    """How many blocks `fc_chain_batched` splits a batch into: one per Numba thread, each of at
    least `MIN_BLOCK` samples (a Python helper: reading the thread count inside a cached kernel
    would stop Numba from caching it)."""
    return max(1, min(numba.get_num_threads(), batch // MIN_BLOCK))


def _fc_chain_batched(x, plan, pointers, indices, values, blocks, out):
    """`_fc_chain_spmm` on ``blocks`` contiguous blocks of the batch in parallel (`spmm_blocks`
    gives one per Numba thread): ONE parallel region per call, no barrier between layers, and no
    two threads ever write the same output row. NUMBA_NUM_THREADS=1 (or numba.set_num_threads)
    makes it serial."""
    batch = x.shape[0]
    for block in prange(blocks):
        first, end = batch * block // blocks, batch * (block + 1) // blocks
        fc_chain_spmm(x[first:end], plan, pointers, indices, values, out[first:end])


_layer_arrays = njit(cache=True)(_layer_arrays)
fc_chain_per_sample = njit(cache=True, fastmath=_FASTMATH)(_fc_chain_per_sample)
fc_chain_spmm = njit(cache=True, fastmath=_FASTMATH)(_fc_chain_spmm)
# Inference only, so threads are allowed here (the training path stays serial). On a machine
# whose cores are busy a parallel region waits on descheduled threads: run with
# NUMBA_NUM_THREADS=1 there (README, "Sparse storage and compute").
fc_chain_batched = njit(cache=True, parallel=True)(_fc_chain_batched)


