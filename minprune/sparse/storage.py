"""How many bytes a pruned layer needs: dense, plain CSR, and the paper's relative-index CSR
(Han et al. 2015, Sec. 5: column differences take 8 bits for conv and 5 bits for FC layers, a
15.6% overhead -- 5 / 32, our reading; CSR's 2a + n + 1 numbers and the zero-valued filler entry
when a difference overflows are Deep Compression's, Han et al. 2016, Sec. 2 and Fig. 2).
`storage_report` says exactly how each figure is counted.

Conv weights (out, in, kh, kw) are counted as the (out, in * kh * kw) matrix that
`minprune.sparse.export` stores. The paper does not say along which axis it flattens conv
kernels; only the filler count depends on that choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minprune.base.paper import PAPER_INDEX_BITS
from minprune.sparse.csr import CSRMatrix

__all__ = ["StorageReport", "storage_report", "relative_index_fillers"]



@dataclass(frozen=True)
class StorageReport:
    """Storage of one pruned weight matrix; the module docstring says how each field is counted."""

    shape: tuple[int, int]
    nnz: int
    density: float
    dense_bytes: int
    csr_bytes: int
    layer_kind: str
    index_bits: int
    value_bits: int
    pointer_bits: int
    fillers: int
    relative_bits: int
    relative_bytes: int
    index_overhead: float

    @property
    def csr_compression(self) -> float:
        """dense_bytes / csr_bytes (inf when the CSR needs no bytes)."""
        return self.dense_bytes / self.csr_bytes if self.csr_bytes else math.inf

    @property
    def relative_compression(self) -> float:
        """dense_bytes / relative_bytes."""
        return self.dense_bytes / self.relative_bytes if self.relative_bytes else math.inf


def relative_index_fillers(csr: CSRMatrix, index_bits: int) -> int:
    """Number of filler entries the relative-index encoding needs for ``csr`` (fillers: Deep
    Compression, Han et al. 2016, Fig. 2).

    A step d = column - previous column (previous = -1 at each row start) fits a b-bit field when
    d <= 2**b; a larger step needs (d - 1) // 2**b fillers in front of it.
    """
    if not isinstance(index_bits, int | np.integer) or index_bits < 1:
        raise ValueError(f"index_bits: expected a positive int, got {index_bits!r}")
    if csr.nnz == 0:
        return 0
    columns = csr.indices.astype(np.int64)
    previous = np.empty_like(columns)
    previous[0] = -1
    previous[1:] = columns[:-1]
    row_starts = csr.indptr[:-1][np.diff(csr.indptr) > 0]  # first entry of each non-empty row
    previous[row_starts] = -1
    steps = columns - previous
    return int(((steps - 1) // (1 << index_bits)).sum())


def _as_csr(weight, mask) -> tuple[CSRMatrix, int]:
    """The CSR of ``weight`` (2-D or conv 4-D, pattern = mask, or weight != 0) and its ndim."""
    if isinstance(weight, CSRMatrix):
        if mask is not None:
            raise ValueError("storage_report: a mask goes with a dense weight, not a CSRMatrix")
        return weight, 2
    weight = np.asarray(weight)
    if weight.ndim not in (2, 4):
        raise ValueError(
            f"storage_report: weight must be 2-D (fc) or 4-D (conv), got shape {weight.shape}"
        )
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != weight.shape:
            raise ValueError(
                f"storage_report: mask shape {mask.shape} differs from weight shape {weight.shape}"
            )
    matrix_shape = (weight.shape[0], int(np.prod(weight.shape[1:])))
    if mask is not None:
        mask = mask.reshape(matrix_shape)
    matrix = weight.reshape(matrix_shape)
    return CSRMatrix.from_dense(matrix, mask), weight.ndim


def storage_report(
    weight,
    mask=None,
    *,
    layer_kind: str | None = None,
    index_bits: int | None = None,
    value_bits: int = 32,
    pointer_bits: int = 32,
) -> StorageReport:
    """Bytes for one pruned weight: dense float32, minprune's CSR, and the paper's relative index.

    ``weight`` is a dense array (fc: (out, in); conv: (out, in, kh, kw)) with an optional ``mask``
    of the same shape (non-zero keeps; default: the non-zeros of ``weight``), or a `CSRMatrix`.
    ``layer_kind`` is "fc" or "conv" and picks the paper's index width (5 or 8 bits) unless
    ``index_bits`` is given; it defaults from the weight's ndim and must be given for a CSRMatrix.

    - ``dense_bytes`` = rows * cols * 4 (float32);
    - ``csr_bytes`` = 4 nnz (values) + 4 nnz (int32 columns) + 8 (rows + 1) (int64 row pointers),
      i.e. `CSRMatrix.nbytes`;
    - ``relative_bytes``: each row on its own; an entry at column c keeps the step d = c - previous
      (previous = -1 at a row start, so d >= 1); a b-bit field holds steps 1 .. 2**b, and a longer
      step first needs (d - 1) // 2**b filler entries (zero value, b-bit index). With E = nnz +
      fillers: bits = E (value_bits + index_bits) + (rows + 1) pointer_bits, rounded up to bytes;
    - ``index_overhead`` = (bits - nnz value_bits) / (nnz value_bits): the paper's 15.6% for FC
      layers without fillers and pointers.
    """
    csr, ndim = _as_csr(weight, mask)
    if layer_kind is None:
        if isinstance(weight, CSRMatrix):
            raise ValueError('storage_report: give layer_kind ("fc" or "conv") for a CSRMatrix')
        layer_kind = "conv" if ndim == 4 else "fc"
    if layer_kind not in PAPER_INDEX_BITS:
        raise ValueError(f'storage_report: layer_kind must be "fc" or "conv", got {layer_kind!r}')
    if index_bits is None:
        index_bits = PAPER_INDEX_BITS[layer_kind]
    for name, bits in (("value_bits", value_bits), ("pointer_bits", pointer_bits)):
        if not isinstance(bits, int | np.integer) or bits < 1:
            raise ValueError(f"storage_report: {name} must be a positive int, got {bits!r}")
    rows, cols = csr.shape
    fillers = relative_index_fillers(csr, index_bits)
    value_bits_total = csr.nnz * value_bits
    relative_bits = (csr.nnz + fillers) * (value_bits + index_bits) + (rows + 1) * pointer_bits
    return StorageReport(
        shape=(rows, cols),
        nnz=csr.nnz,
        density=csr.density,
        dense_bytes=rows * cols * 4,
        csr_bytes=csr.nbytes,
        layer_kind=layer_kind,
        index_bits=index_bits,
        value_bits=value_bits,
        pointer_bits=pointer_bits,
        fillers=fillers,
        relative_bits=relative_bits,
        relative_bytes=(relative_bits + 7) // 8,
        index_overhead=(
            (relative_bits - value_bits_total) / value_bits_total if value_bits_total else math.inf
        ),
    )
