"""The sparse file's 8-bit step codes (Han et al. 2015, Sec. 5: relative indices; the format's
other parts are `minprune.sparse.export`'s): each row's stored columns as steps from the previous
one (-1 at a row start), code 1..255 an entry that many columns on, code 0 a filler that advances
255 columns and holds no value (Deep Compression's Fig. 2 filler holds a zero value instead; here
a surviving exact zero stays distinguishable). `encode_steps` writes them, `decode_steps` reads
them back refusing any inconsistency with the field named, `sparse_file_weight_bytes` counts them.
"""

from __future__ import annotations

import numpy as np

from minprune.base.files import CorruptFileError
from minprune.kernels.inference import relative_encoding
from minprune.sparse.csr import INDEX_DTYPE, INDPTR_DTYPE, VALUE_DTYPE, CSRMatrix

__all__ = ["SparseFileError", "encode_steps", "decode_steps", "sparse_file_weight_bytes",
           "FILLER_STEP"]

FILLER_STEP = 255  # what step code 0 (a filler) advances by; codes 1..255 are entries


class SparseFileError(CorruptFileError):
    """A sparse file is truncated, corrupt, hostile or not a minprune sparse file."""


def encode_steps(csr: CSRMatrix) -> tuple[np.ndarray, np.ndarray]:
    """CSR column indices -> (uint8 step codes, int64 step_indptr); see the module docstring."""
    columns = csr.indices.astype(np.int64)
    previous = np.empty_like(columns)
    if columns.size:
        previous[0] = -1
        previous[1:] = columns[:-1]
        previous[csr.indptr[:-1][np.diff(csr.indptr) > 0]] = -1  # each row starts afresh
    steps = columns - previous  # >= 1
    fillers = (steps - 1) // FILLER_STEP
    codes_per_entry = fillers + 1
    codes_before = np.zeros(columns.size + 1, dtype=np.int64)
    np.cumsum(codes_per_entry, out=codes_before[1:])
    codes = np.zeros(codes_before[-1], dtype=np.uint8)
    codes[codes_before[1:] - 1] = steps - FILLER_STEP * fillers  # in 1..255, after the fillers
    return codes, codes_before[csr.indptr]


def decode_steps(key: str, codes, step_indptr, values, shape) -> CSRMatrix:
    """Inverse of `encode_steps`; every inconsistency in the file is a SparseFileError."""
    rows, cols = shape
    if codes.dtype != np.uint8 or codes.ndim != 1:
        raise SparseFileError(
            f"{key}::steps: expected 1-D uint8, got {codes.dtype} {codes.shape}")
    if step_indptr.dtype != np.int64 or step_indptr.shape != (rows + 1,):
        raise SparseFileError(
            f"{key}::step_indptr: expected int64 of shape ({rows + 1},), "
            f"got {step_indptr.dtype} {step_indptr.shape}"
        )
    if step_indptr[0] != 0 or step_indptr[-1] != codes.size or np.any(np.diff(step_indptr) < 0):
        raise SparseFileError(
            f"{key}::step_indptr: must rise from 0 to len(steps) = {codes.size}, "
            f"got first {step_indptr[0]}, last {step_indptr[-1]}"
        )
    if values.dtype != VALUE_DTYPE or values.ndim != 1:
        raise SparseFileError(
            f"{key}::values: expected 1-D {np.dtype(VALUE_DTYPE)}, got {values.dtype} "
            f"{values.shape}")
    if not np.isfinite(values).all():
        raise SparseFileError(f"{key}::values: NaN or infinite weights")
    entries = int(np.count_nonzero(codes))
    if values.shape != (entries,):
        raise SparseFileError(
            f"{key}::values: expected {entries} values (one per non-filler step), "
            f"got shape {values.shape}"
        )
    indptr = np.empty(rows + 1, dtype=INDPTR_DTYPE)
    indices = np.empty(entries, dtype=np.int64 if cols > 2**31 else INDEX_DTYPE)
    row, position = relative_encoding.decode_file_steps(codes, step_indptr, cols, indptr, indices)
    if row >= 0:
        raise SparseFileError(f"{key}::steps: column {position} >= {cols} columns")
    return CSRMatrix(indptr, indices.astype(INDEX_DTYPE, copy=False), values, (rows, cols),
                     copy=False)


def sparse_file_weight_bytes(csr: CSRMatrix) -> int:
    """The bytes one pruned weight takes in a sparse file: its step codes (one per entry and per
    filler), its int64 step pointers and its float32 values (the .npz's members, before zip);
    counted in one pass, no array the size of the entries."""
    counts = np.empty(csr.shape[0], dtype=np.int64)
    relative_encoding.line_entries(csr.indptr, csr.indices, FILLER_STEP, counts)
    return int(counts.sum()) + 8 * (csr.shape[0] + 1) + csr.data.nbytes
