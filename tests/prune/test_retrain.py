"""The prune-retrain loop: masks hold, dropout adjustment, freezing, resumable rounds, rounds as
data, and the loop in memory."""

import inspect

import numpy as np
import pytest
from toy_data import blobs

import minprune
from minprune import prune
from minprune.base.paper import DROPOUT_EXAMPLE
from minprune.nn import models
from minprune.prune import (
    adjust_dropout,
    dropout_ratios,
    frozen,
    geometric_keep_ratios,
    iterative_prune,
    retrain,
)
from minprune.training.fingerprint import RunMismatchError
from minprune.training.fit import evaluate, fit
from minprune.training.phase import Phase

QUIET = dict(progress=False, log=lambda s: None)
PHASE = Phase(epochs=1, lr=0.005, batch_size=32, lr_policy="fixed")


def trained(seed=0, dropout=0.0):
    minprune.manual_seed(seed)
    model = models.lenet_300_100(dropout=dropout)
    fit(model, Phase(lr=0.05).optimizer(model.parameters()), blobs(), epochs=2, batch_size=32,
        **QUIET)
    return model


def test_dropout_adjustment_follows_equation_2():
    model = models.lenet_300_100(dropout=0.5)
    original = dropout_ratios(model)
    assert original == {"drop1": 0.5, "drop2": 0.5}
    prune.keep_ratio_prune(model, {"fc1.weight": 0.09, "fc2.weight": 0.25, "*": 1.0})
    adjusted = adjust_dropout(model, original)
    assert adjusted["drop1"] == pytest.approx((0.5, 0.5 * np.sqrt(0.09)), rel=1e-3)  # ~0.15
    assert adjusted["drop1"][1] == pytest.approx(DROPOUT_EXAMPLE["retrained"], abs=0.005)
    assert adjusted["drop2"] == pytest.approx((0.5, 0.25), rel=1e-3)
    assert model.drop1.p == adjusted["drop1"][1]
    prune.keep_ratio_prune(model, {"fc1.weight": 0.04, "*": 1.0})
    assert adjust_dropout(model, original)["drop1"] == pytest.approx((0.5, 0.1), rel=1e-2)  # D_o
    assert adjust_dropout(models.lenet_300_100(), {}) == {}
    with pytest.raises(ValueError, match="no original ratio for dropout 'drop2'"):
        adjust_dropout(model, {"drop1": 0.5})


def test_repeated_rounds_scale_the_original_dropout_ratio(tmp_path):
    model = trained(dropout=0.5)
    records = iterative_prune(model, blobs(), blobs(64, seed=1), _rounds(), PHASE, **QUIET)
    for record in records:
        d_o, d_r = record["dropout"]["drop1"]
        assert d_o == 0.5
        assert d_r == pytest.approx(0.5 * np.sqrt(record["layer_density"]["fc1.weight"]))


def test_pruning_twice_to_the_same_density_gives_the_same_dropout_ratio():
    # Sec. 3.2's D_o is the ratio the Dropout was built with, never one a previous call lowered:
    # two calls that each end at 25% of fc1 give D_r = 0.5 x sqrt(0.25) = 0.25 both times.
    model = trained(dropout=0.5)
    rounds = [{"keep_ratio": {"fc1.weight": 0.25, "*": 1.0}}]
    first = iterative_prune(model, blobs(), blobs(64, seed=1), rounds, PHASE, **QUIET)
    with pytest.warns(UserWarning, match="round 1/1 pruned nothing"):  # already at 25%
        second = iterative_prune(model, blobs(), blobs(64, seed=1), rounds, PHASE, **QUIET)
    assert first[0]["dropout"]["drop1"] == pytest.approx((0.5, 0.25))
    assert second[0]["dropout"]["drop1"] == pytest.approx((0.5, 0.25))
    assert model.drop1.p == pytest.approx(0.25) and model.drop1.original_p == 0.5
    assert dropout_ratios(model) == {"drop1": 0.5, "drop2": 0.5}
    assert "original_p=0.5" in repr(model.drop1)


