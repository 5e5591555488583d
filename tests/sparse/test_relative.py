"""RelativeIndexMatrix: the paper's 8-bit relative steps with Deep Compression's zero fillers.

Pinned here: `from_csr` -> `to_csr` / `to_dense` gives back the CSRMatrix in both layouts (generated
matrices and the edge shapes); fillers appear exactly where a step passes 256 positions, hold 0.0
and step code 255, and are counted; ``nbytes`` is 5 per entry + 4 per pointer; every refusal of
the constructor and of `from_csr` whole; read-only arrays; uint32 pointers and the 2**32 cap.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minprune.sparse import relative
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.relative import MAX_STEP, RelativeIndexMatrix

FUZZ = settings(max_examples=150, deadline=None)
LAYOUT = pytest.mark.parametrize("layout", ["csr", "csc"])
FILLER_CODE = MAX_STEP - 1  # a filler walks 256 positions on: code = step - 1


@st.composite
def dense_and_mask(draw, max_side=9):
    """A small (values, mask) pair, as in test_sparse_csr: shapes 0..9, densities 0 and 1
    included, some kept values exactly zero."""
    rows, cols = draw(st.integers(0, max_side)), draw(st.integers(0, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, cols)).astype(np.float32)
    values[rng.random((rows, cols)) < 0.2] = 0.0  # some survivors are exactly zero
    mask = (rng.random((rows, cols)) < density).astype(np.float32)
    return values, mask


# Position steps around the 8-bit limit: 256 fits one code, 257 needs a filler first, 512 one
# filler and a full code, 513 two fillers. (A step is position - previous position; a line's
# first entry steps from -1.)
GAPS = st.sampled_from([1, 2, 3, 255, 256, 257, 300, 511, 512, 513])


@st.composite
def long_lines(draw):
    """(CSRMatrix, its lines' positions) whose lines (rows) run past 256 positions, built from
    `GAPS`; values non-zero (a kept 0.0 at a step of 256 reads as a filler, see
    test_a_kept_zero_at_a_step_of_256_reads_as_a_filler)."""
    line_count = draw(st.integers(1, 4))
    lines = [np.cumsum(draw(st.lists(GAPS, max_size=5)), dtype=np.int64) - 1
             for _ in range(line_count)]
    extent = max((int(line[-1]) + 1 for line in lines if line.size), default=0)
    extent += draw(st.integers(0, 300))
    indptr = np.zeros(line_count + 1, np.int64)
    indptr[1:] = np.cumsum([line.size for line in lines])
    positions = np.concatenate(lines).astype(np.int32)
    magnitudes = draw(st.lists(st.floats(0.25, 8.0, width=32), min_size=positions.size,
                               max_size=positions.size))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=positions.size,
                          max_size=positions.size))
    data = (np.array(magnitudes) * np.array(signs)).astype(np.float32)
    return CSRMatrix(indptr, positions, data, (line_count, extent)), lines


def expected_fillers(lines) -> int:
    """Fillers the format needs: (step - 1) // 256 before each entry, as the docstring says."""
    return sum(int(((np.diff(line, prepend=-1) - 1) // MAX_STEP).sum()) for line in lines)


def assert_same_csr(got: CSRMatrix, want: CSRMatrix):
    assert got.shape == want.shape
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))


def decode(matrix: RelativeIndexMatrix):
    """(line, position) of every entry, walked one entry at a time as the kernels walk them."""
    decoded = []
    for line in range(matrix.pointers.size - 1):
        position = -1
        for k in range(matrix.pointers[line], matrix.pointers[line + 1]):
            position += int(matrix.steps[k]) + 1
            decoded.append((line, position))
    return decoded


def _valid_arrays():
    """4 x 10, by row: row 0 at columns 1, 5; row 1 empty; row 2 at 0; row 3 at 2, 9."""
    return (
        np.array([0, 2, 2, 3, 5], np.uint32),
        np.array([1, 3, 0, 2, 6], np.uint8),
        np.arange(1, 6, dtype=np.float32),
        (4, 10),
        "csr",
    )


def _with(position, value):
    arrays = list(_valid_arrays())
    arrays[position] = value
    return arrays


# -- round trips ---------------------------------------------------------------------------


@FUZZ
@given(dense_and_mask(), st.sampled_from(["csr", "csc"]))
def test_round_trip_gives_back_the_csr_matrix(case, layout):
    values, mask = case
    csr = CSRMatrix.from_dense(values, mask)
    matrix = RelativeIndexMatrix.from_csr(csr, layout)
    assert (matrix.shape, matrix.layout) == (csr.shape, layout)
    assert_same_csr(matrix.to_csr(), csr)  # exact zeros kept: no step here reaches 256
    dense = matrix.to_dense()
    assert dense.dtype == np.float32
    np.testing.assert_array_equal(dense, csr.to_dense())
    assert matrix.entries == csr.nnz and matrix.fillers == 0
    lines = csr.shape[0] if layout == "csr" else csr.shape[1]
    assert matrix.nbytes == 5 * matrix.entries + 4 * (lines + 1)


@FUZZ
@given(long_lines(), st.sampled_from(["csr", "csc"]))
def test_long_lines_get_their_fillers_and_round_trip(case, layout):
    """In "csc" the rows are given transposed, so the long lines are the stored columns."""
    csr, lines = case
    if layout == "csc":
        csr = csr.transpose()
    matrix = RelativeIndexMatrix.from_csr(csr, layout)
    assert_same_csr(matrix.to_csr(), csr)
    np.testing.assert_array_equal(matrix.to_dense(), csr.to_dense())
    assert matrix.entries - csr.nnz == expected_fillers(lines) == matrix.fillers
    assert matrix.nbytes == 5 * matrix.entries + 4 * (len(lines) + 1)
    # Every entry's decoded position is a stored position or a filler's; fillers hold 0.0 at 255.
    decoded = decode(matrix)
    stored = {(line, int(p)) for line, positions in enumerate(lines) for p in positions}
    is_filler = np.array([entry not in stored for entry in decoded], dtype=bool)
    assert int(is_filler.sum()) == matrix.fillers
    assert np.all(matrix.values[is_filler] == 0.0)
    assert np.all(matrix.steps[is_filler] == FILLER_CODE)
    assert {entry for entry, filler in zip(decoded, is_filler, strict=True) if not filler} == stored


@pytest.mark.parametrize(
    ("gap", "fillers", "last_code"),
    [(256, 0, 255), (257, 1, 0), (512, 1, 255), (513, 2, 0), (1000, 3, 231)],
)
@LAYOUT
def test_a_gap_gets_its_fillers(gap, fillers, last_code, layout):
    """One line with entries at positions 0 and gap: the second entry's step is ``gap``."""
    indptr = np.array([0, 2], np.int64)
    csr = CSRMatrix(indptr, np.array([0, gap], np.int32), np.array([1.5, -2.5], np.float32),
                    (1, gap + 1))
    matrix = RelativeIndexMatrix.from_csr(csr if layout == "csr" else csr.transpose(), layout)
    assert matrix.entries == 2 + fillers and matrix.fillers == fillers
    np.testing.assert_array_equal(matrix.pointers, [0, 2 + fillers])
    np.testing.assert_array_equal(matrix.steps, [0] + [FILLER_CODE] * fillers + [last_code])
    np.testing.assert_array_equal(matrix.values, [1.5] + [0.0] * fillers + [-2.5])
    assert [position for _, position in decode(matrix)] == (
        [0] + [256 * (i + 1) for i in range(fillers)] + [gap])
    assert matrix.nbytes == 5 * (2 + fillers) + 4 * 2


@pytest.mark.parametrize(("first", "fillers"), [(254, 0), (255, 0), (256, 1), (511, 1), (512, 2)])
def test_a_lines_first_entry_steps_from_minus_one(first, fillers):
    csr = CSRMatrix(np.array([0, 1], np.int64), np.array([first], np.int32),
                    np.array([3.0], np.float32), (1, first + 1))
    matrix = RelativeIndexMatrix.from_csr(csr, "csr")
    np.testing.assert_array_equal(matrix.steps,
                                  [FILLER_CODE] * fillers + [first - MAX_STEP * fillers])
    assert matrix.fillers == fillers
    assert_same_csr(matrix.to_csr(), csr)


def test_fillers_start_afresh_on_each_line():
    """Line 0 reaches 700 over fillers at 255 and 511; line 1's entry at 10 steps from -1."""
    dense = np.zeros((2, 701), np.float32)
    dense[0, 700], dense[1, 10] = 1.0, 2.0
    csr = CSRMatrix.from_dense(dense)
    matrix = RelativeIndexMatrix.from_csr(csr, "csr")
    np.testing.assert_array_equal(matrix.pointers, [0, 3, 4])
    np.testing.assert_array_equal(matrix.steps, [255, 255, 188, 10])
    assert matrix.fillers == 2
    np.testing.assert_array_equal(RelativeIndexMatrix.from_csr(csr, "csc").to_dense(), dense)


def test_a_kept_zero_at_a_step_of_256_reads_as_a_filler():
    """The documented departure: a kept weight of exactly 0.0 that is 256 on from its neighbour
    is stored like a filler, counted in `fillers` and dropped by `to_csr` (dense unchanged)."""
    csr = CSRMatrix(np.array([0, 2], np.int64), np.array([0, 256], np.int32),
                    np.array([1.0, 0.0], np.float32), (1, 257))
    matrix = RelativeIndexMatrix.from_csr(csr, "csr")
    assert matrix.entries == 2 and matrix.fillers == 1
    assert matrix.to_csr().nnz == 1
    np.testing.assert_array_equal(matrix.to_dense(), csr.to_dense())


@pytest.mark.parametrize(
    "dense",
    [
        np.zeros((0, 5), np.float32),  # no rows
        np.zeros((5, 0), np.float32),  # no columns
        np.zeros((0, 0), np.float32),
        np.zeros((4, 7), np.float32),  # all-zero: every line empty (density 0)
        np.arange(1, 8, dtype=np.float32).reshape(1, 7),  # 1 x N, density 1
        np.arange(1, 8, dtype=np.float32).reshape(7, 1),  # N x 1, density 1
        np.array([[0, 0, 0], [1, 0, 2], [0, 0, 0], [0, 3, 0]], np.float32),  # empty lines
    ],
)
@LAYOUT
def test_edge_shapes_round_trip(dense, layout):
    csr = CSRMatrix.from_dense(dense)
    matrix = RelativeIndexMatrix.from_csr(csr, layout)
    assert_same_csr(matrix.to_csr(), csr)
    np.testing.assert_array_equal(matrix.to_dense(), dense)
    assert matrix.to_dense().shape == dense.shape
    lines = dense.shape[0] if layout == "csr" else dense.shape[1]
    assert matrix.nbytes == 5 * csr.nnz + 4 * (lines + 1)
    assert repr(matrix) == (f"RelativeIndexMatrix(shape={dense.shape}, layout={layout!r}, "
                            f"entries={csr.nnz}, nbytes={matrix.nbytes})")


def test_dtypes_and_read_only_arrays():
    matrix = RelativeIndexMatrix(*_valid_arrays())
    assert (matrix.pointers.dtype, matrix.steps.dtype, matrix.values.dtype) == (
        np.uint32, np.uint8, np.float32)
    assert relative.POINTER_DTYPE == np.uint32
    for array in (matrix.pointers, matrix.steps, matrix.values):
        assert not array.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1
    with pytest.raises(AttributeError):
        matrix.shape = (3, 3)
    from_csr = RelativeIndexMatrix.from_csr(CSRMatrix.from_dense(np.eye(3, dtype=np.float32)))
    assert from_csr.layout == "csc"  # the default: EIE's layout
    assert not any(a.flags.writeable for a in (from_csr.pointers, from_csr.steps, from_csr.values))


def test_a_validated_matrix_cannot_change_under_a_view():
    pointers, steps, values, shape, layout = _valid_arrays()
    base = steps.copy()
    matrix = RelativeIndexMatrix(pointers, base[:], values, shape, layout)
    base[-1] = 200  # would walk line 3 to position 203 of 10
    assert matrix.steps[-1] == 6


# -- refusals ------------------------------------------------------------------------------


def test_the_valid_arrays_are_the_matrix_their_docstring_says():
    dense = np.zeros((4, 10), np.float32)
    dense[0, 1], dense[0, 5], dense[2, 0], dense[3, 2], dense[3, 9] = 1, 2, 3, 4, 5
    np.testing.assert_array_equal(RelativeIndexMatrix(*_valid_arrays()).to_dense(), dense)
    transposed = RelativeIndexMatrix(*_with(3, (10, 4))[:4], "csc")  # the same lines as columns
    np.testing.assert_array_equal(transposed.to_dense(), dense.T)


P = "RelativeIndexMatrix.pointers: "


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (_with(4, "coo"),
         "RelativeIndexMatrix.layout: expected one of ('csr', 'csc'), got 'coo'"),
        (_with(4, "CSR"),
         "RelativeIndexMatrix.layout: expected one of ('csr', 'csc'), got 'CSR'"),
        (_with(3, (4, -1)), "RelativeIndexMatrix.shape: expected 2 non-negative ints, got (4, -1)"),
        (_with(3, (4, 10, 1)),
         "RelativeIndexMatrix.shape: expected 2 non-negative ints, got (4, 10, 1)"),
        (_with(3, (4,)), "RelativeIndexMatrix.shape: expected 2 non-negative ints, got (4,)"),
        (_with(3, (4.5, 10)),
         "RelativeIndexMatrix.shape: expected 2 non-negative ints, got (4.5, 10)"),
        (_with(3, ("4", None)),
         "RelativeIndexMatrix.shape: expected 2 non-negative ints, got ('4', None)"),
        (_with(3, None), "RelativeIndexMatrix.shape: expected 2 non-negative ints, got None"),
        # each array: dtype, dimensions, not an array
        (_with(0, np.array([0, 2, 2, 3, 5], np.int64)),
         P + "expected a 1-D uint32 array, got int64 (5,)"),
        (_with(0, np.array([[0, 2, 2, 3, 5]], np.uint32)),
         P + "expected a 1-D uint32 array, got uint32 (1, 5)"),
        (_with(0, [0, 2, 2, 3, 5]), P + "expected a 1-D uint32 array, got list "),
        (_with(1, np.array([1, 3, 0, 2, 6], np.int8)),
         "RelativeIndexMatrix.steps: expected a 1-D uint8 array, got int8 (5,)"),
        (_with(1, np.array([[1, 3, 0, 2, 6]], np.uint8).T),
         "RelativeIndexMatrix.steps: expected a 1-D uint8 array, got uint8 (5, 1)"),
        (_with(1, (1, 3, 0, 2, 6)),
         "RelativeIndexMatrix.steps: expected a 1-D uint8 array, got tuple "),
        (_with(2, np.arange(1.0, 6.0)),
         "RelativeIndexMatrix.values: expected a 1-D float32 array, got float64 (5,)"),
        (_with(2, np.float32(1.0)),
         "RelativeIndexMatrix.values: expected a 1-D float32 array, got float32 ()"),
        (_with(2, np.zeros((5, 1), np.float32)),
         "RelativeIndexMatrix.values: expected a 1-D float32 array, got float32 (5, 1)"),
        # pointers: length, start, end, order
        (_with(0, np.array([0, 2, 3, 5], np.uint32)),
         P + "expected 5 pointers from 0 to len(steps) = 5, got 4 from 0 to 5"),
        (_with(0, np.array([0, 2, 2, 3, 5, 5], np.uint32)),
         P + "expected 5 pointers from 0 to len(steps) = 5, got 6 from 0 to 5"),
        (_with(0, np.array([], np.uint32)),
         P + "expected 5 pointers from 0 to len(steps) = 5, got 0 from None to None"),
        (_with(0, np.array([1, 2, 2, 3, 5], np.uint32)),
         P + "expected 5 pointers from 0 to len(steps) = 5, got 5 from 1 to 5"),
        (_with(0, np.array([0, 2, 2, 3, 4], np.uint32)),
         P + "expected 5 pointers from 0 to len(steps) = 5, got 5 from 0 to 4"),
        (_with(0, np.array([0, 2, 2, 3, 6], np.uint32)),
         P + "expected 5 pointers from 0 to len(steps) = 5, got 5 from 0 to 6"),
        (_with(0, np.array([0, 3, 2, 3, 5], np.uint32)), P + "line 1 ends before it starts"),
        (_with(0, np.array([0, 2, 2, 5, 3, 5], np.uint32))[:3] + [(5, 10), "csr"],
         P + "line 3 ends before it starts"),
        # values and steps of different lengths
        (_with(2, np.arange(1, 5, dtype=np.float32)),
         "RelativeIndexMatrix.values: expected one value per step (5), got 4"),
        (_with(2, np.arange(1, 7, dtype=np.float32)),
         "RelativeIndexMatrix.values: expected one value per step (5), got 6"),
        # a step past the line's extent: columns for "csr", rows for "csc"
        (_with(1, np.array([1, 3, 0, 2, 7], np.uint8)),
         "RelativeIndexMatrix.steps: line 3 reaches position 10 >= 10"),
        (_with(1, np.array([1, 255, 0, 2, 6], np.uint8)),
         "RelativeIndexMatrix.steps: line 0 reaches position 257 >= 10"),
        (_with(1, np.array([1, 3, 10, 2, 6], np.uint8)),
         "RelativeIndexMatrix.steps: line 2 reaches position 10 >= 10"),
        (_with(3, (4, 9)), "RelativeIndexMatrix.steps: line 3 reaches position 9 >= 9"),
        (_with(3, (4, 0)), "RelativeIndexMatrix.steps: line 0 reaches position 1 >= 0"),
        # "csc" reads the same arrays as columns: 4 lines of extent rows
        ([*_valid_arrays()[:3], (9, 4), "csc"],
         "RelativeIndexMatrix.steps: line 3 reaches position 9 >= 9"),
        ([*_valid_arrays()[:3], (4, 10), "csc"],
         P + "expected 11 pointers from 0 to len(steps) = 5, got 5 from 0 to 5"),
    ],
)
def test_constructor_refuses_with_the_whole_message(arrays, message):
    with pytest.raises(ValueError) as refusal:
        RelativeIndexMatrix(*arrays)
    assert str(refusal.value) == message


