"""Checks for chapter 8, "How far can magnitude pruning go? Schedules compared"
(``chapters/08_schedules.ipynb``).

Exercise 1: Zhu and Gupta's cubic sparsity ramp. Exercise 2: dynamic network surgery's mask rule
with its two thresholds. Exercise 3: compression with the biases counted. Exercise 4: how far the
lowest of several validation errors falls below the true error -- the luck a choice buys.
"""

from __future__ import annotations

import math

import numpy as np

import minprune as mp
from checks import unanswered

RAMP = {"initial_sparsity": 0.1, "final_sparsity": 0.96, "begin_step": 200, "end_step": 1_200}


def exercise_1(cubic_ramp) -> None:
    """``cubic_ramp(step, initial_sparsity, final_sparsity, begin_step, end_step)``: Zhu and
    Gupta's Eq. 1, held at s_i before ``begin_step`` and at s_f from ``end_step`` on; compared
    with `minprune.prune.cubic_sparsity`."""
    first = cubic_ramp(200, **RAMP)
    unanswered(first, "Exercise 1")
    assert np.isclose(first, 0.1), f"at begin_step the sparsity is s_i (0.1), got {first!r}"
    last = cubic_ramp(1_200, **RAMP)
    assert np.isclose(last, 0.96), f"at end_step the sparsity is s_f (0.96), got {last!r}"
    halfway = cubic_ramp(700, **RAMP)
    assert not np.isclose(halfway, 0.53), (
        "halfway the ramp should be well past the middle (0.53): it is cubic, not linear")
    assert not np.isclose(halfway, 0.96 - 0.86 / 4), (
        "halfway you are 3/4 of the way: that is a square; the ramp is a cube")
    assert not np.isclose(halfway, 0.1 + 0.86 / 8), (
        "halfway only 1/8 of the way is done: the ramp starts steep and ends flat, not the "
        "other way round")
    assert np.isclose(halfway, 0.96 - 0.86 / 8), (
        f"halfway through the ramp: expected {0.96 - 0.86 / 8:.4f}, got {halfway!r}")
    before = cubic_ramp(0, **RAMP)
    assert np.isclose(before, 0.1), (
        f"before begin_step the sparsity holds at s_i (0.1), got {before!r}: clamp the progress")
    after = cubic_ramp(5_000, **RAMP)
    assert np.isclose(after, 0.96), (
        f"after end_step the sparsity holds at s_f (0.96), got {after!r}: clamp the progress")
    for settings in (RAMP, {"initial_sparsity": 0.0, "final_sparsity": 0.9, "begin_step": 0,
                            "end_step": 100},
                     {"initial_sparsity": 0.5, "final_sparsity": 0.8, "begin_step": 1_000,
                      "end_step": 1_300}):
        for step in range(0, 2_000, 37):
            expected = mp.prune.cubic_sparsity(step, **settings)
            got = cubic_ramp(step, **settings)
            assert np.isclose(got, expected), (
                f"step {step} with {settings}: expected {expected:.4f}, got {got!r}")
    print("Exercise 1: correct")


