"""Raw-array kernels of the sparse inference engine (`minprune.sparse.engine`): a fused chain of
CSR fully connected layers, forward-only max-pooling, and the engine's two small CUDA kernels.

Like ``minprune.kernels.csr_cpu``, each CPU kernel is a plain Python function jitted by assignment,
so ``NUMBA_DISABLE_JIT=1`` runs the same code as Python, and each does NO checking: the engine
validates the weights once when it compiles a model and checks the input's shape on every call.

*The packed FC chain.* A run of Linear layers (each optionally followed by ReLU) is packed into
three flat arrays and a small table, so that a whole forward pass is ONE kernel call with seven
arguments (Numba's dispatcher pays for every argument it unboxes, ~0.1 us each: at batch 1 that
was a tenth of the time):

    plan      int64 (layers, PLAN_COLUMNS)  per layer: sizes, ReLU flag, and where its arrays
                                            start in the three arrays below
    pointers  uint64   every layer's row pointers, in both orientations
    indices   uint32   every layer's column indices, in both orientations
    numbers   float32  every layer's values (both orientations) and biases

The index arrays are unsigned views of validated non-negative arrays: Numba then skips its
negative-index wrap-around test, which matters in the inner loops (see ``csr_cpu``; uint32 row
pointers, which would save an argument, made the gather loop ~30% slower for the same reason).

Each layer is stored twice: as the CSR matrix of W (out, in) -- for each output, its inputs --
and as the CSR matrix of W's transpose (in, out), i.e. W in CSC form -- for each input, the
outputs it feeds. The weights then take twice their CSR bytes in memory (LeNet-300-100: ~350 KB,
still less than half of the dense 1 MB); files keep one copy (`minprune.sparse.export`).

Why both: the two orientations suit different inputs.

- *Gather* (row form, a dot product per output row): ``out[r] = sum_k values[k] * x[indices[k]]``
  reads every stored weight, whatever x holds. Its inner loop is a reduction, which LLVM
  vectorises with gathers.
- *Scatter* (column form): for each NON-ZERO input x[j], ``out[rows of column j] += x[j] *
  column j's values``. Zero inputs cost nothing -- the activation sparsity that EIE (Han et al.,
  ISCA 2016, the hardware follow-up of this paper) exploits. About 82% of an MNIST image's pixels
  are 0, so on the first layer of LeNet-300-100 the scatter touches ~41% of the stored weights;
  after a ReLU roughly half the activations are 0. A scatter step costs about twice a gather
  step (a load, add and store of the target per weight, not vectorised), so:

Per sample and per layer the kernel counts the stored weights the scatter would touch (the
column lengths of the non-zero inputs) and scatters only if that is below ``scatter_ratio`` times
the layer's nnz; otherwise it gathers. `SCATTER_RATIO` (0.5) comes from benchmarks/
sparse_lenet.py (gather ~0.36 ns, scatter ~0.67 ns per stored weight on the 2-core machine).
Passing 0.0 forces the gather and ``inf`` the scatter, which is how the tests cover both paths.
Skipping a zero input assumes ``0 * w == 0``, true for every finite weight (a gather would turn
an infinite or NaN weight times 0 into NaN).

Two kernels run the chain, chosen by batch size (measured in benchmarks/sparse_lenet.py):

- `fc_chain_per_sample`: for each image, layer after layer with the gather or the scatter, into
  two scratch vectors allocated once per call; no threads.
- `fc_chain_spmm`: activations transposed to (features, batch), so each stored weight scales
  one contiguous activation row into one contiguous accumulator row (SpMM, vectorised over the
  batch; row form only); one thread. `fc_chain_batched` runs it on one block of the batch per
  Numba thread.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import cuda, njit, prange

__all__ = [
    "PackedChain",
    "SCATTER_RATIO",
    "pack_fc_chain",
    "fc_chain_per_sample",
    "fc_chain_spmm",
    "fc_chain_batched",
    "spmm_blocks",
    "max_pool_cpu",
    "relu_cuda_kernel",
    "max_pool_cuda_kernel",
]

_FASTMATH = {"reassoc", "contract"}  # as in csr_cpu: lets LLVM split a row's sum over SIMD lanes

# Scatter a layer when it touches fewer than this fraction of the layer's stored weights.
SCATTER_RATIO = 0.5
# The parallel SpMM gives each thread at least this many samples (below, one thread runs all).
MIN_BLOCK = 32

# Columns of the plan table (one row per layer): *_POINTERS are offsets into ``pointers``,
# *_INDICES into ``indices``, *_VALUES and BIAS into ``numbers``. "ROW_" is the CSR form of
# W (out, in), "COL_" the CSR form of its transpose.
ROWS, COLS, RELU, NNZ = 0, 1, 2, 3
ROW_POINTERS, ROW_INDICES, ROW_VALUES = 4, 5, 6
COL_POINTERS, COL_INDICES, COL_VALUES = 7, 8, 9
BIAS = 10
PLAN_COLUMNS = 11


class PackedChain(NamedTuple):
    """The packed FC chain (layout in the module docstring); ``*chain`` gives the kernels'
    arguments in order."""

    plan: np.ndarray
    pointers: np.ndarray
    indices: np.ndarray
    numbers: np.ndarray


def pack_fc_chain(matrices, biases, relu_after) -> PackedChain:
    """Pack validated CSR matrices (`minprune.sparse.CSRMatrix`, layer by layer), their float32
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
    plan = np.zeros((len(matrices), PLAN_COLUMNS), dtype=np.int64)
    parts = {"pointers": [], "indices": [], "numbers": []}
    sizes = dict.fromkeys(parts, 0)

    def put(kind, array):
        """Append ``array`` to the ``kind`` array; return the offset it starts at."""
        start = sizes[kind]
        parts[kind].append(array)
        sizes[kind] += array.shape[0]
        return start

    for layer, (matrix, bias, relu) in enumerate(zip(matrices, biases, relu_after, strict=True)):
        transposed = matrix.transpose()
        plan[layer, ROWS], plan[layer, COLS] = matrix.shape
        plan[layer, RELU], plan[layer, NNZ] = bool(relu), matrix.nnz
        for csr, form in (
            (matrix, (ROW_POINTERS, ROW_INDICES, ROW_VALUES)),
            (transposed, (COL_POINTERS, COL_INDICES, COL_VALUES)),
        ):
            plan[layer, form[0]] = put("pointers", csr.indptr)
            plan[layer, form[1]] = put("indices", csr.indices)
            plan[layer, form[2]] = put("numbers", csr.data)
        plan[layer, BIAS] = put("numbers", np.asarray(bias, dtype=np.float32))
    # Unsigned: exact, the values are validated >= 0 (see the module docstring).
    return PackedChain(
        plan,
        np.concatenate(parts["pointers"]).astype(np.int64).view(np.uint64),
        np.concatenate(parts["indices"]).astype(np.int32).view(np.uint32),
        np.concatenate(parts["numbers"]).astype(np.float32),
    )


