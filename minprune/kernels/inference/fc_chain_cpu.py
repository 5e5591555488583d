"""Raw-array kernels of the sparse engine's fused chain of fully connected layers, each layer's
weights in the paper's 8-bit relative-index format (`minprune.kernels.inference.relative_cpu`
says how a line is walked; `minprune.inference.fused_chain` packs the chain; the per-layer CSR
engine is its reference in the tests).

A run of Linear (+ ReLU) layers is packed into four flat arrays and a plan table, so a whole
forward pass is ONE kernel call with few arguments (Numba unboxes every argument on each call):

    plan      int64 (layers, PLAN_COLUMNS)  per layer: sizes, ReLU flag, layout, and where its
                                            arrays start in the four arrays below
    pointers  uint32   every layer's line pointers (each layer's start at 0)
    steps     uint8    every layer's step codes
    values    float32  every layer's weights (one per step, fillers 0.0)
    biases    float32  every layer's bias

Each layer is stored ONCE, in one of two layouts (no second copy, no dense copy):
  - by column (CSC, EIE's layout, Han et al., ISCA 2016): one sample's product *scatters* each
    non-zero input's column and skips every zero input -- the engine's choice for the layer that
    reads the network's input (82% of an MNIST image is 0);
  - by row (CSR, the file's layout): a *gather* per output, four running sums so the float adds
    overlap -- the engine's choice elsewhere, after a ReLU too (`minprune.base.tuning` says why).
Below `minprune.base.tuning.SPMM_MIN_BATCH` samples `fc_chain_per_sample` runs them sample by
sample; from there on `fc_chain_spmm` runs one SpMM per layer on transposed activations, in
chunks of `tuning.SPMM_CHUNK` samples (a chunk's activations stay in cache), and
`fc_chain_batched` one block of chunks per thread. Skipping a zero input assumes ``0 * w == 0``
(finite weights).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from minprune.base.tuning import MIN_BLOCK, SPMM_CHUNK
from minprune.kernels.inference.relative_cpu import gather_row, scatter_column

__all__ = [
    "PLAN_COLUMNS",
    "BY_ROW",
    "BY_COLUMN",
    "fc_chain_per_sample",
    "fc_chain_spmm",
    "fc_chain_batched",
    "spmm_blocks",
]

_FASTMATH = {"reassoc", "contract"}  # as in csr_cpu: lets LLVM split a row's sum over SIMD lanes

# Columns of the plan table (one row per layer). POINTERS is an offset into ``pointers``,
# ENTRIES into ``steps`` and ``values`` (one value per step), BIAS into ``biases``.
ROWS, COLS, RELU, LAYOUT, POINTERS, ENTRIES, COUNT, BIAS = range(8)
PLAN_COLUMNS = 8
BY_ROW, BY_COLUMN = 0, 1  # LAYOUT: lines are rows (CSR) or columns (CSC)


def _layer(plan, pointers, steps, values, biases, layer):
    """(pointers, steps, values, bias) of one layer: views, no copies."""
    lines = plan[layer, ROWS] if plan[layer, LAYOUT] == BY_ROW else plan[layer, COLS]
    first, count = plan[layer, ENTRIES], plan[layer, COUNT]
    start, bias = plan[layer, POINTERS], plan[layer, BIAS]
    return (pointers[start : start + lines + 1], steps[first : first + count],
            values[first : first + count], biases[bias : bias + plan[layer, ROWS]])


def _fc_chain_per_sample(x, plan, pointers, steps, values, biases, out):
    """out (batch, last rows) = the chain applied to each row of x (batch, in), sample by sample:

    for n in range(batch):
        source = x[n]
        for layer in range(layers):
            target = a scratch vector, or out[n] for the last layer
            by column:  target = bias
                        for j with source[j] != 0:
                            row = -1
                            for k in column j:
                                row += steps[k] + 1;  target[row] += source[j] * values[k]
            by row:     for each row: column = -1; walk its entries four at a time,
                            column += steps[k] + 1; total_(k % 4) += values[k] * source[column]
                        target[row] = sum of the four totals + bias[row]
            ReLU if flagged;  source = target

    One flat function on purpose: split into small separately jitted helpers the same loops ran
    slower at batch 1 (`minprune.base.tuning`, kernel shapes). The line walks are
    `relative_cpu.gather_row` and `scatter_column`, compiled with ``inline="always"`` into this
    function, so it stays one function while they are written once.
    """
    layers = plan.shape[0]
    scratch = np.empty((2, plan[:, ROWS].max()), dtype=np.float32)  # layers alternate rows
    for n in range(x.shape[0]):
        source = x[n]
        for layer in range(layers):
            rows = plan[layer, ROWS]
            target = out[n] if layer == layers - 1 else scratch[layer % 2, :rows]
            line_pointers, line_steps, line_values, bias = _layer(
                plan, pointers, steps, values, biases, layer)
            if plan[layer, LAYOUT] == BY_COLUMN:
                for row in range(rows):
                    target[row] = bias[row]
                for j in range(source.shape[0]):
                    if source[j] != 0.0:
                        scatter_column(line_pointers, line_steps, line_values, j, source[j],
                                       target)
            else:
                for row in range(rows):
                    target[row] = (gather_row(line_pointers, line_steps, line_values, source, row)
                                   + bias[row])
            if plan[layer, RELU]:
                for row in range(rows):
                    if target[row] < 0.0:
                        target[row] = 0.0
            source = target


def _fc_chain_spmm(x, plan, pointers, steps, values, biases, out):
    """out (batch, last rows) = the chain applied to x (batch, in), one chunk of at most
    `SPMM_CHUNK` samples at a time, each layer one SpMM on transposed activations (features,
    chunk), whose rows are contiguous, so every multiply-add runs along the chunk (vectorised):

    for each chunk of samples:
        source = the chunk of x, transposed
        for layer in range(layers):
            by column: target = bias;  for each column j, entry k (row decoded):
                           target[row, :] += values[k] * source[j, :]
            by row:    for each row: target[row, :] = bias[row] + sum over its entries k
                           (column decoded) of values[k] * source[column, :]
            ReLU if flagged;  source = target
        out[chunk] = source.T
    """
    batch, features = x.shape
    widest = max(features, plan[:, ROWS].max())
    buffers = np.empty((2, widest, SPMM_CHUNK), dtype=np.float32)
    for first in range(0, batch, SPMM_CHUNK):
        size = min(SPMM_CHUNK, batch - first)
        source = buffers[0, :features, :size]
        for j in range(features):
            for n in range(size):
                source[j, n] = x[first + n, j]
        for layer in range(plan.shape[0]):
            rows = plan[layer, ROWS]
            target = buffers[(layer + 1) % 2, :rows, :size]
            line_pointers, line_steps, line_values, bias = _layer(
                plan, pointers, steps, values, biases, layer)
            if plan[layer, LAYOUT] == BY_COLUMN:
                for row in range(rows):
                    accumulator = target[row]
                    for n in range(size):
                        accumulator[n] = bias[row]
                for j in range(plan[layer, COLS]):
                    activation = source[j]
                    following = np.uint32(0)
                    for k in range(line_pointers[j], line_pointers[j + 1]):
                        row = following + line_steps[k]
                        value, accumulator = line_values[k], target[row]
                        for n in range(size):
                            accumulator[n] += value * activation[n]
                        following = row + np.uint32(1)
            else:
                for row in range(rows):
                    accumulator = target[row]
                    for n in range(size):
                        accumulator[n] = bias[row]
                    following = np.uint32(0)
                    for k in range(line_pointers[row], line_pointers[row + 1]):
                        column = following + line_steps[k]
                        value, activation = line_values[k], source[column]
                        for n in range(size):
                            accumulator[n] += value * activation[n]
                        following = column + np.uint32(1)
            if plan[layer, RELU]:
                for row in range(rows):
                    accumulator = target[row]
                    for n in range(size):
                        if accumulator[n] < 0.0:
                            accumulator[n] = 0.0
            source = target
        for n in range(size):
            for row in range(out.shape[1]):
                out[first + n, row] = source[row, n]


def spmm_blocks(batch: int) -> int:
    """How many blocks `fc_chain_batched` splits a batch into: one per Numba thread, each of at
    least `MIN_BLOCK` samples (a Python helper: reading the thread count inside a cached kernel
    would stop Numba from caching it)."""
    return max(1, min(numba.get_num_threads(), batch // MIN_BLOCK))


def _fc_chain_batched(x, plan, pointers, steps, values, biases, blocks, out):
    """`_fc_chain_spmm` on ``blocks`` contiguous blocks of the batch in parallel (`spmm_blocks`
    gives one per Numba thread): ONE parallel region per call, and no two threads ever write the
    same output row."""
    batch = x.shape[0]
    for block in prange(blocks):
        first, end = batch * block // blocks, batch * (block + 1) // blocks
        fc_chain_spmm(x[first:end], plan, pointers, steps, values, biases, out[first:end])


_layer = njit(cache=True)(_layer)
fc_chain_per_sample = njit(cache=True, fastmath=_FASTMATH)(_fc_chain_per_sample)
fc_chain_spmm = njit(cache=True, fastmath=_FASTMATH)(_fc_chain_spmm)
# Inference only, so threads are allowed here (the training path stays serial).
fc_chain_batched = njit(cache=True, parallel=True)(_fc_chain_batched)