def exercise_2(surgery_rule) -> None:
    """``surgery_rule(weight, mask, lower, upper)``: the new mask (float32, 1 kept) after one
    re-evaluation with Guo et al.'s two thresholds; compared with `minprune.prune.surgery_mask`."""
    weight = np.array([0.05, -0.05, 0.15, -0.15, 0.3, -0.3, 0.1, 0.2], dtype=np.float32)
    mask = np.array([1, 0, 1, 0, 1, 0, 1, 0], dtype=np.float32)
    mask_before = mask.copy()
    new = surgery_rule(weight, mask, 0.1, 0.2)
    unanswered(new, "Exercise 2")
    assert np.array_equal(mask, mask_before), (
        "surgery_rule changed the mask it was given: return a new mask, leave the old one as is")
    new = np.asarray(new)
    assert new.shape == weight.shape, f"one mask entry per weight: got shape {new.shape}"
    assert np.all(new[:2] == 0), "|w| <= lower: pruned, whatever the old mask"
    assert np.all(new[4:6] == 1), (
        "|w| > upper: kept, and a pruned weight is spliced back -- compare the magnitude |w|")
    assert new[2] == 1, "between the thresholds a kept weight stays kept"
    assert new[3] == 0, (
        "between the thresholds a pruned weight stays pruned: the band is a hysteresis, only "
        "|w| > upper splices")
    assert new[6] == 0, "|w| == lower exactly is pruned (|w| <= lower)"
    assert new[7] == 0, "|w| == upper exactly does not splice (|w| > upper is needed)"
    assert new.dtype == np.float32, (
        f"return the mask as float32 (1.0 kept, 0.0 pruned), got {new.dtype}")
    rng = np.random.default_rng(2)
    for _ in range(5):
        w = rng.standard_normal((7, 9)).astype(np.float32)
        m = (rng.random((7, 9)) < 0.5).astype(np.float32)
        expected = mp.prune.surgery_mask(w, m, 0.5, 0.5 * 1.1 / 0.9)
        assert np.array_equal(np.asarray(surgery_rule(w, m, 0.5, 0.5 * 1.1 / 0.9)), expected), (
            "on a random 7 x 9 layer your mask differs from mp.prune.surgery_mask")
    print("Exercise 2: correct")


def _compression(keep_ratios, shapes, rounding=round) -> float:
    before = sum(outputs * inputs + outputs for outputs, inputs in shapes.values())
    after = sum(int(rounding(keep_ratios[name] * outputs * inputs)) + outputs
                for name, (outputs, inputs) in shapes.items())
    return before / after


def _rounding_hint(got, keep_ratios, shapes) -> str:
    if np.isclose(got, _compression(keep_ratios, shapes, math.floor)):
        return " -- you cut the fraction off: a layer keeps round(keep_ratio x weights)"
    if np.isclose(got, _compression(keep_ratios, shapes, math.ceil)):
        return " -- you round up: a layer keeps round(keep_ratio x weights)"
    return ""


def exercise_3(compression, model) -> None:
    """``compression(keep_ratios, shapes)``: Table 1's compression (every weight and bias before;
    the kept weights and every bias after) of fully connected layers of the given weight
    ``shapes`` pruned to ``keep_ratios``; compared with `minprune.prune.compression_of` on
    ``model`` (LeNet-300-100) at the comparison's sizes, and on a small layer where the rounding
    shows."""
    shapes = {name: tuple(layer.weight.shape)
              for name, layer in mp.prune.layers_by_weight_name(model).items()}
    table2 = mp.paper.PAPER_KEEP_RATIOS["lenet-300-100"]
    answer = compression(table2, shapes)
    unanswered(answer, "Exercise 3")
    before = sum(o * i + o for o, i in shapes.values())
    weights = sum(o * i for o, i in shapes.values())
    kept = sum(round(table2[name] * o * i) for name, (o, i) in shapes.items())
    biases = before - weights
    assert answer > 1, (
        f"{answer:.3f}: compression is parameters before over parameters after, more than 1")
    assert not np.isclose(answer, weights / kept), (
        f"{answer:.2f}x counts the weights only; Table 1 counts the biases too, before and after")
    assert not np.isclose(answer, before / kept), (
        f"{answer:.2f}x: after keeps every bias too -- biases are never pruned")
    assert not np.isclose(answer, weights / (kept + biases)), (
        f"{answer:.2f}x: before counts the biases too")
    assert not np.isclose(answer, before / sum(round(table2[name] * (o * i + o))
                                               for name, (o, i) in shapes.items())), (
        f"{answer:.2f}x prunes the biases too: they are never pruned, all of them stay")
    for size in (12, 24, 40, 60, 80):
        ratios = mp.prune.keep_ratios_for_compression(model, size, table2, exponent=0.5)
        expected = mp.prune.compression_of(model, ratios)
        got = compression(ratios, shapes)
        assert np.isclose(got, expected), (
            f"LeNet-300-100 at {size}x (keep ratios "
            + ", ".join(f"{name} {ratio:.4f}" for name, ratio in ratios.items())
            + f"): expected {expected:.3f}x, got {got!r}" + _rounding_hint(got, ratios, shapes))
    for ratio in (0.52, 0.42):  # 15 weights: 7.8 and 6.3 to keep
        small = {"fc.weight": (3, 5)}
        expected = _compression({"fc.weight": ratio}, small)
        got = compression({"fc.weight": ratio}, small)
        assert np.isclose(got, expected), (
            f"a 3 x 5 layer kept at {ratio} keeps round({ratio} x 15) = "
            f"{round(ratio * 15)} weights: expected {expected:.4f}x, got {got!r} -- round, "
            "do not cut the fraction off or round it up")
    print(f"Exercise 3: correct -- Table 2's ratios give {answer:.1f}x with the biases, "
          f"{weights / kept:.1f}x without")


