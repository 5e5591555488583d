"""Checks for chapter 6 (kernels): a CSR SpMV compiled with Numba that accumulates in float32, a
prediction of the density where CSR beats dense, and the scatter SpMV that skips zero inputs.
Each ``exercise_N`` refuses a wrong answer with a hint."""

from __future__ import annotations

import numpy as np

import minprune as mp

__all__ = ["exercise_1", "exercise_2", "exercise_3", "spmv_bytes", "SMALL_DENSE"]

# The chapter's small pruned matrix: an empty row (a dead neuron), six stored weights.
SMALL_DENSE = np.array([[0.0, 2.0, 0.0, 0.0, 1.0, 0.0],
                        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                        [3.0, 0.0, 0.0, -1.0, 0.0, 0.0],
                        [0.0, 0.0, 4.0, 0.0, 0.0, 5.0]], dtype=np.float32)


def _is_jitted(function) -> bool:
    from numba.extending import is_jitted

    return is_jitted(function)


def _relative_error(got, expected) -> float:
    return float(np.max(np.abs(np.asarray(got, dtype=np.float64) - expected))
                 / max(np.max(np.abs(expected)), 1e-30))


# -- Exercise 1: SpMV with numba.njit ------------------------------------------------------------

def exercise_1(spmv_njit) -> None:
    """``spmv_njit(indptr, indices, data, x)``: compiled, float32 out, a float32 running total."""
    small = mp.sparse.CSRMatrix.from_dense(SMALL_DENSE)
    probe = np.array([1.0, 10.0, 100.0, 1000.0, 1e4, 1e5], dtype=np.float32)
    expected = SMALL_DENSE.astype(np.float64) @ probe  # [10020, 0, -997, 500400]
    got = spmv_njit(small.indptr, small.indices, small.data, probe)
    assert _is_jitted(spmv_njit), "decorate spmv_njit with @njit so that Numba compiles it"
    assert got is not None, "spmv_njit returns None -- return the array y"
    got = np.asarray(got)
    assert got.shape == (4,), f"y needs one entry per row (4), got shape {got.shape}"
    assert got.dtype == np.float32, f"y must be float32 like the weights, got {got.dtype}"
    if np.allclose(got, np.cumsum(expected)):
        raise AssertionError("start each row's total at 0: yours carries the sums of the rows "
                             "before it on")
    assert got[1] == 0.0, f"row 1 stores nothing, so y[1] must be 0, got {got[1]}"
    assert np.allclose(got, expected), (
        f"got {got}, expected {expected}: row r sums data[k] * x[indices[k]] over the row's "
        "stored entries k, indptr[r] .. indptr[r + 1] - 1 (x at the column of each weight, not "
        "x[k])")
    # One row whose float32 running total, taken in the stored order, is 0: 1e8 + 1 rounds back
    # to 1e8 in float32 (its spacing there is 8), then - 1e8. A float64 total keeps the 1.
    cancel = (np.array([0, 3]), np.array([0, 1, 2]), np.array([1e8, 1.0, -1e8], np.float32))
    total = np.asarray(spmv_njit(*cancel, np.ones(3, dtype=np.float32)))
    assert total[0] == 0.0, (
        f"on the row [1e8, 1, -1e8] times ones your total is {total[0]:g}, a float32 running "
        "total gives 0 (1e8 + 1 rounds to 1e8 in float32). Yours kept more bits: in Numba "
        "`total = 0.0` is a float64 -- start from np.float32(0.0), and add the entries one by one "
        "in their stored order")
    rng = np.random.default_rng(6)
    weights = rng.standard_normal((300, 1000)).astype(np.float32)
    weights[rng.random((300, 1000)) >= 0.09] = 0.0
    matrix = mp.sparse.CSRMatrix.from_dense(weights)
    x = rng.standard_normal(1000).astype(np.float32)
    error = _relative_error(spmv_njit(matrix.indptr, matrix.indices, matrix.data, x),
                            weights.astype(np.float64) @ x)
    assert error < 1e-5, (
        f"on a random 300 x 1000 matrix at 9% your y is off by {error:.1e} relative to the dense "
        "product")
    print("Exercise 1: correct")


# -- Exercise 2: predict the break-even density ---------------------------------------------------

def spmv_bytes(rows, cols, nnz):
    """Bytes one CSR SpMV moves: a float32 value and an int32 column per stored weight, rows + 1
    int64 row pointers, x read once and y written once (float32)."""
    return 8 * nnz + 8 * (rows + 1) + 4 * cols + 4 * rows


def _break_even(sparse_seconds, dense_seconds, rows, cols, nnz):
    """The reference model: CSR moves its bytes at the rate it was measured at; dense costs the
    same at any density. The density where the two times meet."""
    rate = spmv_bytes(rows, cols, nnz) / sparse_seconds
    fixed = spmv_bytes(rows, cols, 0)
    return (rate * dense_seconds - fixed) / (8 * rows * cols)


CASES = [  # (sparse_seconds, dense_seconds, rows, cols, nnz): measured-looking and made-up
    (3.57e-3, 6.93e-3, 4096, 9216, 3_397_178),
    (2.0e-3, 1.0e-3, 1000, 1000, 400_000),
    (1.0e-3, 4.0e-3, 2000, 3000, 300_000),
    (5.0e-4, 5.0e-4, 512, 8192, 419_430),
]


