"""Checks for chapter 3, ``03_retrain_and_iterate.ipynb``: the masked momentum update (what must
be masked so that a pruned weight stays pruned), the retraining dropout ratio of Eq. 2, and a
pruning schedule that cuts the same share of the survivors every round.

Each ``exercise_N`` lets an untouched template's ``NotImplementedError`` through and raises
``AssertionError`` with a hint for a wrong answer (``tests/chapters/test_checks_ch03.py`` feeds
each one plausible wrong answers).
"""

from __future__ import annotations

import numpy as np

import minprune as mp
from checks import unanswered

__all__ = ["exercise_1", "exercise_2", "exercise_3"]


# Exercise 1 ------------------------------------------------------------------------------------

def _reference_sgd(weight, velocity, mask, settings):
    """``mp.optim.SGD`` on one masked parameter, its velocity set to ``velocity``."""
    parameter = mp.nn.Parameter(weight.copy())
    parameter.mask = mask
    sgd = mp.optim.SGD([parameter], **settings)
    sgd.velocities[0][...] = velocity
    return parameter, sgd


def exercise_1(masked_momentum_step) -> None:
    """``masked_momentum_step(weight, velocity, grad, mask, lr, momentum, weight_decay)`` returns
    the new ``(weight, velocity)``; compared with ``mp.optim.SGD`` over three steps that start
    from a velocity a prune has made stale."""
    rng = np.random.default_rng(1)
    shape = (6, 5)
    mask = (rng.random(shape) < 0.4).astype(np.float32)
    weight = rng.standard_normal(shape).astype(np.float32) * mask      # pruned weights are 0
    velocity = rng.standard_normal(shape).astype(np.float32)          # stale: built before the cut
    settings = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}
    reference, sgd = _reference_sgd(weight, velocity, mask, settings)
    pruned = mask == 0
    for number in range(1, 4):
        grad = rng.standard_normal(shape).astype(np.float32) * mask   # the forward masks it
        passed = (weight, velocity, grad, mask)
        saved = tuple(array.copy() for array in passed)
        answer = masked_momentum_step(weight, velocity, grad, mask, **settings)
        assert all(np.array_equal(a, b) for a, b in zip(passed, saved, strict=True)), (
            "Exercise 1: masked_momentum_step changed one of its inputs in place; compute new "
            "arrays (velocity = ..., not velocity *= ...) and return them")
        assert isinstance(answer, tuple | list) and len(answer) == 2, (
            "Exercise 1: return the pair (new_weight, new_velocity), got "
            f"{type(answer).__name__}")
        weight, velocity = (np.asarray(array, dtype=np.float64) for array in answer)
        assert weight.shape == shape and velocity.shape == shape, (
            f"Exercise 1: the new weight and velocity must keep the shape {shape}, got "
            f"{weight.shape} and {velocity.shape}")
        reference.grad = grad
        sgd.step()
        if np.any(weight[pruned] != 0):
            raise AssertionError(
                f"Exercise 1: step {number}: {np.count_nonzero(weight[pruned])} of the "
                f"{np.count_nonzero(pruned)} pruned weights are no longer exactly 0. Their "
                "gradient is 0, so what moved them? Make the weight you return 0 wherever "
                "the mask is 0")
        if np.any(velocity[pruned] != 0):
            raise AssertionError(
                f"Exercise 1: step {number}: the pruned weights stay at 0, but their velocity "
                "does not: a pruned position still carries momentum, which moves the weight "
                "again the moment the mask is lifted (and a stale velocity is what revived the "
                "weights in the demonstration above). Return a velocity that is 0 where the "
                "mask is 0")
        kept = ~pruned
        if not np.allclose(velocity[kept], sgd.velocities[0][kept], rtol=1e-5, atol=1e-6):
            raise AssertionError(
                f"Exercise 1: step {number}: the kept weights' velocity differs from "
                "mp.optim.SGD's (largest difference "
                f"{np.abs(velocity - sgd.velocities[0]).max():.3g}). The velocity is momentum "
                "times the old velocity plus the gradient, and weight decay's pull "
                "(weight_decay x weight) is part of that gradient")
        if not np.allclose(weight[kept], reference.data[kept], rtol=1e-5, atol=1e-6):
            raise AssertionError(
                f"Exercise 1: step {number}: the velocity is right but the kept weights differ "
                f"from mp.optim.SGD's (largest difference "
                f"{np.abs(weight - reference.data).max():.3g}): the weight moves by lr times "
                "the *new* velocity, against its direction")
    print("Exercise 1: correct -- pruned weights and their velocities stay at exactly 0")


# Exercise 2 ------------------------------------------------------------------------------------

