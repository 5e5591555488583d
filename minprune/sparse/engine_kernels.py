"""Raw-array kernels of the sparse inference engine (`minprune.sparse.engine`): a fused chain of
CSR fully connected layers, forward-only max-pooling, and the engine's two small CUDA kernels.

Like ``minprune.kernels.csr_cpu``, each CPU kernel is a plain Python function jitted by assignment,
so ``NUMBA_DISABLE_JIT=1`` runs the same code as Python, and each does NO checking: the engine
validates the weights once when it compiles a model and checks the input's shape on every call.

*The packed FC chain.* A run of Linear layers (each optionally followed by ReLU) is stored as ONE
CSR matrix whose rows are the layers' rows stacked in order -- layer ``l`` owns global rows
``layer_starts[l] : layer_starts[l + 1]``; each row's column indices still index that layer's
input. So the whole chain is six arrays, and a forward pass is one kernel call:

    indptr       uint64 (total_rows + 1,)  row r's entries are indptr[r] : indptr[r + 1]
    indices      uint32 (nnz,)             column within the layer's input
    values       float32 (nnz,)            the surviving weights (weight * weight_mask)
    bias         float32 (total_rows,)
    layer_starts int64 (layers + 1,)       first global row of each layer, then total_rows
    relu_after   uint8 (layers,)           1 where a ReLU follows the layer

The index arrays are unsigned views of validated non-negative arrays: Numba then skips its
negative-index wrap-around test, which matters in the gather loop (see ``csr_cpu``).

Two kernels run that chain, chosen by batch size (measured in benchmarks/sparse_lenet.py):

- `fc_chain_per_sample`: for each image, SpMV after SpMV with every activation in one small
  preallocated buffer -- a gather loop per output row, no allocation, no threads: at batch 1 the
  whole LeNet-300-100 is a single call (~10 us on the 2-core machine the benchmark ran on).
- `fc_chain_batched`: activations transposed to (features, batch), so each CSR entry scales one
  contiguous activation row into one contiguous accumulator row (SpMM, vectorised). ``prange``
  marks a layer's output rows as independent (they never share an output element), but the
  kernel is compiled for one thread; see the note at the bottom.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, njit, prange

__all__ = [
    "pack_fc_chain",
    "fc_chain_per_sample",
    "fc_chain_batched",
    "max_pool_cpu",
    "relu_cuda_kernel",
    "max_pool_cuda_kernel",
]

_FASTMATH = {"reassoc", "contract"}  # as in csr_cpu: lets LLVM split a row's sum over SIMD lanes


def pack_fc_chain(matrices, biases, relu_after) -> tuple[np.ndarray, ...]:
    """The six arrays of the packed chain (layout in the module docstring), in kernel order:
    (indptr, indices, values, bias, layer_starts, relu_after).

    ``matrices`` are validated CSR matrices (a `minprune.sparse.CSRMatrix`, or anything with its
    ``indptr`` int64, ``indices`` int32, ``data`` float32 and ``shape``), layer by layer;
    ``biases`` float32 (rows,) each; ``relu_after`` one bool per layer. Checks only that each
    layer's columns match the previous layer's rows: the index values were validated already.
    """
    if not (len(matrices) == len(biases) == len(relu_after) > 0):
        raise ValueError(
            f"pack_fc_chain: expected one bias and one relu flag per matrix (at least one), got "
            f"{len(matrices)} matrices, {len(biases)} biases, {len(relu_after)} flags"
        )
    for layer in range(1, len(matrices)):
        if matrices[layer].shape[1] != matrices[layer - 1].shape[0]:
            raise ValueError(
                f"pack_fc_chain: layer {layer} has {matrices[layer].shape[1]} columns but layer "
                f"{layer - 1} gives {matrices[layer - 1].shape[0]} outputs"
            )
    starts, indptr_parts, entries = [0], [], 0
    for matrix in matrices:
        indptr_parts.append(matrix.indptr[:-1] + entries)
        entries += matrix.indices.shape[0]
        starts.append(starts[-1] + matrix.shape[0])
    indptr = np.concatenate([*indptr_parts, np.array([entries], dtype=np.int64)])
    return (
        indptr.astype(np.int64).view(np.uint64),  # unsigned views: exact, values are >= 0
        np.concatenate([matrix.indices for matrix in matrices]).astype(np.int32).view(np.uint32),
        np.concatenate([matrix.data for matrix in matrices]).astype(np.float32),
        np.concatenate(biases).astype(np.float32),
        np.array(starts, dtype=np.int64),
        np.array(relu_after, dtype=np.uint8),
    )


def _fc_chain_per_sample(x, indptr, indices, values, bias, layer_starts, relu_after, hidden, out):
    """out (batch, last_rows) = the chain applied to each row of x (batch, in), image by image.

    ``hidden`` (layer_starts[-2],) holds the outputs of every layer but the last, layer l at
    hidden[layer_starts[l] : layer_starts[l + 1]], so a layer never overwrites its own input:

    for n in range(batch):
        source = x[n]
        for layer in range(layers):
            target = hidden[this layer's rows], or out[n] for the last layer
            for row in this layer's rows:                   # global row g
                total = sum_{k in row g} values[k] * source[indices[k]] + bias[g]
                target[row] = max(total, 0) if relu_after[layer] else total
            source = target
    """
    layers = layer_starts.shape[0] - 1
    for n in range(x.shape[0]):
        source = x[n]
        for layer in range(layers):
            first, end = layer_starts[layer], layer_starts[layer + 1]
            target = hidden[first:end] if layer < layers - 1 else out[n]
            for row in range(end - first):
                g = first + row
                total = np.float32(0.0)
                for k in range(indptr[g], indptr[g + 1]):
                    total += values[k] * source[indices[k]]
                total += bias[g]
                if relu_after[layer] and total < 0.0:
                    total = np.float32(0.0)
                target[row] = total
            source = target


def _fc_chain_batched(x, indptr, indices, values, bias, layer_starts, relu_after, out):
    """out (batch, last_rows) = the chain applied to x (batch, in), as one SpMM per layer on
    transposed activations (features, batch):

    source = x.T                                            # (in, batch), a copy
    for layer in range(layers):
        target = empty (rows, batch)
        for row in prange(rows):                            # global row g
            target[row, :] = bias[g]
            for k in range(indptr[g], indptr[g + 1]):
                target[row, :] += values[k] * source[indices[k], :]    # contiguous, vectorised
            if relu_after[layer]: target[row, :] = max(target[row, :], 0)
        source = target
    out = source.T
    """
    batch, features = x.shape
    source = np.empty((features, batch), dtype=np.float32)
    for j in prange(features):
        for n in range(batch):
            source[j, n] = x[n, j]
    for layer in range(layer_starts.shape[0] - 1):
        first, end = layer_starts[layer], layer_starts[layer + 1]
        target = np.empty((end - first, batch), dtype=np.float32)
        for row in prange(end - first):
            g = first + row
            accumulator = target[row]
            for n in range(batch):
                accumulator[n] = bias[g]
            for k in range(indptr[g], indptr[g + 1]):
                value = values[k]
                activation = source[indices[k]]
                for n in range(batch):
                    accumulator[n] += value * activation[n]
            if relu_after[layer]:
                for n in range(batch):
                    if accumulator[n] < 0.0:
                        accumulator[n] = 0.0
        source = target
    for n in prange(batch):
        for row in range(out.shape[1]):
            out[n, row] = source[row, n]


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


fc_chain_per_sample = njit(cache=True, fastmath=_FASTMATH)(_fc_chain_per_sample)
# One thread on purpose (``prange`` marks the independent loops; ``parallel=True`` would run them on
# Numba's threads). On this repository's 2-core shared machine a parallel region waits on
# descheduled threads: with 2 threads under load ~4.4 LeNet-300-100 at batch 256 fell from ~390k to
# ~7k images/s (benchmarks/sparse_lenet.py). minprune.kernels.im2col made the same choice.
fc_chain_batched = njit(cache=True, fastmath=_FASTMATH)(_fc_chain_batched)
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
