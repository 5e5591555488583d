"""CSRMatrix: conversions, accounting, immutability, and a validator that catches every defect."""

import re

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from minprune.sparse.csr import CSRMatrix, validate_csr_arrays

FUZZ = settings(max_examples=150, deadline=None)


@st.composite
def dense_and_mask(draw, max_side=9):
    rows, cols = draw(st.integers(0, max_side)), draw(st.integers(0, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, cols)).astype(np.float32)
    values[rng.random((rows, cols)) < 0.2] = 0.0  # some survivors are exactly zero
    mask = (rng.random((rows, cols)) < density).astype(np.float32)
    return values, mask


@given(dense_and_mask())
def test_from_dense_round_trips_and_keeps_the_mask_pattern(case):
    values, mask = case
    csr = CSRMatrix.from_dense(values, mask)
    np.testing.assert_array_equal(csr.to_dense(), np.where(mask != 0, values, 0))
    np.testing.assert_array_equal(csr.pattern(), mask != 0)  # exact zeros still stored
    assert csr.nnz == int(np.count_nonzero(mask))
    csr.validate()


@given(dense_and_mask())
def test_transpose_is_the_transposed_matrix_with_its_pattern(case):
    values, mask = case
    csr = CSRMatrix.from_dense(values, mask)
    transposed = csr.transpose()  # validated by its constructor: sorted indices, right dtypes
    assert transposed.shape == csr.shape[::-1] and transposed.nnz == csr.nnz
    np.testing.assert_array_equal(transposed.to_dense(), csr.to_dense().T)
    np.testing.assert_array_equal(transposed.pattern(), csr.pattern().T)  # exact zeros kept
    back = transposed.transpose()
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(back, name), getattr(csr, name))


@given(dense_and_mask())
def test_scipy_round_trip(case):
    values, _ = case
    csr = CSRMatrix.from_dense(values)
    back = CSRMatrix.from_scipy(csr.to_scipy())
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(back, name), getattr(csr, name))
    np.testing.assert_array_equal(csr.to_scipy().toarray(), values)


def test_from_scipy_sorts_sums_duplicates_and_casts():
    coo = scipy.sparse.coo_array(
        (np.array([1.0, 2.0, 5.0, 0.0]), (np.array([1, 0, 1, 0]), np.array([2, 3, 2, 0]))),
        shape=(2, 4),
    )
    csr = CSRMatrix.from_scipy(coo)
    assert (csr.indptr.dtype, csr.indices.dtype, csr.data.dtype) == (
        np.int64,
        np.int32,
        np.float32,
    )
    np.testing.assert_array_equal(csr.indices, [0, 3, 2])  # explicit zero kept
    np.testing.assert_array_equal(csr.data, [0.0, 2.0, 6.0])
    with pytest.raises(ValueError, match="expected a scipy.sparse matrix"):
        CSRMatrix.from_scipy(np.eye(2))


def test_accounting():
    dense = np.array([[0, 1, 0], [0, 0, 0], [2, 0, 3], [0, 0, 0]], np.float32)
    csr = CSRMatrix.from_dense(dense)
    assert csr.shape == (4, 3) and csr.nnz == 3
    assert csr.density == pytest.approx(3 / 12)
    assert csr.nbytes == 3 * 4 + 3 * 4 + 5 * 8
    assert "nnz=3" in repr(csr)
    assert CSRMatrix.from_dense(np.zeros((0, 3))).density == 0.0


def test_is_immutable_and_does_not_alias_its_inputs():
    indptr = np.array([0, 1, 2], np.int64)
    indices = np.array([1, 0], np.int32)
    data = np.array([5.0, 6.0], np.float32)
    csr = CSRMatrix(indptr, indices, data, (2, 2))
    indices[0] = 99  # the caller's array is not the matrix's
    assert csr.indices[0] == 1
    assert indices.flags.writeable
    for array in (csr.indptr, csr.indices, csr.data):
        assert not array.flags.writeable
    with pytest.raises(AttributeError):
        csr.shape = (3, 3)


def _valid_arrays():
    """A 4 x 10 matrix: row 0 has columns 1, 5; row 1 is empty; row 2 has 0; row 3 has 2, 9."""
    return (
        np.array([0, 2, 2, 3, 5], np.int64),
        np.array([1, 5, 0, 2, 9], np.int32),
        np.arange(5, dtype=np.float32),
        (4, 10),
    )


