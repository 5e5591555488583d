"""Sensitivity analysis (paper Sec. 5, Fig. 6): one layer at a time, exact restore, tolerances."""

from collections import OrderedDict

import numpy as np
import pytest

import minprune
import minprune.prune.sensitivity as sensitivity
from minprune import nn, prune
from minprune.autograd.tensor import no_grad
from minprune.data import Dataset
from minprune.prune.sensitivity import (
    keep_ratios_for_tolerance,
    qualities_for_tolerance,
    sensitivity_analysis,
)
from minprune.training.fit import evaluate


def small_model(seed=0):
    minprune.manual_seed(seed)
    return nn.Sequential(OrderedDict(fc1=nn.Linear(8, 32), relu1=nn.ReLU(), fc2=nn.Linear(32, 4)))


def own_predictions(model, n=64, seed=0):
    """Random inputs labelled with the model's own predictions: the baseline accuracy is 1."""
    x = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    with no_grad():
        labels = model(x).data.argmax(axis=1)
    return Dataset(x, labels.astype(np.int64))


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_keep_ratio_rows_prune_one_layer_and_restore_the_model_exactly():
    model = small_model()
    data = own_predictions(model)
    prune.keep_ratio_prune(model, {"fc2.weight": 0.75, "*": 1.0})  # an already pruned layer
    before = model.state_dict()
    rows = sensitivity_analysis(model, data, keep_ratios=[1.0, 0.5, 0.1], batch_size=16)
    assert_same_state(before, model.state_dict())
    assert [(row["layer"], row["keep_ratio"]) for row in rows] == [
        (layer, ratio) for layer in ("fc1.weight", "fc2.weight") for ratio in (1.0, 0.5, 0.1)]
    for row in rows:
        expected = min(row["keep_ratio"], 0.75) if row["layer"] == "fc2.weight" else (
            row["keep_ratio"])
        assert row["density"] == pytest.approx(expected, abs=1 / 128)
        assert row["error"] == pytest.approx(1 - row["accuracy"])
    baseline = evaluate(model, data)["accuracy"]
    assert rows[0]["accuracy"] == baseline  # fc1 at keep ratio 1 prunes nothing
    assert rows[2]["accuracy"] < baseline  # 10% of fc1 hurts


def test_quality_rows_use_quality_times_the_layer_std():
    model = small_model()
    data = own_predictions(model)
    weights = model.fc1.weight.data.copy()
    rows = sensitivity_analysis(model, data, qualities=[0.5, 1.0], layers=["fc1"])
    assert [row["layer"] for row in rows] == ["fc1.weight", "fc1.weight"]
    for row in rows:
        threshold = row["quality"] * weights.std()
        assert row["threshold"] == pytest.approx(threshold, rel=1e-6)
        assert row["density"] == pytest.approx(np.mean(np.abs(weights) >= threshold))
    np.testing.assert_array_equal(model.fc1.weight.data, weights)
    assert prune.density(model) == 1.0


def test_the_model_is_restored_when_a_measurement_fails(monkeypatch):
    model = small_model()
    data = own_predictions(model)
    before = model.state_dict()
    calls = []

    def failing_evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return {"accuracy": 1.0, "error": 0.0, "loss": 0.0}

    monkeypatch.setattr(sensitivity, "evaluate", failing_evaluate)
    with pytest.raises(RuntimeError, match="boom"):
        sensitivity_analysis(model, data, keep_ratios=[0.5, 0.2])
    assert_same_state(before, model.state_dict())


@pytest.mark.parametrize("options, message", [
    ({}, "exactly one of keep_ratios or qualities, got neither"),
    ({"keep_ratios": [0.5], "qualities": [1.0]}, "got both"),
    ({"keep_ratios": []}, "keep_ratios is empty"),
    ({"qualities": []}, "qualities is empty"),
    ({"keep_ratios": [0.5, 0.0]}, "keep ratio 0.0 is not in"),
    ({"keep_ratios": [1.5]}, "keep ratio 1.5"),
    ({"keep_ratios": [True]}, "keep ratio True"),
    ({"qualities": [-1.0]}, "quality -1.0"),
    ({"qualities": [float("nan")]}, "quality nan"),
    ({"qualities": [1.0], "layers": ["fc9"]}, "'fc9' names no prunable layer"),
    ({"qualities": [1.0], "layers": []}, "layers is empty"),
])
def test_bad_input_is_refused_before_anything_changes(options, message):
    model = small_model()
    data = own_predictions(model)
    before = model.state_dict()
    with pytest.raises(ValueError, match=message):
        sensitivity_analysis(model, data, **options)
    assert_same_state(before, model.state_dict())


