"""The fused masked SGD-momentum kernel (CPU) against its reference."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_strategies import KERNEL_SETTINGS, float32_arrays, masks

from minprune.kernels.training import masked_sgd
from minprune.kernels.training import masked_sgd_reference as reference


@st.composite
def update_cases(draw):
    shape = draw(st.sampled_from([(1,), (7,), (3, 4), (1, 9), (9, 1), (2, 3, 2, 2)]))
    weight = draw(float32_arrays(shape))
    velocity = draw(float32_arrays(shape))
    grad = draw(float32_arrays(shape))
    mask = draw(masks(shape, draw(st.sampled_from([np.float32, np.bool_]))))
    hyper = {
        "lr": draw(st.sampled_from([0.0, 0.01, 0.1])),
        "momentum": draw(st.sampled_from([0.0, 0.9])),
        "weight_decay": draw(st.sampled_from([0.0, 5e-4])),
        "l1": draw(st.sampled_from([0.0, 1e-3])),
    }
    return weight, velocity, grad, mask, hyper


@KERNEL_SETTINGS
@given(update_cases())
def test_sgd_update_matches_reference(case):
    weight, velocity, grad, mask, hyper = case
    want_weight, want_velocity = reference.masked_sgd_momentum_reference(
        weight, velocity, grad, mask, **hyper
    )
    masked_sgd.masked_sgd_momentum_update(weight, velocity, grad, mask, **hyper)
    np.testing.assert_allclose(weight, want_weight, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(velocity, want_velocity, rtol=1e-6, atol=1e-6)
    pruned = mask == 0
    assert np.all(weight[pruned] == 0) and not np.signbit(weight[pruned]).any()
    assert np.all(velocity[pruned] == 0)


def test_momentum_cannot_revive_pruned_weights():
    """The paper's "pruned connections stay at zero" under momentum and weight decay, for many
    steps, even with a non-finite gradient at a pruned position; an unmasked update would move
    them."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((20, 30)).astype(np.float32)
    mask = (rng.random((20, 30)) < 0.1).astype(np.float32)
    weight *= mask
    velocity = rng.standard_normal((20, 30)).astype(
        np.float32
    )  # stale momentum from before pruning
    first_pruned = tuple(np.argwhere(mask == 0)[0])
    for step in range(10):
        grad = rng.standard_normal((20, 30)).astype(np.float32)
        grad[first_pruned] = np.nan if step == 3 else np.inf
        masked_sgd.masked_sgd_momentum_update(
            weight, velocity, grad, mask, lr=0.1, momentum=0.9, weight_decay=5e-4, l1=1e-4
        )
        assert np.all(weight[mask == 0] == 0) and np.all(velocity[mask == 0] == 0)
    assert np.count_nonzero(weight) <= np.count_nonzero(mask)


def test_update_is_in_place_on_the_callers_arrays():
    weight = np.ones((2, 3), np.float32)
    velocity = np.zeros((2, 3), np.float32)
    grad = np.ones((2, 3), np.float32)
    mask = np.array([[1, 0, 1], [0, 1, 1]], np.bool_)
    masked_sgd.masked_sgd_momentum_update(weight, velocity, grad, mask, lr=0.5, momentum=0.9)
    np.testing.assert_array_equal(weight, np.where(mask, 0.5, 0.0))
    np.testing.assert_array_equal(velocity, np.where(mask, 1.0, 0.0))


def test_checked_once_step_matches_the_checked_update_step_after_step():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((5, 4)).astype(np.float32)
    velocity = np.zeros_like(weight)
    mask = (rng.random((5, 4)) > 0.5).astype(np.float32)
    want_weight, want_velocity = weight.copy(), velocity.copy()
    step = masked_sgd.MaskedSGDStep()
    for lr in (0.1, 0.1, 0.01):  # a schedule: the new rate is taken
        grad = rng.standard_normal((5, 4)).astype(np.float32)
        hyper = {"lr": lr, "momentum": 0.9, "weight_decay": 5e-4, "l1": 0.0}
        step(weight, velocity, grad, mask, **hyper)
        masked_sgd.masked_sgd_momentum_update(want_weight, want_velocity, grad, mask, **hyper)
        np.testing.assert_array_equal(weight, want_weight)
        np.testing.assert_array_equal(velocity, want_velocity)


