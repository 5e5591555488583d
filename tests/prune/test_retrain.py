"""The prune-retrain loop: masks hold, dropout adjustment, freezing, resumable rounds, rounds as
data, and the loop in memory."""

import inspect
import json
import re

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
from minprune.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minprune.training.fingerprint import RunMismatchError
from minprune.training.fit import TrainingDiverged, evaluate, fit
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


# ---- tiny runs: a seeded untrained LeNet-300-100, 64 training and 32 test images ------------

TRAIN, TEST = blobs(64), blobs(32, seed=1)
NO_EPOCHS = Phase(epochs=0, lr=0.005, batch_size=32, lr_policy="fixed")  # prune and measure only


def tiny(seed=0, dropout=0.0, build=models.lenet_300_100):
    minprune.manual_seed(seed)
    return build(dropout=dropout)


def _same_weights(a, b):
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        np.testing.assert_array_equal(x, y, err_msg=name)


def _as_saved(records):
    """``records`` as a resumed run returns them: read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(records))


_DATA = "a Dataset, an ImageFolder or an (images, labels) pair of NumPy arrays"
_THREE = (TRAIN.images, TRAIN.labels, TRAIN.labels)


_ONE, _TWO = [{"keep_ratio": 0.5}], [{"keep_ratio": 0.5}, {"keep_ratio": 0.25}]


@pytest.mark.parametrize("call, error, message", [
    pytest.param(
        lambda m, d: iterative_prune(m, TRAIN, None, _ONE, PHASE, **QUIET), TypeError,
        "iterative_prune: test_set is None; every round measures the test error before and "
        "after retraining, so give a Dataset or an (images, labels) pair (e.g. a "
        "validation_split part)", id="iterative_prune-no-test_set"),
    pytest.param(
        lambda m, d: iterative_prune(m, _THREE, TEST, _ONE, PHASE, **QUIET), TypeError,
        f"iterative_prune: train_set: got a tuple of 3 items; expected {_DATA}",
        id="iterative_prune-train_set"),
    pytest.param(
        lambda m, d: iterative_prune(m, TRAIN, _THREE, _ONE, PHASE, **QUIET), TypeError,
        f"iterative_prune: test_set: got a tuple of 3 items; expected {_DATA}",
        id="iterative_prune-test_set"),
    pytest.param(
        lambda m, d: retrain(m, _THREE, None, PHASE, **QUIET), TypeError,
        f"retrain: train_set: got a tuple of 3 items; expected {_DATA}", id="retrain-train_set"),
    pytest.param(
        lambda m, d: retrain(m, TRAIN, _THREE, PHASE, **QUIET), TypeError,
        f"retrain: test_set: got a tuple of 3 items; expected {_DATA}", id="retrain-test_set"),
    pytest.param(
        lambda m, d: iterative_prune(m, TRAIN, TEST, _TWO, PHASE, freeze=["conv"], **QUIET),
        ValueError, "freeze has 1 entries for 2 rounds", id="freeze-count"),
    pytest.param(
        lambda m, d: iterative_prune(m, TRAIN, TEST, _TWO, PHASE, freeze=[None, "rnn"], **QUIET),
        ValueError, "freeze must be one of (None, 'conv', 'fc'), got 'rnn'", id="freeze-entry"),
    pytest.param(
        lambda m, d: iterative_prune(m, TRAIN, TEST, _rounds(), PHASE, state_dir=d, **QUIET),
        ValueError, "iterative_prune: with state_dir, give plan= (one JSON-able entry per round "
                    "describing what it prunes, 3 entries) so that a resume can be checked "
                    "against it; got None", id="plan"),
    pytest.param(
        lambda m, d: geometric_keep_ratios({"a": 0.5}, 0), ValueError,
        "rounds must be >= 1, got 0", id="geometric_keep_ratios-rounds"),
])
def test_a_bad_argument_is_refused_naming_it_before_anything_is_pruned(call, error, message,
                                                                       tmp_path):
    """Errors name the argument, the value and what was expected (STYLE 6), at the boundary."""
    model = tiny()
    before = model.state_dict()
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call(model, tmp_path / "state")
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert not (tmp_path / "state").exists()


def test_geometric_keep_ratios_in_one_round_is_the_target_itself():
    assert geometric_keep_ratios({"fc1.weight": 0.1, "*": 1.0}, 1) == [
        {"fc1.weight": pytest.approx(0.1), "*": 1.0}]


def test_iterative_prune_is_prune_then_retrain_round_after_round():
    """The loop is the paper's (Sec. 3, Fig. 2) and nothing else: round k is the prune step and
    then `retrain` with seed + k, so a run by hand gives the very same weights."""
    looped = tiny(dropout=0.5)
    records = iterative_prune(looped, TRAIN, TEST, [{"keep_ratio": 0.5}, {"keep_ratio": 0.25}],
                              PHASE, **QUIET)
    by_hand = tiny(dropout=0.5)
    prune.keep_ratio_prune(by_hand, 0.5)
    retrain(by_hand, TRAIN, TEST, PHASE, **QUIET)              # round 1: retrain's own seed, 0
    prune.keep_ratio_prune(by_hand, 0.25)
    retrain(by_hand, TRAIN, TEST, PHASE, seed=1, **QUIET)      # round 2: seed + 1
    _same_weights(looped, by_hand)
    assert records[-1]["error_retrained"] == evaluate(by_hand, TEST)["error"]
    same_seed = tiny(dropout=0.5)  # the seed is what tells round 2 from a repeat of round 1
    prune.keep_ratio_prune(same_seed, 0.5)
    retrain(same_seed, TRAIN, TEST, PHASE, seed=0, **QUIET)
    prune.keep_ratio_prune(same_seed, 0.25)
    retrain(same_seed, TRAIN, TEST, PHASE, seed=0, **QUIET)
    assert not np.array_equal(same_seed.fc1.weight.data, by_hand.fc1.weight.data)


def test_each_round_freezes_the_part_given_for_it():
    """``freeze`` as a list: round k retrains with part k fixed (Sec. 3.3), and says so."""
    snapshots = []

    def keep(ratio):
        def round_(model):
            thresholds = prune.keep_ratio_prune(model, ratio)
            snapshots.append((model.conv1.weight.data.copy(), model.fc1.weight.data.copy()))
            return thresholds
        return round_

    model = tiny(build=models.lenet5)
    records = iterative_prune(model, blobs(32), TEST, [keep(0.5), keep(0.25)], PHASE,
                              freeze=["conv", "fc"], **QUIET)
    assert [r["freeze"] for r in records] == ["conv", "fc"]
    (conv_1, fc_1), (conv_2, fc_2) = snapshots
    kept = conv_2 != 0  # round 1 (conv frozen) moved no surviving conv weight, but the fc ones
    np.testing.assert_array_equal(conv_2[kept], conv_1[kept])
    assert not np.array_equal(fc_2[fc_2 != 0], fc_1[fc_2 != 0])
    np.testing.assert_array_equal(model.fc1.weight.data, fc_2)  # round 2 froze fc
    assert not np.array_equal(model.conv1.weight.data, conv_2)


def test_original_dropout_given_is_the_d_o_every_round_scales():
    """Sec. 3.2: D_r = D_o sqrt(C_ir / C_io) from the D_o given, not the ratios built in."""
    model = tiny(dropout=0.5)
    [record] = iterative_prune(model, TRAIN, TEST, [{"keep_ratio": {"fc1.weight": 0.25,
                                                                   "*": 1.0}}],
                               NO_EPOCHS, original_dropout={"drop1": 0.4, "drop2": 0.2}, **QUIET)
    assert record["dropout"] == {"drop1": (0.4, pytest.approx(0.2)), "drop2": (0.2, 0.2)}
    assert model.drop1.p == pytest.approx(0.2) and model.drop2.p == 0.2


def test_retraining_reports_its_epochs_to_log_and_draws_bars_when_asked(capsys):
    """``log`` gets one line per epoch (with the test error when there is a test set) and
    ``progress=True`` draws bars on stderr, in `retrain` and in every round of the loop."""
    lines = []
    retrain(tiny(), TRAIN, None, PHASE, progress=True, log=lines.append)
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/1"]
    assert "epoch 1/1" in capsys.readouterr().err
    lines.clear()
    iterative_prune(tiny(), TRAIN, TEST, [{"keep_ratio": 0.5}], PHASE, progress=True,
                    log=lines.append)
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 1 and "test error" in epochs[0]
    assert "epoch 1/1" in capsys.readouterr().err
    retrain(tiny(), TRAIN, None, PHASE, log=lines.append)  # progress=None: not on a terminal
    assert capsys.readouterr().err == ""


def test_retrain_saves_its_epochs_and_resumes_from_them(tmp_path):
    checkpoint = tmp_path / "retrain.npz"
    first = tiny()
    retrain(first, TRAIN, None, PHASE, checkpoint=checkpoint, **QUIET)
    assert checkpoint.exists()
    lines = []
    again = tiny()
    retrain(again, TRAIN, None, PHASE, checkpoint=checkpoint, progress=False, log=lines.append)
    assert lines == [f"resumed from {checkpoint} at epoch 1, iteration 2"]
    _same_weights(first, again)


@pytest.mark.parametrize("sparse_max_density, switched", [
    ({}, {"fc1.weight"}),          # the default: SPARSE_MAX_DENSITY, about 12%
    ({"sparse_max_density": 0.5}, {"fc1.weight", "fc2.weight"}),
    ({"sparse_max_density": 1.0}, {"fc1.weight", "fc2.weight", "fc3.weight"}),
    ({"sparse_max_density": None}, set()),
])
def test_retrain_trains_fc_layers_on_their_pattern_up_to_sparse_max_density(sparse_max_density,
                                                                             switched):
    """Sec. 3.5: a sparse enough Linear layer retrains on its kept connections only."""
    model = tiny()
    prune.keep_ratio_prune(model, {"fc1.weight": 0.05, "fc2.weight": 0.3, "*": 1.0})
    layers = prune.layers_by_weight_name(model)
    seen = []
    retrain(model, TRAIN, None, PHASE, progress=False, **sparse_max_density,
            log=lambda line: seen.append({n for n, layer in layers.items()
                                          if layer.sparse_kernels}))
    assert seen == [switched]
    assert not any(layer.sparse_kernels for layer in layers.values())  # only while retraining


def test_retraining_runs_on_the_device_asked_for():
    """``device`` reaches the training: here one that does not exist is refused by it."""
    expected = "^" + re.escape("device must be one of ('cpu', 'cuda'), got 'tpu'") + "$"
    with pytest.raises(ValueError, match=expected):
        retrain(tiny(), TRAIN, None, PHASE, device="tpu", **QUIET)
    with pytest.raises(ValueError, match=expected):
        iterative_prune(tiny(), TRAIN, TEST, [{"keep_ratio": 0.5}], PHASE, device="tpu", **QUIET)


def test_a_device_that_cannot_train_is_refused_before_anything_is_pruned():
    """A bad ``device`` loses nothing: iterative_prune refuses it before round 1 prunes, so the
    model is left as it was (running again would otherwise prune twice)."""
    model = tiny()
    before = {name: value.copy() for name, value in model.state_dict().items()}
    with pytest.raises(ValueError, match="got 'tpu'"):
        iterative_prune(model, TRAIN, TEST, [{"keep_ratio": 0.5}], PHASE, device="tpu", **QUIET)
    after = model.state_dict()
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_a_gpu_that_is_not_there_is_refused_before_anything_is_pruned(monkeypatch):
    """device="cuda" on a machine without CuPy or a GPU: iterative_prune asks for the GPU first
    (DeviceUnavailable) and the model stays unpruned; device="cpu" never asks for one."""
    import minprune.prune.retraining as retraining_module
    from minprune.base.arrays import DeviceUnavailable

    def no_gpu():
        raise DeviceUnavailable("device 'cuda' needs CuPy (this test has none)")

    monkeypatch.setattr(retraining_module, "cupy_module", no_gpu)
    model = tiny()
    before = {name: value.copy() for name, value in model.state_dict().items()}
    with pytest.raises(DeviceUnavailable, match="needs CuPy"):
        iterative_prune(model, TRAIN, TEST, [{"keep_ratio": 0.5}], PHASE, device="cuda", **QUIET)
    assert all(np.array_equal(before[name], value) for name, value in model.state_dict().items())
    records = iterative_prune(model, TRAIN, TEST, [{"keep_ratio": 0.5}], PHASE, device="cpu",
                              **QUIET)
    assert len(records) == 1


def test_the_device_asked_for_reaches_every_rounds_retraining(monkeypatch):
    import minprune.prune.retraining as retraining_module

    seen, original = [], retraining_module._retrain_survivors

    def spy(*args, **kwargs):
        seen.append(kwargs["device"])
        return original(*args, **kwargs)

    monkeypatch.setattr(retraining_module, "_retrain_survivors", spy)
    iterative_prune(tiny(), TRAIN, TEST, [{"keep_ratio": 0.5}, {"keep_ratio": 0.25}], PHASE,
                    device="cpu", **QUIET)
    assert seen == ["cpu", "cpu"]


def test_a_round_interrupted_mid_retraining_resumes_from_its_last_epoch(tmp_path):
    """Each round's retraining saves its epochs in ``round<k>.npz``; a resume continues from
    there, and a finished run leaves only ``rounds.npz`` (with its previous copy)."""
    two_epochs = Phase(epochs=2, lr=0.005, batch_size=32, lr_policy="fixed")
    rounds = [{"keep_ratio": 0.5}, {"keep_ratio": 0.25}]
    straight = tiny()
    records = iterative_prune(straight, TRAIN, TEST, rounds, two_epochs, state_dir=tmp_path / "a",
                              **QUIET)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["rounds.npz", "rounds.npz.prev"]

    class Killed(Exception):
        pass

    said = []

    def die_in_epoch_2_of_round_2(line):
        said.append(line)
        if line.startswith("epoch 2/2") and any(s.startswith("round 2/2") for s in said):
            raise Killed

    with pytest.raises(Killed):
        iterative_prune(tiny(), TRAIN, TEST, rounds, two_epochs, state_dir=tmp_path / "b",
                        progress=False, log=die_in_epoch_2_of_round_2)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["round2.npz", "rounds.npz"]
    resumed, lines = tiny(), []
    records_b = iterative_prune(resumed, TRAIN, TEST, rounds, two_epochs,
                                state_dir=tmp_path / "b", progress=False, log=lines.append)
    assert lines[0] == f"resumed {tmp_path / 'b' / 'rounds.npz'}: 1 of 2 rounds done"
    assert lines[2].startswith(f"resumed from {tmp_path / 'b' / 'round2.npz'} at epoch 1,")
    timeless = [{k: v for k, v in r.items() if k != "retrain_seconds"} for r in records_b]
    assert timeless == [{k: v for k, v in r.items() if k != "retrain_seconds"}
                        for r in _as_saved(records)]
    _same_weights(straight, resumed)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["rounds.npz", "rounds.npz.prev"]


def test_stop_when_ends_the_run_and_its_resume_does_no_further_round(tmp_path):
    rounds = [{"keep_ratio": r} for r in (0.8, 0.6, 0.4, 0.2)]
    third = lambda record: record["round"] == 3  # noqa: E731
    model = tiny()
    records = iterative_prune(model, TRAIN, TEST, rounds, NO_EPOCHS, state_dir=tmp_path,
                              stop_when=third, **QUIET)
    assert [r["round"] for r in records] == [1, 2, 3]
    lines = []
    resumed = tiny()
    assert iterative_prune(resumed, TRAIN, TEST, rounds, NO_EPOCHS, state_dir=tmp_path,
                           stop_when=third, progress=False, log=lines.append) == _as_saved(records)
    assert lines == [f"resumed {tmp_path / 'rounds.npz'}: 3 of 4 rounds done"]
    assert prune.density(resumed) == records[-1]["density"]
    _same_weights(model, resumed)
    finished = iterative_prune(tiny(), TRAIN, TEST, rounds, NO_EPOCHS, state_dir=tmp_path,
                               **QUIET)  # without stop_when the run goes on to its last round
    assert [r["round"] for r in finished] == [1, 2, 3, 4]


_OTHER_RUNS = {  # what one setting changes, and the fingerprint entry that says so
    "model": dict(model=lambda: tiny(build=models.lenet5)),
    "start_state": dict(model=lambda: tiny(seed=1, dropout=0.5)),
    "plan": dict(rounds=[{"keep_ratio": 0.4}]),
    "phase": dict(phase=Phase(epochs=0, lr=0.004, batch_size=32, lr_policy="fixed")),
    "freeze": dict(freeze="fc"),
    "seed": dict(seed=1),
    "original_dropout": dict(original_dropout={"drop1": 0.4, "drop2": 0.5}),
    "train_data": dict(train_set=blobs(64, seed=7)),
    "test_data": dict(test_set=blobs(32, seed=7)),
}


@pytest.mark.parametrize("differs", sorted(_OTHER_RUNS))
def test_saved_rounds_resume_only_the_run_that_wrote_them(differs, tmp_path):
    """The fingerprint covers every argument that changes the result; the same run spelt out
    in full (the default plan and D_o given explicitly) is still the same run."""
    def run(model=lambda: tiny(dropout=0.5), rounds=({"keep_ratio": 0.5},), phase=NO_EPOCHS,
            train_set=TRAIN, test_set=TEST, **options):
        return iterative_prune(model(), train_set, test_set, list(rounds), phase,
                               state_dir=tmp_path, **QUIET, **options)

    records = run()
    state = tmp_path / "rounds.npz"
    other = _OTHER_RUNS[differs]
    with pytest.raises(RunMismatchError) as refused:
        run(**other)
    message = str(refused.value)
    assert message.startswith(f"{state} was written by a different run; what differs: "
                              f"{differs}: saved ")
    assert message.endswith(f". Not resuming from it; delete {tmp_path} to run these rounds "
                            "afresh, or use another state folder")
    assert run(plan=[{"keep_ratio": 0.5}], freeze=None, seed=0,
               original_dropout={"drop1": 0.5, "drop2": 0.5}) == _as_saved(records)


def test_a_saved_state_that_does_not_fit_the_rounds_is_refused(tmp_path):
    rounds = [{"keep_ratio": 0.5}]
    iterative_prune(tiny(), TRAIN, TEST, rounds, NO_EPOCHS, state_dir=tmp_path, **QUIET)
    state = tmp_path / "rounds.npz"
    model_state, _, meta = load_checkpoint(state)
    del meta["records"]
    save_checkpoint(state, model_state, **meta)
    expected = f"{state}: does not fit these rounds ('records')"
    with pytest.raises(CheckpointError, match=f"^{re.escape(expected)}$"):
        iterative_prune(tiny(), TRAIN, TEST, rounds, NO_EPOCHS, state_dir=tmp_path, **QUIET)


def test_a_round_that_diverges_is_named_and_the_rounds_before_it_stay_saved(tmp_path):
    def poisoned(model):  # a prune step that leaves NaN weights: retraining must diverge
        thresholds = prune.keep_ratio_prune(model, 0.25)
        model.fc3.weight.data[0, 0] = np.nan
        return thresholds

    rounds = [lambda m: prune.keep_ratio_prune(m, 0.5), poisoned]
    with pytest.raises(TrainingDiverged,
                       match="^" + re.escape("round 2/2 diverged while retraining: loss is nan")):
        iterative_prune(tiny(), TRAIN, TEST, rounds, PHASE, state_dir=tmp_path, plan=[1, 2],
                        **QUIET)
    model_state, _, meta = load_checkpoint(tmp_path / "rounds.npz")
    assert [r["round"] for r in meta["records"]] == [1]
    assert all(np.isfinite(value).all() for value in model_state.values())
