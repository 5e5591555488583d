"""Dynamic Network Surgery (Guo et al. 2016): pruned weights keep learning and can be spliced
back, masks follow the two-threshold rule, the result is an ordinary pruned model, and a resumed
run is the uninterrupted one."""

from collections import OrderedDict

import numpy as np
import pytest
from toy_data import blobs

import minprune
from minprune.nn import Flatten, Linear, Sequential, models
from minprune.prune import (
    hysteresis_top_k,
    layers_by_weight_name,
    network_surgery,
    set_mask,
    surgery_mask,
    surgery_thresholds,
)
from minprune.training.fingerprint import RunMismatchError
from minprune.training.fit import fit
from minprune.training.phase import Phase

QUIET = dict(progress=False, log=lambda s: None)
PHASE = Phase(epochs=3, lr=0.01, batch_size=32, lr_policy="fixed")  # 8 steps an epoch on blobs()


def trained(seed=0):
    minprune.manual_seed(seed)
    model = models.lenet_300_100()
    fit(model, Phase(lr=0.05).optimizer(model.parameters()), blobs(), epochs=2, batch_size=32,
        **QUIET)
    return model


def watch(names=None):
    """An on_step that keeps (step, weights, masks) after every step."""
    seen = []

    def on_step(step, model):
        layers = layers_by_weight_name(model)
        seen.append((step, {n: layers[n].weight.data.copy() for n in layers},
                     {n: layers[n].weight_mask.copy() for n in layers}))
    return seen, on_step


def test_the_rule_prunes_below_a_splices_above_b_and_holds_between():
    weight = np.array([0.05, 0.1, 0.15, 0.15, 0.2, 0.25, -0.3, -0.05])
    mask = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(surgery_mask(weight, mask, 0.1, 0.2),
                                  [0, 0, 1, 0, 0, 1, 1, 0])


def test_thresholds_from_c_follow_the_papers_code_and_keep_ratio_aims_at_a_size():
    model = trained()
    c = {"fc1.weight": 1.5, "*": -0.5}
    thresholds = surgery_thresholds(model, c=c)
    for name, layer in layers_by_weight_name(model).items():
        magnitude = np.abs(layer.weight.data.astype(np.float64))
        t = magnitude.mean() + c.get(name, c["*"]) * magnitude.std()
        assert thresholds[name] == pytest.approx([0.9 * max(t, 0), 1.1 * max(t, 0)])
    thresholds = surgery_thresholds(model, keep_ratio={"fc1.weight": 0.1, "*": 0.5})
    for name, layer in layers_by_weight_name(model).items():
        kept = np.count_nonzero(np.abs(layer.weight.data) > thresholds[name][0])
        target = 0.1 if name == "fc1.weight" else 0.5
        assert kept == round(target * layer.weight.data.size)
        assert thresholds[name][1] == pytest.approx(thresholds[name][0] * 1.1 / 0.9)


def test_thresholds_at_the_edges_keep_everything_and_survive_an_empty_layer():
    model = trained()
    for name, (lower, upper) in surgery_thresholds(model, keep_ratio=1.0).items():
        assert lower == upper == 0.0, name  # keep everything: nothing lies at or below 0
    layers = layers_by_weight_name(model)
    set_mask(layers["fc3.weight"], np.zeros_like(layers["fc3.weight"].weight_mask))
    assert surgery_thresholds(model, c=1.0)["fc3.weight"] == [0.0, 0.0]  # no survivors: no t
    pruned_half = surgery_thresholds(model, keep_ratio=0.5)["fc2.weight"][0]
    layer = layers["fc2.weight"]
    set_mask(layer, (np.abs(layer.weight.data) > pruned_half).astype(np.float32))
    # counted over the layer's weights, pruned ones as zeros: half of half is a quarter
    lower = surgery_thresholds(model, keep_ratio=0.25)["fc2.weight"][0]
    assert np.count_nonzero(np.abs(layer.weight.data) > lower) == round(0.25 * layer.weight.size)


def _linear_model_with_the_signal_cut():
    """A linear classifier of blobs() whose informative connections (class k's row of pixels to
    output k) are 0, among random weights: the first surgery prunes exactly those."""
    minprune.manual_seed(0)
    model = Sequential(OrderedDict(flatten=Flatten(), fc=Linear(784, 10)))
    weight = np.random.default_rng(0).uniform(-0.05, 0.05, (10, 784)).astype(np.float32)
    signal = np.zeros((10, 784), dtype=bool)
    for k in range(10):
        signal[k, (2 * k + 4) * 28:(2 * k + 5) * 28] = True
    weight[signal] = 0.0
    model.fc.weight.data[...] = weight
    return model, signal