def test_an_empty_dataset_is_refused():
    model = small_model()
    empty = Dataset(np.zeros((0, 8), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="dataset is empty"):
        sensitivity_analysis(model, empty, keep_ratios=[0.5])


def rows_of(kind, layer, pairs):
    return [{"layer": layer, kind: level, "accuracy": accuracy} for level, accuracy in pairs]


def test_qualities_for_tolerance_picks_the_largest_quality_within_the_drop():
    rows = rows_of("quality", "fc1.weight", [(0.5, 0.99), (1.0, 0.985), (1.5, 0.95)])
    rows += rows_of("quality", "fc2.weight", [(1.5, 0.90), (0.5, 0.99), (1.0, 0.98)])
    chosen = qualities_for_tolerance(rows, max_accuracy_drop=0.01, baseline_accuracy=0.99)
    assert chosen == {"fc1.weight": 1.0, "fc2.weight": 1.0}
    assert qualities_for_tolerance(rows, 0.0, 0.99) == {"fc1.weight": 0.5, "fc2.weight": 0.5}


def test_a_lucky_harsh_level_past_a_bad_one_is_not_chosen():
    rows = rows_of("quality", "fc1.weight", [(0.5, 0.99), (1.0, 0.90), (1.5, 0.99)])
    assert qualities_for_tolerance(rows, 0.01, 0.99) == {"fc1.weight": 0.5}


def test_keep_ratios_for_tolerance_picks_the_smallest_ratio_within_the_drop():
    rows = rows_of("keep_ratio", "fc1.weight", [(1.0, 0.99), (0.5, 0.99), (0.1, 0.97),
                                                (0.05, 0.80)])
    assert keep_ratios_for_tolerance(rows, 0.02, 0.99) == {"fc1.weight": 0.1}
    assert keep_ratios_for_tolerance(rows, 0.0, 0.99) == {"fc1.weight": 0.5}


def test_tolerance_errors_name_the_problem():
    rows = rows_of("quality", "fc1.weight", [(0.5, 0.5)])
    with pytest.raises(ValueError, match="'fc1.weight': even the gentlest quality 0.5"):
        qualities_for_tolerance(rows, 0.01, 0.99)
    with pytest.raises(ValueError, match="without 'keep_ratio'"):
        keep_ratios_for_tolerance(rows, 0.01, 0.99)
    with pytest.raises(ValueError, match="no sensitivity rows"):
        qualities_for_tolerance([], 0.01, 0.99)
    with pytest.raises(ValueError, match="max_accuracy_drop"):
        qualities_for_tolerance(rows, -0.1, 0.99)
    with pytest.raises(ValueError, match="baseline_accuracy"):
        qualities_for_tolerance(rows, 0.1, 99.0)


def test_from_analysis_to_thresholds():
    model = small_model()
    data = own_predictions(model)
    rows = sensitivity_analysis(model, data, qualities=[0.1, 0.25, 0.5, 1.0, 2.0])
    qualities = qualities_for_tolerance(rows, max_accuracy_drop=0.05, baseline_accuracy=1.0)
    assert set(qualities) == {"fc1.weight", "fc2.weight"}
    prune.threshold_prune(model, qualities)
    assert prune.density(model) < 1.0


def test_a_tuple_dataset_gives_accuracies_that_are_fractions_as_its_dataset_does():
    model = small_model()
    data = own_predictions(model, n=300)
    rows = sensitivity_analysis(model, (data.images, data.labels), keep_ratios=[1.0, 0.3])
    assert rows == sensitivity_analysis(model, data, keep_ratios=[1.0, 0.3])
    assert rows[0]["accuracy"] == 1.0 and all(0 <= row["error"] <= 1 for row in rows)
    with pytest.raises(TypeError, match="sensitivity_analysis: dataset: got a list of 3 items"):
        sensitivity_analysis(model, [data.images, data.labels, None], keep_ratios=[0.5])
