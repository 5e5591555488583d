"""The bridge to PyTorch (`minprune.interop.torch`): round trips with equal outputs, masks through
``torch.nn.utils.prune``, the values at pruned positions, and the errors. Skipped where torch is
not installed (``pip install -e ".[torch]"``; the dev extras include it)."""

import re
import socket
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn.utils import prune as torch_prune  # noqa: E402
from toy_data import blobs  # noqa: E402

import minprune.data  # noqa: E402
import minprune.nn as nn  # noqa: E402
import minprune.nn.models as models  # noqa: E402
from minprune.autograd.tensor import Tensor, no_grad  # noqa: E402
from minprune.base.random import get_rng_state, manual_seed  # noqa: E402
from minprune.interop.torch import from_torch, to_torch  # noqa: E402
from minprune.prune import density, layers_by_weight_name, set_mask  # noqa: E402

PYTORCH_PAGE = Path(__file__).resolve().parents[1] / "docs" / "pytorch.md"  # the book's page
ATOL = 1e-5


def _minprune_forward(model, x: np.ndarray) -> np.ndarray:
    with no_grad():
        return model(Tensor(x)).data


def _torch_forward(module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _batch(input_shape, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).random(input_shape, dtype=np.float32)


def _prune_at_random(model, seed=0) -> None:
    """Random masks of density 0.3-0.8 on every prunable layer but the last, left unpruned so
    that both plain and pruned layers cross the bridge."""
    rng = np.random.default_rng(seed)
    layers = list(layers_by_weight_name(model).values())
    for layer in layers[:-1]:
        set_mask(layer, rng.random(layer.weight.shape) < rng.uniform(0.3, 0.8))


def assert_round_trips(model, input_shape) -> None:
    """Every check on one minprune Sequential: to_torch and back, and a PyTorch-pruned copy."""
    manual_seed(0)
    _prune_at_random(model)
    model.eval()
    x = _batch(input_shape)
    expected = _minprune_forward(model, x)

    # minprune -> PyTorch: same outputs; pruned layers in torch's vocabulary, the others plain.
    net = to_torch(model)
    assert not net.training
    np.testing.assert_allclose(_torch_forward(net, x), expected, rtol=0, atol=ATOL)
    state = model.state_dict()
    for name, layer in layers_by_weight_name(model).items():
        prefix = name.removesuffix("weight")
        module = net.get_submodule(prefix.rstrip("."))
        if layer.weight_mask.all():
            assert not torch_prune.is_pruned(module)
            assert f"{prefix}weight_mask" not in net.state_dict()
            del state[f"{prefix}weight_mask"]
        else:
            assert torch_prune.is_pruned(module)
            state[f"{prefix}weight_orig"] = state.pop(name)
    assert set(net.state_dict()) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(net.state_dict()[key].numpy(), value, err_msg=key)

    # ... and back: the same state, the same outputs.
    back = from_torch(net)
    assert not back.training
    _assert_same_state_dicts(back.state_dict(), model.state_dict())
    np.testing.assert_allclose(_minprune_forward(back, x), expected, rtol=0, atol=ATOL)

    # PyTorch's own pruning (which keeps the pruned values in weight_orig) -> minprune -> PyTorch.
    for module in net.modules():
        if not isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
            continue
        if module.weight.numel() <= 1_000_000:
            torch_prune.l1_unstructured(module, "weight", amount=0.5)
        else:  # l1_unstructured sorts: seconds for AlexNet's fc6 (37M weights)
            mask = torch.rand(module.weight.shape, generator=torch.Generator().manual_seed(0))
            torch_prune.custom_from_mask(module, "weight", mask < 0.5)
    torch_expected = _torch_forward(net, x)
    pruned = from_torch(net)
    np.testing.assert_allclose(_minprune_forward(pruned, x), torch_expected, rtol=0, atol=ATOL)
    again = to_torch(pruned)
    assert set(again.state_dict()) == set(net.state_dict())
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key].numpy(), value.numpy(), key)


