"""Checks for chapter 2, ``02_magnitude_threshold.ipynb``: the paper's threshold as a mask,
density (of a layer and of a model), the quality that keeps a given fraction of a layer, and a
budget of a third of the weights shared among the layers better than a third of each (chosen on
the validation split, measured against one).

Each ``exercise_N`` lets an untouched template's ``NotImplementedError`` through and raises
``AssertionError`` with a hint for a wrong answer (``tests/chapters/test_checks_ch02.py`` feeds
each one plausible wrong answers).
"""

from __future__ import annotations

import numpy as np

import minprune as mp
from checks import unanswered

__all__ = ["exercise_1", "exercise_2", "exercise_3", "exercise_4"]

# A small array whose std is exactly 2 (mean 0, mean square 4): every threshold is known by hand.
SMALL = np.array([[-4.0, -2.0, -2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 2.0, 4.0]])


# Exercise 1 ------------------------------------------------------------------------------------

def _wrong_masks(weights, quality) -> dict:
    """The masks that plausible slips give, keyed by the hint for each."""
    magnitude = np.abs(weights)
    return {
        "weights exactly at the threshold are kept: |w| >= threshold, not >":
            magnitude > quality * np.std(weights),
        "the threshold is quality x the std of the layer's weights, not the quality alone":
            magnitude >= quality,
        "take the std of the weights themselves, not of their magnitudes |w|":
            magnitude >= quality * np.std(magnitude),
        "the std is NumPy's plain np.std (ddof=0), the spread of this layer's weights, not "
        "the sample estimate (ddof=1)": magnitude >= quality * np.std(weights, ddof=1),
        "the mask keeps the *large* weights and prunes the small ones; yours is the other way "
        "round": magnitude < quality * np.std(weights),
        "compare magnitudes |w| with the threshold: a large negative weight matters as much "
        "as a large positive one": weights >= quality * np.std(weights),
        "the threshold is quality x std, not quality x the mean magnitude":
            magnitude >= quality * np.mean(magnitude),
    }


def exercise_1(threshold_mask, model=None) -> None:
    """``threshold_mask(weights, quality)`` -> 0/1 array; ``model``: compared with minprune's
    ``threshold_prune`` on a copy of it, layer by layer (optional)."""
    assert np.std(SMALL) == 2.0
    qualities = (1.0, 0.99, 1.5, 1.6, 2.5)
    answers = {}
    for quality in qualities:
        got = np.asarray(threshold_mask(SMALL.copy(), quality))  # a template raises here
        assert got.shape == SMALL.shape, (
            f"Exercise 1: the mask has shape {got.shape}; it must have the weights' shape "
            f"{SMALL.shape}")
        assert np.isin(got, (0, 1)).all(), (
            "Exercise 1: a mask holds only 0 (pruned) and 1 (kept), not the weights' values: "
            f"got\n{got}")
        answers[quality] = got != 0
    expected = {q: np.abs(SMALL) >= q * np.std(SMALL) for q in qualities}
    if any(not np.array_equal(answers[q], expected[q]) for q in qualities):
        for hint in _wrong_masks(SMALL, 1.0):
            if all(np.array_equal(answers[q], _wrong_masks(SMALL, q)[hint]) for q in qualities):
                raise AssertionError(f"Exercise 1: {hint}")
        quality = next(q for q in qualities if not np.array_equal(answers[q], expected[q]))
        raise AssertionError(
            f"Exercise 1: for the weights\n{SMALL}\n(std 2) at quality {quality} your mask is\n"
            f"{answers[quality].astype(int)}\nkeep exactly the weights whose magnitude reaches "
            "quality x std")
    if model is not None:
        for quality in (1.0, 1.7):
            pruned = mp.copy_model(model)
            mp.prune.threshold_prune(pruned, quality)
            dense = mp.prune.layers_by_weight_name(model)
            for name, layer in mp.prune.layers_by_weight_name(pruned).items():
                ours = np.asarray(threshold_mask(dense[name].weight.data.copy(), quality))
                assert np.array_equal(ours != 0, layer.weight_mask != 0), (
                    f"Exercise 1: {name}, quality {quality}: your mask differs from "
                    "mp.prune.threshold_prune's on the trained layer")
    print("Exercise 1: correct")


