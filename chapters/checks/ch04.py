"""Checks for chapter 4, ``04_sensitivity.ipynb``: the harshest keep ratio within a tolerated
accuracy drop, a size budget spent across LeNet-5's layers (measured against the uniform cut),
the FLOP of a convolution, and the dead neurons between two masked layers.

Each ``exercise_N`` lets an untouched template's ``NotImplementedError`` through and raises
``AssertionError`` with a hint for a wrong answer (``tests/chapters/test_checks_ch04.py`` feeds
each one plausible wrong answers).
"""

from __future__ import annotations

import numpy as np

import minprune as mp
from checks import unanswered

__all__ = ["exercise_1", "exercise_2", "exercise_3", "exercise_4", "BUDGET"]

BUDGET = 20  # Exercise 2: keep at most 1/20 of the prunable weights


# Exercise 1 ------------------------------------------------------------------------------------

def _curve(points, layer="x"):
    return [{"layer": layer, "keep_ratio": ratio, "accuracy": accuracy}
            for ratio, accuracy in points]


def exercise_1(harshest_within, rows, baseline) -> None:
    """``harshest_within(rows, layer, max_drop, baseline)``: the smallest keep ratio reached by
    walking the layer's levels from the largest down, before the first level whose accuracy
    drop exceeds ``max_drop``. Checked on made-up curves and on ``rows`` (measured in the
    chapter) against ``mp.prune.keep_ratios_for_tolerance``."""
    # A curve that dips and recovers, listed harshest first (the walk must sort it), and a
    # second layer in the same rows that must be ignored.
    bumpy = _curve([(0.05, 0.90), (0.1, 0.976), (0.2, 0.95), (0.5, 0.975), (1.0, 0.98)])
    other = _curve([(1.0, 0.98), (0.3, 0.98), (0.01, 0.98)], "y")
    got = harshest_within(bumpy + other, "x", 0.01, 0.98)
    assert got is not None, (
        "Exercise 1: you return None for a curve whose gentlest level (keep ratio 1.0) loses "
        "nothing. The rows do not come sorted: walk the layer's levels from the gentlest (the "
        "largest keep ratio) down, and return the last one within the tolerance")
    assert got != 0.05, (
        "Exercise 1: for layer 'x' with a 1-point tolerance you return 0.05, which drops 8 "
        "points: pick only the rows of the layer asked for, and compare each drop with max_drop")
    assert got != 0.1, (
        "Exercise 1: you return 0.1: it is within the tolerance, but 0.2 before it is not. Walk "
        "from the gentlest level (keep ratio 1.0) down and stop at the first level that breaks "
        "the tolerance: a lucky harsher level after a bad one does not count")
    assert got != 0.2, (
        "Exercise 1: you return 0.2, the first level that breaks the tolerance (it drops 3 "
        "points); return the last level *before* it")
    assert got == 0.5, (
        f"Exercise 1: expected 0.5 for the made-up curve, got {got}; only the rows of the layer "
        "asked for count, from the gentlest level down")
    assert harshest_within(bumpy, "x", 0.10, 0.98) == 0.05, (
        "Exercise 1: with a 10-point tolerance every level of the made-up curve passes: return "
        "the harshest, 0.05")
    # Drops and tolerance that are exact in binary: a drop equal to max_drop is "at most" it.
    exact = _curve([(1.0, 0.75), (0.5, 0.5), (0.25, 0.25)])
    assert harshest_within(exact, "x", 0.25, 0.75) == 0.5, (
        "Exercise 1: a level whose drop equals max_drop exactly (0.75 - 0.5 = 0.25) is within "
        "the tolerance: the drop must be *at most* max_drop, not below it")
    for tolerance in (0.0049, 0.0099, 0.0299):  # between the accuracies a test of N images gives
        expected = mp.prune.keep_ratios_for_tolerance(rows, tolerance, baseline)
        for layer, ratio in expected.items():
            ours = harshest_within(rows, layer, tolerance, baseline)
            assert ours == ratio, (
                f"Exercise 1: {layer}, tolerance {tolerance}: expected {ratio} on the measured "
                f"rows, got {ours}")
    print("Exercise 1: correct")


# Exercise 2 ------------------------------------------------------------------------------------

def _accuracy_drop(model, keep_ratios, dataset, baseline) -> float:
    pruned = mp.copy_model(model)
    mp.prune.keep_ratio_prune(pruned, keep_ratios)
    return baseline - mp.evaluate(pruned, dataset)["accuracy"]


