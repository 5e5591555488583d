"""Storage accounting: dense vs CSR vs the paper's relative-index CSR (Sec. 4)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minprune.sparse.csr import CSRMatrix
from minprune.sparse.storage import relative_index_fillers, storage_report


def _fillers_by_walking(csr, index_bits):
    """Encode each row the slow way: walk from the previous column, emitting fillers."""
    largest_step = 2**index_bits
    fillers = 0
    for row in range(csr.shape[0]):
        previous = -1
        for column in csr.indices[csr.indptr[row] : csr.indptr[row + 1]]:
            while column - previous > largest_step:
                previous += largest_step  # a filler entry lands here
                fillers += 1
            previous = column
    return fillers


def test_fillers_by_hand():
    # 3-bit steps hold 1..8. Row 0: columns 0, 8, 9, 25 -> steps 1, 8, 1, 16: one filler (at 17).
    # Row 1: column 30 -> step 31: fillers at 7, 15, 23. Row 2: empty.
    dense = np.zeros((3, 32), np.float32)
    dense[0, [0, 8, 9, 25]] = 1
    dense[1, 30] = 1
    assert relative_index_fillers(CSRMatrix.from_dense(dense), 3) == 4


@settings(max_examples=100, deadline=None)
@given(
    rows=st.integers(0, 6),
    cols=st.integers(0, 300),
    density=st.sampled_from([0.0, 0.01, 0.05, 0.3, 1.0]),
    index_bits=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_vectorised_fillers_match_the_walk(rows, cols, density, index_bits, seed):
    mask = np.random.default_rng(seed).random((rows, cols)) < density
    csr = CSRMatrix.from_dense(mask.astype(np.float32))
    assert relative_index_fillers(csr, index_bits) == _fillers_by_walking(csr, index_bits)


def test_report_counts_exactly_as_documented():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((30, 200)).astype(np.float32)
    mask = rng.random((30, 200)) < 0.08
    report = storage_report(weight, mask)
    csr = CSRMatrix.from_dense(weight, mask)
    fillers = relative_index_fillers(csr, 5)
    assert report.layer_kind == "fc" and report.index_bits == 5
    assert report.nnz == csr.nnz and report.fillers == fillers
    assert report.dense_bytes == 30 * 200 * 4
    assert report.csr_bytes == 8 * csr.nnz + 8 * 31 == csr.nbytes
    assert report.relative_bits == (csr.nnz + fillers) * (32 + 5) + 31 * 32
    assert report.relative_bytes == -(-report.relative_bits // 8)
    assert report.index_overhead == pytest.approx(
        (report.relative_bits - 32 * csr.nnz) / (32 * csr.nnz)
    )
    assert report.relative_compression > report.csr_compression > 1


def test_paper_index_overhead_is_5_over_32_without_fillers_or_pointers():
    # A full row: every step is 1, so no fillers; pointer_bits=1 makes the pointers negligible.
    report = storage_report(np.ones((1, 4000), np.float32), pointer_bits=1)
    assert report.fillers == 0
    assert report.index_overhead == pytest.approx(5 / 32, abs=1e-3)  # the paper's 15.6%


def test_conv_weights_use_8_bits_and_filter_rows():
    weight = np.zeros((4, 3, 5, 5), np.float32)
    weight[:, :, 2, 2] = 1.0
    report = storage_report(weight)
    assert report.layer_kind == "conv" and report.index_bits == 8
    assert report.shape == (4, 75) and report.nnz == 12
    assert storage_report(weight, index_bits=2).fillers > 0


def test_csr_input_needs_a_layer_kind_and_arguments_are_checked():
    csr = CSRMatrix.from_dense(np.eye(4, dtype=np.float32))
    assert storage_report(csr, layer_kind="fc").nnz == 4
    with pytest.raises(ValueError, match="give layer_kind"):
        storage_report(csr)
    with pytest.raises(ValueError, match='layer_kind must be "fc" or "conv"'):
        storage_report(np.eye(3), layer_kind="lstm")
    with pytest.raises(ValueError, match=r"mask shape \(2, 2\) differs from weight shape \(3, 3\)"):
        storage_report(np.eye(3), np.ones((2, 2)))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        storage_report(np.ones(3))
    with pytest.raises(ValueError, match="value_bits must be a positive int"):
        storage_report(np.eye(3), value_bits=0)
    with pytest.raises(ValueError, match="index_bits: expected a positive int"):
        relative_index_fillers(csr, 0)
