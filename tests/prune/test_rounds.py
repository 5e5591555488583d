"""Rounds say what they do: a keep ratio is a fraction of the layer's original weights, so
repeating one prunes nothing after the first round -- which the loop says out loud -- and
``rounds_to`` gives the falling keep ratios that reach a target in steps."""

import re
import warnings

import pytest
from toy_data import blobs

import minprune
import minprune as mp
from minprune.nn import models
from minprune.prune import iterative_prune, keep_ratio_prune, layer_density, rounds_to
from minprune.prune.rounds import round_functions
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


def test_rounds_to_in_one_round_is_the_target_itself():
    """One round is allowed: it prunes straight to the target (Sec. 3.4's one-shot pruning)."""
    assert rounds_to(keep_ratio=0.3, rounds=1) == [{"keep_ratio": 0.3}]
    assert rounds_to({"fc1.weight": 0.1, "*": 0.5}, rounds=1) == [
        {"keep_ratio": {"fc1.weight": 0.1, "*": 0.5}}]


@pytest.mark.parametrize("keep_ratio, rounds, message", [
    (0.0, 3, "keep_ratio: keep ratio must be in (0, 1], got 0.0"),
    (1.5, 3, "keep_ratio: keep ratio must be in (0, 1], got 1.5"),
    ({"fc1.weight": -0.1}, 3, "keep_ratio['fc1.weight']: keep ratio must be in (0, 1], got -0.1"),
    ({}, 3, "keep_ratio is an empty dict; give a number in (0, 1] or {layer name: ratio} with an "
            "optional '*' default"),
    (0.1, 0, "rounds must be an integer >= 1, got 0"),
    (0.1, 2.5, "rounds must be an integer >= 1, got 2.5"),
    (0.1, True, "rounds must be an integer >= 1, got True"),
])
def test_rounds_to_refuses_a_bad_target_or_count(keep_ratio, rounds, message):
    with pytest.raises(ValueError, match=f"^{re.escape('rounds_to: ' + message)}$"):
        rounds_to(keep_ratio, rounds)


def _halve(model):
    return keep_ratio_prune(model, 0.5)


EXPECTED = ("a function prune(model) or a dict with one key, 'quality' or 'keep_ratio' (a "
            "'quality' round may add 'std_of')")
USE_A_LIST = "for several falling keep ratios mp.prune.rounds_to(keep_ratio=..., rounds=...)"


@pytest.mark.parametrize("rounds, error, message", [
    ({"keep_ratio": 0.5}, TypeError,
     "rounds must be a list, one entry per round, got {'keep_ratio': 0.5}; for one round write "
     f"[{{'keep_ratio': 0.5}}], {USE_A_LIST}"),
    (_halve, TypeError,
     f"rounds must be a list, one entry per round, got {_halve!r}; for one round write "
     f"[{_halve!r}], {USE_A_LIST}"),
    ("quality", TypeError,
     f"rounds must be a list, one entry per round, got 'quality'; for one round write "
     f"['quality'], {USE_A_LIST}"),
    (["fc1"], ValueError, f"rounds[0]: expected {EXPECTED}, got 'fc1'"),
    ([_halve, {}], ValueError, f"rounds[1]: expected {EXPECTED}, got {{}}"),
    ([{"keep_ratio": 0.5}, {"threshold": 1.0}], ValueError,
     f"rounds[1]: unknown key 'threshold'; expected {EXPECTED}"),
    ([{"quality": 1.0, "keep_ratio": 0.5}], ValueError,
     f"rounds[0]: expected {EXPECTED}, got {{'quality': 1.0, 'keep_ratio': 0.5}}"),
    ([{"quality": 1.0, "std_of": "median"}], ValueError,
     "rounds[0]: std_of must be one of ['surviving', 'dense'], got 'median'"),
    ([{"quality": {"fc9.weight": 1.0}}], ValueError,
     "rounds[0]: quality: 'fc9.weight' names no prunable layer; expected one of "
     "['fc1.weight', 'fc2.weight', 'fc3.weight'] or '*'"),
])
def test_bad_rounds_are_refused_with_the_round_the_value_and_what_was_expected(rounds, error,
                                                                               message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        round_functions(rounds, _model())


def test_dense_std_rounds_on_a_pruned_model_name_the_pruned_layers():
    """The dense std (Distiller's reading) is taken as the rounds start: a pruned layer has lost
    it, so the rounds are refused before anything runs."""
    model = _model()
    keep_ratio_prune(model, {"fc2.weight": 0.5, "*": 1.0})
    message = ("std_of='dense': ['fc2.weight'] are already pruned, so their dense std is gone; "
               "start the rounds from the unpruned model")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        round_functions([{"quality": 1.0, "std_of": "dense"}], model)


def test_rounds_given_as_one_dict_are_told_to_be_a_list():
    with pytest.raises(TypeError, match=r"rounds must be a list.*\[\{'keep_ratio': 0.5\}\]"):
        iterative_prune(_model(), blobs(32), blobs(32, seed=1), {"keep_ratio": 0.5},
                        Phase(epochs=1, lr=0.01, lr_policy="fixed"), log=None)
