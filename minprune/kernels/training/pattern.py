"""Checked entry points for training a pruned Linear layer on its pattern (kernels:
`pattern_cpu`; NumPy twins: `pattern_reference`). Used by the autograd op
`minprune.autograd.ops.pattern_linear`, which `minprune.prune.retrain` switches on for sparse
layers.

    pattern = LinearPattern(mask)                      # (out, in); built once per mask
    y, saved = sparse_linear_forward(pattern, x, weight, bias)
    grad_x, grad_weight, grad_bias = sparse_linear_backward(pattern, grad_y, saved)

Results equal the masked dense products up to float32 summation order (the tests bound it).
"""

from __future__ import annotations

import numpy as np

from minprune.kernels.checks import require_array
from minprune.kernels.training.pattern_cpu import sampled_dots_cpu, spmm_to_columns_cpu

__all__ = [
    "LinearPattern",
    "sparse_linear_forward",
    "sparse_linear_backward",
]

_FLOAT32 = np.float32


class LinearPattern:
    """The kept connections of a (out_features, in_features) mask (non-zero keeps), as read-only
    index arrays for the kernels. Every step gathers the current values of the kept weights from
    the dense weight the optimiser updates; ``grad_weight`` comes back dense, zero off the pattern.

    pointers, indices   CSR of the mask: row r's kept columns are indices[pointers[r]:...[r+1]]
    positions           flat index of each CSR entry in the (out, in) weight (row-major order)
    transpose_pointers, transpose_indices, transpose_order
                        CSR of the mask's transpose; its entry j is CSR entry transpose_order[j]
    """

    def __init__(self, mask: np.ndarray):
        if not isinstance(mask, np.ndarray) or mask.ndim != 2:
            raise ValueError(
                f"LinearPattern: expected a 2-D numpy mask (out_features, in_features), got "
                f"{type(mask).__name__} of shape {np.shape(mask)}"
            )
        self.shape = mask.shape
        rows, cols = mask.shape
        self.positions = np.flatnonzero(mask)  # row-major: the CSR order
        row_of, col_of = np.divmod(self.positions, cols)
        self.pointers = _pointers(row_of, rows)
        self.indices = col_of.astype(np.uint32)
        self.transpose_order = np.argsort(col_of, kind="stable")  # by column, rows ascending within
        self.transpose_pointers = _pointers(col_of, cols)
        self.transpose_indices = row_of[self.transpose_order].astype(np.uint32)
        for array in vars(self).values():
            if isinstance(array, np.ndarray):
                array.flags.writeable = False

    @property
    def nnz(self) -> int:
        return int(self.positions.shape[0])

    @property
    def density(self) -> float:
        return self.nnz / max(1, self.shape[0] * self.shape[1])


def _pointers(line_of_entry: np.ndarray, lines: int) -> np.ndarray:
    """CSR row pointers (uint64: non-negative, which spares Numba's wrap-around tests)."""
    pointers = np.zeros(lines + 1, dtype=np.uint64)
    np.cumsum(np.bincount(line_of_entry, minlength=lines), out=pointers[1:])
    return pointers


def sparse_linear_forward(pattern: LinearPattern, x, weight, bias):
    """``y = x @ (weight * mask).T + bias`` for x (batch, in), weight (out, in), bias (out,) or
    None; float32 throughout. Returns (y, saved): ``saved`` is what the backward needs."""
    rows, cols = pattern.shape
    require_array("weight", weight, dtypes=_FLOAT32, shape=(rows, cols))
    require_array("x", x, dtypes=_FLOAT32, shape=(None, cols), contiguous=False)
    if bias is None:
        bias = np.zeros(rows, dtype=_FLOAT32)
    require_array("bias", bias, dtypes=_FLOAT32, shape=(rows,))
    values = weight.reshape(-1)[pattern.positions]  # the kept weights, in CSR order
    x_t = np.ascontiguousarray(x.T)  # (in, batch)
    y = np.empty((x.shape[0], rows), dtype=_FLOAT32)
    spmm_to_columns_cpu(pattern.pointers, pattern.indices, values, x_t, bias, y)
    return y, (x_t, values)


def sparse_linear_backward(pattern: LinearPattern, grad_y, saved, need_x=True, need_weight=True):
    """(grad_x, grad_weight, grad_bias) of `sparse_linear_forward`; None where not needed.
    grad_weight is dense (out, in), zero off the pattern."""
    x_t, values = saved
    rows, cols = pattern.shape
    require_array("grad_y", grad_y, dtypes=_FLOAT32, shape=(x_t.shape[1], rows), contiguous=False)
    grad_y_t = np.ascontiguousarray(grad_y.T)  # (out, batch)
    grad_x = grad_weight = None
    if need_x:
        grad_x = np.empty((x_t.shape[1], cols), dtype=_FLOAT32)
        spmm_to_columns_cpu(
            pattern.transpose_pointers,
            pattern.transpose_indices,
            values[pattern.transpose_order],
            grad_y_t,
            np.zeros(cols, dtype=_FLOAT32),
            grad_x,
        )
    if need_weight:
        kept = np.empty(pattern.nnz, dtype=_FLOAT32)
        sampled_dots_cpu(pattern.pointers, pattern.indices, grad_y_t, x_t, kept)
        grad_weight = np.zeros(pattern.shape, dtype=_FLOAT32)
        grad_weight.reshape(-1)[pattern.positions] = kept
    return grad_x, grad_weight, grad_y.sum(axis=0)
