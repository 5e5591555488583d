"""The fused masked SGD-momentum kernel (CPU) against its reference."""

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