def _assert_same_state_dicts(actual, expected) -> None:
    assert list(actual) == list(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(actual[key], value, err_msg=key)


# One line per network: (builder, input batch shape). AlexNet joins when minprune.nn.models has it,
# e.g. (models.alexnet, (2, 3, 227, 227)) with its input size.
ROUND_TRIPS = [
    (models.lenet_300_100, (8, 1, 28, 28)),
    (models.lenet5, (8, 1, 28, 28)),
    (models.alexnet, (2, 3, 227, 227)),
]


@pytest.mark.parametrize("build, input_shape", ROUND_TRIPS,
                         ids=[build.__name__ for build, _ in ROUND_TRIPS])
def test_round_trip(build, input_shape):
    assert_round_trips(build(), input_shape)


def test_round_trip_with_dropout_keeps_the_mode_and_p():
    model = models.lenet_300_100(dropout=0.3)
    net = to_torch(model)
    assert net.training and net.drop1.p == 0.3
    back = from_torch(net.eval())
    assert not back.training and back.drop1.p == 0.3
    assert_round_trips(models.lenet_300_100(dropout=0.3), (4, 1, 28, 28))


def test_strided_padded_convolutions_and_nested_sequentials_round_trip():
    model = nn.Sequential(OrderedDict(
        features=nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1),
            relu1=nn.ReLU(),
            pool1=nn.MaxPool2d(3, stride=2),
            conv2=nn.Conv2d(8, 6, kernel_size=3, padding=1, bias=False),
        )),
        flatten=nn.Flatten(),
        classifier=nn.Sequential(nn.Linear(6 * 3 * 3, 5), nn.ReLU(), nn.Linear(5, 4)),
    ))
    net = to_torch(model)
    assert "features.conv1.weight" in net.state_dict()
    assert "classifier.2.bias" in net.state_dict()
    assert net.features.conv2.bias is None
    assert_round_trips(model, (2, 3, 16, 16))


def test_a_plain_torch_model_arrives_with_full_masks():
    torch.manual_seed(0)
    net = torch.nn.Sequential(OrderedDict(
        conv1=torch.nn.Conv2d(1, 4, 5), pool1=torch.nn.MaxPool2d(2), flatten=torch.nn.Flatten(),
        fc1=torch.nn.Linear(4 * 12 * 12, 10),
    )).eval()
    model = from_torch(net)
    assert density(model) == 1.0
    assert set(model.state_dict()) == {"conv1.weight", "conv1.bias", "conv1.weight_mask",
                                       "fc1.weight", "fc1.bias", "fc1.weight_mask"}
    x = _batch((3, 1, 28, 28))
    np.testing.assert_allclose(_minprune_forward(model, x), _torch_forward(net, x),
                               rtol=0, atol=ATOL)


def test_pruned_values_in_weight_orig_are_kept_as_minprune_weights():
    net = torch.nn.Sequential(OrderedDict(fc1=torch.nn.Linear(20, 10)))
    torch_prune.l1_unstructured(net.fc1, "weight", amount=0.6)
    model = from_torch(net)
    np.testing.assert_array_equal(model.fc1.weight.data, net.fc1.weight_orig.detach().numpy())
    np.testing.assert_array_equal(model.fc1.weight_mask, net.fc1.weight_mask.numpy())
    assert np.any(model.fc1.weight.data[model.fc1.weight_mask == 0] != 0)
    assert density(model) == pytest.approx(0.4)


def test_masked_but_nonzero_minprune_weights_reach_weight_orig_unchanged():
    layer = nn.Linear(6, 4)
    layer.weight_mask = np.eye(4, 6)  # a mask without set_mask: the weights stay non-zero
    net = to_torch(nn.Sequential(layer))
    np.testing.assert_array_equal(net[0].weight_orig.detach().numpy(), layer.weight.data)
    x = _batch((5, 6))
    np.testing.assert_allclose(_torch_forward(net, x), _minprune_forward(nn.Sequential(layer), x),
                               rtol=0, atol=ATOL)


def test_the_copies_share_no_memory():
    model = models.lenet_300_100()
    net = to_torch(model)
    with torch.no_grad():
        net.fc1.weight.zero_()
    assert np.any(model.fc1.weight.data != 0)
    back = from_torch(net)
    back.fc2.weight.data[...] = 0.0
    assert torch.any(net.fc2.weight != 0)


def test_to_torch_places_the_module_on_the_device():
    model = models.lenet_300_100()
    set_mask(model.fc1, np.random.default_rng(0).random(model.fc1.weight.shape) < 0.5)
    net = to_torch(model, device="meta")  # a device every machine has
    assert {tensor.device.type for tensor in net.state_dict().values()} == {"meta"}