def test_retrain_lowers_the_dropout_for_the_density():
    model = trained(dropout=0.5)
    prune.keep_ratio_prune(model, {"fc1.weight": 0.09, "*": 1.0})
    retrain(model, blobs(64), None, PHASE, **QUIET)
    assert model.drop1.p == pytest.approx(0.5 * np.sqrt(0.09), rel=1e-3)  # Sec. 3.2: ~0.15
    assert model.drop2.p == pytest.approx(0.5)
    retrain(model, blobs(64), None, PHASE, original_dropout={"drop1": 0.4, "drop2": 0.2},
            **QUIET)
    assert model.drop1.p == pytest.approx(0.4 * 0.3, rel=1e-3)


def test_records_say_which_std_the_thresholds_were_taken_from():
    rounds = [{"quality": 1.0, "std_of": "dense"}, {"quality": 1.0, "std_of": "dense"},
              {"quality": 1.0}, {"keep_ratio": 0.05}]
    no_retraining = Phase(epochs=0, lr=0.005, batch_size=32, lr_policy="fixed")
    model = trained()
    dense = {name: prune.layer_std(layer)
             for name, layer in prune.layers_by_weight_name(model).items()}
    with pytest.warns(UserWarning, match="round 2/4 pruned nothing"):
        records = iterative_prune(model, blobs(), blobs(64), rounds, no_retraining, **QUIET)
    assert [r.get("std_of") for r in records] == ["dense", "dense", "surviving", None]
    assert records[1]["decided"] == pytest.approx(dense)  # the dense std, taken once
    assert records[1]["density"] == records[0]["density"]  # nothing moved: nothing new pruned
    assert records[2]["density"] < records[1]["density"]
    with pytest.raises(ValueError, match="already pruned"):
        iterative_prune(model, blobs(), blobs(64), rounds[:1], no_retraining, **QUIET)


def test_freezing_keeps_the_frozen_part_exactly_and_restores_requires_grad():
    minprune.manual_seed(0)
    model = models.lenet5()
    conv_before = model.conv1.weight.data.copy()
    fc_before = model.fc1.weight.data.copy()
    retrain(model, blobs(64), None, PHASE, freeze="conv", **QUIET)
    np.testing.assert_array_equal(model.conv1.weight.data, conv_before)
    assert not np.array_equal(model.fc1.weight.data, fc_before)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="freeze must be one of"):
        with frozen(model, "rnn"):
            pass


def test_retraining_keeps_pruned_weights_zero_and_recovers_accuracy():
    model = trained()
    prune.keep_ratio_prune(model, 0.2)
    assert evaluate(model, blobs(seed=1))["error"] > 0.1  # pruning without retraining hurts
    masks = {n: layer.weight_mask.copy() for n, layer in prune.layers_by_weight_name(model).items()}
    retrain(model, blobs(), None, Phase(epochs=2, lr=0.01, batch_size=32), **QUIET)
    for name, layer in prune.layers_by_weight_name(model).items():
        np.testing.assert_array_equal(layer.weight_mask, masks[name])
        assert np.all(layer.weight.data[masks[name] == 0] == 0)
    assert evaluate(model, blobs(seed=1))["error"] < 0.02


def test_geometric_schedule_reaches_the_targets():
    steps = geometric_keep_ratios({"a": 0.08, "b": 1.0}, 3)
    assert len(steps) == 3 and steps[-1] == {"a": pytest.approx(0.08), "b": 1.0}
    assert steps[0]["a"] == pytest.approx(0.08 ** (1 / 3))
    with pytest.raises(ValueError, match="rounds must be"):
        geometric_keep_ratios({"a": 0.5}, 0)


def _rounds():
    return [lambda m, r=r: prune.keep_ratio_prune(m, r)
            for r in geometric_keep_ratios({"*": 0.1}, 3)]


