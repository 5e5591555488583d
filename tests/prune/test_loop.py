"""The paper's loop (`minprune.prune.loop.prune_retrain`, Sec. 3): each round retrains the
survivors from the values they had when pruned -- never re-initialised (Sec. 3.3) -- and the
next round prunes what the retraining left."""

from dataclasses import asdict

import numpy as np
import pytest
from toy_data import blobs

import minprune
from minprune import prune
from minprune.nn import models
from minprune.prune.loop import prune_retrain
from minprune.training.fit import evaluate
from minprune.training.phase import Phase

QUIET = dict(progress=False, log=lambda s: None)


def _weights(model):
    return {name: layer.weight.data.copy()
            for name, layer in prune.layers_by_weight_name(model).items()}


def test_each_round_retrains_from_the_survivors_trained_values():
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    seen = []

    def retrain(model, phase, freeze, index):
        seen.append(_weights(model))
        for layer in prune.layers_by_weight_name(model).values():  # stands in for training
            layer.weight.data += 0.01 * layer.weight_mask
        return [{"seconds": 0.0}]

    before_round = []

    def round_(model):
        before_round.append(_weights(model))
        return prune.keep_ratio_prune(model, 0.5 ** len(before_round))

    records = list(prune_retrain(model, [round_, round_], retrain, blobs(32), Phase(epochs=1),
                                 freezes=[None, None], original_dropout={}, log=lambda s: None))
    assert [r["round"] for r in records] == [1, 2]
    for start, trained_then in zip(seen, before_round, strict=True):
        for name, values in start.items():
            kept = values != 0
            # the survivors enter retraining with exactly the values they had before the prune
            np.testing.assert_array_equal(values[kept], trained_then[name][kept])
    # round 2 started from round 1's retrained survivors, not from the dense weights
    for name in seen[1]:
        assert not np.array_equal(before_round[1][name], before_round[0][name])


def test_iterative_prune_without_learning_leaves_the_survivors_untouched():
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    start = _weights(model)
    # a rate so small that float32 weights cannot move (lr must be > 0)
    still = Phase(epochs=1, lr=1e-20, momentum=0.0, weight_decay=0.0, batch_size=32,
                  lr_policy="fixed")
    prune.iterative_prune(model, blobs(64), blobs(32, seed=1), [{"keep_ratio": 0.3}], still,
                          **QUIET)
    for name, layer in prune.layers_by_weight_name(model).items():
        np.testing.assert_array_equal(layer.weight.data, start[name] * layer.weight_mask)


def test_a_round_record_says_what_the_round_did():
    """Each record holds the round's densities, thresholds, dropout (Sec. 3.2, from the D_o
    given), the freeze handed to retraining, the errors before and after it, and its seconds."""
    minprune.manual_seed(0)
    model = models.lenet_300_100(dropout=0.5)
    test_set, phase = blobs(32, seed=1), Phase(epochs=2, lr=0.02)
    handed = []

    def retrain(model, phase_given, freeze, index):
        handed.append((phase_given, freeze, index, evaluate(model, test_set)["error"]))
        model.fc3.bias.data[:] = np.arange(10) == 3  # stands in for training: always answer 3
        model.fc3.weight.data[:] = 0.0
        return [{"seconds": 1.5}, {"seconds": 2.0}]

    thresholds = []

    def round_(model):
        thresholds.append(prune.keep_ratio_prune(model, {"fc1.weight": 0.25, "*": 1.0}))
        return thresholds[-1]

    [record] = prune_retrain(model, [round_], retrain, test_set, phase, freezes=["fc"],
                             original_dropout={"drop1": 0.4, "drop2": 0.2}, log=lambda s: None)
    error_pruned = handed[0][3]
    assert handed == [(phase, "fc", 0, error_pruned)]
    assert record == {
        "round": 1,
        "density": prune.density(model),
        "layer_density": {"fc1.weight": 0.25, "fc2.weight": 1.0, "fc3.weight": 1.0},
        "decided": thresholds[0],
        "dropout": {"drop1": (0.4, pytest.approx(0.2)), "drop2": (0.2, 0.2)},
        "freeze": "fc",
        "error_pruned": error_pruned,
        "error_retrained": pytest.approx(np.mean(test_set.labels != 3)),
        "retrain_seconds": 3.5,
        "phase": asdict(phase),
    }
    assert set(thresholds[0]) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    assert model.drop1.p == pytest.approx(0.2) and model.drop2.p == 0.2


def test_a_round_that_prunes_nothing_says_so_where_the_loop_is_driven(assert_warned_at):
    """A prune step that leaves the density where it was warns, with the whole explanation, at
    the line that drives the loop (the caller's, not minprune's)."""
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    with pytest.warns(UserWarning) as caught:
        records = list(prune_retrain(model, [lambda m: prune.keep_ratio_prune(m, 1.0)],
                                     lambda *args: [], blobs(32), Phase(epochs=1),
                                     freezes=[None], original_dropout={}, log=lambda s: None))
    assert len(records) == 1
    [warning] = caught
    assert str(warning.message) == (
        "round 1/1 pruned nothing (density 100.00% before and after its prune step) and "
        "retrains anyway. If it is a keep-ratio round: a keep ratio is a fraction of each "
        "layer's original weights, not of its survivors, so [{'keep_ratio': 0.5}] * 3 keeps "
        "50% in every round. For rounds that go further each time, give falling keep ratios, "
        "e.g. mp.prune.rounds_to(keep_ratio=0.125, rounds=3) (round k keeps 0.125 ** (k/3), "
        "mp.prune.geometric_keep_ratios)")
    assert_warned_at([warning], __file__)
