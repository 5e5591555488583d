"""Checks for chapter 5 (storage): CSR by hand, the fillers of the relative index, and the index
width chosen for a layer. Each ``exercise_N`` refuses a wrong answer with a hint."""

from __future__ import annotations

import numpy as np

import minprune as mp
from checks import unanswered

__all__ = ["exercise_1", "exercise_2", "exercise_3", "best_bytes_by_width", "WIDTHS"]

# The 4 x 6 matrix of the chapter's section 1: a kept 0.0 at (0, 2), an empty row 2.
SMALL_WEIGHT = np.array([[0.9, -0.1, 0.0, 0.4, 0.2, -0.7],
                         [0.1, 0.3, -0.6, 0.05, 0.8, 0.2],
                         [0.02, -0.03, 0.01, 0.0, 0.04, -0.02],
                         [-0.5, 0.1, 0.2, -0.1, 0.6, 0.0]], dtype=np.float32)
SMALL_MASK = np.array([[1, 0, 1, 1, 0, 1],
                       [0, 0, 1, 0, 1, 0],
                       [0, 0, 0, 0, 0, 0],
                       [1, 0, 0, 0, 1, 0]], dtype=np.float32)
WIDTHS = range(1, 17)  # the index widths exercise 3 chooses among


# -- Exercise 1: CSR from a dense matrix ---------------------------------------------------------

def _check_csr(to_csr, dense, mask, what):
    answer = to_csr(dense, mask)
    assert isinstance(answer, tuple | list) and len(answer) == 3, (
        f"{what}: to_csr must return the three arrays (indptr, indices, data), got "
        f"{type(answer).__name__}")
    got_indptr, got_indices, got_data = (np.asarray(part).ravel() for part in answer)
    want = mp.sparse.CSRMatrix.from_dense(dense, mask)
    rows = dense.shape[0]
    assert got_indptr.shape == (rows + 1,), (
        f"{what}: indptr needs rows + 1 = {rows + 1} entries (the first is 0, one more per row, "
        f"empty rows included), got {got_indptr.shape[0]} -- return (indptr, indices, data) in "
        "that order")
    assert len(got_indices) == len(got_data) == want.nnz, (
        f"{what}: {len(got_indices)} column indices and {len(got_data)} values stored, the mask "
        f"keeps {want.nnz} -- a kept weight that is exactly 0.0 is still stored: the mask decides, "
        "not the value")
    assert got_indptr[0] == 0 and got_indptr[-1] == want.nnz, (
        f"{what}: indptr is a running total of the row lengths, from 0 up to the {want.nnz} "
        f"stored entries; got {got_indptr[0]} .. {got_indptr[-1]}")
    assert np.all(np.diff(got_indptr) >= 0), (
        f"{what}: indptr must never decrease: indptr[r] is where row r starts in data, a running "
        "total of the row lengths, not the row lengths themselves")
    assert np.array_equal(got_indices, want.indices), (
        f"{what}: the column indices differ -- read the kept entries row by row (row-major), "
        "columns ascending within a row")
    assert np.array_equal(got_indptr, want.indptr), (
        f"{what}: indptr[r] is where row r starts in data (an empty row repeats the pointer)")
    assert np.array_equal(got_data.astype(np.float32), want.data), (
        f"{what}: data must hold the kept values in the order of indices")


def exercise_1(to_csr) -> None:
    """``to_csr(dense, mask) -> (indptr, indices, data)``, against `CSRMatrix.from_dense`."""
    rng = np.random.default_rng(1)
    big = rng.standard_normal((300, 784)).astype(np.float32)
    cases = [
        (SMALL_WEIGHT, SMALL_MASK, "the 4 x 6 matrix"),
        (SMALL_WEIGHT, np.ones_like(SMALL_MASK), "every weight kept"),
        (SMALL_WEIGHT, np.zeros_like(SMALL_MASK), "nothing kept"),
        (SMALL_WEIGHT.T.copy(), SMALL_MASK.T.copy(), "the transposed matrix (6 x 4)"),
        (big, rng.random((300, 784)) < 0.08, "a random 300 x 784 mask at 8%"),
    ]
    for dense, mask, what in cases:
        _check_csr(to_csr, dense, mask, what)
    print("Exercise 1: correct")


# -- Exercise 2: the fillers of one row ----------------------------------------------------------

FILLER_CASES = [  # (columns, fillers at 5 bits, what a wrong answer usually got wrong)
    ([], 0, "an empty row needs nothing"),
    ([0], 0, "column 0 is step 1 from the row start (previous = -1)"),
    ([31], 0, "column 31 is step 32 from the row start (previous = -1), and 5 bits hold the "
              "steps 1 .. 32"),
    ([32], 1, "column 32 is step 33 from the row start (previous = -1): it does not fit"),
    ([40, 45], 1, "the second survivor's step is 5, from the previous survivor (column 40), not "
                   "from the row start"),
    ([0, 32], 0, "a step of exactly 32 fits in 5 bits: the field stores the steps 1 .. 32"),
    ([0, 33], 1, "a step of 33 does not fit in 5 bits"),
    ([3, 200], 6, "a step of 197 needs more than one filler: each filler advances only 32 "
                  "columns, and the step left after them must fit too"),
    ([3, 67], 1, "a step of 64: one filler advances 32 columns and leaves a step of 32, which "
                 "fits -- no second filler"),
    ([5, 10, 100, 101, 783], 23, "count every long step of the row, the first one included"),
]


