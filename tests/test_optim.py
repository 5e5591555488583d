"""SGD (momentum, L2, L1, masks), its state and its devices (the learning-rate policies are in
tests/test_schedules.py)."""

import re
import sys
import types

import numpy as np
import pytest

from minprune import nn
from minprune.base.arrays import device_of
from minprune.base.settings import backend, use_backend
from minprune.nn import Parameter, models
from minprune.training import optim
from minprune.training.optim import SGD


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



# -- refusals, each message whole ------------------------------------------------------------------


@pytest.mark.parametrize("settings, message", [
    ({"lr": -0.1}, "SGD: lr must be a finite number >= 0, got -0.1"),
    ({"lr": "0.1"}, "SGD: lr must be a finite number >= 0, got '0.1'"),
    ({"lr": True}, "SGD: lr must be a finite number >= 0, got True"),
    ({"lr": 0.1, "weight_decay": float("nan")},
     "SGD: weight_decay must be a finite number >= 0, got nan"),
    ({"lr": 0.1, "l1": -1.0}, "SGD: l1 must be a finite number >= 0, got -1.0"),
    ({"lr": 0.1, "momentum": 1.0}, "SGD: momentum must be in [0, 1), got 1.0"),
    ({"lr": 0.1, "momentum": -0.5}, "SGD: momentum must be in [0, 1), got -0.5"),
    ({"lr": 0.1, "momentum": float("nan")}, "SGD: momentum must be in [0, 1), got nan"),
])
def test_sgd_refuses_a_setting_that_is_not_a_finite_number_in_range(settings, message):
    p = Parameter(np.zeros(2, dtype=np.float32))
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        SGD([p], **settings)


def test_sgd_refuses_to_train_nothing():
    frozen = Parameter(np.zeros(2, dtype=np.float32), requires_grad=False)
    for parameters in ([], [frozen]):
        with pytest.raises(ValueError, match=r"^SGD: got no parameters that require grad$"):
            SGD(parameters, lr=0.1)


