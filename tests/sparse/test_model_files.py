"""A sparse file that rebuilds its model: save_sparse(path, model) stores the layer sequence and
input shape, load_model(path) gives the pruned model back, compile_model(path) runs it; a hostile
architecture is refused before any layer is built."""

import json
from collections import OrderedDict

import numpy as np
import pytest

import minprune as mp
from minprune.base import random as minprune_random
from minprune.base.files import CHECKSUM_MEMBER, write_npz
from minprune.nn import (
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    Module,
    ReLU,
    Sequential,
    models,
)
from minprune.prune import keep_ratio_prune
from minprune.sparse import load_model, load_sparse, read_model_file, save_sparse
from minprune.sparse.export import SparseFileError

META = "__minprune_sparse__"


def _first_hour_mlp():
    """The issue's model: an MLP 64-128-64-10 on 8x8 images, with dropout, pruned to 10%."""
    minprune_random.manual_seed(7)
    model = Sequential(OrderedDict(
        flatten=Flatten(), fc1=Linear(64, 128), relu1=ReLU(), drop1=Dropout(0.3),
        fc2=Linear(128, 64), relu2=ReLU(), fc3=Linear(64, 10)))
    keep_ratio_prune(model, {"*": 0.1})
    return model.eval()


def _every_layer_kind():
    """Each layer type a file describes, nested Sequentials and unusual settings included."""
    minprune_random.manual_seed(8)
    features = Sequential(OrderedDict(
        conv1=Conv2d(2, 4, kernel_size=3, stride=2, padding=1), relu1=ReLU(),
        norm1=LocalResponseNorm(3, alpha=2e-4, beta=0.7, k=2.0), pool1=MaxPool2d(2),
        conv2=Conv2d(4, 6, kernel_size=3, padding=1, groups=2, bias=False)))
    drop = Dropout(0.5)
    drop.p = 0.25  # lowered for retraining (Sec. 3.2); original_p stays 0.5
    classifier = Sequential(Flatten(), Linear(6 * 4 * 4, 5, bias=False), drop, Linear(5, 3))
    model = Sequential(OrderedDict(features=features, classifier=classifier))
    keep_ratio_prune(model, {"*": 0.5})
    return model


def _assert_same_model(loaded, original):
    assert repr(loaded) == repr(original)
    state, expected = loaded.state_dict(), original.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert state[key].dtype == value.dtype, key
        np.testing.assert_array_equal(state[key], value, err_msg=key)