def test_checked_once_step_still_refuses_a_bad_gradient_or_a_new_bad_mask():
    weight, velocity = np.ones((3, 2), np.float32), np.zeros((3, 2), np.float32)
    mask, grad = np.ones((3, 2), np.float32), np.ones((3, 2), np.float32)
    step = masked_sgd.MaskedSGDStep()
    hyper = {"lr": 0.1, "momentum": 0.9}
    step(weight, velocity, grad, mask, **hyper)
    bad_grads = (
        (np.ones((2, 3), np.float32), r"grad: .*shape \(3, 2\), got .*\(2, 3\)"),
        (np.ones((3, 2), np.float64), r"grad: expected float32.*got float64"),
        (weight, "share memory"),
    )
    for bad_grad, message in bad_grads:
        with pytest.raises(ValueError, match=message):
            step(weight, velocity, bad_grad, mask, **hyper)
    with pytest.raises(ValueError, match=r"mask: expected .*got int64"):
        step(weight, velocity, grad, np.ones((3, 2), np.int64), **hyper)
    with pytest.raises(ValueError, match="lr"):
        step(weight, velocity, grad, mask, lr=-1.0, momentum=0.9)
    np.testing.assert_array_equal(weight, np.full((3, 2), 1 - 0.1 * 1, np.float32))


class _DeviceArrayStandIn:
    """Stands in for a GPU array (a CuPy array): shape, dtype, flags and
    ``__cuda_array_interface__``, nothing else -- no kernel can run on it."""

    def __init__(self, shape, dtype=np.float32):
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.flags = type("Flags", (), {"c_contiguous": True})()
        self.__cuda_array_interface__ = {"shape": shape, "typestr": self.dtype.str, "version": 3}


def _update_arguments(**changes):
    """Valid arguments of a (3, 4) masked update, with ``changes`` applied."""
    arguments = {
        "weight": np.ones((3, 4), np.float32),
        "velocity": np.zeros((3, 4), np.float32),
        "grad": np.ones((3, 4), np.float32),
        "mask": np.ones((3, 4), np.bool_),
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "l1": 0.0,
    }
    arguments.update(changes)
    return arguments


def _read_only(array):
    array.flags.writeable = False
    return array


_SHARED = np.zeros((3, 4), np.float32)  # one buffer, seen below through two separate views


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"weight": np.ones((3, 4), np.float64)},
            "weight: expected float32 array of shape (any, any), got float64 array of shape (3, 4)",
        ),
        (
            {"weight": np.ones((4, 3), np.float32).T},
            "weight: expected a C-contiguous float32 array of shape (any, any), got a "
            "non-contiguous float32 array of shape (3, 4) (use np.ascontiguousarray)",
        ),
        (
            {"weight": _DeviceArrayStandIn((3, 4))},
            "weight: expected numpy float32 array of shape (any, any), got _DeviceArrayStandIn",
        ),
        (
            {"velocity": np.zeros((3, 4), np.float64)},
            "velocity: expected float32 array of shape (3, 4), got float64 array of shape (3, 4)",
        ),
        (
            {"grad": np.ones((4, 3), np.float32)},
            "grad: expected float32 array of shape (3, 4), got float32 array of shape (4, 3)",
        ),
        (
            {"mask": np.ones((3, 4), np.int64)},
            "mask: expected float32 or bool array of shape (3, 4), got int64 array of shape (3, 4)",
        ),
        (
            {"weight": _read_only(np.ones((3, 4), np.float32))},
            "weight: is read-only, but the update writes it in place",
        ),
        (
            {"velocity": _read_only(np.zeros((3, 4), np.float32))},
            "velocity: is read-only, but the update writes it in place",
        ),
        (
            {"weight": _SHARED[:], "velocity": _SHARED.reshape(3, 4)},
            "weight and velocity: must be separate arrays, they share memory",
        ),
        (
            {"weight": _SHARED[:], "grad": _SHARED.reshape(3, 4)},
            "weight and grad: must be separate arrays, they share memory",
        ),
        (
            {"velocity": _SHARED[:], "grad": _SHARED.reshape(3, 4)},
            "velocity and grad: must be separate arrays, they share memory",
        ),
        ({"lr": -0.1}, "lr: expected a finite number >= 0, got -0.1"),
        ({"momentum": float("nan")}, "momentum: expected a finite number >= 0, got nan"),
        ({"weight_decay": "5e-4"}, "weight_decay: expected a finite number >= 0, got '5e-4'"),
        ({"l1": True}, "l1: expected a finite number >= 0, got True"),
    ],
)
def test_update_refuses_bad_arguments_naming_the_argument_the_value_and_what_it_expects(
    changes, message
):
    """Numba kernels do no bounds checking, so every bad argument is refused before the kernel
    runs -- separate views of one buffer included, not only the same object twice -- with the
    whole message; the caller's arrays are left as they were."""
    arguments = _update_arguments(**changes)
    hyper = {name: arguments.pop(name) for name in ("lr", "momentum", "weight_decay", "l1")}
    before = {name: np.array(a, copy=True) for name, a in arguments.items()
              if isinstance(a, np.ndarray)}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        masked_sgd.masked_sgd_momentum_update(**arguments, **hyper)
    for name, array in before.items():
        np.testing.assert_array_equal(arguments[name], array)


