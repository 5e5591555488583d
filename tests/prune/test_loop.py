"""The paper's loop (`minprune.prune.loop.prune_retrain`, Sec. 3): each round retrains the
survivors from the values they had when pruned -- never re-initialised (Sec. 3.3) -- and the
next round prunes what the retraining left."""

import numpy as np
from toy_data import blobs

import minprune
from minprune import prune
from minprune.nn import models
from minprune.prune.loop import prune_retrain
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