@pytest.mark.parametrize("state, message", [
    ({"velocity.0": np.ones(2), "lr": 0.2},
     "SGD.load_state_dict: 'velocity.1' missing or of shape None, expected (3,)"),
    ({"velocity.0": np.ones(2), "velocity.1": np.ones(4), "lr": 0.2},
     "SGD.load_state_dict: 'velocity.1' missing or of shape (4,), expected (3,)"),
    ({"velocity.0": np.ones((2, 1)), "velocity.1": np.ones(3), "lr": 0.2},
     "SGD.load_state_dict: 'velocity.0' missing or of shape (2, 1), expected (2,)"),
])
def test_a_state_that_does_not_fit_is_refused_and_changes_nothing(state, message):
    """Every velocity's shape is checked before any is copied (a resumed run either gets the
    whole saved state or keeps its own)."""
    parameters = [Parameter(np.zeros(2, dtype=np.float32)), Parameter(np.zeros(3, np.float32))]
    opt = SGD(parameters, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        opt.load_state_dict(state)
    assert all(not v.any() for v in opt.velocities) and opt.lr == 0.1


# -- what a step touches -----------------------------------------------------------------------


def test_a_parameter_without_a_gradient_is_skipped_and_the_rest_still_step():
    """A frozen-by-omission layer (no gradient this step) must not stop the layers after it."""
    first, second = (Parameter(np.ones(2, dtype=np.float32)) for _ in range(2))
    opt = SGD([first, second], lr=0.5)
    second.grad = np.ones(2, dtype=np.float32)
    opt.step()
    np.testing.assert_array_equal(first.data, [1.0, 1.0])
    np.testing.assert_array_equal(second.data, [0.5, 0.5])


def test_apply_masks_zeroes_exactly_the_pruned_weights_and_their_momentum():
    """After a mask changes (Sec. 3: pruned connections are removed), the weights and velocities
    it prunes are 0 at once; the kept ones, and parameters without a mask, keep their values."""
    weight = Parameter(np.array([1.0, -2.0, 3.0], dtype=np.float32))
    bias = Parameter(np.array([0.5], dtype=np.float32))
    opt = SGD([weight, bias], lr=0.1, momentum=0.9)
    weight.grad = np.array([1.0, 2.0, -1.0], dtype=np.float32)
    bias.grad = np.array([1.0], dtype=np.float32)
    opt.step()  # velocities [1, 2, -1] and [1]; weights [0.9, -2.2, 3.1] and [0.4]
    weight.mask = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    opt.apply_masks()
    np.testing.assert_allclose(weight.data, [0.9, 0.0, 3.1], rtol=1e-6)
    np.testing.assert_array_equal(opt.velocities[0], [1.0, 0.0, -1.0])
    np.testing.assert_allclose(bias.data, [0.4], rtol=1e-6)
    np.testing.assert_array_equal(opt.velocities[1], [1.0])


def test_a_weight_whose_mask_is_removed_trains_whole_again():
    """The fused kernel chosen for a masked weight is not reused once its mask is gone."""
    p = Parameter(np.array([1.0, 0.0, 3.0], dtype=np.float32))
    p.mask = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    opt = SGD([p], lr=0.5, momentum=0.9)
    with use_backend("fast"):
        p.grad = np.ones(3, dtype=np.float32)
        opt.step()
        np.testing.assert_array_equal(p.data, [0.5, 0.0, 2.5])
        p.mask = None
        opt.step()  # velocity [1.9, 1, 1.9]
        np.testing.assert_allclose(p.data, [-0.45, -0.5, 1.55], rtol=1e-6)


def test_each_parameter_update_is_chosen_once_and_again_when_backend_or_mask_changes(
        monkeypatch):
    """The backend's update (`masked_sgd_update_for`) is picked with the parameter's own weight
    and mask, kept across steps (the fused kernel checks its arrays in full once), and picked
    again when the backend or the mask's presence changes."""
    chosen = []

    def choose(weight, mask):
        chosen.append((backend(), mask is not None))
        return masked_sgd_update_for(weight, mask)

    masked_sgd_update_for = optim.masked_sgd_update_for
    monkeypatch.setattr(optim, "masked_sgd_update_for", choose)
    p = Parameter(np.ones((2, 2), dtype=np.float32))
    p.mask = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones((2, 2), dtype=np.float32)
    with use_backend("fast"):
        for _ in range(3):
            opt.step()
        assert chosen == [("fast", True)]
        with use_backend("plain"):
            opt.step()
            opt.step()
        opt.step()
        p.mask = None
        opt.step()
        opt.step()
    assert chosen == [("fast", True), ("plain", True), ("fast", True), ("fast", False)]


# -- devices: each velocity beside its parameter ------------------------------------------------


class _DeviceArray(np.ndarray):
    """A host array that minprune takes for a CuPy array (its type's module starts with
    "cupy"), so the device bookkeeping runs without a GPU (tests/test_device_cuda.py runs it on
    a real one)."""

    def get(self):
        return np.array(self)  # a host (plain NumPy) copy, as CuPy's ``get``


_DeviceArray.__module__ = "cupy.fake"


def _fake_cupy():
    """Just enough of CuPy for the optimiser: ``asarray`` copies onto the "device" and
    ``copyto`` refuses a host source as CuPy does."""

    def copyto(destination, source):
        if not isinstance(source, _DeviceArray):
            raise ValueError("non-scalar numpy.ndarray cannot be used for copyto")
        np.copyto(destination, source)

    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    module.asarray = lambda array: np.array(array).view(_DeviceArray)
    module.zeros_like = np.zeros_like
    module.copyto = copyto
    return module


def test_a_velocity_follows_its_parameter_to_the_gpu_and_back_keeping_its_momentum(
        monkeypatch):
    """An optimiser built before ``model.to("cuda")`` (and used after ``model.to("cpu")``)
    finds each velocity on its parameter's device at the next step, apply_masks or
    load_state_dict, with the momentum it had."""
    cupy = _fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    p = Parameter(np.zeros(2, dtype=np.float32))
    opt = SGD([p], lr=1.0, momentum=0.5)
    p.grad = np.ones(2, dtype=np.float32)
    opt.step()  # velocity 1 on the host
    p.data, p.grad = cupy.asarray(p.data), cupy.asarray(p.grad)  # what model.to("cuda") does
    opt.step()  # velocity 0.5 * 1 + 1
    assert device_of(opt.velocities[0]) == "cuda"
    np.testing.assert_array_equal(opt.velocities[0].get(), [1.5, 1.5])
    np.testing.assert_array_equal(p.data.get(), [-2.5, -2.5])
    opt.load_state_dict({"velocity.0": np.array([4.0, 2.0]), "lr": 0.25})  # a host state
    assert device_of(opt.velocities[0]) == "cuda"
    np.testing.assert_array_equal(opt.velocities[0].get(), [4.0, 2.0])
    p.data, p.grad = p.data.get(), p.grad.get()  # and back: model.to("cpu")
    p.mask = np.array([0.0, 1.0], dtype=np.float32)
    opt.apply_masks()
    assert device_of(opt.velocities[0]) == "cpu"
    np.testing.assert_array_equal(opt.velocities[0], [0.0, 2.0])
    np.testing.assert_array_equal(opt.state_dict()["velocity.0"], [0.0, 2.0])
