"""Chapter 6's checks (chapters/checks/ch06.py) pass the reference answers and refuse plausible
wrong ones with a hint that names the mistake."""

from types import SimpleNamespace

import numpy as np
import pytest
from checks import ch06
from numba import njit

# -- Exercise 1: SpMV with numba.njit ------------------------------------------------------------


def spmv_python(indptr, indices, data, x):
    y = np.empty(indptr.shape[0] - 1, dtype=np.float32)
    for row in range(indptr.shape[0] - 1):
        total = np.float32(0.0)
        for k in range(indptr[row], indptr[row + 1]):
            total += data[k] * x[indices[k]]
        y[row] = total
    return y


spmv_njit = njit(spmv_python)


@njit
def spmv_float64_total(indptr, indices, data, x):
    y = np.empty(indptr.shape[0] - 1, dtype=np.float32)
    for row in range(indptr.shape[0] - 1):
        total = 0.0  # a float64 in Numba
        for k in range(indptr[row], indptr[row + 1]):
            total += data[k] * x[indices[k]]
        y[row] = total
    return y


@njit
def spmv_float64_out(indptr, indices, data, x):
    y = np.zeros(indptr.shape[0] - 1)
    for row in range(indptr.shape[0] - 1):
        for k in range(indptr[row], indptr[row + 1]):
            y[row] += data[k] * x[indices[k]]
    return y


@njit
def spmv_total_carried_on(indptr, indices, data, x):
    y = np.empty(indptr.shape[0] - 1, dtype=np.float32)
    total = np.float32(0.0)
    for row in range(indptr.shape[0] - 1):
        for k in range(indptr[row], indptr[row + 1]):
            total += data[k] * x[indices[k]]
        y[row] = total
    return y


@njit
def spmv_x_at_k(indptr, indices, data, x):
    y = np.empty(indptr.shape[0] - 1, dtype=np.float32)
    for row in range(indptr.shape[0] - 1):
        total = np.float32(0.0)
        for k in range(indptr[row], indptr[row + 1]):
            total += data[k] * x[k % x.shape[0]]
        y[row] = total
    return y


def test_exercise_1_passes_the_reference(capsys):
    ch06.exercise_1(spmv_njit)
    assert "Exercise 1: correct" in capsys.readouterr().out


@pytest.mark.parametrize(("wrong", "named"), [
    (spmv_float64_total, "float64"),
    (spmv_float64_out, "must be float32"),
    (spmv_total_carried_on, "start each row's total at 0"),
    (spmv_x_at_k, "not x[k]"),
    (spmv_python, "@njit"),
])
def test_exercise_1_refuses_wrong_answers(fails_with_hint, wrong, named):
    assert named in fails_with_hint(ch06.exercise_1, wrong)


def test_exercise_1_template_asks_for_an_answer():
    def template(indptr, indices, data, x):
        raise NotImplementedError("Exercise 1: write the loops")

    with pytest.raises(NotImplementedError):
        ch06.exercise_1(template)


# -- Exercise 2: predict the break-even density ---------------------------------------------------

MATRIX = SimpleNamespace(shape=(4096, 9216), nnz=3_397_178)
MEASURED = (3.6e-3, 6.9e-3, MATRIX, 0.17)


def predict_break_even(sparse_seconds, dense_seconds, rows, cols, nnz):
    rate = ch06.spmv_bytes(rows, cols, nnz) / sparse_seconds
    return (rate * dense_seconds - ch06.spmv_bytes(rows, cols, 0)) / (8 * rows * cols)


def proportional(sparse_seconds, dense_seconds, rows, cols, nnz):
    # time proportional to the stored weights: the same model without the fixed bytes
    return nnz / (rows * cols) * dense_seconds / sparse_seconds


@pytest.mark.parametrize("answer", [predict_break_even, proportional])
def test_exercise_2_passes_the_reference_and_its_shortcut(capsys, answer):
    ch06.exercise_2(answer, *MEASURED)
    assert "Exercise 2: correct" in capsys.readouterr().out