def exercise_2(budget_ratios, model, dataset) -> None:
    """``budget_ratios``: ``{weight name: keep ratio}`` for every prunable layer of ``model``,
    keeping at most 1/BUDGET of its prunable weights. All layers pruned at once, with no
    retraining, it must lose at most half the accuracy (on ``dataset``, the validation images)
    that the uniform cut, every layer at 1/BUDGET, loses."""
    layers = mp.prune.layers_by_weight_name(model)
    unanswered(budget_ratios, "Exercise 2")
    assert isinstance(budget_ratios, dict), (
        "Exercise 2: give a dict {weight name: keep ratio}, e.g. {'conv1.weight': 0.5, ...}, "
        f"got {type(budget_ratios).__name__}")
    unknown = sorted(set(budget_ratios) - set(layers))
    assert not unknown, (
        f"Exercise 2: {unknown} are not prunable layers of the model; the names are "
        f"{sorted(layers)}")
    missing = [name for name in layers if budget_ratios.get(name) is None]
    if missing:
        raise NotImplementedError(f"Exercise 2: choose a keep ratio for {', '.join(missing)} in "
                                  "the exercise cell above, run it, then run this check again")
    for name, ratio in budget_ratios.items():
        assert isinstance(ratio, int | float | np.floating) and 0 < ratio <= 1, (
            f"Exercise 2: {name}: a keep ratio is a fraction in (0, 1] (0.05 keeps 5%), got "
            f"{ratio!r}")
    sizes = {name: layer.weight.data.size for name, layer in layers.items()}
    total = sum(sizes.values())
    allowed = total // BUDGET
    kept = {name: int(round(budget_ratios[name] * size)) for name, size in sizes.items()}
    if sum(kept.values()) > allowed:
        biggest = max(kept, key=kept.get)
        raise AssertionError(
            f"Exercise 2: your ratios keep {sum(kept.values()):,} weights; the budget is "
            f"{allowed:,} (1/{BUDGET} of {total:,}), so you are {total / sum(kept.values()):.1f}x "
            f"smaller, not {BUDGET}x. The layer keeping the most is {biggest} "
            f"({kept[biggest]:,} weights): the budget is spent where the weights are")
    baseline = mp.evaluate(model, dataset)["accuracy"]
    ours = _accuracy_drop(model, budget_ratios, dataset, baseline)
    uniform = _accuracy_drop(model, dict.fromkeys(layers, 1 / BUDGET), dataset, baseline)
    if ours > uniform / 2:
        alone = {name: _accuracy_drop(model, {**dict.fromkeys(layers, 1.0), name: ratio},
                                      dataset, baseline)
                 for name, ratio in budget_ratios.items()}
        worst = max(alone, key=alone.get)
        raise AssertionError(
            f"Exercise 2: pruned to your ratios, all at once and without retraining, the model "
            f"loses {100 * ours:.1f} points of validation accuracy; the uniform cut (every "
            f"layer at {1 / BUDGET:.0%}) loses {100 * uniform:.1f}, and the exercise asks for at "
            f"most half of that. Alone, {worst} at {budget_ratios[worst]:.1%} already costs "
            f"{100 * alone[worst]:.1f} points: read its sensitivity curve, and spend the budget "
            "where a layer can afford it")
    print(f"Exercise 2: correct -- {sum(kept.values()):,} of {total:,} weights kept "
          f"({total / sum(kept.values()):.1f}x); validation accuracy drop {100 * ours:.1f} points, "
          f"against {100 * uniform:.1f} for every layer at {1 / BUDGET:.0%}")


# Exercise 3 ------------------------------------------------------------------------------------

def _flop(h, w, k, c_in, c_out):
    return 2 * (h - k + 1) * (w - k + 1) * k * k * c_in * c_out


