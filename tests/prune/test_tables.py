"""The paper's Tables 1-3: columns measured on hand-checkable models, LeNet FLOP, printing, the
paper's numbers, and saving as JSON."""

import json
from collections import OrderedDict

import numpy as np
import pytest

import minprune
from minprune import nn, prune
from minprune.base import paper
from minprune.data import Dataset
from minprune.nn import models
from minprune.prune import formatting, tables
from minprune.training.checkpoint import save_json


def images(n, shape=(1, 28, 28), seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(rng.random((n, *shape)).astype(np.float32), rng.integers(0, 10, n))


def tiny_model():
    """fc1 (4 -> 3) + ReLU + fc2 (3 -> 2), weights chosen so the activations are known:
    fc1's outputs are (x0, -x0, x1): after ReLU exactly 2 of 3 are non-zero for x > 0."""
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 3), relu1=nn.ReLU(), fc2=nn.Linear(3, 2)))
    model.fc1.weight.data[...] = [[1, 0, 0, 0], [-1, 0, 0, 0], [0, 1, 0, 0]]
    model.fc1.bias.data[...] = 0
    prune.set_mask(model.fc1, [[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]])  # 10 of 12 kept
    prune.set_mask(model.fc2, [[1, 0, 0], [0, 0, 1]])  # 2 of 6 kept
    return model


def test_columns_on_a_model_whose_activations_are_known():
    data = Dataset(np.random.default_rng(0).uniform(0.1, 1, (7, 4)).astype(np.float32),
                   np.zeros(7, dtype=np.int64))
    fc1, fc2, total = tables.layer_table(tiny_model(), data, batch_size=3)
    assert fc1 == pytest.approx({"layer": "fc1", "weights": 12, "flop": 24, "act": 2 / 3,
                                 "weights_kept": 10 / 12, "flop_kept": 10 / 12,
                                 "input_act": 1.0})
    assert fc2 == pytest.approx({"layer": "fc2", "weights": 6, "flop": 12, "act": 1.0,
                                 "weights_kept": 2 / 6, "flop_kept": 2 / 6 * 2 / 3,
                                 "input_act": 2 / 3})
    # Totals: act weighted by the activations each layer hands on (3 and 2 per image).
    assert total["layer"] == "total"
    assert total["weights"] == 18 and total["flop"] == 36
    assert total["act"] == pytest.approx((3 * 2 / 3 + 2 * 1.0) / 5)
    assert total["weights_kept"] == pytest.approx(12 / 18)
    assert total["flop_kept"] == pytest.approx((24 * 10 / 12 + 12 * 2 / 9) / 36)


def test_the_first_layer_input_counts_as_dense_even_when_it_is_mostly_zero():
    data = Dataset(np.zeros((5, 4), dtype=np.float32), np.zeros(5, dtype=np.int64))
    data.images[:, 0] = 1.0  # 25% of the input is non-zero
    fc1 = tables.layer_table(tiny_model(), data)[0]
    assert fc1["input_act"] == 1.0
    assert fc1["flop_kept"] == pytest.approx(fc1["weights_kept"])


def test_lenet5_dense_flop_matches_the_paper_and_act_is_measured_after_pooling():
    minprune.manual_seed(0)
    model = models.lenet5()
    prune.keep_ratio_prune(model, {"conv2.weight": 0.5, "fc1.weight": 0.1, "*": 1.0})
    model.train()
    rows = tables.layer_table(model, images(6), batch_size=4)
    assert model.training  # mode restored
    theirs = {row["layer"]: row for row in paper.PAPER_LENET5}
    for row in rows:
        assert row["flop"] == theirs[row["layer"]]["flop"]
        assert formatting.format_count(row["weights"]) == formatting.format_count(
            theirs[row["layer"]]["weights"])
    assert [row["weights_kept"] for row in rows[:4]] == pytest.approx([1.0, 0.5, 0.1, 1.0])
    # Handed on per image: pool1 20x12x12, pool2 50x4x4 (flattened), relu1 500, logits 10.
    handed_on = np.array([2880, 800, 500, 10])
    acts = np.array([row["act"] for row in rows[:4]])
    assert rows[4]["act"] == pytest.approx(float(acts @ handed_on / handed_on.sum()))
    assert rows[3]["act"] == 1.0
    assert 0 < rows[2]["act"] < 1  # after ReLU some are zero


def test_lenet_300_100_weights_flop_and_summary_parameters():
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    rows = tables.layer_table(model, images(5))
    assert [row["weights"] for row in rows] == [235_200, 30_000, 1_000, 266_200]
    assert [row["flop"] for row in rows] == [470_400, 60_000, 2_000, 532_400]
    dense = tables.summary_row(0.0164, 0.0164, model)
    assert dense["parameters_before"] == dense["parameters_after"] == 266_610
    assert dense["compression"] == 1.0
    prune.keep_ratio_prune(model, 0.08)
    pruned = tables.summary_row(0.0164, 0.0159, model)
    kept = sum(np.count_nonzero(layer.weight.data * layer.weight_mask)
               for layer in prune.layers_by_weight_name(model).values())
    assert pruned["parameters_after"] == kept + 410  # non-zero weights + every bias
    assert pruned["compression"] == pytest.approx(266_610 / (kept + 410))
    assert pruned["error_after"] == 0.0159