def test_pruned_weights_keep_receiving_gradient_and_are_spliced_back():
    model, signal = _linear_model_with_the_signal_cut()
    seen, on_step = watch()
    plain_sgd = Phase(epochs=3, lr=0.1, momentum=0.0, weight_decay=0.0, batch_size=32,
                      lr_policy="fixed")  # so a pruned weight moves only by its gradient
    network_surgery(model, blobs(), None, plain_sgd, c=1.0, gamma=0.0, on_step=on_step, **QUIET)
    (_, w1, m1), (_, w2, m2) = seen[0], seen[1]
    assert np.all(m1["fc.weight"][signal] == 0) and np.all(m2["fc.weight"][signal] == 0)
    both_pruned = (m1["fc.weight"] == 0) & (m2["fc.weight"] == 0)
    moved = w1["fc.weight"][both_pruned] != w2["fc.weight"][both_pruned]
    assert moved.mean() > 0.5  # pruned, yet the gradient through w * mask reached them
    spliced = signal & (model.fc.weight_mask == 1)
    assert spliced.sum() > 0.9 * signal.sum()  # pruned at step 0, grown past b, back in use
    assert np.all(model.fc.weight.data[spliced] > 0)


def test_masks_between_steps_follow_the_rule_with_hysteresis_and_the_result_is_pruned():
    model = trained()
    thresholds = surgery_thresholds(model, c=0.5)
    seen, on_step = watch()
    records = network_surgery(model, blobs(), blobs(64, seed=1), PHASE, c=0.5, gamma=0.0,
                              on_step=on_step, **QUIET)
    assert records[-1]["thresholds"] == thresholds
    held = {0: 0, 1: 0}
    for (_, _, before), (_, weights, after) in zip(seen[:-1], seen[1:], strict=True):
        for name, (a, b) in thresholds.items():
            np.testing.assert_array_equal(
                after[name], surgery_mask(weights[name], before[name], a, b))
            between = (np.abs(weights[name]) > a) & (np.abs(weights[name]) <= b)
            for value in (0, 1):
                held[value] += int(np.count_nonzero(after[name][between] == value))
    assert held[0] > 0 and held[1] > 0  # the band really holds both states
    for name, layer in layers_by_weight_name(model).items():
        np.testing.assert_array_equal(layer.weight_mask, seen[-1][2][name])
        assert np.all(layer.weight.data[layer.weight_mask == 0] == 0)
        assert np.any(seen[-1][1][name][layer.weight_mask == 0] != 0)  # was dense till the end
    assert records[-1]["density"] < 0.5 and records[-1]["test_error"] < 0.1


def test_every_and_stop_step_limit_when_masks_change():
    model = trained()
    seen, on_step = watch()
    network_surgery(model, blobs(), None, PHASE, c=1.0, gamma=0.0, every=3, stop_step=10,
                    on_step=on_step, **QUIET)
    changed = [step for (step, _, now), (_, _, before) in zip(seen[1:], seen[:-1], strict=True)
               if any(not np.array_equal(now[n], before[n]) for n in now)]
    assert changed and set(changed) <= {3, 6, 9}


def test_a_killed_run_resumes_bit_identically_and_other_settings_are_refused(tmp_path):
    settings = dict(keep_ratio={"fc1.weight": 0.1, "*": 0.3}, gamma=0.1, power=1.0, **QUIET)
    straight = trained()
    expected = network_surgery(straight, blobs(), blobs(64, seed=1), PHASE,
                               checkpoint=tmp_path / "a.npz", **settings)

    class Killed(Exception):
        pass

    def die_in_epoch_2(step, model):
        if step == 11:
            raise Killed

    with pytest.raises(Killed):
        network_surgery(trained(), blobs(), blobs(64, seed=1), PHASE,
                        checkpoint=tmp_path / "b.npz", on_step=die_in_epoch_2, **settings)
    resumed = trained()
    records = network_surgery(resumed, blobs(), blobs(64, seed=1), PHASE,
                              checkpoint=tmp_path / "b.npz", **settings)
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)
    drop_seconds = [{k: v for k, v in r.items() if k != "seconds"} for r in expected]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in records] == drop_seconds
    with pytest.raises(RunMismatchError, match="surgery"):
        network_surgery(trained(), blobs(), blobs(64, seed=1), PHASE,
                        checkpoint=tmp_path / "b.npz", **dict(settings, gamma=0.2))
    with pytest.raises(RunMismatchError, match="seed"):
        network_surgery(trained(), blobs(), blobs(64, seed=1), PHASE, seed=1,
                        checkpoint=tmp_path / "b.npz", **settings)