def _with(position, value):
    arrays = list(_valid_arrays())
    arrays[position] = value
    return arrays


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (_with(3, (4, -1)), "CSRMatrix.shape: expected 2 non-negative ints, got (4, -1)"),
        (_with(3, (4, 10, 1)), "CSRMatrix.shape: expected 2 non-negative ints, got (4, 10, 1)"),
        (_with(3, (4.5, 10)), "CSRMatrix.shape: expected 2 non-negative ints, got (4.5, 10)"),
        (
            _with(0, np.array([0, 2, 2, 3, 5], np.int32)),
            "CSRMatrix.indptr: expected dtype int64, got int32",
        ),
        (
            _with(1, np.array([1, 5, 0, 2, 9], np.int64)),
            "CSRMatrix.indices: expected dtype int32, got int64",
        ),
        (_with(2, np.arange(5.0)), "CSRMatrix.data: expected dtype float32, got float64"),
        (_with(1, [1, 5, 0, 2, 9]), "CSRMatrix.indices: expected a numpy array, got list"),
        (
            _with(1, np.zeros((5, 1), np.int32)),
            "CSRMatrix.indices: expected a 1-D array, got shape (5, 1)",
        ),
        (
            _with(0, np.array([0, 2, 3, 5], np.int64)),
            "CSRMatrix.indptr: expected length rows + 1 = 5, got 4",
        ),
        (
            _with(0, np.array([1, 2, 2, 3, 5], np.int64)),
            "CSRMatrix.indptr: must start at 0, got indptr[0] = 1",
        ),
        (
            _with(0, np.array([0, 2, 1, 3, 5], np.int64)),
            "CSRMatrix.indptr: must be non-decreasing, but row 1 has indptr[1] = 2 > "
            "indptr[2] = 1",
        ),
        (  # the first row whose pointer goes down is named, not the empty row before it
            (np.array([0, 0, 2, 1, 3], np.int64), np.array([1, 5, 0], np.int32),
             np.ones(3, np.float32), (4, 10)),
            "CSRMatrix.indptr: must be non-decreasing, but row 2 has indptr[2] = 2 > "
            "indptr[3] = 1",
        ),
        (
            _with(0, np.array([0, 2, 2, 3, 4], np.int64)),
            "CSRMatrix.indptr: last entry indptr[4] = 4 must equal len(indices) = len(data) = 5",
        ),
        (
            _with(2, np.arange(4, dtype=np.float32)),
            "CSRMatrix.data: length 4 differs from len(indices) = 5",
        ),
        (
            _with(1, np.array([1, 5, 0, 2, 12], np.int32)),
            "CSRMatrix.indices: row 3 has column 12 >= 10 columns",
        ),
        (  # column 0 of a matrix without columns is out of range, not negative
            (np.array([0, 1], np.int64), np.array([0], np.int32), np.ones(1, np.float32),
             (1, 0)),
            "CSRMatrix.indices: row 0 has column 0 >= 0 columns",
        ),
        (
            _with(1, np.array([1, 5, -1, 2, 9], np.int32)),
            "CSRMatrix.indices: row 2 has negative column -1",
        ),
        (
            _with(1, np.array([5, 1, 0, 2, 9], np.int32)),
            "CSRMatrix.indices: row 0 columns must be strictly increasing, but column 1 follows "
            "column 5",
        ),
        (
            _with(1, np.array([1, 5, 0, 9, 9], np.int32)),
            "CSRMatrix.indices: row 3 columns must be strictly increasing, but column 9 follows "
            "column 9",
        ),
    ],
)
def test_validator_names_each_defect(arrays, message):
    """Each defect's whole message: the field, the row or position, the value, what was due."""
    exactly = f"^{re.escape(message)}$"
    with pytest.raises(ValueError, match=exactly):
        validate_csr_arrays(*arrays)
    with pytest.raises(ValueError, match=exactly):
        CSRMatrix(*arrays)


def test_a_decreasing_column_across_a_row_boundary_is_fine():
    validate_csr_arrays(*_valid_arrays())  # row 0 ends at 5, row 2 starts at 0


@st.composite
def corrupted_csr(draw):
    """A valid CSR from a random dense matrix, then exactly one corruption."""
    values, mask = draw(dense_and_mask(max_side=7))
    mask[..., :1] = 1  # at least one entry when the matrix is non-empty
    csr = CSRMatrix.from_dense(values, mask)
    indptr, indices, data = (np.array(a) for a in (csr.indptr, csr.indices, csr.data))
    rows, cols = csr.shape
    kinds = ["indptr_length", "indptr_start", "indptr_last", "data_length"]
    if csr.nnz:
        kinds += ["column_too_big", "column_negative"]
    if rows >= 2:
        kinds += ["indptr_decrease"]
    if np.any(np.diff(indptr) >= 2):
        kinds += ["row_unsorted"]
    kind = draw(st.sampled_from(kinds))
    if kind == "indptr_length":
        indptr = np.append(indptr, indptr[-1])
    elif kind == "indptr_start":
        indptr = indptr + draw(st.integers(1, 3))
    elif kind == "indptr_last":
        indptr = indptr.copy()
        indptr[-1] += draw(st.sampled_from([-1, 1, 1000]))
    elif kind == "data_length":
        data = np.append(data, np.float32(1.0))
    elif kind == "column_too_big":
        k = draw(st.integers(0, csr.nnz - 1))
        indices[k] = cols + draw(st.integers(0, 2**20))
    elif kind == "column_negative":
        k = draw(st.integers(0, csr.nnz - 1))
        indices[k] = -draw(st.integers(1, 2**20))
    elif kind == "indptr_decrease":  # an interior pointer above its successor
        row = draw(st.integers(1, rows - 1))
        indptr[row] = indptr[row + 1] + 1
    elif kind == "row_unsorted":
        row = int(np.argmax(np.diff(indptr) >= 2))
        start = indptr[row]
        indices[start], indices[start + 1] = indices[start + 1], indices[start]
    return indptr, indices, data, (rows, cols), kind


