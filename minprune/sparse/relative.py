"""Sparse weights in the paper's own format, as the engine reads them: each line (a row for CSR,
a column for CSC) stores its entries' positions as 8-bit *relative* steps, Han et al. 2015,
Sec. 5 ("the difference is stored ... 8 bits for conv layer and 5 bits for fc layer"); the filler
entries and the column layout are Deep Compression's (Han et al. 2016, Fig. 2) and EIE's (Han et
al., ISCA 2016, Sec. 3: weights stored column by column, so a zero input skips its whole column).

    line j holds entries  k in [pointers[j], pointers[j + 1])
    entry k sits at       position = previous + steps[k] + 1     (previous = -1 at a line start)
    and holds             values[k]

A step of up to 256 fits one uint8; a longer one is preceded by *filler* entries, each 256
positions on with value 0.0 -- Deep Compression's zero-valued filler, so a kernel decodes every
entry the same way, with no branch. Adding 0.0 is what a filler costs a product (finite inputs).

Departures: 8-bit steps for FC layers too (the paper counts 5 bits; bytes are what a kernel can
read without unpacking). The sparse file (`minprune.sparse.export`) marks a filler by step code 0
and stores no value for it; here a filler holds a 0.0 value, so value k belongs to step k and
one pointer array serves both. ``pointers`` are uint32: a line's entries fit 4 bytes, and a layer
holds fewer than 2**32 entries (checked).

Bytes resident: 5 per entry (value + step) + 4 per line: what `nbytes` counts, and what a
product must read from memory.
"""

from __future__ import annotations

import numpy as np

from minprune.kernels.inference import relative_encoding
from minprune.sparse.csr import INDEX_DTYPE, INDPTR_DTYPE, VALUE_DTYPE, CSRMatrix

__all__ = ["RelativeIndexMatrix", "LAYOUTS", "MAX_STEP", "POINTER_DTYPE", "STEP_DTYPE"]

LAYOUTS = ("csr", "csc")
MAX_STEP = 256  # one uint8 code holds steps 1..256 (code = step - 1)
POINTER_DTYPE = np.dtype(np.uint32)
STEP_DTYPE = np.dtype(np.uint8)


def _encode(indptr: np.ndarray, positions: np.ndarray, values: np.ndarray):
    """CSR lines (int64 pointers, lines + 1; positions strictly increasing within each line;
    float32 values) -> (uint32 pointers, uint8 steps, float32 values), fillers in. One pass of
    `relative_encoding`'s kernels: no temporary the size of the entries."""
    lines = indptr.shape[0] - 1
    counts = np.empty(lines, dtype=np.int64)
    relative_encoding.line_entries(indptr, positions, MAX_STEP, counts)
    line_pointers = np.zeros(lines + 1, dtype=np.int64)
    np.cumsum(counts, out=line_pointers[1:])
    entries = int(line_pointers[-1])
    if entries > np.iinfo(POINTER_DTYPE).max:
        raise ValueError(f"RelativeIndexMatrix: {entries} entries do not fit uint32 pointers")
    steps = np.empty(entries, dtype=STEP_DTYPE)
    stored = np.empty(entries, dtype=VALUE_DTYPE)
    relative_encoding.encode_lines(indptr, positions, values, line_pointers, steps, stored)
    return line_pointers.astype(POINTER_DTYPE), steps, stored


