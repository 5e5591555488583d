"""Storage accounting: dense vs CSR vs the relative-index CSR (the paper, Sec. 5)."""

import math
import re

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


def test_csr_input_needs_a_layer_kind():
    """A CSRMatrix has lost its conv or fc shape, so the index width comes from layer_kind."""
    csr = CSRMatrix.from_dense(np.eye(4, dtype=np.float32))
    assert storage_report(csr, layer_kind="fc").nnz == 4
    assert storage_report(csr, layer_kind="conv").index_bits == 8


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: storage_report(CSRMatrix.from_dense(np.eye(4, dtype=np.float32))),
         'storage_report: give layer_kind ("fc" or "conv") for a CSRMatrix'),
        (lambda: storage_report(CSRMatrix.from_dense(np.eye(4, dtype=np.float32)), np.eye(4),
                                layer_kind="fc"),
         "storage_report: a mask goes with a dense weight, not a CSRMatrix"),
        (lambda: storage_report(np.eye(3), layer_kind="lstm"),
         "storage_report: layer_kind must be \"fc\" or \"conv\", got 'lstm'"),
        (lambda: storage_report(np.eye(3), np.ones((2, 2))),
         "storage_report: mask shape (2, 2) differs from weight shape (3, 3)"),
        (lambda: storage_report(np.ones(3)),
         "storage_report: weight must be 2-D (fc) or 4-D (conv), got shape (3,)"),
        (lambda: storage_report(np.eye(3), value_bits=0),
         "storage_report: value_bits must be a positive int, got 0"),
        (lambda: storage_report(np.eye(3), pointer_bits=2.5),
         "storage_report: pointer_bits must be a positive int, got 2.5"),
        (lambda: relative_index_fillers(CSRMatrix.from_dense(np.eye(2, dtype=np.float32)), 0),
         "index_bits: expected a positive int, got 0"),
    ],
)
def test_bad_arguments_are_named_with_their_value(call, message):
    """The whole message: the argument, the value received, and what was expected."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call()


def test_report_records_its_inputs_and_rounds_whole_bytes_exactly():
    """8-bit conv indices with 32-bit values and pointers: a whole number of bytes, no rounding up;
    the conv mask is flattened with its weight (a kept 0.0 is still stored)."""
    weight = np.zeros((2, 1, 3, 3), np.float32)
    weight[0, 0, 0, 0] = 1.0
    mask = np.zeros(weight.shape, bool)
    mask[0, 0, 0, :2] = mask[1, 0, 2, 2] = True  # (0, 0, 0, 1) is kept but 0.0
    report = storage_report(weight, mask)
    assert (report.layer_kind, report.shape, report.nnz) == ("conv", (2, 9), 3)
    assert report.density == pytest.approx(3 / 18)
    assert (report.value_bits, report.index_bits, report.pointer_bits) == (32, 8, 32)
    assert report.relative_bits == 3 * (32 + 8) + 3 * 32 == 8 * report.relative_bytes
    narrow = storage_report(weight, mask, value_bits=16, pointer_bits=8)
    assert (narrow.value_bits, narrow.pointer_bits) == (16, 8)
    assert narrow.relative_bits == 3 * (16 + 8) + 3 * 8


def test_a_fully_pruned_layer_needs_only_its_row_pointers():
    """No survivors, so nothing to index: the overhead ratio is infinite (not a division error)."""
    report = storage_report(np.zeros((3, 5), np.float32))
    assert (report.nnz, report.fillers, report.density) == (0, 0, 0.0)
    assert report.relative_bits == 4 * 32 and report.relative_bytes == 16
    assert report.index_overhead == math.inf