def expected_lowest_gap(true_error: float, images: int, runs: int) -> float:
    """How far, on average, the lowest of ``runs`` independent error rates, each the mistakes
    of a network with error ``true_error`` counted on ``images`` images (binomial), falls below
    ``true_error``: exact, from the binomial distribution. P(min >= k) = P(X >= k)^runs."""
    counts = np.arange(images + 1)
    log_choose = np.array([math.lgamma(images + 1) - math.lgamma(k + 1)
                           - math.lgamma(images - k + 1) for k in counts])
    log_pmf = (log_choose + counts * math.log(true_error)
               + (images - counts) * math.log1p(-true_error))
    pmf = np.exp(log_pmf - log_pmf.max())
    pmf /= pmf.sum()
    at_least = np.cumsum(pmf[::-1])[::-1]  # P(X >= k), k = 0 .. images
    expected_lowest = np.sum(np.clip(at_least[1:], 0.0, 1.0) ** runs)  # sum of P(min >= k)
    return true_error - expected_lowest / images


def exercise_4(selection_optimism) -> None:
    """``selection_optimism(true_error, images, runs, rng)``: the expected amount (a fraction,
    like the error) by which the lowest of ``runs`` independent validation errors falls below
    ``true_error``; compared with the exact binomial value on several cases."""
    rng = np.random.default_rng(0)
    answer = selection_optimism(0.017, 5_000, 6, rng)
    unanswered(answer, "Exercise 4")
    answer = float(answer)
    expected = expected_lowest_gap(0.017, 5_000, 6)
    standard_error = math.sqrt(0.017 * 0.983 / 5_000)
    assert abs(answer) > 0.2 * expected, (
        f"{answer:.5f}: about nothing -- the average of six runs is unbiased, but the choice "
        "keeps the lowest of them")
    assert answer > 0, (
        f"{answer:.5f}: the lowest of the runs falls *below* the true error -- return how far "
        "below, a positive amount (and take the lowest, not the highest)")
    assert answer < 0.02, (
        f"{answer!r}: give the gap as a fraction of the images, like true_error (0.001 is a "
        "tenth of a point), not in points or in images")
    one = float(selection_optimism(0.017, 5_000, 1, np.random.default_rng(1)))
    assert abs(one) < 1.5e-4, (
        f"one run is no choice: its error is right on average, so the gap is 0; got {one:.5f}"
        + (" -- one standard error is the spread of a single run, not the lowest of several"
           if np.isclose(one, standard_error, rtol=0.05) else ""))
    cases = [(0.017, 5_000, 6), (0.017, 10_000, 6), (0.017, 5_000, 20), (0.05, 1_000, 2),
             (0.008, 5_000, 6)]
    for true_error, images, runs in cases:
        exact = expected_lowest_gap(true_error, images, runs)
        got = float(selection_optimism(true_error, images, runs, np.random.default_rng(runs)))
        assert abs(got - exact) <= max(1e-4, 0.08 * exact), (
            f"{runs} runs with a true error of {true_error:.2%}, each measured on {images:,} "
            f"images: the lowest is {exact:.5f} below on average, you gave {got:.5f}"
            + (" -- the gap grows with the number of runs" if runs == 20 else "")
            + (" -- more images, less spread, a smaller gap" if images == 10_000 else ""))
    print(f"Exercise 4: correct -- the best of six equally good runs looks {expected * 100:.2f} "
          f"point better than it is on 5,000 images (one run's standard error: "
          f"{standard_error * 100:.2f} point)")