def test_from_torch_leaves_minprune_random_generator_alone():
    manual_seed(3)
    before = get_rng_state()
    from_torch(torch.nn.Sequential(torch.nn.Linear(30, 20), torch.nn.Conv2d(2, 3, 3)))
    assert get_rng_state() == before


def test_a_single_layer_converts_too():
    layer = nn.Conv2d(2, 3, kernel_size=3)
    assert type(to_torch(layer)) is torch.nn.Conv2d
    assert type(from_torch(to_torch(layer))) is nn.Conv2d


# ---- the layers AlexNet adds ----------------------------------------------------------------


def test_local_response_norm_round_trips():
    lrn = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    net = torch.nn.Sequential(OrderedDict(conv1=torch.nn.Conv2d(3, 8, 3), norm1=lrn)).eval()
    model = from_torch(net)
    assert (model.norm1.size, model.norm1.alpha, model.norm1.beta, model.norm1.k) == (
        5, 1e-4, 0.75, 2.0)
    assert type(to_torch(model).norm1) is torch.nn.LocalResponseNorm
    assert_round_trips(from_torch(net), (2, 3, 12, 12))


def test_local_response_norm_maps_by_size_alpha_beta_k():
    net = torch.nn.Sequential(OrderedDict(
        conv1=torch.nn.Conv2d(3, 8, 3), norm1=torch.nn.LocalResponseNorm(5, 1e-2, 0.75, 2.0),
    )).eval()
    model = from_torch(net)
    x = _batch((2, 3, 10, 10)) * 10
    np.testing.assert_allclose(_minprune_forward(model, x), _torch_forward(net, x),
                               rtol=0, atol=ATOL)
    back = to_torch(model)
    assert repr(back.norm1) == repr(net.norm1)
    with pytest.raises(ValueError, match=r"Flatten, LocalResponseNorm$"):
        to_torch(nn.Sequential(_Scale()))


def test_grouped_convolutions_round_trip():
    model = nn.Sequential(nn.Conv2d(4, 6, kernel_size=3, padding=1, groups=2), nn.Flatten())
    assert to_torch(model)[0].groups == 2
    assert_round_trips(model, (2, 4, 6, 6))


def test_a_torchvision_layout_alexnet_rebuilt_as_a_sequential_converts():
    """torchvision's alexnet() as docs/pytorch.md rebuilds it (its avgpool is the identity at
    224 x 224), layer for layer, with random weights and a classifier pruned in PyTorch."""
    torch.manual_seed(0)
    relu = torch.nn.ReLU
    features = torch.nn.Sequential(
        torch.nn.Conv2d(3, 64, 11, stride=4, padding=2), relu(inplace=True),
        torch.nn.MaxPool2d(3, 2),
        torch.nn.Conv2d(64, 192, 5, padding=2), relu(inplace=True), torch.nn.MaxPool2d(3, 2),
        torch.nn.Conv2d(192, 384, 3, padding=1), relu(inplace=True),
        torch.nn.Conv2d(384, 256, 3, padding=1), relu(inplace=True),
        torch.nn.Conv2d(256, 256, 3, padding=1), relu(inplace=True), torch.nn.MaxPool2d(3, 2),
    )
    classifier = torch.nn.Sequential(
        torch.nn.Dropout(0.5), torch.nn.Linear(256 * 6 * 6, 4096), relu(inplace=True),
        torch.nn.Dropout(0.5), torch.nn.Linear(4096, 4096), relu(inplace=True),
        torch.nn.Linear(4096, 1000),
    )
    net = torch.nn.Sequential(OrderedDict(
        features=features, flatten=torch.nn.Flatten(), classifier=classifier)).eval()
    for index in (1, 4, 6):  # random masks: l1_unstructured's sort of 37M weights takes seconds
        layer = net.classifier[index]
        torch_prune.custom_from_mask(layer, "weight", torch.rand(layer.weight.shape) < 0.1)
    model = from_torch(net)
    assert list(layers_by_weight_name(model))[:2] == ["features.0.weight", "features.3.weight"]
    assert density(model) < 0.2
    x = _batch((1, 3, 224, 224))
    np.testing.assert_allclose(_minprune_forward(model, x), _torch_forward(net, x),
                               rtol=0, atol=ATOL)