def test_the_cuda_path_check_accepts_device_arrays_and_returns_float32_hyper_parameters():
    """With ``allow_device`` (the CUDA update's check) GPU arrays pass for all four arrays, and the
    hyper-parameters come back as float32 scalars so every kernel computes like the reference."""
    arrays = [_DeviceArrayStandIn((3, 4)) for _ in range(3)] + [
        _DeviceArrayStandIn((3, 4), np.bool_)
    ]
    hyper = masked_sgd.validate_sgd_arguments(*arrays, 0.1, 0.9, 5e-4, 0, allow_device=True)
    assert list(hyper) == ["lr", "momentum", "weight_decay", "l1"]
    assert all(type(value) is np.float32 for value in hyper.values())
    assert [hyper[name] for name in hyper] == [
        np.float32(0.1), np.float32(0.9), np.float32(5e-4), np.float32(0.0)
    ]


def test_checked_once_step_runs_the_full_check_only_when_something_but_the_gradient_changes(
    monkeypatch,
):
    """`MaskedSGDStep` pays the full argument check on the first step and again only when the
    weight, velocity, mask or a hyper-parameter changes or the new gradient does not fit; a
    gradient that shares memory with the velocity is still refused."""
    full_checks = []
    check = masked_sgd.validate_sgd_arguments

    def counting_check(*args, **kwargs):
        full_checks.append(args[4:])
        return check(*args, **kwargs)

    monkeypatch.setattr(masked_sgd, "validate_sgd_arguments", counting_check)
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((3, 4)).astype(np.float32)
    velocity = np.zeros((3, 4), np.float32)
    mask = np.ones((3, 4), np.float32)
    step = masked_sgd.MaskedSGDStep()

    def new_grad():
        return rng.standard_normal((3, 4)).astype(np.float32)

    for _ in range(3):
        step(weight, velocity, new_grad(), mask, lr=0.1, momentum=0.9)
    assert len(full_checks) == 1
    step(weight, velocity, new_grad(), mask, lr=0.01, momentum=0.9)  # a new rate
    step(weight, velocity, new_grad(), mask, lr=0.01, momentum=0.9)
    assert len(full_checks) == 2
    mask = mask.copy()  # a new mask object, as after a pruning round
    step(weight, velocity, new_grad(), mask, lr=0.01, momentum=0.9)
    step(weight, velocity, new_grad(), mask, lr=0.01, momentum=0.9, l1=1e-4)
    assert len(full_checks) == 4
    with pytest.raises(
        ValueError, match="^velocity and grad: must be separate arrays, they share memory$"
    ):
        step(weight, velocity, velocity[:], mask, lr=0.01, momentum=0.9, l1=1e-4)
    assert len(full_checks) == 5