def exercise_2(retraining_dropout) -> None:
    """``retraining_dropout(original_ratio, kept_connections, original_connections)``: D_r of
    the paper's Eq. 2, checked on the paper's example, other ratios and densities, and against
    ``mp.prune.adjust_dropout`` on a pruned model."""
    paper = mp.paper.DROPOUT_EXAMPLE
    answer = retraining_dropout(paper["original"], 9, 100)
    unanswered(answer, "Exercise 2")
    answer = float(answer)
    assert not np.isclose(answer, 0.5 * 0.09), (
        "Exercise 2: 0.5 at 9% of the connections gives 0.045 in your formula: the ratio of "
        "connections enters under a square root (Eq. 2)")
    assert not np.isclose(answer, 1 - (1 - 0.5) * 0.3), (
        f"Exercise 2: 0.5 at 9% of the connections gives {answer:.3f}, more dropout than "
        "before: you scaled the keep probability 1 - D_o; Eq. 2 scales the dropout ratio "
        "D_o itself")
    assert answer < paper["original"], (
        f"Exercise 2: 0.5 at 9% of the connections gives {answer:.3f}, more than 0.5: fewer "
        "connections should mean *less* dropout; is the fraction upside down (kept over "
        "original, not original over kept)?")
    assert not np.isclose(answer, 0.5 * 0.09**2) and not np.isclose(answer, 0.09**0.5), (
        f"Exercise 2: 0.5 at 9% gives {answer:.3f}; Eq. 2 multiplies the original ratio D_o "
        "by the square root of the share of connections kept")
    assert abs(answer - paper["retrained"]) < 0.005, (
        f"Exercise 2: 0.5 at 9% of the connections should give about {paper['retrained']} (the "
        f"paper's example), got {answer:.3f}")
    other = float(retraining_dropout(0.3, 25, 100))
    assert np.isclose(other, 0.15), (
        f"Exercise 2: D_o = 0.3 at 25% of the connections should give 0.15, got {other:.3f}. "
        "At D_o = 0.5 the dropout ratio and the keep probability 1 - D_o are equal, so scaling "
        "the keep probability looks right there and nowhere else: scale D_o itself")
    model = mp.models.lenet_300_100(dropout=0.5)
    ratios = mp.prune.dropout_ratios(model)
    mp.prune.keep_ratio_prune(model, {"fc1.weight": 0.3, "fc2.weight": 0.05, "*": 1.0})
    layers = mp.prune.layers_by_weight_name(model)
    feeds = {"drop1": "fc1.weight", "drop2": "fc2.weight"}
    for name, (before, after) in mp.prune.adjust_dropout(model, ratios).items():
        mask = layers[feeds[name]].weight_mask
        ours = float(retraining_dropout(before, np.count_nonzero(mask), mask.size))
        assert np.isclose(ours, after), (
            f"Exercise 2: {name} (after {feeds[name]}, {np.count_nonzero(mask) / mask.size:.0%} "
            f"kept): you give {ours:.4f}, mp.prune.adjust_dropout {after:.4f}")
    print(f"Exercise 2: correct -- 0.5 at 9% of the connections gives {answer:.2f}")


# Exercise 3 ------------------------------------------------------------------------------------

def _as_schedule(answer, rounds: int) -> np.ndarray:
    unanswered(answer, "Exercise 3")
    schedule = np.asarray(answer, dtype=float)
    assert schedule.shape == (rounds,), (
        f"Exercise 3: {rounds} rounds need {rounds} keep ratios, one after each round, got an "
        f"array of shape {schedule.shape}")
    return schedule


def exercise_3(geometric_schedule) -> None:
    """``geometric_schedule(target, rounds)``: the keep ratio (of the original layer) after
    each round, every round keeping the same share of the survivors, the last at ``target``."""
    schedule = _as_schedule(geometric_schedule(0.08, 4), 4)
    assert np.all((schedule > 0) & (schedule <= 1)), (
        f"Exercise 3: keep ratios are fractions of the layer in (0, 1], got "
        f"{np.round(schedule, 4)}")
    if np.allclose(schedule, schedule[0]):
        raise AssertionError(
            f"Exercise 3: every round gives {schedule[0]:.3f}: that is the share of the "
            "survivors each round keeps, but the schedule lists what the layer keeps after "
            "each round, a fraction of its original weights, which falls round by round")
    assert schedule[0] < 1, (
        "Exercise 3: the first entry is 1.0, so the first round prunes nothing: list the keep "
        "ratio *after* each round, starting with round 1")
    assert np.all(np.diff(schedule) < 0), (
        f"Exercise 3: every round must keep less than the one before, got {np.round(schedule, 4)}")
    assert np.isclose(schedule[-1], 0.08), (
        f"Exercise 3: after the last round the layer must keep the target 0.08, got "
        f"{schedule[-1]:.4f} (rounds {np.round(schedule, 4)})")
    shares = np.concatenate([[schedule[0]], schedule[1:] / schedule[:-1]])
    assert np.allclose(shares, shares[0]), (
        "Exercise 3: the share of the previous survivors each round keeps should be the same "
        f"every round; yours are {np.round(shares, 3)}. A schedule with equal steps in the keep "
        "ratio cuts gently at first and harshly at the end: the last round removes most of "
        "what was left")
    for target, rounds in ((0.26, 3), (0.5, 1), (0.01, 6)):
        ours = _as_schedule(geometric_schedule(target, rounds), rounds)
        expected = [ratios["layer"] for ratios in
                    mp.prune.geometric_keep_ratios({"layer": target}, rounds)]
        assert np.allclose(ours, expected), (
            f"Exercise 3: target {target} in {rounds} round(s): expected "
            f"{np.round(expected, 4)}, got {np.round(ours, 4)}")
    print("Exercise 3: correct --", ", ".join(f"{ratio:.1%}" for ratio in schedule))
