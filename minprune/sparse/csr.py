"""A small, validated compressed-sparse-row (CSR) matrix for pruned weights (Han et al. 2015,
Sec. 5, store the pruned layers "as sparse matrices"; CSR and its 2a + n + 1 numbers are spelled
out in Deep Compression, Han et al. 2016, Sec. 2):

    row r holds the entries data[indptr[r]:indptr[r + 1]]
    at the columns       indices[indptr[r]:indptr[r + 1]]   (strictly increasing within the row)

``data`` float32 (minprune trains in float32), ``indices`` int32 (half of int64's bytes, and
index bytes are half a sparse layer's memory traffic), ``indptr`` int64 (only rows + 1 entries;
no 2**31 cap on non-zeros). "Stored entries" are the pattern, not the non-zero values: a kept
weight that is exactly 0.0 is still stored (`from_dense(weight, mask)`). The Numba kernels do no
bounds checking, so the constructor validates once, the arrays become read-only, and every
checked product (`minprune.inference.products`) accepts only a `CSRMatrix`. Imports only numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CSRMatrix", "validate_csr_arrays", "INDPTR_DTYPE", "INDEX_DTYPE", "VALUE_DTYPE"]

INDPTR_DTYPE = np.dtype(np.int64)
INDEX_DTYPE = np.dtype(np.int32)
VALUE_DTYPE = np.dtype(np.float32)


def _check_shape(shape) -> tuple[int, int]:
    try:
        rows, cols = (int(n) for n in shape)
        exact = all(int(n) == n for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"CSRMatrix.shape: expected 2 non-negative ints, got {shape!r}") from None
    if not exact or rows < 0 or cols < 0:
        raise ValueError(f"CSRMatrix.shape: expected 2 non-negative ints, got {shape!r}")
    if cols > np.iinfo(INDEX_DTYPE).max + 1:
        raise ValueError(f"CSRMatrix.shape: {cols} columns do not fit int32 column indices")
    return rows, cols


def _check_array(name: str, array, dtype: np.dtype) -> None:
    if not isinstance(array, np.ndarray):
        raise ValueError(f"CSRMatrix.{name}: expected a numpy array, got {type(array).__name__}")
    if array.dtype != dtype:
        raise ValueError(f"CSRMatrix.{name}: expected dtype {dtype}, got {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"CSRMatrix.{name}: expected a 1-D array, got shape {array.shape}")


def validate_csr_arrays(indptr, indices, data, shape) -> tuple[int, int]:
    """Check that (indptr, indices, data, shape) is a well-formed CSR matrix; return (rows, cols).

    Every defect raises ValueError naming the field, the offending row or position, and the value:
    shape 2-D and non-negative; dtypes int64 / int32 / float32, all 1-D; indptr of length rows + 1,
    starting at 0, non-decreasing, ending at len(indices) == len(data); every column index in
    [0, cols) and strictly increasing within its row (so no duplicates). O(nnz + rows), vectorised.
    """
    rows, cols = _check_shape(shape)
    _check_array("indptr", indptr, INDPTR_DTYPE)
    _check_array("indices", indices, INDEX_DTYPE)
    _check_array("data", data, VALUE_DTYPE)
    if indptr.shape[0] != rows + 1:
        raise ValueError(
            f"CSRMatrix.indptr: expected length rows + 1 = {rows + 1}, got {indptr.shape[0]}"
        )
    if indptr[0] != 0:
        raise ValueError(f"CSRMatrix.indptr: must start at 0, got indptr[0] = {indptr[0]}")
    row_lengths = np.diff(indptr)
    if rows and row_lengths.min() < 0:
        row = int(np.argmax(row_lengths < 0))
        raise ValueError(
            f"CSRMatrix.indptr: must be non-decreasing, but row {row} has indptr[{row}] = "
            f"{indptr[row]} > indptr[{row + 1}] = {indptr[row + 1]}"
        )
    if indices.shape[0] != data.shape[0]:
        raise ValueError(
            f"CSRMatrix.data: length {data.shape[0]} differs from len(indices) = {indices.shape[0]}"
        )
    if indptr[-1] != indices.shape[0]:
        raise ValueError(
            f"CSRMatrix.indptr: last entry indptr[{rows}] = {indptr[-1]} must equal "
            f"len(indices) = len(data) = {indices.shape[0]}"
        )
    if indices.shape[0] == 0:
        return rows, cols
    row_of_entry = np.repeat(np.arange(rows), row_lengths)
    out_of_range = (indices < 0) | (indices >= cols)
    if out_of_range.any():
        k = int(np.argmax(out_of_range))
        column, row = int(indices[k]), int(row_of_entry[k])
        if column < 0:
            raise ValueError(f"CSRMatrix.indices: row {row} has negative column {column}")
        raise ValueError(f"CSRMatrix.indices: row {row} has column {column} >= {cols} columns")
    same_row = row_of_entry[1:] == row_of_entry[:-1]
    not_increasing = same_row & (indices[1:] <= indices[:-1])
    if not_increasing.any():
        k = int(np.argmax(not_increasing))
        raise ValueError(
            f"CSRMatrix.indices: row {int(row_of_entry[k])} columns must be strictly increasing, "
            f"but column {int(indices[k + 1])} follows column {int(indices[k])}"
        )
    return rows, cols


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class CSRMatrix:
    """An immutable, validated CSR matrix: ``indptr`` (int64), ``indices`` (int32), ``data``
    (float32), ``shape`` (rows, cols). See the module docstring for the layout.

    ``CSRMatrix(indptr, indices, data, shape)`` copies the arrays (so nobody else holds a writable
    alias), validates them with `validate_csr_arrays`, and makes them read-only. Dtypes are checked,
    not converted: pass int64 / int32 / float32, or use `from_dense` / `from_scipy`. With
    ``copy=False`` the matrix takes ownership of the given arrays instead (they are made read-only
    in place); the constructors below use it for arrays they have just built.
    """

    __slots__ = ("_indptr", "_indices", "_data", "_shape")

    def __init__(self, indptr, indices, data, shape, *, copy: bool = True):
        if copy:
            indptr, indices, data = (
                np.array(a, copy=True, order="C") if isinstance(a, np.ndarray) else a
                for a in (indptr, indices, data)
            )
        validate_csr_arrays(indptr, indices, data, shape)
        if not copy:
            indptr, indices, data = (np.ascontiguousarray(a) for a in (indptr, indices, data))
        self._indptr = _read_only(indptr)
        self._indices = _read_only(indices)
        self._data = _read_only(data)
        self._shape = (int(shape[0]), int(shape[1]))

    # -- fields -----------------------------------------------------------------------------
    @property
    def indptr(self) -> np.ndarray:
        return self._indptr

    @property
    def indices(self) -> np.ndarray:
        return self._indices

    @property
    def data(self) -> np.ndarray:
        return self._data

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def nnz(self) -> int:
        """Number of stored entries (survivors), including any stored exact zeros."""
        return int(self._indices.shape[0])

    @property
    def density(self) -> float:
        """nnz / (rows * cols); 0.0 for an empty shape."""
        size = self._shape[0] * self._shape[1]
        return self.nnz / size if size else 0.0

    @property
    def nbytes(self) -> int:
        """Bytes of the three arrays: 4 * nnz (data) + 4 * nnz (indices) + 8 * (rows + 1)."""
        return int(self._data.nbytes + self._indices.nbytes + self._indptr.nbytes)

    def validate(self) -> None:
        """Re-run `validate_csr_arrays` on this matrix (raises ValueError on any defect)."""
        validate_csr_arrays(self._indptr, self._indices, self._data, self._shape)

    def __repr__(self) -> str:
        rows, cols = self._shape
        return f"CSRMatrix(shape=({rows}, {cols}), nnz={self.nnz}, density={self.density:.4f})"

    # -- conversions --------------------------------------------------------------------------
    @classmethod
    def from_dense(cls, dense: np.ndarray, mask: np.ndarray | None = None) -> CSRMatrix:
        """Build from a 2-D array. Without ``mask`` the pattern is ``dense != 0``; with ``mask``
        (same shape, non-zero = keep) the pattern is the mask's, values taken from ``dense`` --
        so a kept weight that is exactly 0.0 is still stored. Values are cast to float32.
        """
        dense = np.asarray(dense)
        if dense.ndim != 2:
            raise ValueError(f"CSRMatrix.from_dense: dense must be 2-D, got shape {dense.shape}")
        if mask is None:
            keep = dense != 0
        else:
            mask = np.asarray(mask)
            if mask.shape != dense.shape:
                raise ValueError(
                    f"CSRMatrix.from_dense: mask shape {mask.shape} differs from dense shape "
                    f"{dense.shape}"
                )
            keep = mask != 0
        rows, cols = dense.shape
        row_of_entry, indices = np.nonzero(keep)  # row-major order: rows, then columns ascending
        indptr = np.zeros(rows + 1, dtype=INDPTR_DTYPE)
        np.cumsum(np.bincount(row_of_entry, minlength=rows), out=indptr[1:])
        return cls(
            indptr,
            indices.astype(INDEX_DTYPE),
            dense[keep].astype(VALUE_DTYPE),
            (rows, cols),
            copy=False,
        )

    def to_dense(self) -> np.ndarray:
        """The float32 dense (rows, cols) array; positions without a stored entry are 0."""
        dense = np.zeros(self._shape, dtype=VALUE_DTYPE)
        row_of_entry = np.repeat(np.arange(self._shape[0]), np.diff(self._indptr))
        dense[row_of_entry, self._indices] = self._data
        return dense

    def pattern(self) -> np.ndarray:
        """Boolean (rows, cols) array, True at every stored entry (the pruning mask)."""
        keep = np.zeros(self._shape, dtype=bool)
        row_of_entry = np.repeat(np.arange(self._shape[0]), np.diff(self._indptr))
        keep[row_of_entry, self._indices] = True
        return keep

    def transpose(self) -> CSRMatrix:
        """The (cols, rows) transpose, also CSR -- equivalently, this matrix in CSC form: row j
        of the result lists the rows of column j. Stored entries (explicit zeros included) keep
        their values; a stable sort by column keeps each new row's indices ascending."""
        rows, cols = self._shape
        row_of_entry = np.repeat(np.arange(rows, dtype=INDEX_DTYPE), np.diff(self._indptr))
        order = np.argsort(self._indices, kind="stable")
        indptr = np.zeros(cols + 1, dtype=INDPTR_DTYPE)
        np.cumsum(np.bincount(self._indices, minlength=cols), out=indptr[1:])
        return CSRMatrix(indptr, row_of_entry[order], self._data[order], (cols, rows), copy=False)

    @classmethod
    def from_scipy(cls, matrix) -> CSRMatrix:
        """Build from any scipy.sparse matrix or array. Converts to CSR, sums duplicate entries,
        sorts column indices, keeps explicit zeros, and casts to int64 / int32 / float32.
        """
        import scipy.sparse

        if not scipy.sparse.issparse(matrix):
            raise ValueError(
                f"CSRMatrix.from_scipy: expected a scipy.sparse matrix, got {type(matrix).__name__}"
            )
        csr = scipy.sparse.csr_array(matrix, copy=True)
        csr.sum_duplicates()  # also sorts indices
        return cls(
            csr.indptr.astype(INDPTR_DTYPE),
            csr.indices.astype(INDEX_DTYPE),
            csr.data.astype(VALUE_DTYPE),
            csr.shape,
            copy=False,
        )

    def to_scipy(self):
        """A `scipy.sparse.csr_array` with copies of the arrays (scipy may downcast indptr)."""
        import scipy.sparse

        return scipy.sparse.csr_array(
            (self._data.copy(), self._indices.copy(), self._indptr.copy()), shape=self._shape
        )
