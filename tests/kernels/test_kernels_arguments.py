"""The kernels' public entry points reject bad input with a ValueError before any kernel runs.

Numba kernels do no bounds checking, so these checks are what stands between a corrupted index
array and an out-of-bounds read. The fuzz tests feed arbitrary index arrays: the result must be a
ValueError or a correct answer -- never a crash, never a wrong number.
"""

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given
from hypothesis import strategies as st
from kernel_strategies import KERNEL_SETTINGS

from minprune.inference import products
from minprune.kernels.inference import csr_reference as reference
from minprune.kernels.training import masked_sgd
from minprune.sparse.csr import CSRMatrix


@pytest.fixture
def csr():
    return CSRMatrix.from_dense(np.array([[1, 0, 2, 0, 0], [0, 0, 0, 3, 0]], np.float32))


def test_spmv_names_argument_and_both_shapes(csr):
    with pytest.raises(
        ValueError,
        match=r"x: expected float32 array of shape \(5,\), got float32 array of shape \(4,\)",
    ):
        products.spmv(csr, np.zeros(4, np.float32))


@pytest.mark.parametrize(
    ("make_call", "message"),
    [
        (lambda c: products.spmv(c, np.zeros(5)), r"x: expected float32 .* got float64"),
        (lambda c: products.spmv(c, np.zeros(10, np.float32)[::2]), r"x: .*non-contiguous"),
        (lambda c: products.spmv(c, [0.0] * 5), r"x: expected .* got list"),
        (lambda c: products.spmv(c, np.zeros(5, np.float32), np.zeros(3, np.float32)), r"bias:"),
        (lambda c: products.spmv(c, np.zeros(5, np.float32), out=np.zeros(5, np.float32)), r"out:"),
        (lambda c: products.spmm(c, np.zeros((4, 3), np.float32)), r"dense: .*\(5, any\)"),
        (
            lambda c: products.linear_forward_csr(c, np.zeros((3, 4), np.float32)),
            r"x: .*\(any, 5\)",
        ),
        (
            lambda c: products.conv2d_forward_csr(
                c, np.zeros((1, 1, 4, 4), np.float32), kernel_size=2
            ),
            r"kernel_size: 2 x 2 does not divide the CSR's 5 columns",
        ),
        (
            lambda c: products.conv2d_forward_csr(
                c, np.zeros((1, 5, 2, 2), np.float32), kernel_size=1, stride=0
            ),
            r"stride: expected an int or a pair of ints >= 1",
        ),
        (
            lambda c: products.conv2d_forward_csr(
                c, np.zeros((1, 2, 4, 8), np.float32), kernel_size=(1, 5)
            ),
            r"images: expected float32 array of shape \(any, 1, any, any\), "
            r"got float32 array of shape \(1, 2, 4, 8\)",
        ),
        (
            lambda c: products.conv2d_forward_csr(
                c, np.zeros((1, 1, 4, 3), np.float32), kernel_size=(1, 5)
            ),
            r"images: width 3 \+ 2 \* padding 0 is smaller than the kernel's 5",
        ),
    ],
)
def test_wrappers_reject_bad_arguments(csr, make_call, message):
    with pytest.raises(ValueError, match=message):
        make_call(csr)


def test_out_must_not_alias_input():
    square = CSRMatrix.from_dense(np.eye(3, dtype=np.float32))
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="out: must not share memory"):
        products.spmv(square, x, out=x)


@pytest.mark.parametrize(
    "not_a_csr",
    [
        scipy.sparse.csr_array(np.eye(5, dtype=np.float32)),
        (np.array([0, 1], np.int64), np.array([0], np.int32), np.ones(1, np.float32)),
        np.eye(5, dtype=np.float32),
    ],
)
def test_only_validated_csr_reaches_a_kernel(not_a_csr):
    with pytest.raises(ValueError, match="csr: expected a minprune.sparse.CSRMatrix"):
        products.spmv(not_a_csr, np.ones(5, np.float32))


def test_csr_arrays_cannot_be_corrupted_after_validation(csr):
    with pytest.raises(ValueError, match="read-only"):
        csr.indices[0] = 1000
    with pytest.raises(ValueError, match="read-only"):
        csr.indptr[1] = 99


def _is_valid_csr(indptr, indices, rows, cols):
    """The CSR rules, spelled out one by one in plain Python."""
    if len(indptr) != rows + 1 or indptr[0] != 0 or indptr[-1] != len(indices):
        return False
    for row in range(rows):
        if indptr[row] > indptr[row + 1]:
            return False
        columns = list(indices[indptr[row] : indptr[row + 1]])
        if any(not 0 <= c < cols for c in columns) or columns != sorted(set(columns)):
            return False
    return True


