"""SGD (momentum, L2, L1, masks) and the learning-rate policies."""

import numpy as np
import pytest

from minprune import nn
from minprune.base.settings import use_backend
from minprune.nn import Parameter, models
from minprune.training.optim import SGD
from minprune.training.schedules import LRPolicy


def test_momentum_and_weight_decay_follow_the_documented_update():
    p = Parameter(np.array([1.0, -2.0], dtype=np.float32))
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    w, v = p.data.astype(np.float64).copy(), np.zeros(2)
    for grad in ([0.5, 0.25], [-1.0, 2.0], [0.0, 0.0]):
        p.grad = np.array(grad, dtype=np.float32)
        opt.step()
        v = 0.9 * v + (np.array(grad) + 0.01 * w)
        w = w - 0.1 * v
        np.testing.assert_allclose(p.data, w, rtol=1e-6)


def test_l1_adds_the_sign_of_the_weight():
    p = Parameter(np.array([1.0, -2.0, 0.0], dtype=np.float32))
    opt = SGD([p], lr=0.5, l1=0.1)
    p.grad = np.zeros(3, dtype=np.float32)
    opt.step()
    np.testing.assert_allclose(p.data, [0.95, -1.95, 0.0])


@pytest.mark.parametrize("regulariser", [{"weight_decay": 5e-4}, {"l1": 1e-4}])
def test_pruned_weights_stay_exactly_zero_through_momentum_and_regularisation(regulariser):
    rng = np.random.default_rng(0)
    layer = nn.Linear(20, 10)
    opt = SGD(layer.parameters(), lr=0.05, momentum=0.9, **regulariser)
    x = rng.random((8, 20), dtype=np.float32)
    for _ in range(20):  # build up momentum before pruning
        opt.zero_grad()
        (layer(x) * layer(x)).sum().backward()
        opt.step()
    mask = (rng.random((10, 20)) > 0.7).astype(np.float32)
    layer.weight_mask = mask
    opt.apply_masks()
    for _ in range(200):
        opt.zero_grad()
        (layer(x) * layer(x)).mean().backward()
        opt.step()
    assert np.all(layer.weight.data[mask == 0] == 0.0)
    assert np.all(layer.weight.data[mask == 1] != 0.0)
    np.testing.assert_array_equal(layer.weight_mask, mask)


@pytest.mark.parametrize("backend", ["fast", "plain"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_update_path_keeps_pruned_weights_and_their_velocity_at_zero(backend, dtype):
    """The update itself holds the mask (Sec. 3): a gradient that reaches pruned positions --
    as a hook or a straight-through step can give -- moves neither the weight nor its velocity
    there. float32 under "fast" is the fused kernel; float64, or anything under "plain", is the
    NumPy code in minprune/autograd/plain.py."""
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((6, 5)).astype(dtype)
    mask = (rng.random((6, 5)) > 0.5).astype(np.float32)
    p = Parameter(weight * mask)
    p.mask = mask
    with use_backend(backend):
        opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01, l1=0.001)
        w, v = (weight * mask).astype(np.float64), np.zeros((6, 5))
        for _ in range(3):
            grad = rng.standard_normal((6, 5))
            p.grad = grad.astype(dtype)  # non-zero at pruned positions too
            opt.step()
            v = (0.9 * v + grad + 0.01 * w + 0.001 * np.sign(w)) * mask
            w = (w - 0.1 * v) * mask
            np.testing.assert_allclose(p.data, w, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(opt.velocities[0], v, rtol=1e-5, atol=1e-6)
    assert np.all(p.data[mask == 0] == 0.0)
    assert np.all(opt.velocities[0][mask == 0] == 0.0)


def test_bad_hyperparameters_are_rejected():
    params = models.lenet_300_100().parameters()
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD(params, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="lr must be"):
        SGD(params, lr=-1.0)
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], lr=0.1)


def test_optimizer_state_round_trips():
    model = models.lenet_300_100()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for v in opt.velocities:
        v[...] = np.random.default_rng(0).random(v.shape)
    state = opt.state_dict()
    other = SGD(model.parameters(), lr=0.3, momentum=0.9)
    other.load_state_dict(state)
    for a, b in zip(opt.velocities, other.velocities, strict=True):
        np.testing.assert_array_equal(a, b)
    assert other.lr == 0.1


def test_learning_rate_policies():
    assert LRPolicy("fixed", 0.01)(12345) == 0.01
    step = LRPolicy("step", 0.1, gamma=0.5, step_size=100)
    assert step(99) == 0.1 and step(100) == 0.05 and step(250) == 0.025
    inv = LRPolicy("inv", 0.01, gamma=1e-4, power=0.75)
    assert inv(0) == 0.01
    np.testing.assert_allclose(inv(10_000), 0.01 * 2 ** -0.75)
    with pytest.raises(ValueError, match="lr policy must be"):
        LRPolicy("cosine", 0.1)


@pytest.mark.parametrize("settings, field", [
    ({"lr": -0.1}, "lr"), ({"lr": "0.1"}, "lr"), ({"lr": 0.1, "weight_decay": float("nan")},
                                                  "weight_decay"),
    ({"lr": 0.1, "momentum": float("nan")}, "momentum"), ({"lr": 0.1, "l1": -1.0}, "l1"),
])
def test_sgd_refuses_a_setting_that_is_not_a_finite_number_in_range(settings, field):
    p = Parameter(np.zeros(2, dtype=np.float32))
    with pytest.raises(ValueError, match=f"SGD: {field} must be"):
        SGD([p], **settings)


def test_a_policy_refuses_a_base_rate_that_is_not_finite():
    with pytest.raises(ValueError, match="base_lr must be a finite number > 0, got nan"):
        LRPolicy("fixed", float("nan"))