def test_hysteresis_top_k_keeps_the_size_and_splices_only_past_the_band():
    weight = np.array([[1.0, -2.0, 3.0, 4.0], [0.5, 1.19, 1.23, -5.0]], dtype=np.float32)
    mask = np.array([[1, 1, 0, 1], [0, 0, 0, 1]], dtype=np.float32)
    kept = hysteresis_top_k(weight, mask, 0.5)  # four of eight
    assert kept.sum() == 4 and kept.dtype == np.float32 and kept.shape == weight.shape
    # scores, kept ones x 1.1 / 0.9: 1.22, 2.44, 3, 4.89 | 0.5, 1.19, 1.23, 6.11: the top four
    # are 6.11, 4.89, 3 (spliced back: it outgrew the kept -2 by more than the band), 2.44
    np.testing.assert_array_equal(kept, [[0, 1, 1, 1], [0, 0, 0, 1]])
    # a pruned weight that does not outgrow a kept one by 1.1 / 0.9 stays out
    held = hysteresis_top_k(np.array([1.0, 1.2, 0.1]), np.array([1, 0, 0]), 1 / 3)
    np.testing.assert_array_equal(held, [1, 0, 0])
    swapped = hysteresis_top_k(np.array([1.0, 1.3, 0.1]), np.array([1, 0, 0]), 1 / 3)
    np.testing.assert_array_equal(swapped, [0, 1, 0])
    ties = hysteresis_top_k(np.ones(4), np.zeros(4), 0.5)  # ties: the lower indices
    np.testing.assert_array_equal(ties, [1, 1, 0, 0])
    assert not hysteresis_top_k(np.ones(4), np.ones(4), 0.1).any()  # round(0.4) = 0


def test_holding_the_size_keeps_every_layer_at_its_ratio_while_splicing():
    ratios = {"fc1.weight": 0.1, "*": 0.3}
    model = trained()
    seen, on_step = watch()
    network_surgery(model, blobs(), None, PHASE, keep_ratio=ratios, hold_size=True, gamma=0.0,
                    on_step=on_step, **QUIET)
    spliced = 0
    for (_, _, now), (_, _, before) in zip(seen[1:], seen[:-1], strict=True):
        for name, mask in now.items():
            ratio = ratios.get(name, ratios["*"])
            assert mask.sum() == round(ratio * mask.size), name
            spliced += int(((mask != 0) & (before[name] == 0)).sum())
    assert spliced > 0  # connections came back, and others went to make room
    for name, layer in layers_by_weight_name(model).items():
        assert np.count_nonzero(layer.weight.data) == round(
            ratios.get(name, ratios["*"]) * layer.weight.data.size)


@pytest.mark.parametrize("arguments, message", [
    (dict(), "exactly one of c and keep_ratio"),
    (dict(c=1.0, keep_ratio=0.5), "exactly one of c and keep_ratio"),
    (dict(c=float("nan")), "c for 'fc1.weight': c must be a finite number, got nan"),
    (dict(c={"fc9.weight": 1.0, "*": 1.0}), "'fc9.weight' names no prunable layer"),
    (dict(keep_ratio=0.0), "keep ratio must be in"),
    (dict(c=1.0, every=0), "every must be an int >= 1, got 0"),
    (dict(c=1.0, stop_step=-1), "stop_step must be an int >= 0, got -1"),
    (dict(c=1.0, gamma=-1.0), "gamma must be a finite number >= 0, got -1.0"),
    (dict(c=1.0, power=float("inf")), "power must be a finite number >= 0"),
    (dict(c=1.0, hold_size=True), "hold_size=True needs keep_ratio"),
])
def test_bad_arguments_are_refused_before_anything_changes(arguments, message):
    model = trained()
    before = model.state_dict()
    with pytest.raises(ValueError, match=message):
        network_surgery(model, blobs(), None, PHASE, **arguments, **QUIET)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.slow
def test_lenet_300_100_under_surgery_at_10_percent_on_real_mnist(mnist_dir):
    """Three epochs of surgery from a two-epoch baseline (3.8%), thresholds set to start at 10%
    density: it stays near there, under 3% error."""
    train, test = minprune.data.mnist(mnist_dir)
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    fit(model, Phase(lr=0.1).optimizer(model.parameters()), train, epochs=2, **QUIET)
    records = network_surgery(model, train, test, Phase(epochs=3), keep_ratio=0.1, every=100,
                              **QUIET)
    assert 0.05 < records[-1]["density"] < 0.12
    assert records[-1]["test_error"] < 0.03
