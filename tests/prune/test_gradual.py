"""Gradual magnitude pruning (Zhu & Gupta 2017): the cubic ramp, masks recomputed on schedule
and only ever losing connections, the targets reached per layer, resume and its refusals."""

import numpy as np
import pytest
from toy_data import blobs

import minprune
from minprune.nn import models
from minprune.prune import cubic_sparsity, density, gradual_prune, layers_by_weight_name
from minprune.training.fingerprint import RunMismatchError
from minprune.training.fit import evaluate, fit
from minprune.training.phase import Phase

QUIET = dict(progress=False, log=lambda s: None)
PHASE = Phase(epochs=3, lr=0.02, batch_size=32, lr_policy="fixed")  # 8 steps an epoch on blobs()
TARGETS = {"fc1.weight": 0.05, "*": 0.2}


def trained(seed=0):
    minprune.manual_seed(seed)
    model = models.lenet_300_100()
    fit(model, Phase(lr=0.05).optimizer(model.parameters()), blobs(), epochs=2, batch_size=32,
        **QUIET)
    return model


def masks_of(model):
    return {name: layer.weight_mask.copy()
            for name, layer in layers_by_weight_name(model).items()}


def test_the_ramp_is_zhu_and_gupta_equation_1():
    s_i, s_f, t0, end = 0.1, 0.9, 100, 500  # n dt = 400
    assert cubic_sparsity(t0, s_i, s_f, t0, end) == pytest.approx(s_i)
    assert cubic_sparsity(end, s_i, s_f, t0, end) == pytest.approx(s_f)
    for t in (150, 200, 333, 499):
        assert cubic_sparsity(t, s_i, s_f, t0, end) == pytest.approx(
            s_f + (s_i - s_f) * (1 - (t - t0) / 400) ** 3)
    assert cubic_sparsity(0, s_i, s_f, t0, end) == pytest.approx(s_i)  # before: s_i
    assert cubic_sparsity(10_000, s_i, s_f, t0, end) == pytest.approx(s_f)  # after: s_f
    half = cubic_sparsity(300, 0.0, 0.8, t0, end)
    assert half == pytest.approx(0.8 * (1 - 0.5 ** 3))  # fast at first: 7/8 of it by halfway
    with pytest.raises(ValueError, match="end_step must be after begin_step"):
        cubic_sparsity(0, 0.0, 0.5, 10, 10)


def test_masks_follow_the_schedule_only_lose_connections_and_reach_the_targets():
    model = trained()
    seen = []
    records = gradual_prune(model, blobs(), blobs(64, seed=1), PHASE,
                            final_keep_ratio=TARGETS, begin_step=2, end_step=20, every=4,
                            on_step=lambda step, m: seen.append((step, masks_of(m))), **QUIET)
    assert [step for step, _ in seen] == list(range(1, 25))
    changed = [step for (step, now), (_, before) in zip(seen[1:], seen[:-1], strict=True)
               if any(not np.array_equal(now[n], before[n]) for n in now)]
    assert changed == [6, 10, 14, 18, 20]  # updates at 2, 6, ..., 18 and at end_step
    for (_, before), (_, after) in zip(seen[:-1], seen[1:], strict=True):
        for name in before:
            assert np.all(after[name] <= before[name])  # a pruned connection never comes back
    for name, layer in layers_by_weight_name(model).items():
        target = TARGETS.get(name, TARGETS["*"])
        assert abs(np.count_nonzero(layer.weight_mask) - target * layer.weight_mask.size) <= 1
        assert np.all(layer.weight.data[layer.weight_mask == 0] == 0)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["density"] == pytest.approx(density(model))
    assert records[-1]["keep_ratio"]["fc1.weight"] == pytest.approx(0.05)
    assert records[0]["density"] > records[1]["density"] > records[2]["density"]
    assert records[-1]["test_error"] == evaluate(model, blobs(64, seed=1))["error"] < 0.1


def test_step_zero_prunes_before_training_when_the_ramp_starts_there():
    model = trained()
    records = gradual_prune(model, blobs(), None, PHASE, final_keep_ratio=0.5,
                            initial_keep_ratio=0.8, begin_step=0, every=100, **QUIET)
    # The ramp spans the whole phase (24 steps): updates at 0 (to 0.8) and at 24 (to 0.5).
    assert records[0]["keep_ratio"]["fc1.weight"] == pytest.approx(0.8)
    assert records[-1]["layer_density"]["fc1.weight"] == pytest.approx(0.5, abs=1e-5)
    assert density(model) == pytest.approx(0.5, abs=1e-5)


def test_a_killed_run_resumes_to_the_same_weights_and_other_ramps_are_refused(tmp_path):
    settings = dict(final_keep_ratio=TARGETS, end_step=16, every=4, **QUIET)
    straight = trained()
    gradual_prune(straight, blobs(), None, PHASE, checkpoint=tmp_path / "a.npz", **settings)

    class Killed(Exception):
        pass

    def die_in_epoch_2(step, model):
        if step == 11:
            raise Killed

    with pytest.raises(Killed):
        gradual_prune(trained(), blobs(), None, PHASE, checkpoint=tmp_path / "b.npz",
                      on_step=die_in_epoch_2, **settings)
    resumed = trained()
    records = gradual_prune(resumed, blobs(), None, PHASE, checkpoint=tmp_path / "b.npz",
                            **settings)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)
    other = dict(settings, every=2)
    with pytest.raises(RunMismatchError, match="gradual_prune"):
        gradual_prune(trained(), blobs(), None, PHASE, checkpoint=tmp_path / "b.npz", **other)


@pytest.mark.parametrize("arguments, message", [
    (dict(final_keep_ratio=0.0), "final_keep_ratio for 'fc1.weight': keep ratio must be in"),
    (dict(final_keep_ratio=1.5), "keep ratio must be in"),
    (dict(final_keep_ratio={"fc9.weight": 0.5, "*": 0.1}), "'fc9.weight' names no prunable"),
    (dict(final_keep_ratio=0.5, initial_keep_ratio=0.3), "above its initial_keep_ratio"),
    (dict(final_keep_ratio=0.5, every=0), "every must be an int >= 1, got 0"),
    (dict(final_keep_ratio=0.5, begin_step=-1), "begin_step must be an int >= 0"),
    (dict(final_keep_ratio=0.5, begin_step=10, end_step=10), "end_step must be an int >= 11"),
    (dict(final_keep_ratio=0.5, end_step=25), "end_step 25 is past the phase's last step 24"),
])
def test_bad_arguments_are_refused_before_anything_changes(arguments, message):
    model = trained()
    before = model.state_dict()
    with pytest.raises(ValueError, match=message):
        gradual_prune(model, blobs(), None, PHASE, **arguments, **QUIET)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.slow
def test_lenet_300_100_pruned_gradually_to_10_percent_on_real_mnist(mnist_dir):
    """Three epochs from a two-epoch baseline (3.8%), the ramp over the first two: under 3%."""
    train, test = minprune.data.mnist(mnist_dir)
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    fit(model, Phase(lr=0.1).optimizer(model.parameters()), train, epochs=2, **QUIET)
    records = gradual_prune(model, train, test, Phase(epochs=3), final_keep_ratio=0.1,
                            end_step=2 * 938, every=100, **QUIET)
    assert density(model) == pytest.approx(0.1, abs=1e-4)
    assert records[-1]["test_error"] < 0.03