# ---- what does not convert -----------------------------------------------------------------------


class _Scale(nn.Module):
    def forward(self, x):
        return x * 2.0


def test_an_unknown_minprune_layer_is_named_with_what_is_supported():
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 4), block=nn.Sequential(_Scale())))
    expected = r"to_torch: layer 'block.0' is a _Scale \(test_interop_torch\).*supported: Seq"
    with pytest.raises(ValueError, match=expected):
        to_torch(model)
    with pytest.raises(ValueError, match=r"to_torch: the model itself is a _Scale"):
        to_torch(_Scale())


def test_a_subclass_is_refused_as_it_may_have_its_own_forward():
    class ScaledLinear(torch.nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(ValueError, match=r"layer 'head' is a ScaledLinear"):
        from_torch(torch.nn.Sequential(OrderedDict(head=ScaledLinear(3, 2))))


@pytest.mark.parametrize("module, message", [
    (torch.nn.Tanh(), r"layer '0' is a Tanh \(torch.nn.modules.activation\), which does not "
                      r"convert; supported: Sequential, Linear, Conv2d, MaxPool2d, ReLU, Dropout"),
    (torch.nn.Conv2d(1, 2, (3, 5)), r"kernel_size=\(3, 5\); minprune expects one int"),
    (torch.nn.Conv2d(1, 2, 3, padding="same"), r"padding='same'"),
    (torch.nn.Conv2d(1, 2, 3, dilation=2), r"dilation=\(2, 2\)"),
    (torch.nn.Conv2d(1, 2, 3, padding_mode="reflect"), r"padding_mode='reflect'"),
    (torch.nn.MaxPool2d(2, ceil_mode=True), r"ceil_mode=True"),
    (torch.nn.MaxPool2d(3, padding=1), r"padding=1"),
    (torch.nn.Flatten(0), r"start_dim=0"),
    (torch.nn.Dropout(1.0), r"p=1.0"),
])
def test_torch_layers_minprune_cannot_express_are_refused_by_name(module, message):
    with pytest.raises(ValueError, match=message):
        from_torch(torch.nn.Sequential(module))


def test_a_pruned_bias_is_refused():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    torch_prune.l1_unstructured(net[0], "bias", amount=1)
    with pytest.raises(ValueError, match=r"layer '0' is pruned in PyTorch through \['bias_mask'\]"):
        from_torch(net)


def test_a_soft_mask_is_refused():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    torch_prune.custom_from_mask(net[0], "weight", torch.full((3, 4), 0.5))
    with pytest.raises(ValueError, match=r"values other than 0 and 1"):
        from_torch(net)


# ---- the book's page "Moving to PyTorch" (docs/pytorch.md) runs ---------------------------------


def _page_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PYTORCH_PAGE.read_text(), re.S)


def test_the_pages_example_runs(monkeypatch, capsys):
    monkeypatch.setattr(minprune.data, "mnist", lambda: (blobs(64, seed=0), blobs(64, seed=1)))
    exec(compile(_page_blocks()[0], str(PYTORCH_PAGE), "exec"), {})
    printed = capsys.readouterr().out
    keys = "['fc1.bias', 'fc1.weight_orig', 'fc1.weight_mask', 'fc2.weight', 'fc2.bias']"
    assert keys in printed
    assert "density 13.5%" in printed  # conv2 at 50% (PyTorch), fc1 at 10% (minprune)
    assert re.search(r"conv2.weight kept 10%: error \d+\.\d\d%", printed)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_pages_distributed_sketch_runs_as_one_process(monkeypatch, capsys):
    """What torchrun would set for one process; gloo on the CPU, one short epoch of toy data."""
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available():
        pytest.skip("this torch has no torch.distributed")
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(minprune.data, "mnist", lambda: (blobs(128, seed=0), blobs(64, seed=1)))
    code = _page_blocks()[1]
    assert code.count("range(8)") == 1
    exec(compile(code.replace("range(8)", "range(1)"), str(PYTORCH_PAGE), "exec"), {})
    assert not dist.is_initialized()
    assert re.search(r"density \d+\.\d%, error \d+\.\d\d%", capsys.readouterr().out)