# Exercise 2 ------------------------------------------------------------------------------------

def exercise_2(mask_density, model_density, pruned) -> None:
    """``mask_density(mask)`` and ``model_density(model)``; ``pruned``: a pruned model whose
    layers differ in size and density."""
    got = mask_density(np.array([[1.0, 0.0], [0.0, 0.0]]))  # a template raises here
    assert got is not None and np.isclose(got, 0.25), (
        f"Exercise 2: mask_density of [[1, 0], [0, 0]] gave {got}: one kept connection out "
        "of four is 0.25, the fraction kept (over every entry of the mask, not its rows)")
    assert np.isclose(mask_density(np.ones((3, 5), dtype=np.float32)), 1.0), (
        "Exercise 2: mask_density of a mask of ones must be 1 (everything kept)")
    layers = mp.prune.layers_by_weight_name(pruned)
    for name, layer in layers.items():
        ours, expected = mask_density(layer.weight_mask), mp.prune.layer_density(layer)
        assert np.isclose(ours, expected), (
            f"Exercise 2: mask_density of {name}'s mask gave {ours:.4f}, "
            f"mp.prune.layer_density {expected:.4f}")
    answer = model_density(pruned)  # a template raises here
    expected = mp.prune.density(pruned)
    if np.isclose(answer, expected, rtol=1e-6, atol=0):
        print("Exercise 2: correct")
        return
    masks = [layer.weight_mask for layer in layers.values()]
    kept = sum(int(np.count_nonzero(mask)) for mask in masks)
    weights = sum(mask.size for mask in masks)
    biases = sum(int(layer.bias.data.size) for layer in layers.values() if layer.bias is not None)
    layer_mean = np.mean([mp.prune.layer_density(layer) for layer in layers.values()])
    if np.isclose(answer, layer_mean):
        hint = ("the mean of the layer densities treats a layer of 1,000 weights like one of "
                "235,200: count the kept connections of all layers together")
    elif np.isclose(answer, 1 - expected):
        hint = "that is the fraction pruned; density is the fraction kept"
    elif np.isclose(answer, (kept + biases) / (weights + biases)):
        hint = "biases do not count: density is over the prunable weights, the masks"
    else:
        hint = "the kept connections of every layer over all of their connections"
    raise AssertionError(f"Exercise 2: model_density gave {answer:.4f}, "
                         f"mp.prune.density {expected:.4f}: {hint}")


# Exercise 3 ------------------------------------------------------------------------------------