def test_a_saved_model_loads_back_pruned_with_its_layers_and_input_shape(tmp_path):
    model = _first_hour_mlp()
    save_sparse(tmp_path / "mlp.npz", model, input_shape=(1, 8, 8))
    loaded, input_shape = read_model_file(tmp_path / "mlp.npz")
    _assert_same_model(loaded, model)
    assert input_shape == (1, 8, 8)
    assert mp.prune.density(loaded) == mp.prune.density(model) < 0.11
    images = np.random.default_rng(0).random((6, 1, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(loaded.eval()(images).data, model(images).data)
    assert mp.sparse.load_model is load_model


def test_every_layer_kind_and_nested_sequentials_round_trip(tmp_path):
    model = _every_layer_kind()
    save_sparse(tmp_path / "kinds.npz", model)
    loaded, input_shape = read_model_file(tmp_path / "kinds.npz")
    _assert_same_model(loaded, model)
    assert input_shape is None
    assert loaded.classifier[2].p == 0.25 and loaded.classifier[2].original_p == 0.5


def test_loading_a_model_draws_nothing_from_the_global_generator(tmp_path):
    save_sparse(tmp_path / "mlp.npz", _first_hour_mlp())
    minprune_random.manual_seed(3)
    expected = minprune_random.generator().random(4)
    minprune_random.manual_seed(3)
    load_model(tmp_path / "mlp.npz")
    np.testing.assert_array_equal(minprune_random.generator().random(4), expected)


def test_compile_model_takes_the_path_and_the_stored_input_shape(tmp_path):
    model = _first_hour_mlp()
    save_sparse(tmp_path / "mlp.npz", model, input_shape=(1, 8, 8))
    network = mp.inference.compile_model(tmp_path / "mlp.npz")
    assert network.input_shape == (1, 8, 8)
    images = np.random.default_rng(1).random((9, 1, 8, 8), dtype=np.float32)
    expected = mp.inference.compile_model(model, input_shape=(1, 8, 8))(images)
    np.testing.assert_array_equal(network(images), expected)
    flat = mp.inference.compile_model(str(tmp_path / "mlp.npz"), input_shape=(64,))
    np.testing.assert_array_equal(flat(images.reshape(9, 64)), expected)
    save_sparse(tmp_path / "no-shape.npz", model)
    with pytest.raises(ValueError, match=r"compile_model\(model, input_shape="):
        mp.inference.compile_model(tmp_path / "no-shape.npz")  # (1, 28, 28) does not fit


def test_a_state_dict_file_has_no_architecture_and_says_what_to_do(tmp_path):
    model = _first_hour_mlp()
    save_sparse(tmp_path / "state.npz", model.state_dict())
    with pytest.raises(ValueError, match=r"state.npz: holds weights but no architecture.*"
                                         r"model.load_state_dict\(minprune.sparse.load_sparse"):
        load_model(tmp_path / "state.npz")
    with pytest.raises(ValueError, match="input_shape is stored with the model's architecture"):
        save_sparse(tmp_path / "refused.npz", model.state_dict(), input_shape=(64,))


def _rewrite_metadata(path, change):
    """Change the metadata and write a matching checksum: a hostile file, not a damaged one."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files if name != CHECKSUM_MEMBER}
    metadata = json.loads(arrays[META].tobytes())
    change(metadata)
    arrays[META] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    write_npz(path, arrays)


def test_a_version_2_file_still_loads(tmp_path):
    model = _first_hour_mlp()
    save_sparse(tmp_path / "old.npz", model.state_dict())
    _rewrite_metadata(tmp_path / "old.npz", lambda m: m.update(version=2))
    loaded = load_sparse(tmp_path / "old.npz")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)


def _layer(index):
    return lambda m: m["architecture"]["layers"][index]


HOSTILE = {
    "enormous layer": (lambda m: _layer(1)(m).update(in_features=10**9),
                       r"'fc1.weight' is \(128, 1000000000\) in the layers, \(128, 64\) in the "
                       r"file"),
    "layer missing": (lambda m: m["architecture"]["layers"].pop(), "'fc3.bias' is absent"),
    "internal name": (lambda m: _layer(0)(m).update(name="_modules"), r"layers\[0\].name"),
    "method name": (lambda m: _layer(2)(m).update(name="forward"), r"layers\[2\].name"),
    "twice": (lambda m: _layer(2)(m).update(name="flatten"), "'flatten' appears twice"),
    "unknown type": (lambda m: _layer(2)(m).update(type="Tanh"), r"layers\[2\].type"),
    "list for a type": (lambda m: _layer(2)(m).update(type=["ReLU"]), r"layers\[2\].type"),
    "bool for an int": (lambda m: _layer(1)(m).update(out_features=True),
                        r"layers\[1\].out_features: expected an int >= 1"),
    "dropout ratio": (lambda m: _layer(3)(m).update(p=1.5), "dropout ratios must be in"),
    "extra field": (lambda m: _layer(2)(m).update(inplace=True), "ReLU has the fields"),
    "not a list": (lambda m: m["architecture"].update(layers={"fc1": 1}), "expected a list"),
    "not an object": (lambda m: m.update(architecture=[1]), "expected an object"),
    "input shape": (lambda m: m["architecture"].update(input_shape=[0, 8]), "input_shape"),
    "deep nesting": (lambda m: m["architecture"].update(layers=_nested(12)), "nested deeper"),
}


def _nested(depth):
    layers = []
    for level in range(depth):
        layers = [{"name": f"s{level}", "type": "Sequential", "layers": layers}]
    return layers


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_architecture_is_refused_naming_the_file_and_field(tmp_path, case):
    change, message = HOSTILE[case]
    path = tmp_path / "hostile.npz"
    save_sparse(path, _first_hour_mlp(), input_shape=(1, 8, 8))
    _rewrite_metadata(path, change)
    with pytest.raises(SparseFileError, match=message) as error:
        load_model(path)
    assert str(path) in str(error.value) and f"{META}.architecture" in str(error.value)
    load_sparse(path)  # the weights themselves are intact


class Tanh(Module):
    def forward(self, x):
        return x


def test_a_model_with_another_layer_is_refused_and_told_to_save_its_state_dict(tmp_path):
    model = Sequential(OrderedDict(fc=Linear(4, 2), squash=Tanh()))
    with pytest.raises(ValueError, match=r"layer 'squash' is a Tanh.*"
                                         r"save_sparse\(path, model.state_dict\(\)\)"):
        save_sparse(tmp_path / "tanh.npz", model)
    with pytest.raises(ValueError, match="expected a minprune.nn.Sequential, got Linear"):
        save_sparse(tmp_path / "linear.npz", Linear(4, 2))
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="input_shape must be one sample's shape"):
        save_sparse(tmp_path / "shape.npz", models.lenet_300_100(), input_shape=(0, 28))
