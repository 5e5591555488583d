"""Modules, layers and the two LeNets."""

import numpy as np
import pytest

import minprune
from minprune import nn
from minprune.nn import models


def test_parameter_counts_match_the_paper():
    assert sum(p.size for p in models.lenet_300_100().parameters()) == 266_610
    assert sum(p.size for p in models.lenet5().parameters()) == 431_080


def test_layer_names_match_the_papers_tables():
    names = [name for name, _ in models.lenet5().named_parameters()]
    assert names == [f"{layer}.{kind}" for layer in ("conv1", "conv2", "fc1", "fc2")
                     for kind in ("weight", "bias")]
    buffers = [name for name, _ in models.lenet_300_100().named_buffers()]
    assert buffers == ["fc1.weight_mask", "fc2.weight_mask", "fc3.weight_mask"]


@pytest.mark.parametrize("build", [models.lenet_300_100, models.lenet5])
def test_forward_shapes(build):
    logits = build()(np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
    assert logits.shape == (3, 10) and logits.dtype == np.float32


def test_state_dict_round_trips_exactly():
    minprune.manual_seed(1)
    source = models.lenet5()
    source.fc1.weight_mask = (np.random.default_rng(0).random((500, 800)) > 0.5)
    state = source.state_dict()
    minprune.manual_seed(2)
    target = models.lenet5()
    target.load_state_dict(state)
    for (name, a), (_, b) in zip(state.items(), target.state_dict().items(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert target.fc1.weight.mask is target.fc1.weight_mask  # one mask, on the weight


def test_load_state_dict_checks_keys_and_shapes_before_writing():
    model = models.lenet_300_100()
    before = model.state_dict()
    bad = dict(before)
    bad["fc3.bias"] = np.zeros(11, dtype=np.float32)
    bad["fc1.weight"] = before["fc1.weight"] + 1  # valid, but must not be written
    with pytest.raises(ValueError, match="'fc3.bias' has shape"):
        model.load_state_dict(bad)
    np.testing.assert_array_equal(model.fc1.weight.data, before["fc1.weight"])
    with pytest.raises(KeyError, match="missing keys"):
        model.load_state_dict({"fc1.weight": before["fc1.weight"]})


def _pruned_lenet_300_100():
    from minprune.prune import keep_ratio_prune

    minprune.manual_seed(0)
    model = models.lenet_300_100()
    dense_state = model.state_dict()
    keep_ratio_prune(model, {"*": 0.1})
    return model, dense_state


def test_loading_a_dense_state_into_a_pruned_model_warns_naming_layers_and_densities():
    model, dense_state = _pruned_lenet_300_100()
    with pytest.warns(UserWarning, match=r"turns pruned connections back on in fc1.weight "
                                         r"\(density 10.0% -> 100.0%\), fc2.weight.*"
                                         r"density 10.0% -> 100.0%.*unprune=True"):
        model.load_state_dict(dense_state)
    assert model.fc1.weight_mask.all()  # still loaded: the warning says what happened


def test_loading_with_unprune_or_loading_pruned_masks_does_not_warn():
    import warnings

    model, dense_state = _pruned_lenet_300_100()
    pruned_state = model.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load_state_dict(pruned_state)  # the same masks
        models.lenet_300_100().load_state_dict(pruned_state)  # a dense model pruned by the state
        model.load_state_dict(dense_state, unprune=True)
    assert model.fc1.weight_mask.all()


def test_a_path_given_to_load_state_dict_names_the_file_readers(tmp_path):
    model = models.lenet_300_100()
    before = model.state_dict()
    for path in ("/tmp/dense.ckpt", tmp_path / "dense.ckpt"):
        with pytest.raises(TypeError, match=r"got a path \('.*dense.ckpt'\).*"
                                            r"load_model_checkpoint.*load_model\(path\)"):
            model.load_state_dict(path)
    with pytest.raises(TypeError, match="expected a mapping of names to arrays.*got list"):
        model.load_state_dict([("fc1.weight", before["fc1.weight"])])
    np.testing.assert_array_equal(model.fc1.weight.data, before["fc1.weight"])


def test_mask_of_wrong_shape_or_values_is_refused():
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"Linear 'Linear' weight_mask: expected an array of the "
                                         r"parameter's shape \(3, 4\), got \(4, 3\)"):
        layer.weight_mask = np.ones((4, 3))
    with pytest.raises(ValueError, match="only 0 .pruned. and 1 .kept."):
        layer.weight_mask = np.full((3, 4), 0.5)
    assert np.all(layer.weight_mask == 1)  # nothing changed


def test_a_mask_lives_on_its_weight_frozen_and_copied():
    layer = nn.Linear(4, 3)
    mask = np.ones((3, 4), np.float32)
    mask[0, 0] = 0
    layer.weight_mask = mask
    mask[1, 1] = 0  # the caller's array stays theirs
    assert layer.weight_mask is layer.weight.mask and layer.weight_mask[1, 1] == 1
    with pytest.raises(ValueError, match="read-only"):
        layer.weight_mask[2, 2] = 0  # in place is refused: assign a new mask instead


def test_mask_joins_the_forward_and_zeroes_the_gradient():
    layer = nn.Linear(4, 3)
    mask = np.ones((3, 4), dtype=np.float32)
    mask[0, :] = 0
    layer.weight_mask = mask
    x = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    out = layer(x)
    np.testing.assert_allclose(out.data[:, 0], layer.bias.data[0])
    out.sum().backward()
    assert np.all(layer.weight.grad[0] == 0) and np.all(layer.weight.grad[1:] != 0)


def test_wrong_input_shape_names_the_layer_and_both_shapes():
    model = models.lenet_300_100()
    with pytest.raises(ValueError, match=r"Linear 'fc1': linear: expected input of shape "
                                         r"\(\.\.\., 784\) \(in_features last\), got \(2, 783\)"):
        model.fc1(np.zeros((2, 783), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Conv2d 'conv1'.*got \(2, 3, 28, 28\)"):
        models.lenet5()(np.zeros((2, 3, 28, 28), dtype=np.float32))


def test_train_eval_reach_every_module():
    model = models.lenet_300_100(dropout=0.5)
    model.eval()
    assert all(not m.training for m in model.modules())
    x = np.ones((2, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(model(x).data, model(x).data)  # dropout is off
    model.train()
    assert all(m.training for m in model.modules())


def test_seeded_initialisation_is_reproducible_and_caffe_xavier():
    minprune.manual_seed(3)
    a = models.lenet_300_100()
    minprune.manual_seed(3)
    b = models.lenet_300_100()
    np.testing.assert_array_equal(a.fc1.weight.data, b.fc1.weight.data)
    bound = np.sqrt(3 / 784)
    assert np.abs(a.fc1.weight.data).max() <= bound
    assert np.abs(a.fc1.weight.data).max() > 0.95 * bound
    assert np.all(a.fc1.bias.data == 0)


def test_build_rejects_unknown_models():
    with pytest.raises(ValueError, match="unknown model 'lenet6'"):
        models.build("lenet6")


def test_replacing_a_child_keeps_its_place_in_a_sequential():
    model = models.lenet_300_100()
    model.fc2 = nn.Linear(300, 100)
    assert list(model._modules) == ["flatten", "fc1", "relu1", "fc2", "relu2", "fc3"]


def test_copy_model_is_independent_and_draws_nothing_from_the_generator():
    from minprune.base import random as minprune_random

    minprune.manual_seed(0)
    model = models.lenet_300_100()
    mask = (np.random.default_rng(1).random(model.fc1.weight.shape) < 0.5).astype(np.float32)
    model.fc1.weight_mask = mask
    model.eval()
    state = minprune_random.generator().bit_generator.state
    copied = minprune.copy_model(model)
    assert minprune_random.generator().bit_generator.state == state  # nothing drawn
    assert copied is not model and not copied.training
    assert repr(copied) == repr(model)
    for (name, a), (_, b) in zip(model.state_dict().items(), copied.state_dict().items(),
                                 strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert not copied.fc1.weight_mask.flags.writeable  # still frozen
    copied.fc1.weight.data[...] = 0.0
    copied.fc1.weight_mask = np.zeros_like(mask)
    assert model.fc1.weight.data.any()
    np.testing.assert_array_equal(model.fc1.weight_mask, mask)
    assert minprune.nn.copy_model is minprune.copy_model