@pytest.mark.parametrize("bad", [-0.1, 1.5, "1%", None])
def test_summary_row_rejects_an_error_that_is_not_a_fraction(bad):
    with pytest.raises(ValueError, match="dense_error"):
        tables.summary_row(bad, 0.01, tiny_model())


def test_bad_models_and_datasets_are_refused():
    with pytest.raises(ValueError, match="Sequential"):
        tables.layer_table(nn.Linear(4, 2), Dataset(np.ones((2, 4), np.float32),
                                                      np.zeros(2, np.int64)))
    with pytest.raises(ValueError, match="empty"):
        tables.layer_table(tiny_model(), Dataset(np.ones((0, 4), np.float32),
                                                 np.zeros(0, np.int64)))


@pytest.mark.parametrize("count, text", [
    (0, "0"), (10, "10"), (500, "0.5K"), (1_000, "1K"), (25_000, "25K"), (235_200, "235K"),
    (430_500, "431K"), (4_586_000, "4586K"), (38_000_000, "38M"), (1_500_000_000, "1.5B"),
])
def test_counts_print_as_the_paper_prints_them(count, text):
    assert formatting.format_count(count) == text


def test_percentages():
    assert formatting.format_percent(0.38) == "38%"
    assert formatting.format_percent(0.004) == "0.4%"
    assert formatting.format_percent(1.0) == "100%"
    assert formatting.format_percent(None) == "-"


def test_format_table_prints_the_papers_layout_and_the_paper_beside_ours():
    text = formatting.format_table(paper.PAPER_LENET_300_100)
    lines = text.splitlines()
    assert [cell.strip() for cell in lines[0].split("|")] == list(formatting.COLUMNS)
    assert [cell.strip() for cell in lines[2].split("|")] == [
        "fc1", "235K", "470K", "38%", "8%", "8%"]
    assert len(lines) == 2 + 4
    ours = [dict(row, act=0.5) for row in paper.PAPER_LENET_300_100[:2]]
    ours.append(dict(ours[0], layer="fc9"))
    side_by_side = formatting.format_table(ours, paper=paper.PAPER_LENET_300_100)
    assert "Act% (paper)" in side_by_side
    assert "50% (38%)" in side_by_side and "50% (65%)" in side_by_side
    assert "235K (-)" in side_by_side  # a layer the paper does not list
    with pytest.raises(ValueError, match="no rows"):
        formatting.format_table([])


def test_format_summary():
    line = formatting.format_summary(paper.PAPER_SUMMARY["lenet-300-100"])
    assert line == "error 1.64% -> 1.59%, parameters 267K -> 22K (12.0x)"
    both = formatting.format_summary(paper.PAPER_SUMMARY["lenet5"], paper=paper.PAPER_SUMMARY[
        "lenet5"])
    assert both.startswith("ours:") and "\npaper:" in both


def test_paper_constants_are_consistent_with_paper_notes():
    for table in (paper.PAPER_LENET_300_100, paper.PAPER_LENET5):
        assert table[-1]["layer"] == "total"
        assert sum(row["weights"] for row in table[:-1]) == pytest.approx(
            table[-1]["weights"], rel=0.01)
        assert sum(row["flop"] for row in table[:-1]) == pytest.approx(
            table[-1]["flop"], rel=0.01)
        assert table[-2]["act"] == 1.0  # the last layer, by convention


def test_save_json_writes_numpy_values_as_plain_json(tmp_path):
    data = {"rows": [{"layer": "fc1", "act": np.float32(0.5), "weights": np.int64(3)}],
            "shape": (2, 3), "array": np.arange(3)}
    save_json(tmp_path / "out" / "report.json", data)
    loaded = json.loads((tmp_path / "out" / "report.json").read_text())
    assert loaded == {"rows": [{"layer": "fc1", "act": 0.5, "weights": 3}],
                      "shape": [2, 3], "array": [0, 1, 2]}


def test_paper_keep_ratios_and_comparison_points_come_from_the_tables():
    assert paper.PAPER_KEEP_RATIOS["lenet-300-100"] == {
        "fc1.weight": 0.08, "fc2.weight": 0.09, "fc3.weight": 0.26}
    assert paper.PAPER_KEEP_RATIOS["lenet5"] == {
        "conv1.weight": 0.66, "conv2.weight": 0.12, "fc1.weight": 0.08, "fc2.weight": 0.19}
    han, dns = paper.PAPER_COMPARISON["lenet-300-100"]["others"]
    assert (han["compression"], han["error"]) == (12, 0.0159)
    assert (dns["compression"], dns["error"]) == (56, 0.0199)
    assert paper.PAPER_COMPARISON["lenet5"]["others"][1]["compression"] == 108
    assert paper.PAPER_INDEX_BITS == {"fc": 5, "conv": 8}
    assert paper.DROPOUT_EXAMPLE["original"] * paper.DROPOUT_EXAMPLE["keep_ratio"] ** 0.5 == (
        pytest.approx(paper.DROPOUT_EXAMPLE["retrained"]))
