"""AlexNet and VGG-16: parameter counts, layer names and per-layer weights against the paper's
Tables 4 and 5, AlexNet's shapes and one forward + backward. VGG-16 runs no forward here (138M
parameters: building it is the test)."""

import numpy as np
import pytest

import minprune
import minprune.autograd.functional as F
from minprune.autograd.tensor import Tensor, no_grad
from minprune.base import paper
from minprune.data.dataset import Dataset
from minprune.nn import Dropout, LocalResponseNorm, models
from minprune.prune import layers_by_weight_name
from minprune.prune.tables import layer_table

ALEXNET_WEIGHTS = {  # exact, groups included
    "conv1": 96 * 3 * 11 * 11, "conv2": 256 * 48 * 5 * 5, "conv3": 384 * 256 * 3 * 3,
    "conv4": 384 * 192 * 3 * 3, "conv5": 256 * 192 * 3 * 3,
    "fc1": 9216 * 4096, "fc2": 4096 * 4096, "fc3": 4096 * 1000,
}


@pytest.fixture(scope="module")
def alexnet():
    minprune.manual_seed(0)
    return models.build("alexnet")


@pytest.fixture(scope="module")
def vgg16():
    minprune.manual_seed(0)
    return models.build("vgg16")


def _weights_by_layer(model) -> dict:
    return {name.removesuffix(".weight"): layer.weight.size
            for name, layer in layers_by_weight_name(model).items()}


def test_alexnet_has_60965224_parameters_and_table_4s_weights(alexnet):
    assert sum(p.size for p in alexnet.parameters()) == 60_965_224
    assert _weights_by_layer(alexnet) == ALEXNET_WEIGHTS
    rows = [row for row in paper.PAPER_ALEXNET if row["layer"] != "total"]
    assert [row["layer"] for row in rows] == list(ALEXNET_WEIGHTS)
    for row in rows:
        exact, unit = ALEXNET_WEIGHTS[row["layer"]], 1e6 if row["weights"] >= 1e6 else 1e3
        # Table 4 rounds all but conv4, whose 663,552 weights it prints truncated, as 663K.
        assert row["weights"] / unit in (round(exact / unit), exact // unit), row["layer"]


def test_alexnet_layers_and_shapes(alexnet):
    names = [name for name, _ in alexnet.named_parameters()]
    assert names == [f"{layer}.{kind}" for layer in ALEXNET_WEIGHTS for kind in ("weight", "bias")]
    assert [alexnet[name].groups for name in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [
        1, 2, 1, 2, 2]
    assert [type(alexnet[name]) for name in ("norm1", "norm2")] == [LocalResponseNorm] * 2
    assert (alexnet.norm1.size, alexnet.norm1.alpha, alexnet.norm1.beta, alexnet.norm1.k) == (
        5, 1e-4, 0.75, 1.0)
    x = Tensor(np.zeros((1, 3, 227, 227), np.float32))
    shapes = {}
    alexnet.eval()
    with no_grad():
        for name, layer in alexnet._modules.items():
            x = layer(x)
            shapes[name] = x.shape[1:]
    alexnet.train()
    assert [shapes[name] for name in ("conv1", "pool1", "pool2", "conv5", "pool5", "flatten")] == [
        (96, 55, 55), (96, 27, 27), (256, 13, 13), (256, 13, 13), (256, 6, 6), (9216,)]
    assert shapes["fc3"] == (1000,)


def test_alexnet_flop_match_table_4(alexnet):
    """FLOP = 2 x multiply-adds; a grouped layer's filters see half the channels (conv2 448M)."""
    images = np.zeros((1, 3, 227, 227), np.float32)
    table = layer_table(alexnet, Dataset(images, np.zeros(1, np.int64)))
    ours = {row["layer"]: round(row["flop"] / 1e6) for row in table}  # in millions, as printed
    theirs = {row["layer"]: row["flop"] / 1e6 for row in paper.PAPER_ALEXNET}
    assert ours.pop("total") == 1449 and theirs.pop("total") == 1500  # Table 4 prints 1.5B
    assert ours == theirs


def test_alexnet_forward_and_backward_at_batch_2():
    minprune.manual_seed(1)
    model = models.alexnet(num_classes=10)
    x = np.random.default_rng(0).standard_normal((2, 3, 227, 227)).astype(np.float32)
    logits = model(Tensor(x))
    assert logits.shape == (2, 10) and logits.dtype == np.float32
    F.cross_entropy(logits, np.array([3, 7])).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.shape == parameter.shape, name
        assert np.all(np.isfinite(parameter.grad)), name
    assert np.any(model.conv1.weight.grad != 0) and np.any(model.fc1.weight.grad != 0)


def test_alexnet_options():
    minprune.manual_seed(2)
    no_dropout = models.alexnet(num_classes=5, dropout=0.0)
    assert not any(isinstance(module, Dropout) for module in no_dropout.modules())
    assert no_dropout.fc3.out_features == 5
    with pytest.raises(ValueError, match="alexnet: num_classes must be an int >= 1, got 0"):
        models.alexnet(num_classes=0)


def test_vgg16_has_138357544_parameters_and_table_5s_layers(vgg16):
    assert sum(p.size for p in vgg16.parameters()) == 138_357_544
    weights = _weights_by_layer(vgg16)
    rows = [row for row in paper.PAPER_VGG16 if row["layer"] != "total"]
    assert list(weights) == [row["layer"] for row in rows]
    for row in rows:
        # Table 5 prints each count to one significant unit; conv2_2's 147,456 weights appear
        # as 148K (with its biases, 147,584), so: within one unit of the printed digit.
        unit = 1e6 if row["weights"] >= 1e6 else 1e3
        assert abs(weights[row["layer"]] - row["weights"]) <= unit, row["layer"]
    assert [type(m).__name__ for m in vgg16.modules()].count("MaxPool2d") == 5
    assert vgg16.fc6.in_features == 512 * 7 * 7 and vgg16.drop7.p == 0.5


@pytest.mark.parametrize("name, model_fixture, total_kept",
                         [("alexnet", "alexnet", 0.11), ("vgg16", "vgg16", 0.075)])
def test_paper_keep_ratios_name_the_models_layers_and_give_the_tables_totals(
        name, model_fixture, total_kept, request):
    model = request.getfixturevalue(model_fixture)
    layers = layers_by_weight_name(model)
    ratios = paper.PAPER_KEEP_RATIOS[name]
    assert list(ratios) == list(layers)
    kept = sum(ratios[n] * layer.weight.size for n, layer in layers.items())
    assert kept / sum(layer.weight.size for layer in layers.values()) == pytest.approx(
        total_kept, abs=0.005)