def _layer_arrays(plan, pointers, indices, numbers, layer, form):
    """(pointers, indices, values) of one layer in one form: form 0 the CSR of W, 1 of W.T."""
    if form == 0:
        starts, lines = plan[layer, ROW_POINTERS], plan[layer, ROWS]
        first, values = plan[layer, ROW_INDICES], plan[layer, ROW_VALUES]
    else:
        starts, lines = plan[layer, COL_POINTERS], plan[layer, COLS]
        first, values = plan[layer, COL_INDICES], plan[layer, COL_VALUES]
    nnz = plan[layer, NNZ]
    return (
        pointers[starts : starts + lines + 1],
        indices[first : first + nnz],
        numbers[values : values + nnz],
    )


def _fc_chain_per_sample(x, plan, pointers, indices, numbers, scatter_ratio, out):
    """out (batch, last rows) = the chain applied to each row of x (batch, in), sample by sample:

    for n in range(batch):
        source = x[n]
        for layer in range(layers):
            target = a scratch vector, or out[n] for the last layer
            touched = the stored weights in the columns of the non-zero inputs
            if touched < scatter_ratio * nnz:                          # scatter (W.T form)
                target = bias;  for j non-zero: target[rows of col j] += source[j] * col j
            else:                                                      # gather (W form)
                for each row r: target[r] = bias[r] + sum_k values[k] * source[indices[k]]
            ReLU if flagged;  source = target

    One flat function on purpose: split into small jitted helpers the same loops ran ~20%
    slower at batch 1. The count of touched weights is a loop of its own, which vectorises:
    listing the non-zero inputs in the same pass cost ~1.5 us per 784 inputs.
    """
    layers = plan.shape[0]
    scratch = np.empty((2, plan[:, ROWS].max()), dtype=np.float32)  # layers alternate rows
    nonzero = np.empty(plan[:, COLS].max(), dtype=np.int64)
    for n in range(x.shape[0]):
        source = x[n]
        for layer in range(layers):
            rows = plan[layer, ROWS]
            target = out[n] if layer == layers - 1 else scratch[layer % 2, :rows]
            bias = numbers[plan[layer, BIAS] : plan[layer, BIAS] + rows]
            col_pointers, col_indices, col_values = _layer_arrays(
                plan, pointers, indices, numbers, layer, 1
            )
            touched = 0  # stored weights in the columns of the non-zero inputs (vectorised)
            for j in range(source.shape[0]):
                touched += np.int64(col_pointers[j + 1] - col_pointers[j]) if source[j] else 0
            if touched < scatter_ratio * plan[layer, NNZ]:
                count = 0  # list the non-zero inputs, branch-free
                for j in range(source.shape[0]):
                    nonzero[count] = j
                    count += source[j] != 0.0
                for row in range(rows):
                    target[row] = bias[row]
                for q in range(count):
                    j = nonzero[q]
                    activation = source[j]
                    for k in range(col_pointers[j], col_pointers[j + 1]):
                        target[col_indices[k]] += activation * col_values[k]
            else:
                row_pointers, row_indices, row_values = _layer_arrays(
                    plan, pointers, indices, numbers, layer, 0
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


def _fc_chain_spmm(x, plan, pointers, indices, numbers, out):
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
        row_pointers, row_indices, values = _layer_arrays(
            plan, pointers, indices, numbers, layer, 0
        )
        bias = numbers[plan[layer, BIAS] : plan[layer, BIAS] + rows]
        target = np.empty((rows, batch), dtype=np.float32)
        for row in range(rows):
            accumulator = target[row]
            for n in range(batch):
                accumulator[n] = bias[row]
            for k in range(row_pointers[row], row_pointers[row + 1]):
                value = values[k]
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


def _fc_chain_batched(x, plan, pointers, indices, numbers, blocks, out):
    """`_fc_chain_spmm` on ``blocks`` contiguous blocks of the batch in parallel (`spmm_blocks`
    gives one per Numba thread): ONE parallel region per call, no barrier between layers, and no
    two threads ever write the same output row. NUMBA_NUM_THREADS=1 (or numba.set_num_threads)
    makes it serial."""
    batch = x.shape[0]
    for block in prange(blocks):
        first, end = batch * block // blocks, batch * (block + 1) // blocks
        fc_chain_spmm(x[first:end], plan, pointers, indices, numbers, out[first:end])


def _max_pool(x, kernel, stride, out):
    """out[n, c, oh, ow] = max of x[n, c, oh*stride : oh*stride + kernel, ow*stride : ... + kernel]
    (no padding; the training op `minprune.kernels.pool` also records the argmax, which inference
    does not need). One (image, channel) plane per prange iteration."""
    channels = x.shape[1]
    out_h, out_w = out.shape[2], out.shape[3]
    for plane in prange(x.shape[0] * channels):
        n, c = plane // channels, plane % channels
        for oh in range(out_h):
            for ow in range(out_w):
                h0, w0 = oh * stride, ow * stride
                best = x[n, c, h0, w0]
                for i in range(kernel):
                    for j in range(kernel):
                        value = x[n, c, h0 + i, w0 + j]
                        if value > best:
                            best = value
                out[n, c, oh, ow] = best


_layer_arrays = njit(cache=True)(_layer_arrays)
fc_chain_per_sample = njit(cache=True, fastmath=_FASTMATH)(_fc_chain_per_sample)
fc_chain_spmm = njit(cache=True, fastmath=_FASTMATH)(_fc_chain_spmm)
# Inference only, so threads are allowed here (the training path stays serial, see
# minprune.kernels.masked_cpu). On a machine whose cores are busy a parallel region waits on
# descheduled threads: with 2 threads under load ~4.4 LeNet-300-100 at batch 256 fell from ~390k
# to ~7k images/s (benchmarks/sparse_lenet.py) -- run with NUMBA_NUM_THREADS=1 there.
fc_chain_batched = njit(cache=True, parallel=True)(_fc_chain_batched)
max_pool_cpu = njit(cache=True)(_max_pool)


# -- CUDA: what csr_cuda lacks (compiled on first launch; importing needs no GPU) ----------------


@cuda.jit
def relu_cuda_kernel(values, out):
    """out[i] = max(values[i], 0) on flat device arrays; one thread per element."""
    i = cuda.grid(1)
    if i < values.shape[0]:
        out[i] = max(values[i], 0.0)


@cuda.jit
def max_pool_cuda_kernel(x, kernel, stride, out):
    """GPU twin of `max_pool_cpu`; one thread per element of out, flattened."""
    i = cuda.grid(1)
    channels, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
    if i >= out.shape[0] * channels * out_h * out_w:
        return
    ow = i % out_w
    oh = (i // out_w) % out_h
    c = (i // (out_w * out_h)) % channels
    n = i // (out_w * out_h * channels)
    h0, w0 = oh * stride, ow * stride
    best = x[n, c, h0, w0]
    for a in range(kernel):
        for b in range(kernel):
            value = x[n, c, h0 + a, w0 + b]
            if value > best:
                best = value
    out[n, c, oh, ow] = best
