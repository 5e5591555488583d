"""Winning tickets (`minprune.prune.tickets`): rounds that prune a fraction of the survivors and
put the survivors back at a snapshot (Frankle & Carbin 2019; rewinding, Frankle et al. 2020), and
the controls: keeping the trained values (Han et al. Sec. 3.3) and a fresh initialisation of the
same mask. On a tiny network and synthetic data."""

from collections import OrderedDict

import numpy as np
import pytest
from toy_data import blobs

import minprune
from minprune.data.dataset import subset
from minprune.nn import Flatten, Linear, ReLU, Sequential
from minprune.prune import layers_by_weight_name, set_mask, tickets
from minprune.training.phase import Phase

PHASE = Phase(epochs=1, lr=0.01, weight_decay=0.0, lr_policy="fixed", batch_size=32)


def tiny(seed=0):
    minprune.manual_seed(seed)
    return Sequential(OrderedDict(flatten=Flatten(), fc1=Linear(784, 20), relu=ReLU(),
                                  fc2=Linear(20, 10)))


def masks_of(model):
    return {name: layer.weight_mask.copy() for name, layer in layers_by_weight_name(model).items()}


def nudge(model, index=0):
    """Stands in for training: every surviving parameter moves."""
    for parameter in model.parameters():
        parameter.data += 0.05 * (parameter.mask if parameter.mask is not None else 1.0)
    return index


def test_snapshot_at_zero_is_the_initialisation_and_at_k_the_kth_step():
    model = tiny()
    start = tickets.parameters_of(model)
    at_zero, at_three = tickets.Snapshot(model, 0), tickets.Snapshot(model, 3)
    seen = {}

    def record(iteration, model):
        seen[iteration] = tickets.parameters_of(model)

    optimizer = PHASE.optimizer(list(model.parameters()))
    minprune.fit(model, optimizer, subset(blobs(128), 128), epochs=1, batch_size=32,
                 log=None, progress=False, hooks=[at_zero, at_three], on_step=record)
    for name in start:
        assert np.array_equal(at_zero.weights[name], start[name])
        assert np.array_equal(at_three.weights[name], seen[3][name])
        assert not np.array_equal(at_three.weights[name], seen[4][name])


def test_a_snapshot_never_reached_says_so():
    snapshot = tickets.Snapshot(tiny(), 10)
    with pytest.raises(RuntimeError, match="iteration 10 was never reached"):
        _ = snapshot.weights
    with pytest.raises(ValueError, match="iteration must be an integer >= 0"):
        tickets.Snapshot(tiny(), -1)


def test_rewind_restores_the_snapshot_on_survivors_and_keeps_pruned_at_zero():
    model = tiny()
    snapshot = tickets.parameters_of(model)
    nudge(model)
    tickets.prune_survivors(model, 0.5)
    masks = masks_of(model)
    tickets.rewind(model, snapshot)
    for name, parameter in model.named_parameters():
        if parameter.mask is None:  # biases: back to their snapshot
            assert np.array_equal(parameter.data, snapshot[name])
            continue
        kept = parameter.mask != 0
        assert np.array_equal(parameter.data[kept], snapshot[name][kept])
        assert np.all(parameter.data[~kept] == 0)
    assert all(np.array_equal(masks[name], mask) for name, mask in masks_of(model).items())


def test_prune_survivors_prunes_a_fraction_of_the_survivors_each_round():
    model = tiny()
    densities = [tickets.prune_survivors(model, {"fc2.weight": 0.1, "*": 0.2})
                 for _ in range(3)]
    for rounds, density in enumerate(densities, start=1):
        assert density["fc1.weight"] == pytest.approx(0.8 ** rounds, abs=1e-3)
        assert density["fc2.weight"] == pytest.approx(0.9 ** rounds, abs=0.01)
    sizes = {"fc1.weight": 784 * 20, "fc2.weight": 200}
    expected = tickets.remaining(sizes, {"fc2.weight": 0.1, "*": 0.2}, 3)
    assert expected[0] == 1.0
    assert minprune.prune.density(model) == pytest.approx(expected[3], abs=1e-3)


def test_prune_survivors_takes_the_smallest_survivors():
    model = tiny()
    layer = model.fc2
    set_mask(layer, np.ones_like(layer.weight_mask))
    layer.weight.data[...] = np.arange(1, 201, dtype=np.float32).reshape(10, 20)
    tickets.prune_survivors(model, 0.25)
    assert np.array_equal(np.flatnonzero(layer.weight_mask.ravel() == 0), np.arange(50))