def exercise_3(conv_flop) -> None:
    """``conv_flop(h, w, k, c_in, c_out)``: FLOP (2 per multiply-add) of a k x k convolution,
    stride 1, no padding, on an h x w x c_in input with c_out output channels."""
    conv1 = conv_flop(28, 28, 5, 1, 20)
    unanswered(conv1, "Exercise 3")
    assert conv1 != _flop(28, 28, 5, 1, 20) // 2, (
        f"Exercise 3: conv1 gives {conv1:,}, the number of multiply-adds; the paper counts each "
        "multiply-add as 2 FLOP (a multiply and an add)")
    assert conv1 != 2 * 28 * 28 * 25 * 20, (
        "Exercise 3: conv1 gives 784,000: you count an output at every input pixel (28 x 28), "
        "but a 5 x 5 kernel without padding fits in 24 x 24 positions")
    assert conv1 != 2 * 23 * 23 * 25 * 20, (
        "Exercise 3: conv1 gives 529,000: an output of 23 x 23 is one position short per side "
        "(a k-wide kernel fits h - k + 1 times across h pixels)")
    assert conv1 == 576_000, (
        f"Exercise 3: conv1 (a 28 x 28 digit, 20 filters of 5 x 5): expected 576K (Table 3), got "
        f"{conv1:,}")
    conv2 = conv_flop(12, 12, 5, 20, 50)
    assert conv2 != _flop(12, 12, 5, 1, 50), (
        f"Exercise 3: conv2 gives {conv2:,}: each of conv2's outputs sums over a 5 x 5 window in "
        "each of its 20 input channels, so the input channels multiply the count")
    assert conv2 == 3_200_000, (
        f"Exercise 3: conv2 sees 20 channels of 12 x 12 (conv1's 24 x 24, pooled); expected "
        f"3200K (Table 3), got {conv2:,}")
    for shape in ((32, 20, 3, 3, 16), (7, 9, 2, 4, 5), (5, 5, 5, 2, 3)):
        assert conv_flop(*shape) == _flop(*shape), (
            f"Exercise 3: h, w, k, c_in, c_out = {shape}: expected {_flop(*shape):,}, got "
            f"{conv_flop(*shape):,} (is the input's height and width each used on its own?)")
    print(f"Exercise 3: correct -- conv1 {conv1:,} FLOP, conv2 {conv2:,} FLOP")


# Exercise 4 ------------------------------------------------------------------------------------

MASK_A = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 1], [0, 0, 0]],
                  dtype=np.float32)   # 6 hidden neurons x 3 inputs
MASK_B = np.array([[1, 0, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0]], dtype=np.float32)  # 2 x 6


def exercise_4(dead_neurons) -> None:
    """``dead_neurons(mask_a, mask_b)``: sorted indices of the hidden neurons between layers A
    (out_a x in_a) and B (out_b x out_a) with no live input or no live output; compared with
    what ``mp.prune.remove_dead_neurons`` removes."""
    answer = dead_neurons(MASK_A, MASK_B)
    unanswered(answer, "Exercise 4")
    answer = np.asarray(answer)
    assert answer.dtype != bool, (
        "Exercise 4: you return a boolean mask; return the indices of the dead neurons "
        "(np.flatnonzero turns a mask into them)")
    got = sorted(int(i) for i in answer.ravel())
    assert got != [1, 5], (
        "Exercise 4: you find only the neurons without inputs (rows 1 and 5 of mask_a); neurons "
        "2 and 4 have inputs but no outputs (columns 2 and 4 of mask_b are all zero), and a "
        "neuron whose output goes nowhere is dead too")
    assert got != [1, 2, 4], (
        "Exercise 4: you find only the neurons without outputs; neuron 5 has outputs but no "
        "inputs (row 5 of mask_a is all zero), and it is dead too")
    assert got != [1], (
        "Exercise 4: you require *both* no inputs and no outputs; either one makes a neuron dead "
        "(or, not and)")
    assert 0 not in got and 3 not in got, (
        f"Exercise 4: you return {got}, but neurons 0 and 3 have live inputs and outputs; rows of "
        "mask_a are the hidden neurons' inputs, columns of mask_b their outputs")
    assert got == [1, 2, 4, 5], f"Exercise 4: expected four dead neurons, got {got}"
    rng = np.random.default_rng(4)
    for _ in range(3):
        mask_a = (rng.random((40, 7)) < 0.08).astype(np.float32)
        mask_b = (rng.random((3, 40)) < 0.15).astype(np.float32)
        mp.manual_seed(0)
        pair = mp.nn.Sequential(mp.nn.Linear(7, 40), mp.nn.ReLU(), mp.nn.Linear(40, 3))
        layer_a, layer_b = mp.prune.layers_by_weight_name(pair).values()
        mp.prune.set_mask(layer_a, mask_a)
        mp.prune.set_mask(layer_b, mask_b)
        ours = sorted(int(i) for i in np.asarray(dead_neurons(mask_a, mask_b)).ravel())
        expected = np.flatnonzero(~mask_a.any(axis=1) | ~mask_b.any(axis=0)).tolist()
        assert ours == expected, (
            f"Exercise 4: on random 7-40-3 masks you find {ours}, expected {expected}")
        ((_, (old, new)),) = mp.prune.remove_dead_neurons(pair).items()
        assert old - new == len(ours), (
            f"Exercise 4: on random 7-40-3 masks you find {len(ours)} dead neurons, "
            f"remove_dead_neurons removes {old - new}")
    print(f"Exercise 4: correct -- dead: {got}")