@pytest.mark.parametrize(
    ("argument", "layout", "message"),
    [
        (np.eye(3, dtype=np.float32), "csc",
         "RelativeIndexMatrix.from_csr: expected a CSRMatrix, got ndarray"),
        (None, "csr", "RelativeIndexMatrix.from_csr: expected a CSRMatrix, got NoneType"),
        (RelativeIndexMatrix(*_valid_arrays()), "csr",
         "RelativeIndexMatrix.from_csr: expected a CSRMatrix, got RelativeIndexMatrix"),
        (CSRMatrix.from_dense(np.eye(3, dtype=np.float32)), "coo",
         "RelativeIndexMatrix.from_csr: layout must be one of ('csr', 'csc'), got 'coo'"),
        (CSRMatrix.from_dense(np.eye(3, dtype=np.float32)), None,
         "RelativeIndexMatrix.from_csr: layout must be one of ('csr', 'csc'), got None"),
    ],
)
def test_from_csr_refuses_with_the_whole_message(argument, layout, message):
    with pytest.raises(ValueError) as refusal:
        RelativeIndexMatrix.from_csr(argument, layout)
    assert str(refusal.value) == message


# -- the uint32 pointer cap -------------------------------------------------------------------


def test_more_entries_than_uint32_pointers_hold_are_refused():
    """512 rows of 2**31 columns, one weight at each row's last column: 2**23 - 1 fillers before
    it, so 512 * 2**23 = 2**32 entries, one more than uint32 counts. Refused from the
    positions alone, before any entry is allocated (the CSR holds 512 weights)."""
    rows, cols = 512, 2**31
    csr = CSRMatrix(np.arange(rows + 1, dtype=np.int64), np.full(rows, cols - 1, np.int32),
                    np.ones(rows, np.float32), (rows, cols), copy=False)
    with pytest.raises(ValueError) as refusal:
        RelativeIndexMatrix.from_csr(csr, "csr")
    assert str(refusal.value) == (
        "RelativeIndexMatrix: 4294967296 entries do not fit uint32 pointers")


@pytest.mark.parametrize(("fillers", "refused"), [(65534, False), (65535, True)])
def test_the_pointer_cap_is_the_pointer_dtypes_largest_value(monkeypatch, fillers, refused):
    """The cap's edge, with uint16 pointers standing in for uint32 (the edge at 2**32 - 1
    entries would need 20 GB): 65535 entries fit, 65536 do not; fillers count as entries."""
    monkeypatch.setattr(relative, "POINTER_DTYPE", np.dtype(np.uint16))
    position = MAX_STEP * fillers  # a first entry here is preceded by `fillers` fillers
    csr = CSRMatrix(np.array([0, 1], np.int64), np.array([position], np.int32),
                    np.array([2.0], np.float32), (1, position + 1))
    if refused:
        with pytest.raises(ValueError, match=r"^RelativeIndexMatrix: 65536 entries do not fit "):
            RelativeIndexMatrix.from_csr(csr, "csr")
    else:
        matrix = RelativeIndexMatrix.from_csr(csr, "csr")
        assert matrix.entries == 65535 and matrix.fillers == 65534
        assert matrix.pointers.dtype == np.uint16
        np.testing.assert_array_equal(matrix.pointers, [0, 65535])
        assert_same_csr(matrix.to_csr(), csr)