@FUZZ
@given(corrupted_csr())
def test_every_corruption_is_a_value_error(case):
    indptr, indices, data, shape, _ = case
    with pytest.raises(ValueError, match=r"^CSRMatrix\.(indptr|indices|data|shape)"):
        CSRMatrix(indptr, indices, data, shape)


def _is_valid_slow(indptr, indices, rows, cols):
    """The CSR rules one at a time, in plain Python."""
    if len(indptr) != rows + 1 or indptr[0] != 0 or indptr[-1] != len(indices):
        return False
    for row in range(rows):
        start, stop = indptr[row], indptr[row + 1]
        if start > stop:
            return False
        columns = [int(c) for c in indices[start:stop]]
        if any(not 0 <= c < cols for c in columns) or columns != sorted(set(columns)):
            return False
    return True


@FUZZ
@given(
    rows=st.integers(0, 5),
    cols=st.integers(0, 5),
    indptr=st.lists(st.integers(-2, 9), max_size=7),
    indices=st.lists(st.integers(-2, 7), max_size=9),
)
def test_validator_accepts_exactly_the_valid_arrays(rows, cols, indptr, indices):
    arrays = (
        np.array(indptr, np.int64),
        np.array(indices, np.int32),
        np.ones(len(indices), np.float32),
        (rows, cols),
    )
    try:
        validate_csr_arrays(*arrays)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == _is_valid_slow(indptr, indices, rows, cols)


def test_column_count_is_capped_where_int32_column_indices_end():
    """2**31 columns still fit int32 indices (the last is 2**31 - 1); one more does not."""
    empty = (np.zeros(2, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    assert validate_csr_arrays(*empty, (1, 2**31)) == (1, 2**31)
    with pytest.raises(ValueError, match=re.escape(
            f"CSRMatrix.shape: {2**31 + 1} columns do not fit int32 column indices") + "$"):
        validate_csr_arrays(*empty, (1, 2**31 + 1))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CSRMatrix.from_dense(np.ones(3)),
         "CSRMatrix.from_dense: dense must be 2-D, got shape (3,)"),
        (lambda: CSRMatrix.from_dense(np.ones((2, 3)), np.ones((3, 2))),
         "CSRMatrix.from_dense: mask shape (3, 2) differs from dense shape (2, 3)"),
        (lambda: CSRMatrix.from_scipy(np.eye(2)),
         "CSRMatrix.from_scipy: expected a scipy.sparse matrix, got ndarray"),
    ],
)
def test_conversions_name_the_bad_argument(build, message):
    """The whole message: the conversion, the argument, its value and what was expected."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        build()


def test_without_copy_the_matrix_takes_its_arrays_and_makes_them_contiguous():
    """copy=False: contiguous arrays are taken as they are and made read-only in place; a strided
    view is copied to a contiguous array first (the kernels walk the arrays by pointer)."""
    indptr, indices, data, shape = _valid_arrays()
    csr = CSRMatrix(indptr, indices, data, shape, copy=False)
    assert csr.indptr is indptr and csr.indices is indices and csr.data is data
    assert not indices.flags.writeable
    strided = np.array([1, -7, 5, -7, 0, -7, 2, -7, 9, -7], np.int32)[::2]
    csr = CSRMatrix(*_with(1, strided), copy=False)
    assert csr.indices.flags.c_contiguous and not csr.indices.flags.writeable
    np.testing.assert_array_equal(csr.indices, [1, 5, 0, 2, 9])


def test_from_scipy_leaves_the_callers_matrix_as_it_was():
    """Summing duplicates and sorting happen on a copy: a caller's unsorted CSR is not touched."""
    matrix = scipy.sparse.csr_array(
        (np.array([1.0, 2.0, 5.0]), np.array([3, 0, 3]), np.array([0, 3, 3])), shape=(2, 4)
    )
    csr = CSRMatrix.from_scipy(matrix)
    np.testing.assert_array_equal(csr.indices, [0, 3])
    np.testing.assert_array_equal(csr.data, [2.0, 6.0])
    np.testing.assert_array_equal(matrix.indices, [3, 0, 3])
    np.testing.assert_array_equal(matrix.data, [1.0, 2.0, 5.0])
    np.testing.assert_array_equal(matrix.indptr, [0, 3, 3])


def test_pattern_is_a_boolean_mask_that_selects_the_stored_entries():
    """pattern() is the pruning mask as booleans, so it can index the weights directly."""
    values = np.array([[0.0, 2.0, 0.0], [3.0, 0.0, 0.0]], np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0]], np.float32)  # (0, 0) kept although it is 0.0
    pattern = CSRMatrix.from_dense(values, mask).pattern()
    assert pattern.dtype == np.bool_
    np.testing.assert_array_equal(values[pattern], [0.0, 2.0, 3.0])