def _break_even_hint(got, case):
    sparse_seconds, dense_seconds, rows, cols, nnz = case
    density, want = nnz / (rows * cols), _break_even(*case)
    wrong = {
        "bytes alone (8 per stored weight against 4 per dense weight) say 50%, but the two "
        "products do not get the same bytes per second: use the measured times": 0.5,
        "that is the speed-up at the measured density, a ratio of times: the break-even is a "
        "density, a fraction of the weights": dense_seconds / sparse_seconds,
        "upside down: at the break-even the CSR time has grown (with its stored weights) until "
        "it equals the dense time": density * sparse_seconds / dense_seconds,
        "twice too much: CSR's bytes grow by 8 per stored weight (a value and an index), so a "
        "dense weight's 4 bytes buy half a stored one": 2 * want,
        "half too little: CSR's time grows with its stored weights, 8 bytes each, not with every "
        "weight of the matrix": want / 2,
    }
    for hint, value in wrong.items():
        if np.isclose(got, value, rtol=0.03) and not np.isclose(value, want, rtol=0.1):
            return hint
    return ("assume each product moves its bytes at the rate it was measured at: CSR's time grows "
            "with its stored weights, the dense time does not change with the density")


def exercise_2(predict_break_even, sparse_seconds, dense_seconds, matrix, measured) -> None:
    """``predict_break_even(sparse_seconds, dense_seconds, rows, cols, nnz)``: the density where
    CSR's time (its bytes at the rate measured at ``nnz`` stored weights) meets the dense time.
    Checked on made-up timings and on the chapter's (``sparse_seconds`` and ``dense_seconds`` on
    ``matrix``); ``measured``, the break-even the chapter's sweep found, is printed beside it."""
    rows, cols = matrix.shape
    chapter_case = (sparse_seconds, dense_seconds, rows, cols, matrix.nnz)
    for case in [*CASES, chapter_case]:
        got = predict_break_even(*case)
        assert got is not None, "Exercise 2: predict_break_even returns None -- return a density"
        want = _break_even(*case)
        assert np.isfinite(got) and np.isclose(got, want, rtol=0.05), (
            f"predict_break_even(sparse_seconds={case[0]:.3g}, dense_seconds={case[1]:.3g}, "
            f"rows={case[2]}, cols={case[3]}, nnz={case[4]}) = {got:.4g}, "
            f"expected about {want:.3g} -- {_break_even_hint(got, case)}")
    prediction = predict_break_even(*chapter_case)
    print(f"Exercise 2: correct -- your model predicts that CSR beats dense below {prediction:.0%} "
          "density here; the sweep measured "
          + ("no crossing" if measured is None else f"{measured:.0%}"))


# -- Exercise 3: the scatter SpMV ----------------------------------------------------------------

def _transposed_arrays(dense):
    transposed = mp.sparse.CSRMatrix.from_dense(np.ascontiguousarray(dense.T))
    return (np.array(transposed.indptr), np.array(transposed.indices),
            np.array(transposed.data, dtype=np.float32))


def exercise_3(spmv_scatter) -> None:
    """``spmv_scatter(t_indptr, t_indices, t_data, x, rows)``: y = W x from W's transpose in CSR,
    visiting only the columns of the non-zero inputs."""
    t_indptr, t_indices, t_data = _transposed_arrays(SMALL_DENSE)
    probe = np.array([0.0, 1.0, 0.0, -2.0, 3.0, 0.0], dtype=np.float32)  # zeros and a negative
    expected = SMALL_DENSE.astype(np.float64) @ probe  # [5, 0, 2, 0]
    got = spmv_scatter(t_indptr, t_indices, t_data, probe, 4)
    assert _is_jitted(spmv_scatter), "decorate spmv_scatter with @njit"
    assert got is not None, "spmv_scatter returns None -- return the array y"
    got = np.asarray(got)
    assert got.shape == (4,), f"y has one entry per row of W (rows = 4), got shape {got.shape}"
    assert got.dtype == np.float32, f"y must be float32 like the weights, got {got.dtype}"
    if np.allclose(got, SMALL_DENSE @ np.maximum(probe, 0.0)) and not np.allclose(got, expected):
        raise AssertionError(
            "y[2] = 3 * 0 + (-1) * (-2) = 2, yours skipped the -2: skip only inputs equal to 0; "
            "negative inputs count (a ReLU's outputs are >= 0, but the kernel must not assume it)")
    assert np.allclose(got, expected), (
        f"got {got}, expected {expected}: for each j with x[j] != 0, row j of W's transpose lists "
        "the output rows t_indices[k] that input j feeds, with weights t_data[k]; add "
        "t_data[k] * x[j] to each of those y entries, starting from y = 0")
    # The weights of the inputs that are 0 are replaced by NaN: a kernel that skips those inputs
    # never reads them; one that multiplies them by 0 gets NaN (0 * NaN is NaN).
    poisoned = t_data.copy()
    for column in np.flatnonzero(probe == 0):
        poisoned[t_indptr[column]:t_indptr[column + 1]] = np.nan
    got = np.asarray(spmv_scatter(t_indptr, t_indices, poisoned, probe, 4))
    assert np.all(np.isfinite(got)), (
        f"with NaN planted in the columns of the inputs that are 0, your y is {got}: your kernel "
        "reads the weights of inputs that are 0 (0 * NaN is NaN). Test x[j] before walking "
        "column j -- skipping that work is the point of the scatter")
    rng = np.random.default_rng(7)
    weights = rng.standard_normal((300, 784)).astype(np.float32)
    weights[rng.random((300, 784)) >= 0.08] = 0.0
    t_indptr, t_indices, t_data = _transposed_arrays(weights)
    for share in (0.15, 0.5):
        x = (rng.standard_normal(784) * (rng.random(784) < share)).astype(np.float32)
        error = _relative_error(spmv_scatter(t_indptr, t_indices, t_data, x, 300),
                                weights.astype(np.float64) @ x)
        assert error < 1e-5, (
            f"on a random 300 x 784 matrix at 8%, inputs {share:.0%} non-zero: y is off by "
            f"{error:.1e} relative to the dense product")
    print("Exercise 3: correct")