def _decode(pointers: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(line of each entry, position of each entry), int64: the inverse of `_encode`'s steps."""
    lines = pointers.shape[0] - 1
    starts = pointers.astype(np.int64)
    line_of_entry = np.repeat(np.arange(lines), np.diff(starts))
    walked = np.zeros(steps.size + 1, dtype=np.int64)
    np.cumsum(steps.astype(np.int64) + 1, out=walked[1:])
    positions = walked[1:] - walked[starts[:-1]][line_of_entry] - 1
    return line_of_entry, positions


class RelativeIndexMatrix:
    """An immutable (rows, cols) sparse matrix in the layout of the module docstring.

    ``layout`` "csr" stores rows (the file's layout: a filter's taps for a conv), "csc" stores
    columns (EIE's: an input's outgoing weights). Build it with `from_csr`; the constructor takes
    raw arrays, copies them (``copy=False``: takes them over, for arrays just built), validates
    them (dtypes, pointers rising from 0 to len(steps), every decoded position inside its line),
    then makes them read-only: the Numba kernels check nothing.
    """

    __slots__ = ("_pointers", "_steps", "_values", "_shape", "_layout")

    def __init__(self, pointers, steps, values, shape, layout: str, *, copy: bool = True):
        if copy:  # nobody else then holds a writable alias of what is validated
            pointers, steps, values = (np.array(a, copy=True) if isinstance(a, np.ndarray) else a
                                       for a in (pointers, steps, values))
        if layout not in LAYOUTS:
            raise ValueError(f"RelativeIndexMatrix.layout: expected one of {LAYOUTS}, got "
                             f"{layout!r}")
        rows, cols = _checked_shape(shape)
        lines, extent = (rows, cols) if layout == "csr" else (cols, rows)
        for name, array, dtype in (("pointers", pointers, POINTER_DTYPE),
                                   ("steps", steps, STEP_DTYPE), ("values", values, VALUE_DTYPE)):
            if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != 1:
                raise ValueError(
                    f"RelativeIndexMatrix.{name}: expected a 1-D {dtype} array, got "
                    f"{getattr(array, 'dtype', type(array).__name__)} "
                    f"{getattr(array, 'shape', '')}")
        if pointers.shape[0] != lines + 1 or pointers[0] != 0 or pointers[-1] != steps.size:
            raise ValueError(
                f"RelativeIndexMatrix.pointers: expected {lines + 1} pointers from 0 to "
                f"len(steps) = {steps.size}, got {pointers.shape[0]} from "
                f"{pointers[0] if pointers.size else None} to "
                f"{pointers[-1] if pointers.size else None}")
        if np.any(pointers[1:] < pointers[:-1]):
            line = int(np.argmax(pointers[1:] < pointers[:-1]))
            raise ValueError(f"RelativeIndexMatrix.pointers: line {line} ends before it starts")
        if values.shape != steps.shape:
            raise ValueError(f"RelativeIndexMatrix.values: expected one value per step "
                             f"({steps.size}), got {values.size}")
        line, position = relative_encoding.first_overflow(pointers, steps, extent)
        if line >= 0:
            raise ValueError(
                f"RelativeIndexMatrix.steps: line {line} reaches position {position} >= {extent}")
        self._pointers, self._steps, self._values = (
            _read_only(np.ascontiguousarray(a)) for a in (pointers, steps, values))
        self._shape, self._layout = (rows, cols), layout

    # -- fields -----------------------------------------------------------------------------
    pointers = property(lambda self: self._pointers, doc="uint32 (lines + 1) into steps/values")
    steps = property(lambda self: self._steps, doc="uint8 step codes: position step - 1")
    values = property(lambda self: self._values, doc="float32, one per step (fillers 0.0)")
    shape = property(lambda self: self._shape, doc="(rows, cols)")
    layout = property(lambda self: self._layout, doc='"csr" (rows are lines) or "csc"')

    @property
    def entries(self) -> int:
        """Stored entries, fillers included: the length of ``steps`` and ``values``."""
        return int(self._steps.size)

    @property
    def fillers(self) -> int:
        """Entries at a step of 256 holding 0.0: the fillers (and any kept weight that happens to
        be exactly 0.0 that far from its neighbour, which a product treats alike)."""
        return int(np.count_nonzero(self._filler_mask()))

    def _filler_mask(self) -> np.ndarray:
        """True for each entry at a step of 256 holding 0.0 (see `fillers`)."""
        return (self._steps == MAX_STEP - 1) & (self._values == 0.0)

    @property
    def nbytes(self) -> int:
        """Resident bytes: values + steps + pointers (5 per entry, 4 per line, + 4)."""
        return self._values.nbytes + self._steps.nbytes + self._pointers.nbytes

    def __repr__(self) -> str:
        return (f"RelativeIndexMatrix(shape={self._shape}, layout={self._layout!r}, "
                f"entries={self.entries}, nbytes={self.nbytes})")

    # -- conversions ------------------------------------------------------------------------
    @classmethod
    def from_csr(cls, csr: CSRMatrix, layout: str = "csc") -> RelativeIndexMatrix:
        """The same matrix as a validated `CSRMatrix`, in ``layout``: "csr" keeps its rows, "csc"
        transposes it first (a sparse transpose: no dense array on the way)."""
        if not isinstance(csr, CSRMatrix):
            raise ValueError(f"RelativeIndexMatrix.from_csr: expected a CSRMatrix, got "
                             f"{type(csr).__name__}")
        if layout not in LAYOUTS:
            raise ValueError(f"RelativeIndexMatrix.from_csr: layout must be one of {LAYOUTS}, "
                             f"got {layout!r}")
        if layout == "csr":
            indptr, positions, data = csr.indptr, csr.indices, csr.data
        else:  # the columns' lines: a counting sort, outputs only
            rows, cols = csr.shape
            indptr = np.empty(cols + 1, dtype=INDPTR_DTYPE)
            positions = np.empty(csr.nnz, dtype=INDEX_DTYPE)
            data = np.empty(csr.nnz, dtype=VALUE_DTYPE)
            relative_encoding.transpose_csr(csr.indptr, csr.indices, csr.data, cols, indptr,
                                            positions, data)
        pointers, steps, values = _encode(indptr, positions, data)
        return cls(pointers, steps, values, csr.shape, layout, copy=False)

    def to_csr(self) -> CSRMatrix:
        """The `CSRMatrix` of the same (rows, cols) matrix, fillers dropped: the reference the
        kernels are tested against, and the way back to scipy. (A kept weight of exactly 0.0 at
        a step of 256 is dropped with them: it adds nothing to any product either.)"""
        line_of_entry, positions = _decode(self._pointers, self._steps)
        keep = ~self._filler_mask()
        lines = self._shape[0] if self._layout == "csr" else self._shape[1]
        indptr = np.zeros(lines + 1, dtype=INDPTR_DTYPE)
        np.cumsum(np.bincount(line_of_entry[keep], minlength=lines), out=indptr[1:])
        line_matrix = CSRMatrix(indptr, positions[keep].astype(INDEX_DTYPE),
                                self._values[keep].copy(),
                                self._shape if self._layout == "csr" else self._shape[::-1],
                                copy=False)
        return line_matrix if self._layout == "csr" else line_matrix.transpose()

    def to_dense(self) -> np.ndarray:
        """The dense float32 (rows, cols) array (tests and small examples only)."""
        return self.to_csr().to_dense()


def _checked_shape(shape) -> tuple[int, int]:
    try:
        rows, cols = (int(n) for n in shape)
        exact = all(int(n) == n for n in shape)
    except (TypeError, ValueError):
        exact = False
    if not exact or rows < 0 or cols < 0:
        raise ValueError(f"RelativeIndexMatrix.shape: expected 2 non-negative ints, got {shape!r}")
    return rows, cols


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