@pytest.mark.parametrize(("wrong", "named"), [
    (lambda s, d, rows, cols, nnz: 0.5, "bytes alone"),
    (lambda s, d, rows, cols, nnz: d / s, "speed-up"),
    (lambda s, d, rows, cols, nnz: nnz / (rows * cols) * s / d, "upside down"),
    (lambda s, d, rows, cols, nnz: 2 * nnz / (rows * cols) * d / s, "twice too much"),
    (lambda s, d, rows, cols, nnz: nnz / (rows * cols) * d / s / 2, "half too little"),
    # the bandwidth shares of section 4, without bytes per weight: CSR's GB/s over dense's
    (lambda s, d, rows, cols, nnz: (ch06.spmv_bytes(rows, cols, nnz) / s)
     / ((4 * rows * cols) / d), "twice too much"),
])
def test_exercise_2_refuses_wrong_answers(fails_with_hint, wrong, named):
    assert named in fails_with_hint(ch06.exercise_2, wrong, *MEASURED)


def test_exercise_2_template_asks_for_an_answer():
    def template(sparse_seconds, dense_seconds, rows, cols, nnz):
        raise NotImplementedError("Exercise 2: solve for the density")

    with pytest.raises(NotImplementedError):
        ch06.exercise_2(template, *MEASURED)


# -- Exercise 3: the scatter SpMV ----------------------------------------------------------------

def scatter_python(t_indptr, t_indices, t_data, x, rows):
    y = np.zeros(rows, dtype=np.float32)
    for j in range(x.shape[0]):
        if x[j] != 0.0:
            for k in range(t_indptr[j], t_indptr[j + 1]):
                y[t_indices[k]] += t_data[k] * x[j]
    return y


spmv_scatter = njit(scatter_python)


@njit
def scatter_every_column(t_indptr, t_indices, t_data, x, rows):
    y = np.zeros(rows, dtype=np.float32)
    for j in range(x.shape[0]):
        for k in range(t_indptr[j], t_indptr[j + 1]):
            y[t_indices[k]] += t_data[k] * x[j]
    return y


@njit
def scatter_positive_only(t_indptr, t_indices, t_data, x, rows):
    y = np.zeros(rows, dtype=np.float32)
    for j in range(x.shape[0]):
        if x[j] > 0.0:
            for k in range(t_indptr[j], t_indptr[j + 1]):
                y[t_indices[k]] += t_data[k] * x[j]
    return y


@njit
def scatter_into_wrong_entry(t_indptr, t_indices, t_data, x, rows):
    y = np.zeros(rows, dtype=np.float32)
    for j in range(x.shape[0]):
        if x[j] != 0.0:
            for k in range(t_indptr[j], t_indptr[j + 1]):
                y[j % rows] += t_data[k] * x[j]
    return y


@njit
def scatter_float64(t_indptr, t_indices, t_data, x, rows):
    y = np.zeros(rows)
    for j in range(x.shape[0]):
        if x[j] != 0.0:
            for k in range(t_indptr[j], t_indptr[j + 1]):
                y[t_indices[k]] += t_data[k] * x[j]
    return y


def test_exercise_3_passes_the_reference(capsys):
    ch06.exercise_3(spmv_scatter)
    assert "Exercise 3: correct" in capsys.readouterr().out


@pytest.mark.parametrize(("wrong", "named"), [
    (scatter_every_column, "reads the weights of inputs that are 0"),
    (scatter_positive_only, "negative inputs count"),
    (scatter_into_wrong_entry, "output rows t_indices[k]"),
    (scatter_float64, "must be float32"),
    (scatter_python, "@njit"),
])
def test_exercise_3_refuses_wrong_answers(fails_with_hint, wrong, named):
    assert named in fails_with_hint(ch06.exercise_3, wrong)


def test_exercise_3_template_asks_for_an_answer():
    def template(t_indptr, t_indices, t_data, x, rows):
        raise NotImplementedError("Exercise 3: the scatter")

    with pytest.raises(NotImplementedError):
        ch06.exercise_3(template)