@KERNEL_SETTINGS
@given(
    rows=st.integers(0, 4),
    cols=st.integers(0, 4),
    indptr=st.lists(st.integers(-3, 8), min_size=0, max_size=6),
    indices=st.lists(st.integers(-2, 6), min_size=0, max_size=8),
)
def test_arbitrary_index_arrays_give_value_error_or_right_answer(rows, cols, indptr, indices):
    indptr = np.array(indptr, dtype=np.int64)
    indices = np.array(indices, dtype=np.int32)
    data = np.arange(1, len(indices) + 1, dtype=np.float32)
    try:
        csr = CSRMatrix(indptr, indices, data, (rows, cols))
    except ValueError:
        assert not _is_valid_csr(list(indptr), list(indices), rows, cols)
        return
    assert _is_valid_csr(list(indptr), list(indices), rows, cols)
    x = np.arange(1, cols + 1, dtype=np.float32)
    want = reference.spmv_reference(indptr, indices, data, x)
    np.testing.assert_allclose(products.spmv(csr, x), want, rtol=1e-6)
    batch = np.stack([x, -x])
    np.testing.assert_allclose(
        products.linear_forward_csr(csr, batch), np.stack([want, -want]), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("make_call", "message"),
    [
        (
            lambda w, m: masked_sgd.masked_sgd_momentum_update(
                w, np.zeros_like(w), np.zeros_like(w), m[:, :2], lr=0.1, momentum=0.9
            ),
            r"mask: expected float32 or bool array of shape \(3, 4\)",
        ),
        (
            lambda w, m: masked_sgd.masked_sgd_momentum_update(
                w, np.zeros_like(w), np.zeros_like(w), m, lr=-0.1, momentum=0.9
            ),
            r"lr: expected a finite number >= 0",
        ),
        (
            lambda w, m: masked_sgd.masked_sgd_momentum_update(
                w, w, np.zeros_like(w), m, lr=0.1, momentum=0.9
            ),
            r"weight and velocity: must be separate arrays",
        ),
        (
            lambda w, m: masked_sgd.masked_sgd_momentum_update(
                w, np.zeros((4, 3), np.float32), np.zeros_like(w), m, lr=0.1, momentum=0.9
            ),
            r"velocity: expected float32 array of shape \(3, 4\)",
        ),
    ],
)
def test_masked_wrappers_reject_bad_arguments(make_call, message):
    weight = np.ones((3, 4), np.float32)
    mask = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=message):
        make_call(weight, mask)


def test_masked_update_refuses_read_only_weight():
    weight = np.ones((2, 2), np.float32)
    weight.flags.writeable = False
    with pytest.raises(ValueError, match="weight: is read-only"):
        masked_sgd.masked_sgd_momentum_update(
            weight,
            np.zeros((2, 2), np.float32),
            np.zeros((2, 2), np.float32),
            np.ones((2, 2), np.float32),
            lr=0.1,
            momentum=0.9,
        )


class _ForeignDeviceArray:
    """Stands in for a CuPy array: shape, dtype, flags and ``__cuda_array_interface__``, no
    ``copy_to_host`` (the interface is never read here: no kernel runs)."""

    def __init__(self, shape, dtype=np.float32, contiguous=True):
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.flags = type("Flags", (), {"c_contiguous": contiguous})()
        self.__cuda_array_interface__ = {"shape": shape, "typestr": self.dtype.str, "version": 3}


def test_cuda_array_interface_exporters_are_device_arrays():
    from minprune.kernels.checks import is_device_array, require_array

    array = _ForeignDeviceArray((3, 4))
    assert is_device_array(array) and not is_device_array(np.zeros(3))
    require_array("w", array, dtypes=np.float32, shape=(3, 4), allow_device=True)
    with pytest.raises(ValueError, match=r"w: expected numpy float32 array of shape \(3, 4\)"):
        require_array("w", array, dtypes=np.float32, shape=(3, 4))  # CPU kernels need numpy
    with pytest.raises(ValueError, match=r"w: expected a C-contiguous"):
        require_array("w", _ForeignDeviceArray((3, 4), contiguous=False), dtypes=np.float32,
                      shape=(3, 4), allow_device=True)
    with pytest.raises(ValueError, match=r"got float64 array of shape \(3, 4\)"):
        require_array("w", _ForeignDeviceArray((3, 4), np.float64), dtypes=np.float32,
                      shape=(3, 4), allow_device=True)
