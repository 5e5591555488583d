"""Checks for chapter 11, "Winning tickets: the paper's co-adaptation claim, revisited"
(``chapters/11_tickets.ipynb``).

Exercise 1: one round of iterative magnitude pruning, a fraction of the *survivors* (Frankle &
Carbin 2019, Sec. 2). Exercise 2: the weights left after n such rounds of LeNet-300-100, their
Fig. 3 ladder. Exercise 3: the early-stopping point, decided on validation, the test error read
there (their Figs. 3-4).
"""

from __future__ import annotations

import numpy as np

import minprune.base.random as minprune_random
from checks import unanswered
from minprune.nn import Linear
from minprune.prune import set_mask, tickets

LENET_SIZES = {"fc1.weight": 784 * 300, "fc2.weight": 300 * 100, "fc3.weight": 100 * 10}


def _layer(seed: int, shape=(12, 30), density: float = 0.6):
    """A Linear layer with distinct random weights, part of them pruned already."""
    rng = np.random.default_rng(seed)
    state = minprune_random.get_rng_state()  # the chapter's own draws stay as they were
    layer = Linear(shape[1], shape[0])
    minprune_random.set_rng_state(state)
    layer.weight.data[...] = rng.standard_normal(shape).astype(np.float32)
    set_mask(layer, (rng.random(shape) < density).astype(np.float32))
    return layer


class _One:
    """A model of one layer, for `tickets.prune_survivors`."""

    def __init__(self, layer):
        self.layer = layer

    def named_modules(self):
        return [("fc", self.layer)]


def exercise_1(next_mask) -> None:
    """``next_mask(weights, mask, rate) -> mask``: prune the fraction ``rate`` of the surviving
    weights (``mask == 1``), smallest ``|w|`` first; compared with `tickets.prune_survivors`."""
    layer = _layer(0)
    answer = next_mask(layer.weight.data.copy(), layer.weight_mask.copy(), 0.2)
    unanswered(answer, "Exercise 1")
    answer = np.asarray(answer)
    mask = layer.weight_mask.copy()
    assert answer.shape == mask.shape, (
        f"the new mask has the weight's shape {mask.shape}; got {answer.shape}")
    assert np.all((answer == 0) | (answer == 1)), "a mask holds only 0 and 1"
    survivors, kept = int(mask.sum()), int(answer.sum())
    expected_kept = round(0.8 * survivors)
    assert kept != round(mask.size - 0.2 * mask.size), (
        "you pruned 20% of *all* the layer's weights; a round prunes 20% of the survivors")
    assert not np.any(answer[mask == 0]), (
        "a weight pruned before is alive again: the new mask keeps pruned weights pruned "
        "(multiply by the old mask)")
    assert kept == expected_kept, (
        f"{survivors} survivors, rate 0.2: keep round(0.8 x {survivors}) = {expected_kept}, "
        f"you kept {kept}. Rank only the survivors' magnitudes (pruned weights are not "
        "candidates)")
    for seed, rate, density in ((1, 0.2, 1.0), (2, 0.1, 0.5), (3, 0.5, 0.3)):
        layer = _layer(seed, density=density)
        got = np.asarray(next_mask(layer.weight.data.copy(), layer.weight_mask.copy(), rate))
        survivors = int(layer.weight_mask.sum())
        tickets.prune_survivors(_One(layer), rate)
        assert int(got.sum()) == int(layer.weight_mask.sum()), (
            f"{survivors} survivors, rate {rate}: keep round({1 - rate:g} x {survivors}) = "
            f"{int(layer.weight_mask.sum())}, you kept {int(got.sum())} (round, do not "
            "truncate)")
        assert np.array_equal(got, layer.weight_mask), (
            f"rate {rate}, {density:.0%} of the layer left before the round: your mask differs "
            f"from the survivors with the largest |w| in {int((got != layer.weight_mask).sum())}"
            " places. Keep the largest magnitudes |w|, not the largest w")
    print("Exercise 1: correct")


def exercise_2(remaining_after) -> None:
    """``remaining_after(rounds, rate_hidden, rate_output) -> fraction``: of LeNet-300-100's
    weights (biases not counted) left after ``rounds`` rounds; compared with
    `tickets.remaining`."""
    answer = remaining_after(3, 0.2, 0.1)
    unanswered(answer, "Exercise 2")
    answer = float(answer)
    assert 0 < answer <= 1, f"a fraction of the weights, in (0, 1]; got {answer}"
    assert abs(answer - 0.8 ** 3) > 1e-4, (
        "that is 0.8 ** 3: every layer at the hidden rate. The output layer (fc3) is pruned "
        "at half the rate")
    assert abs(answer - (1 - 3 * 0.2)) > 0.01, (
        "each round prunes 20% of what is left, not of the original: the fractions multiply")
    for rounds, hidden, output in ((3, 0.2, 0.1), (7, 0.2, 0.1), (12, 0.2, 0.1), (18, 0.2, 0.1),
                                   (6, 0.5, 0.25), (0, 0.2, 0.1)):
        expected = tickets.remaining(LENET_SIZES, {"fc3.weight": output, "*": hidden},
                                     rounds)[rounds]
        got = float(remaining_after(rounds, hidden, output))
        assert abs(got - expected) < 1e-6, (
            f"{rounds} rounds at {hidden:.0%} (fc1, fc2) and {output:.0%} (fc3): expected "
            f"{expected:.4%} of the weights, got {got:.4%}. Count each layer's weights "
            "(784 x 300, 300 x 100, 100 x 10), no biases")
    print("Exercise 2: correct")


def exercise_3(early_stop) -> None:
    """``early_stop(curve, test_errors) -> (iteration, test_error)``: the first iteration of
    lowest validation error in ``curve`` (``[(iteration, validation_error), ...]``) and the test
    error measured there (``test_errors[i]`` belongs to ``curve[i]``)."""
    curve = [(100, 0.050), (200, 0.031), (300, 0.024), (400, 0.026), (500, 0.024),
             (600, 0.025)]
    test_errors = [0.052, 0.030, 0.027, 0.021, 0.025, 0.023]
    answer = early_stop(curve, test_errors)
    unanswered(answer, "Exercise 3")
    iteration, test_error = answer
    assert (iteration, test_error) != (400, 0.021), (
        "you chose the lowest *test* error: that reads the test set to decide. Decide on "
        "validation, then read the test error there")
    assert iteration != 600, "the last iteration is not the early-stopping one"
    assert iteration != 500, (
        "iterations 300 and 500 tie on validation: the first one is the early-stopping "
        "iteration (training past it gains nothing)")
    assert (int(iteration), float(test_error)) == (300, 0.027), (
        f"expected (300, 0.027), got {answer!r}")
    rng = np.random.default_rng(0)
    for _ in range(5):
        errors = rng.integers(10, 40, 20) / 1000
        tests = rng.integers(10, 40, 20) / 1000
        points = [(100 * (i + 1), float(e)) for i, e in enumerate(errors)]
        first = int(np.argmin(errors))
        got = early_stop(points, list(tests))
        assert (int(got[0]), float(got[1])) == (100 * (first + 1), float(tests[first])), (
            f"on a random curve: expected {(100 * (first + 1), float(tests[first]))}, got {got}")
    print("Exercise 3: correct")