def test_interrupted_iterative_pruning_resumes_to_the_same_result(tmp_path):
    straight = trained()
    plan = geometric_keep_ratios({"*": 0.1}, 3)
    records = iterative_prune(straight, blobs(), blobs(64, seed=1), _rounds(), PHASE,
                              state_dir=tmp_path / "a", plan=plan, **QUIET)
    assert [r["round"] for r in records] == [1, 2, 3]
    assert records[-1]["density"] == pytest.approx(0.1, abs=0.002)

    class Killed(Exception):
        pass

    def die_in_round_2(message):
        if message.startswith("round 2/3: density") and "before" in message:
            raise Killed

    interrupted = trained()
    with pytest.raises(Killed):
        iterative_prune(interrupted, blobs(), blobs(64, seed=1), _rounds(), PHASE,
                        state_dir=tmp_path / "b", plan=plan, progress=False, log=die_in_round_2)
    with pytest.raises(RunMismatchError, match="start_state: saved"):  # other starting weights
        iterative_prune(trained(seed=9), blobs(), blobs(64, seed=1), _rounds(), PHASE,
                        state_dir=tmp_path / "b", plan=plan, **QUIET)
    resumed = trained()
    messages = []
    records_b = iterative_prune(resumed, blobs(), blobs(64, seed=1), _rounds(), PHASE,
                                state_dir=tmp_path / "b", plan=plan, progress=False,
                                log=messages.append)
    assert any("1 of 3 rounds done" in m for m in messages)
    assert [r["error_retrained"] for r in records_b] == [r["error_retrained"] for r in records]
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(),
                                 strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_saved_rounds_from_other_settings_are_refused(tmp_path):
    model = trained()
    iterative_prune(model, blobs(), blobs(64), _rounds()[:1], PHASE, state_dir=tmp_path,
                    plan=["a"], **QUIET)
    with pytest.raises(RunMismatchError, match=r'what differs: plan: saved \["a"\], asked for '
                                                 r'\["b"\].*delete'):
        iterative_prune(trained(), blobs(), blobs(64), _rounds()[:1], PHASE, state_dir=tmp_path,
                        plan=["b"], **QUIET)
    for other, differs in ((dict(seed=1), "seed"), (dict(freeze="fc"), "freeze"),
                           (dict(test_set=blobs(64, seed=5)), "test_data")):
        options = {"plan": ["a"], **QUIET, **other}
        test_set = options.pop("test_set", blobs(64))
        with pytest.raises(RunMismatchError, match=f"what differs: {differs}: saved"):
            iterative_prune(trained(), blobs(), test_set, _rounds()[:1], PHASE,
                            state_dir=tmp_path, **options)


def test_rounds_given_as_functions_need_a_plan_to_be_saved(tmp_path):
    with pytest.raises(ValueError, match="with state_dir, give plan="):
        iterative_prune(trained(), blobs(), blobs(64), _rounds(), PHASE, state_dir=tmp_path,
                        **QUIET)
    assert not any(tmp_path.iterdir())


