"""Checked entry points for training a pruned Linear layer on its pattern (kernels:
`minprune.kernels.sparse_linear_cpu`), and their NumPy references.

    pattern = LinearPattern(mask)                      # (out, in); built once per mask
    y, saved = sparse_linear_forward(pattern, x, weight, bias)
    grad_x, grad_weight, grad_bias = sparse_linear_backward(pattern, grad_y, saved)

`LinearPattern` holds the kept positions twice -- as the CSR of the mask (rows: outputs) and of
its transpose (rows: inputs) -- plus where each entry's weight sits in the dense weight, so every
step gathers the current values of the kept weights from the dense ``weight`` array the optimiser
updates. ``grad_weight`` comes back dense, zero off the pattern, as the optimiser expects.

Results equal the masked dense products up to float32 summation order: these sum a row's terms
in another order than BLAS (the tests bound the difference).
"""

from __future__ import annotations

import numpy as np

from minprune.kernels.argument_checks import require_array
from minprune.kernels.sparse_linear_cpu import sampled_dots_cpu, spmm_to_columns_cpu

__all__ = [
    "LinearPattern",
    "sparse_linear_forward",
    "sparse_linear_backward",
    "reference_forward",
    "reference_backward",
]

_FLOAT32 = np.float32


class LinearPattern:
    """The kept connections of a (out_features, in_features) mask (non-zero keeps), as index
    arrays for the kernels. Immutable; ``mask`` is the array it was built from (the layer uses its
    identity to notice a newly installed mask).

    pointers, indices   CSR of the mask: row r's kept columns are indices[pointers[r]:...[r+1]]
    positions           flat index of each CSR entry in the (out, in) weight (row-major order)
    t_pointers, t_indices, t_order
                        CSR of the mask's transpose; entry j is CSR entry t_order[j]
    """

    def __init__(self, mask: np.ndarray):
        if not isinstance(mask, np.ndarray) or mask.ndim != 2:
            raise ValueError(
                f"LinearPattern: expected a 2-D numpy mask (out_features, in_features), got "
                f"{type(mask).__name__} of shape {np.shape(mask)}"
            )
        self.mask = mask
        self.shape = mask.shape
        rows, cols = mask.shape
        self.positions = np.flatnonzero(mask)  # row-major: the CSR order
        row_of, col_of = np.divmod(self.positions, cols)
        self.pointers = _pointers(row_of, rows)
        self.indices = col_of.astype(np.uint32)
        self.t_order = np.argsort(col_of, kind="stable")  # by column, rows ascending within
        self.t_pointers = _pointers(col_of, cols)
        self.t_indices = row_of[self.t_order].astype(np.uint32)
        for array in vars(self).values():
            if isinstance(array, np.ndarray) and array is not mask:
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
            pattern.t_pointers,
            pattern.t_indices,
            values[pattern.t_order],
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


def reference_forward(mask, x, weight, bias):
    """NumPy twin of `sparse_linear_forward` (float64 products, returns float64)."""
    masked = np.where(mask != 0, weight, 0.0).astype(np.float64)
    out = x.astype(np.float64) @ masked.T
    return out if bias is None else out + bias


def reference_backward(mask, x, weight, grad_y):
    """NumPy twin of `sparse_linear_backward`: (grad_x, grad_weight, grad_bias) in float64."""
    keep = mask != 0
    masked = np.where(keep, weight, 0.0).astype(np.float64)
    grad_y = grad_y.astype(np.float64)
    grad_weight = np.where(keep, grad_y.T @ x.astype(np.float64), 0.0)
    return grad_y @ masked, grad_weight, grad_y.sum(axis=0)
