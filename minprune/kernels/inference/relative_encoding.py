"""Numba kernels that write and check the 8-bit relative-index layout
(`minprune.sparse.relative`) in one pass over the entries, with no array the size of the
entries beyond the outputs: the NumPy versions of these steps held several int64 temporaries
per entry (measured on fc6's 3.4 M weights: 234 MB peak to encode a 27 MB CSR; these kernels
allocate the outputs only). Raw arrays in, nothing checked here but what each docstring says.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["line_entries", "encode_lines", "first_overflow", "transpose_csr",
           "decode_file_steps"]

MAX_STEP = 256  # as minprune.sparse.relative.MAX_STEP: one uint8 code holds steps 1..256


def _line_entries(indptr, indices, max_step, counts):
    """counts[line] = stored entries of each line once encoded: its entries, plus one filler for
    every ``max_step`` positions of a gap (a step d > max_step needs (d - 1) // max_step fillers
    before it): 256 for the engine's layout, 255 for the sparse file's step codes."""
    for line in range(indptr.shape[0] - 1):
        previous = np.int64(-1)
        total = np.int64(0)
        for k in range(indptr[line], indptr[line + 1]):
            position = np.int64(indices[k])
            total += 1 + (position - previous - 1) // max_step
            previous = position
        counts[line] = total


def _encode_lines(indptr, indices, data, pointers, steps, values):
    """Fill ``steps`` and ``values`` from the CSR lines (strictly increasing positions), at the
    offsets ``pointers`` gives (from `line_entries`' counts): a step d is code d - 1, preceded by
    (d - 1) // 256 fillers (code 255, value 0.0)."""
    for line in range(indptr.shape[0] - 1):
        out = np.int64(pointers[line])
        previous = np.int64(-1)
        for k in range(indptr[line], indptr[line + 1]):
            position = np.int64(indices[k])
            step = position - previous
            while step > MAX_STEP:
                steps[out] = MAX_STEP - 1
                values[out] = 0.0
                out += 1
                step -= MAX_STEP
            steps[out] = step - 1
            values[out] = data[k]
            out += 1
            previous = position


def _first_overflow(pointers, steps, extent):
    """(line, position) of the first entry decoded at a position >= ``extent``, or (-1, -1)."""
    for line in range(pointers.shape[0] - 1):
        position = np.int64(-1)
        for k in range(pointers[line], pointers[line + 1]):
            position += np.int64(steps[k]) + 1
            if position >= extent:
                return line, position
    return -1, -1


def _transpose_csr(indptr, indices, data, cols, out_indptr, out_indices, out_data):
    """The CSR of the transpose, by counting sort (columns stay increasing within each new row):
    out_indptr (cols + 1,), out_indices and out_data (nnz,) are filled."""
    for j in range(cols + 1):
        out_indptr[j] = 0
    for k in range(indices.shape[0]):
        out_indptr[indices[k] + 1] += 1
    for j in range(cols):
        out_indptr[j + 1] += out_indptr[j]
    cursor = out_indptr[:-1].copy()
    for row in range(indptr.shape[0] - 1):
        for k in range(indptr[row], indptr[row + 1]):
            column = indices[k]
            out_indices[cursor[column]] = row
            out_data[cursor[column]] = data[k]
            cursor[column] += 1


def _decode_file_steps(codes, step_indptr, cols, indptr, indices):
    """The sparse file's steps (`minprune.sparse.export`: code 0 a filler that advances 255 with
    no value, 1..255 an entry that many columns on) -> CSR ``indptr`` (rows + 1,) and column
    ``indices`` (one per non-zero code: the caller sizes it so). Returns (-1, -1) when done, or
    (row, position) of the first entry at a column >= ``cols``. ``step_indptr`` must rise from 0
    to len(codes)."""
    written = np.int64(0)
    for row in range(step_indptr.shape[0] - 1):
        indptr[row] = written
        position = np.int64(-1)
        for c in range(step_indptr[row], step_indptr[row + 1]):
            code = np.int64(codes[c])
            if code == 0:
                position += 255
                continue
            position += code
            if position >= cols:
                return row, position
            indices[written] = position
            written += 1
    indptr[step_indptr.shape[0] - 1] = written
    return -1, -1


line_entries = njit(cache=True)(_line_entries)
encode_lines = njit(cache=True)(_encode_lines)
first_overflow = njit(cache=True)(_first_overflow)
transpose_csr = njit(cache=True)(_transpose_csr)
decode_file_steps = njit(cache=True)(_decode_file_steps)
