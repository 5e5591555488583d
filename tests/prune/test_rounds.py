"""Rounds say what they do: a keep ratio is a fraction of the layer's original weights, so
repeating one prunes nothing after the first round -- which the loop says out loud -- and
``rounds_to`` gives the falling keep ratios that reach a target in steps."""

import warnings

import pytest
from toy_data import blobs

import minprune
import minprune as mp
from minprune.nn import models
from minprune.prune import iterative_prune, layer_density, rounds_to
from minprune.training.phase import Phase

QUIET = dict(progress=False, log=lambda s: None)
NO_RETRAINING = Phase(epochs=0, lr=0.005, batch_size=32, lr_policy="fixed")


def _model():
    minprune.manual_seed(0)
    return models.lenet_300_100()


def _run(rounds):
    """The rounds' densities and the warnings they gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = iterative_prune(_model(), blobs(), blobs(64), rounds, NO_RETRAINING, **QUIET)
    return [r["density"] for r in records], [str(w.message) for w in caught]


def test_a_repeated_keep_ratio_prunes_nothing_after_round_one_and_says_so():
    densities, messages = _run([{"keep_ratio": 0.5}] * 3)
    assert densities == pytest.approx([0.5, 0.5, 0.5], abs=1e-4)  # not 0.5, 0.25, 0.125
    assert [m.split(" pruned")[0] for m in messages] == ["round 2/3", "round 3/3"]
    assert "fraction of each layer's original weights" in messages[0]
    assert "rounds_to(keep_ratio=" in messages[0] and "geometric_keep_ratios" in messages[0]


def test_rounds_to_reaches_the_target_in_equal_steps_without_a_warning():
    rounds = mp.prune.rounds_to(keep_ratio=0.125, rounds=3)
    assert rounds == [{"keep_ratio": pytest.approx(r)} for r in (0.5, 0.25, 0.125)]
    assert rounds[-1] == {"keep_ratio": 0.125}  # the target itself, not a rounding of it
    densities, messages = _run(rounds)
    assert densities == pytest.approx([0.5, 0.25, 0.125], abs=1e-4)
    assert messages == []


def test_rounds_to_takes_per_layer_targets_with_a_default():
    rounds = rounds_to({"fc1.weight": 0.01, "*": 0.25}, rounds=2)
    assert rounds == [{"keep_ratio": {"fc1.weight": pytest.approx(0.1), "*": 0.5}},
                      {"keep_ratio": {"fc1.weight": 0.01, "*": 0.25}}]
    model = _model()
    iterative_prune(model, blobs(), blobs(64), rounds, NO_RETRAINING, **QUIET)
    assert layer_density(model.fc1) == pytest.approx(0.01, abs=1e-4)
    assert layer_density(model.fc2) == pytest.approx(0.25, abs=1e-4)


def test_quality_rounds_compound_and_do_not_warn():
    densities, messages = _run([{"quality": 0.5}] * 3)
    assert densities[0] > densities[1] > densities[2]
    assert messages == []


def test_a_function_round_that_prunes_nothing_is_named_in_the_warning():
    rounds = [lambda model: mp.prune.keep_ratio_prune(model, 0.5), lambda model: {}]
    with pytest.warns(UserWarning, match=r"round 2/2 pruned nothing \(density 50.00% before"):
        iterative_prune(_model(), blobs(), blobs(64), rounds, NO_RETRAINING, plan=["a", "b"],
                        **QUIET)


@pytest.mark.parametrize("keep_ratio, rounds, message", [
    (0.0, 3, r"keep_ratio: keep ratio must be in \(0, 1\], got 0.0"),
    (1.5, 3, r"keep_ratio: keep ratio must be in \(0, 1\]"),
    ({"fc1.weight": -0.1}, 3, r"keep_ratio\['fc1.weight'\]: keep ratio must be"),
    ({}, 3, "keep_ratio is an empty dict"),
    (0.1, 0, "rounds must be an integer >= 1, got 0"),
    (0.1, 2.5, "rounds must be an integer >= 1, got 2.5"),
])
def test_rounds_to_refuses_a_bad_target_or_count(keep_ratio, rounds, message):
    with pytest.raises(ValueError, match=f"rounds_to: {message}"):
        rounds_to(keep_ratio, rounds)



def test_rounds_given_as_one_dict_are_told_to_be_a_list():
    with pytest.raises(TypeError, match=r"rounds must be a list.*\[\{'keep_ratio': 0.5\}\]"):
        iterative_prune(_model(), blobs(32), blobs(32, seed=1), {"keep_ratio": 0.5},
                        Phase(epochs=1, lr=0.01, lr_policy="fixed"), log=None)