def test_iterative_pruning_in_memory_matches_the_saved_run(tmp_path):
    saved = trained()
    records = iterative_prune(saved, blobs(), blobs(64, seed=1), _rounds(), PHASE,
                              state_dir=tmp_path, plan=["round"] * 3, **QUIET)
    in_memory = trained()
    records_memory = iterative_prune(in_memory, blobs(), blobs(64, seed=1), _rounds(), PHASE,
                                     **QUIET)
    assert [r["error_retrained"] for r in records_memory] == [
        r["error_retrained"] for r in records]
    for (name, a), (_, b) in zip(saved.state_dict().items(), in_memory.state_dict().items(),
                                 strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_rounds_given_as_data_match_the_same_rounds_given_as_functions():
    ratios = geometric_keep_ratios({"*": 0.1}, 3)
    by_function = trained()
    records = iterative_prune(by_function, blobs(), blobs(64, seed=1), _rounds(), PHASE, **QUIET)
    by_data = trained()
    records_data = iterative_prune(by_data, blobs(), blobs(64, seed=1),
                                   [{"keep_ratio": r} for r in ratios], PHASE, **QUIET)
    assert [r["error_retrained"] for r in records_data] == [
        r["error_retrained"] for r in records]
    assert [r["decided"] for r in records_data] == [r["decided"] for r in records]

    by_quality = trained()
    quality_records = iterative_prune(
        by_quality, blobs(), blobs(64, seed=1),
        [{"quality": {"fc1.weight": 1.3, "*": 1.0}}, {"quality": 1.0}], PHASE, **QUIET)
    assert len(quality_records) == 2
    assert quality_records[-1]["density"] < quality_records[0]["density"] < 1.0


def test_rounds_given_as_data_are_saved_as_the_plan(tmp_path):
    rounds = [{"keep_ratio": 0.5}]
    iterative_prune(trained(), blobs(), blobs(64), rounds, PHASE, state_dir=tmp_path, **QUIET)
    with pytest.raises(RunMismatchError, match="plan: saved"):
        iterative_prune(trained(), blobs(), blobs(64), [{"keep_ratio": 0.4}], PHASE,
                        state_dir=tmp_path, **QUIET)


@pytest.mark.parametrize(
    "rounds, message",
    [
        ([{"keep_ratio": 0.5}, {"threshold": 1.0}],
         r"rounds\[1\]: unknown key 'threshold'; expected a function prune\(model\) or a dict "
         r"with one key, 'quality' or 'keep_ratio'"),
        ([{"quality": 1.0, "keep_ratio": 0.5}], r"rounds\[0\]: expected a function"),
        (["fc1"], r"rounds\[0\]: expected a function"),
        ([{"quality": 1.0}, {"keep_ratio": {"fc1.weight": 1.5, "*": 1.0}}],
         r"rounds\[1\]: keep_ratio for 'fc1.weight': keep ratio must be in \(0, 1\], got 1.5"),
        ([{"keep_ratio": 0.5, "std_of": "dense"}], r"rounds\[0\]: unknown key 'std_of'"),
        ([{"quality": 1.0, "std_of": "median"}], r"rounds\[0\]: std_of must be one of"),
        ([{"quality": {"fc9.weight": 1.0}}],
         r"rounds\[0\]: quality: 'fc9.weight' names no prunable layer"),
    ],
)
def test_a_bad_round_is_refused_before_anything_is_pruned(rounds, message):
    model = trained()
    before = model.state_dict()
    with pytest.raises(ValueError, match=message):
        iterative_prune(model, blobs(), blobs(64), rounds, PHASE, **QUIET)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_the_chapter_vocabulary_is_callable():
    for name in ("retrain", "iterative_prune", "sensitivity_analysis", "adjust_dropout",
                 "frozen", "layer_table", "plot_mask"):
        assert callable(getattr(prune, name)), name
    assert set(prune.__all__) <= set(dir(prune))


def test_iterative_prune_without_a_test_set_names_test_set_before_touching_the_model():
    model = trained()
    before = model.state_dict()
    with pytest.raises(TypeError, match="iterative_prune: test_set is None; every round measures"):
        iterative_prune(model, blobs(), None, [{"keep_ratio": 0.5}], PHASE, **QUIET)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


def test_retrain_and_iterative_prune_on_tuples_match_datasets_and_take_log_none(capsys):
    train, test = blobs(), blobs(64, seed=1)
    pairs = (train.images, train.labels), (test.images, test.labels)
    rounds = [{"keep_ratio": {"fc1.weight": 0.25, "*": 1.0}}]
    on_pairs = iterative_prune(trained(), *pairs, rounds, PHASE, progress=False, log=None)
    on_datasets = iterative_prune(trained(), train, test, rounds, PHASE, **QUIET)
    assert on_pairs[0]["error_retrained"] == on_datasets[0]["error_retrained"]
    assert 0 <= on_pairs[0]["error_retrained"] <= 1
    history = retrain(trained(), *pairs, PHASE, progress=False, log=None)
    assert 0 <= history[0]["test_error"] <= 1
    assert capsys.readouterr().out == ""
    for function in (retrain, iterative_prune):
        assert inspect.signature(function).parameters["progress"].default is None