def test_imp_rewinds_every_round_and_keep_does_not():
    model = tiny()
    snapshot = tickets.parameters_of(model)
    nudge(model)
    rewound = []

    def train(model, index):
        rewound.append(tickets.parameters_of(model))
        return nudge(model, index)

    records = tickets.imp(model, train, 0.5, 3, reset="rewind", weights=snapshot, log=None)
    assert [record["trained"] for record in records] == [1, 2, 3]
    assert [round(record["density"], 3) for record in records] == [0.5, 0.25, 0.125]
    for values in rewound:  # at the start of each round's training: the snapshot under the mask
        kept = values["fc1.weight"] != 0
        assert np.array_equal(values["fc1.weight"][kept], snapshot["fc1.weight"][kept])
        assert np.array_equal(values["fc1.bias"], snapshot["fc1.bias"])

    kept_model = tiny()
    nudge(kept_model)
    trained = tickets.parameters_of(kept_model)
    seen = []
    tickets.imp(kept_model, lambda m, i: seen.append(tickets.parameters_of(m)), 0.5, 1,
                reset="keep", log=None)
    kept = seen[0]["fc1.weight"] != 0
    assert np.array_equal(seen[0]["fc1.weight"][kept], trained["fc1.weight"][kept])


def test_reinitialize_draws_a_fresh_init_of_the_same_mask():
    model = tiny()
    start = tickets.parameters_of(model)
    tickets.prune_survivors(model, 0.5)
    masks = masks_of(model)
    tickets.reinitialize(model, seed=1)
    first = tickets.parameters_of(model)
    assert all(np.array_equal(masks[name], mask) for name, mask in masks_of(model).items())
    for name, layer in layers_by_weight_name(model).items():
        kept = layer.weight_mask != 0
        weight = layer.weight.data
        assert np.all(weight[~kept] == 0)
        assert not np.allclose(weight[kept], start[name][kept])  # fresh, not the old init
        bound = np.sqrt(3.0 / weight.shape[1])  # the same Xavier filler
        assert np.abs(weight).max() <= bound and np.abs(weight[kept]).max() > 0.8 * bound
        assert np.all(layer.bias.data == 0)
    tickets.reinitialize(model, seed=1)
    assert all(np.array_equal(first[name], values)
               for name, values in tickets.parameters_of(model).items())
    tickets.reinitialize(model, seed=2)
    assert not np.array_equal(first["fc1.weight"], model.fc1.weight.data)


def test_errors_name_the_argument():
    model = tiny()
    snapshot = tickets.parameters_of(model)
    with pytest.raises(ValueError, match="reset must be one of"):
        tickets.imp(model, nudge, 0.2, 1, reset="reinit")
    with pytest.raises(ValueError, match="needs weights="):
        tickets.imp(model, nudge, 0.2, 1, reset="rewind")
    with pytest.raises(ValueError, match="rounds must be an integer >= 1"):
        tickets.imp(model, nudge, 0.2, 0, reset="keep")
    with pytest.raises(ValueError, match=r"fraction of survivors to prune must be in \[0, 1\)"):
        tickets.prune_survivors(model, 1.0)
    with pytest.raises(ValueError, match="'fc9.weight' names no prunable layer"):
        tickets.prune_survivors(model, {"fc9.weight": 0.2, "*": 0.2})
    del snapshot["fc2.bias"]
    with pytest.raises(ValueError, match="snapshot has no 'fc2.bias'"):
        tickets.imp(model, nudge, 0.2, 1, reset="rewind", weights=snapshot)
    assert minprune.prune.density(model) == 1.0  # refused before anything was pruned
    snapshot["fc2.bias"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"snapshot 'fc2.bias' has shape \(3,\)"):
        tickets.rewind(model, snapshot)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        tickets.reinitialize(model, seed=-1)
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        tickets.BestValidation(blobs(16), every=0)


def test_best_validation_keeps_the_first_lowest_error_and_its_weights():
    model = tiny()
    data = blobs(256)
    tracker = tickets.train_tracked(model, data, subset(blobs(64, seed=1), 64), PHASE, every=2)
    iterations = [iteration for iteration, _ in tracker.curve]
    assert iterations == list(range(2, 9, 2))  # 256 / 32 = 8 steps
    errors = [error for _, error in tracker.curve]
    assert tracker.best_error == min(errors)
    assert tracker.best_iteration == iterations[errors.index(min(errors))]
    best = tiny()
    tickets.rewind(best, tracker.best_weights)
    assert minprune.evaluate(best, subset(blobs(64, seed=1), 64))["error"] == tracker.best_error


def test_compare_resets_gives_four_lines_from_one_dense_point():
    data = blobs(128)
    phase = Phase(epochs=1, lr=0.01, weight_decay=0.0, lr_policy="fixed", batch_size=32)
    lines = tickets.compare_resets(tiny(), data, blobs(32, seed=1), blobs(32, seed=2),
                                   phase=phase, finetune_phase=phase, rates=0.5, rounds=2, k=2,
                                   every=2, log=None)
    assert list(lines) == list(tickets.CONDITIONS)
    for points in lines.values():
        assert [round(point["density"], 2) for point in points] == [1.0, 0.5, 0.25]
        assert points[0] is lines["fine-tune"][0]
        assert all(0 <= point["test_error"] <= 1 and point["early_stop_iteration"] in (2, 4)
                   for point in points)
    figure = tickets.plot_tickets(lines)
    assert len(figure.axes) == 2