def exercise_3(quality_for_keep_ratio, model) -> None:
    """``quality_for_keep_ratio(weights, keep_ratio)`` -> a quality; ``model``: a trained model
    whose layers it must prune to the ratio, through ``mp.prune.threshold_prune``."""
    layers = mp.prune.layers_by_weight_name(model)
    for name, layer in layers.items():
        weights = layer.weight.data.copy()
        magnitude, std = np.abs(weights), float(np.std(weights))
        for keep_ratio in (1 / 3, 0.1, 0.5):
            quality = quality_for_keep_ratio(weights, keep_ratio)  # a template raises here
            unanswered(quality, "Exercise 3")
            quality = float(quality)
            kept = float(np.mean(magnitude >= quality * std))
            if abs(kept - keep_ratio) <= 0.005 + 1 / weights.size:
                continue
            threshold = np.quantile(magnitude, 1 - keep_ratio)
            if np.isclose(quality, threshold):
                hint = ("you returned the threshold itself; a quality is the threshold in units "
                        "of the layer's std")
            elif np.isclose(quality, threshold / np.std(magnitude)):
                hint = "divide by the std of the weights, not of their magnitudes"
            elif np.isclose(quality * std, np.quantile(weights, 1 - keep_ratio)):
                hint = ("the threshold is compared with magnitudes: take the quantile of |w|, "
                        "not of the signed weights")
            elif abs(kept - (1 - keep_ratio)) <= 0.005 + 1 / weights.size:
                hint = ("you keep the complement: the threshold is the magnitude that only "
                        f"{keep_ratio:.0%} of the weights reach, a high quantile of |w|")
            else:
                hint = ("the quality times the layer's std must be the magnitude that "
                        f"{keep_ratio:.0%} of the weights reach or exceed")
            raise AssertionError(
                f"Exercise 3: on {name}, keep ratio {keep_ratio:.3f}: quality {quality:.3f} "
                f"keeps {kept:.1%} of the weights; {hint}")
    qualities = {name: quality_for_keep_ratio(layer.weight.data.copy(), 1 / 3)
                 for name, layer in layers.items()}
    pruned = mp.copy_model(model)
    mp.prune.threshold_prune(pruned, qualities)
    for name, layer in mp.prune.layers_by_weight_name(pruned).items():
        density = mp.prune.layer_density(layer)
        assert abs(density - 1 / 3) <= 0.005 + 1 / layer.weight_mask.size, (
            f"Exercise 3: threshold_prune with your qualities keeps {density:.1%} of {name}, "
            "not a third")
    print("Exercise 3: correct (threshold_prune with your qualities keeps a third of each layer)")


# Exercise 4 ------------------------------------------------------------------------------------

def pruned_copy(model, keep_ratios):
    """A copy of ``model`` with each layer pruned to its keep ratio (`keep_ratio_prune`)."""
    copy = mp.copy_model(model)
    mp.prune.keep_ratio_prune(copy, keep_ratios)
    return copy


def exercise_4(keep_ratios, model, validation) -> None:
    """``keep_ratios``: ``{layer: fraction kept}`` keeping at most a third of ``model``'s weights
    in all, which must lose less on ``validation`` than a third of every layer."""
    unanswered(keep_ratios, "Exercise 4")
    assert isinstance(keep_ratios, dict), (
        f"Exercise 4: keep_ratios is a {type(keep_ratios).__name__}; give a dict from layer name "
        "('fc1.weight', ...) to the fraction of that layer kept")
    try:
        ours = pruned_copy(model, keep_ratios)
    except (TypeError, ValueError, KeyError) as error:
        raise AssertionError(f"Exercise 4: mp.prune.keep_ratio_prune refused your keep_ratios: "
                             f"{error}") from None
    layers = mp.prune.layers_by_weight_name(ours)
    total = sum(layer.weight_mask.size for layer in layers.values())
    kept = sum(int(np.count_nonzero(layer.weight_mask)) for layer in layers.values())
    if kept > total / 3 + len(layers):
        hint = ""
        if kept > 0.6 * total:
            hint = " (are your ratios the fractions pruned? a keep ratio is the fraction kept)"
        raise AssertionError(
            f"Exercise 4: your ratios keep {kept:,} of the {total:,} weights ({kept / total:.1%}), "
            f"over the budget of a third ({total // 3:,}){hint}: a layer's ratio costs its "
            "number of weights times the ratio")
    equal = pruned_copy(model, 1 / 3)
    wrong_ours = round(mp.evaluate(ours, validation)["error"] * len(validation))
    wrong_equal = round(mp.evaluate(equal, validation)["error"] * len(validation))
    assert wrong_ours < wrong_equal, (
        f"Exercise 4: on the validation images your allocation gets {wrong_ours} wrong, a third "
        f"of every layer {wrong_equal}: not better. Ask what each layer's weights cost in the "
        "budget and what cutting them costs in accuracy, and compare a few allocations on the "
        "validation split")
    print(f"Exercise 4: correct: {kept / total:.1%} of the weights kept, validation errors "
          f"{wrong_ours} against {wrong_equal} for a third of every layer")