def exercise_2(count_fillers) -> None:
    """``count_fillers(columns, bits)`` for one row, against hand cases and
    `relative_index_fillers`."""
    for columns, expected, hint in FILLER_CASES:
        got = count_fillers(columns, 5)
        assert got is not None, "Exercise 2: count_fillers returns None -- return the count"
        assert got == expected, (
            f"count_fillers({columns}, 5) = {got}, expected {expected}: {hint}")
    for columns, expected, hint in (([8], 1, "at 3 bits the steps are 1 .. 8: column 8 is step 9"),
                                    ([7], 0, "at 3 bits column 7 is step 8, which fits")):
        got = count_fillers(columns, 3)
        assert got == expected, f"count_fillers({columns}, 3) = {got}, expected {expected}: {hint}"
    rng = np.random.default_rng(2)
    for _ in range(20):
        keep = rng.random(784) < rng.uniform(0.01, 0.3)
        one_row = mp.sparse.CSRMatrix.from_dense(np.ones((1, 784), dtype=np.float32), keep[None])
        for bits in (3, 5, 8):
            expected = mp.sparse.relative_index_fillers(one_row, bits)
            got = count_fillers(np.flatnonzero(keep), bits)
            assert got == expected, (
                f"a random row of 784 columns with {keep.sum()} survivors at {bits} bits: got "
                f"{got} fillers, expected {expected}")
    print("Exercise 2: correct")


# -- Exercise 3: the index width, chosen ---------------------------------------------------------

def best_bytes_by_width(weight, mask) -> dict[int, int]:
    """Relative-index bytes of one layer at every width of `WIDTHS` (`storage_report`'s count)."""
    return {bits: mp.sparse.storage_report(weight, mask, index_bits=bits).relative_bytes
            for bits in WIDTHS}


def _layers(**models):
    for label, model in models.items():
        for name, layer in mp.prune.layers_by_weight_name(model).items():
            yield f"{label} {name}", np.asarray(layer.weight.data), np.asarray(layer.weight_mask)


def _random_layers():
    rng = np.random.default_rng(3)
    for rows, cols, density in [(300, 784, 0.01), (300, 784, 0.08), (100, 300, 0.3),
                                (50, 500, 0.6), (20, 4000, 0.002)]:
        mask = rng.random((rows, cols)) < density
        yield (f"a random {rows} x {cols} mask at {density:.1%}",
               rng.standard_normal((rows, cols)).astype(np.float32), mask)
    one = np.zeros((1, 10), dtype=np.float32)
    one[0, 0] = 1.0  # one entry: 33 .. 40 bits with its pointers fit the same 13 bytes
    yield "a row with one survivor, at column 0", one, one


def _width_hint(got, best, fillers):
    """What a width other than the best got wrong (``fillers``: width -> fillers)."""
    if got > best:
        hint = (f"a narrower width takes fewer bytes: at {got} bits the layer needs "
                f"{fillers[got]:,} fillers against {fillers[best]:,}, but every entry pays for "
                "every bit of its step -- fewest fillers is not fewest bytes")
    else:
        hint = (f"a wider width takes fewer bytes: at {got} bits the layer needs "
                f"{fillers[got]:,} fillers against {fillers[best]:,}, and each filler is a whole "
                "extra entry (a value and a step)")
    if got in (5, 8):
        hint += ". The paper's 5 and 8 bits are fixed choices, not each layer's best"
    return hint


def exercise_3(best_index_bits, fc1_best_vs_paper, lenet_300, lenet_5) -> None:
    """``best_index_bits(weight, mask)``: the width of fewest relative-index bytes (the smaller one
    on a tie); ``fc1_best_vs_paper``: "below", "at" or "above" the paper's 5 bits for fc1."""
    for what, weight, mask in [*_layers(**{"LeNet-300-100": lenet_300, "LeNet-5": lenet_5}),
                              *_random_layers()]:
        got = best_index_bits(weight, mask)
        assert got is not None, "Exercise 3: best_index_bits returns None -- return a width"
        sizes = best_bytes_by_width(weight, mask)
        best = min(sizes, key=sizes.get)  # the first (smallest) width on a tie
        assert isinstance(got, int | np.integer) and got in sizes, (
            f"{what}: best_index_bits must return a whole number of bits in "
            f"{min(WIDTHS)} .. {max(WIDTHS)}, got {got!r}")
        if got != best:
            fillers = {bits: mp.sparse.storage_report(weight, mask, index_bits=bits).fillers
                       for bits in (got, best)}
            if sizes[got] == sizes[best]:
                raise AssertionError(
                    f"{what}: {got} and {best} bits both take {sizes[best]:,} bytes -- on a tie, "
                    "return the smaller width")
            raise AssertionError(
                f"{what} ({np.mean(np.asarray(mask) != 0):.1%} kept): best_index_bits says {got} "
                f"bits, {sizes[got]:,} bytes; another width takes {sizes[best]:,} -- "
                f"{_width_hint(got, best, fillers)}")
    unanswered(fc1_best_vs_paper, "Exercise 3 (fc1_best_vs_paper)")
    fc1 = mp.prune.layers_by_weight_name(lenet_300)["fc1.weight"]
    sizes = best_bytes_by_width(fc1.weight.data, fc1.weight_mask)
    fc1_best = min(sizes, key=sizes.get)
    truth = "below" if fc1_best < 5 else "at" if fc1_best == 5 else "above"
    assert fc1_best_vs_paper in ("below", "at", "above"), (
        f"fc1_best_vs_paper is one of 'below', 'at' or 'above', got {fc1_best_vs_paper!r}")
    assert fc1_best_vs_paper == truth, (
        f"you predicted fc1's best width {fc1_best_vs_paper} the paper's 5 bits; your function "
        f"finds {fc1_best} bits ({sizes[fc1_best]:,} bytes against {sizes[5]:,} at 5). Why? At "
        f"{mp.prune.layer_density(fc1):.0%} kept, the average step is about 1 / density columns: "
        "compare it with the 2**b a field holds")
    print("Exercise 3: correct")

