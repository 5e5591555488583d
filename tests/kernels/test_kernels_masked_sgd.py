"""The fused masked SGD-momentum kernel (CPU) against its reference."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from kernel_strategies import KERNEL_SETTINGS, float32_arrays, masks

from minprune.kernels import masked_sgd
from minprune.kernels import masked_sgd_reference as reference


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
