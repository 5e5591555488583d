"""Devices without a GPU: the seam's helpers and errors, ``.to`` on the CPU, and the GPU code path
of every op that has one, forced onto NumPy arrays.

CuPy arrays always run the plain backend (`minprune.autograd.backend.ops_for`); choosing
"plain" sends NumPy arrays down that branch (the plain conv and pool formulations, the masked
dense sparse_linear), so its wiring -- saved state, groups, backward -- is checked here against
the Numba path and by central differences. The GPU itself is exercised by tests/test_device_cuda.py.
"""

import sys
import types
from collections import OrderedDict

import numpy as np
import pytest

import minprune.autograd.functional as F
import minprune.base.random as minprune_random
from minprune.autograd import plain
from minprune.autograd.gradcheck import gradcheck
from minprune.autograd.tensor import Tensor
from minprune.base.arrays import (
    DeviceUnavailable,
    array_module,
    check_device,
    cupy_module,
    device_of,
    to_device,
)
from minprune.base.settings import use_backend
from minprune.kernels.training.pattern_reference import reference_backward, reference_forward
from minprune.nn import (
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    ReLU,
    Sequential,
)
from minprune.training.optim import SGD

# -- the seam ------------------------------------------------------------------------------------


def test_to_device_on_the_cpu_returns_the_same_array():
    array = np.arange(6, dtype=np.float32)
    assert to_device(array, "cpu") is array
    listed = to_device([1.0, 2.0], "cpu")
    assert isinstance(listed, np.ndarray) and listed.tolist() == [1.0, 2.0]
    assert device_of(array) == device_of([1.0]) == device_of(3.0) == "cpu"
    assert array_module(array) is np


@pytest.mark.parametrize("device", ["gpu", "cuda:0", None, "CPU"])
def test_unknown_devices_are_named(device):
    with pytest.raises(ValueError, match=r"device must be one of \('cpu', 'cuda'\), got"):
        check_device(device)
    with pytest.raises(ValueError, match="device must be one of"):
        to_device(np.zeros(2), device)


def test_cuda_without_cupy_says_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    with pytest.raises(DeviceUnavailable, match=r"device 'cuda' needs CuPy: pip install "
                                                r"'minprune\[cuda\]'"):
        cupy_module()
    with pytest.raises(DeviceUnavailable, match="needs CuPy"):
        to_device(np.zeros(2), "cuda")


def _fake_cupy(device_count):
    """A stand-in for an installed CuPy whose runtime reports ``device_count`` GPUs (an
    exception instance is raised instead, as CuPy does without a driver)."""

    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=runtime)
    return module


@pytest.mark.parametrize(
    "device_count", [RuntimeError("cudaErrorNoDevice: no CUDA-capable device"), 0]
)
def test_cuda_with_cupy_but_no_gpu_says_so(monkeypatch, device_count):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count))
    with pytest.raises(DeviceUnavailable, match="CuPy is installed but sees no CUDA GPU"):
        cupy_module()


def test_cupy_with_a_gpu_is_returned(monkeypatch):
    fake = _fake_cupy(1)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert cupy_module() is fake


# -- Tensor.to and Module.to on the CPU ----------------------------------------------------------


def test_tensor_to_cpu_is_itself():
    t = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    assert t.device == "cpu"
    assert t.to("cpu") is t
    assert t.numpy() is t.data
    with pytest.raises(ValueError, match="device must be one of"):
        t.to("gpu")


def _small_model():
    minprune_random.manual_seed(3)
    model = Sequential(OrderedDict(fc1=Linear(6, 4), relu=ReLU(), fc2=Linear(4, 3)))
    mask = np.ones((4, 6), dtype=np.float32)
    mask[:, ::2] = 0
    model.fc1.weight_mask = mask
    return model


def test_module_to_cpu_keeps_everything_in_place():
    model = _small_model()
    data = [p.data for p in model.parameters()]
    mask = model.fc1.weight_mask
    assert model.to("cpu") is model
    assert model.device == "cpu"
    assert all(p.data is d for p, d in zip(model.parameters(), data, strict=True))
    np.testing.assert_array_equal(model.fc1.weight_mask, mask)
    assert not model.fc1.weight_mask.flags.writeable  # still frozen
    with pytest.raises(ValueError, match="read-only"):
        model.fc1.weight_mask[0, 0] = 1.0


def test_module_to_cuda_without_cupy_fails_before_moving_anything(monkeypatch):
    model = _small_model()
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(DeviceUnavailable, match="needs CuPy"):
        model.to("cuda")
    assert all(isinstance(p.data, np.ndarray) for p in model.parameters())
    with pytest.raises(ValueError, match="device must be one of"):
        model.to("gpu")


def test_a_module_without_parameters_is_on_the_cpu():
    assert ReLU().device == "cpu"


def test_state_dicts_are_host_copies():
    model = _small_model()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    state = model.state_dict()
    assert state["fc1.weight"] is not model.fc1.weight.data
    assert state["fc1.weight_mask"].flags.writeable  # a copy the caller may edit
    velocity = optimizer.state_dict()["velocity.0"]
    assert isinstance(velocity, np.ndarray) and velocity is not optimizer.velocities[0]
    optimizer.load_state_dict({**optimizer.state_dict(), "velocity.0": np.ones((4, 6))})
    np.testing.assert_array_equal(optimizer.velocities[0], 1.0)
    with pytest.raises(ValueError, match=r"'velocity.1' missing or of shape \(5,\)"):
        optimizer.load_state_dict({"velocity.0": np.ones((4, 6)), "velocity.1": np.ones(5)})


# -- the GPU path of each op, on NumPy arrays ----------------------------------------------------


@pytest.fixture
def generic_path():
    """Send NumPy arrays down the ops' GPU branch (what CuPy arrays run)."""
    with use_backend("plain"):
        yield


def _alexnet_in_miniature():
    """Every layer kind AlexNet uses, at toy size: a strided padded conv, LRN, overlapping 3/2
    pooling, a grouped conv, dropout, and a pruned fc layer on the sparse kernels."""
    minprune_random.manual_seed(11)
    model = Sequential(OrderedDict(
        conv1=Conv2d(3, 8, kernel_size=5, stride=2, padding=2), relu1=ReLU(),
        norm1=LocalResponseNorm(5), pool1=MaxPool2d(3, 2),
        conv2=Conv2d(8, 8, kernel_size=3, padding=1, groups=2), relu2=ReLU(),
        pool2=MaxPool2d(3, 2), flatten=Flatten(),
        fc1=Linear(8 * 2 * 2, 16), relu3=ReLU(), drop=Dropout(0.5), fc2=Linear(16, 5),
    ))
    mask = (np.random.default_rng(0).random((16, 32)) < 0.3).astype(np.float32)
    model.fc1.weight_mask = mask
    model.fc1.sparse_kernels = True
    return model


def _loss_and_grads(images, labels):
    model = _alexnet_in_miniature()
    minprune_random.manual_seed(5)  # the same dropout masks in both runs
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    return float(loss.item()), grads, model.fc1.weight_mask


def _images_and_labels():
    rng = np.random.default_rng(4)
    return rng.standard_normal((3, 3, 23, 23)).astype(np.float32), np.array([0, 3, 4])


def test_the_gpu_path_trains_alexnet_in_miniature_like_the_numba_path():
    images, labels = _images_and_labels()
    want_loss, want_grads, _ = _loss_and_grads(images, labels)
    with use_backend("plain"):
        got_loss, got_grads, mask = _loss_and_grads(images, labels)
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-6)
    for name, grad in want_grads.items():
        np.testing.assert_allclose(got_grads[name], grad, rtol=1e-4, atol=1e-6, err_msg=name)
    assert not got_grads["fc1.weight"][mask == 0].any()  # pruned connections get no gradient


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize(
    ("stride", "padding", "groups"), [(1, 0, 1), (2, 1, 1), (1, 1, 2), (3, 2, 2)]
)
def test_gpu_path_conv2d_gradients(generic_path, stride, padding, groups):
    gradcheck(
        lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups),
        _randn(2, 4, 6, 5), _randn(6, 4 // groups, 3, 3, seed=1), _randn(6, seed=2),
    )


@pytest.mark.parametrize(("kernel", "stride"), [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_gpu_path_max_pool_gradients(generic_path, kernel, stride):
    gradcheck(lambda x: F.max_pool2d(x, kernel, stride), _randn(2, 3, 7, 7))


def test_gpu_path_sparse_linear_gradients(generic_path):
    mask = (np.random.default_rng(1).random((4, 6)) < 0.5).astype(np.float32)
    gradcheck(
        lambda x, w, b: F.sparse_linear(x, w, b, mask),
        _randn(3, 6), _randn(4, 6, seed=1), _randn(4, seed=2),
    )


@pytest.mark.parametrize("density", [0.0, 0.4, 1.0])
def test_masked_dense_products_match_the_numpy_twins(density):
    rng = np.random.default_rng(2)
    mask = (rng.random((5, 7)) < density).astype(np.float32)
    x, weight = rng.standard_normal((3, 7)), rng.standard_normal((5, 7))
    bias, grad = rng.standard_normal(5), rng.standard_normal((3, 5))
    np.testing.assert_allclose(
        plain.masked_dense_forward(x, weight, bias, mask),
        reference_forward(mask, x, weight, bias),
    )
    for got, want in zip(
        plain.masked_dense_backward(x, weight, mask, grad),
        reference_backward(mask, x, weight, grad),
        strict=True,
    ):
        np.testing.assert_allclose(got, want)
