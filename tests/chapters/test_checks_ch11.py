"""Chapter 11's checks (chapters/checks/ch11.py) pass the reference answers and refuse plausible
wrong ones, each with a hint that names the mistake."""

import numpy as np
import pytest
from checks import ch11

# ---- Exercise 1: one round of iterative magnitude pruning ------------------------------------


def next_mask(weights, mask, rate):
    magnitudes = np.where(mask != 0, np.abs(weights), -np.inf).ravel()
    n_keep = round((1 - rate) * int(mask.sum()))
    keep = np.zeros(magnitudes.size, dtype=np.float32)
    keep[np.argsort(-magnitudes, kind="stable")[:n_keep]] = 1
    return keep.reshape(mask.shape)


def rate_of_all_weights(weights, mask, rate):
    magnitudes = np.abs(weights * mask).ravel()
    n_keep = round((1 - rate) * magnitudes.size)
    keep = np.zeros(magnitudes.size, dtype=np.float32)
    keep[np.argsort(-magnitudes, kind="stable")[:n_keep]] = 1
    return keep.reshape(mask.shape)


def revives_pruned(weights, mask, rate):
    keep = next_mask(weights, mask, rate)
    keep[mask == 0] = 1  # forgot that a pruned weight stays pruned
    return keep


def truncates(weights, mask, rate):
    magnitudes = np.where(mask != 0, np.abs(weights), -np.inf).ravel()
    n_keep = int((1 - rate) * int(mask.sum()))
    keep = np.zeros(magnitudes.size, dtype=np.float32)
    keep[np.argsort(-magnitudes, kind="stable")[:n_keep]] = 1
    return keep.reshape(mask.shape)


def largest_signed(weights, mask, rate):
    values = np.where(mask != 0, weights, -np.inf).ravel()
    n_keep = round((1 - rate) * int(mask.sum()))
    keep = np.zeros(values.size, dtype=np.float32)
    keep[np.argsort(-values, kind="stable")[:n_keep]] = 1
    return keep.reshape(mask.shape)


def keeps_the_rate(weights, mask, rate):
    return next_mask(weights, mask, 1 - rate)


def test_exercise_1_accepts_the_reference(capsys):
    ch11.exercise_1(next_mask)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (rate_of_all_weights, "of \\*all\\* the layer's weights"),
    (revives_pruned, "alive again"),
    (largest_signed, "largest magnitudes"),
    (keeps_the_rate, "keep round"),
    (truncates, "keep round"),
])
def test_exercise_1_refuses_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch11.exercise_1(wrong)


def test_exercise_1_template_asks_for_an_answer():
    with pytest.raises(NotImplementedError, match="Exercise 1"):
        ch11.exercise_1(lambda weights, mask, rate: None)


# ---- Exercise 2: the ladder of remaining weights ---------------------------------------------

SIZES = (784 * 300, 300 * 100, 100 * 10)


def remaining_after(rounds, rate_hidden, rate_output):
    fc1, fc2, fc3 = SIZES
    left = (fc1 + fc2) * (1 - rate_hidden) ** rounds + fc3 * (1 - rate_output) ** rounds
    return left / sum(SIZES)


def same_rate_everywhere(rounds, rate_hidden, rate_output):
    return (1 - rate_hidden) ** rounds


def subtracts(rounds, rate_hidden, rate_output):
    fc1, fc2, fc3 = SIZES
    left = (fc1 + fc2) * (1 - rate_hidden * rounds) + fc3 * (1 - rate_output * rounds)
    return max(left / sum(SIZES), 1e-6)


def counts_biases(rounds, rate_hidden, rate_output):
    fc1, fc2, fc3 = SIZES
    left = (fc1 + fc2) * (1 - rate_hidden) ** rounds + fc3 * (1 - rate_output) ** rounds + 410
    return left / (sum(SIZES) + 410)


def test_exercise_2_accepts_the_reference(capsys):
    ch11.exercise_2(remaining_after)
    assert "correct" in capsys.readouterr().out
    assert round(100 * remaining_after(3, 0.2, 0.1), 1) == 51.3  # Frankle & Carbin's Fig. 3
    assert round(100 * remaining_after(7, 0.2, 0.1), 1) == 21.1


@pytest.mark.parametrize("wrong, hint", [
    (same_rate_everywhere, "half the rate"),
    (subtracts, "the fractions multiply"),
    (counts_biases, "no biases"),
])
def test_exercise_2_refuses_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch11.exercise_2(wrong)


# ---- Exercise 3: early stopping on validation ------------------------------------------------


def early_stop(curve, test_errors):
    errors = [error for _, error in curve]
    best = errors.index(min(errors))
    return curve[best][0], test_errors[best]


def lowest_test(curve, test_errors):
    best = int(np.argmin(test_errors))
    return curve[best][0], test_errors[best]


def last_point(curve, test_errors):
    return curve[-1][0], test_errors[-1]


def last_of_ties(curve, test_errors):
    errors = [error for _, error in curve]
    best = len(errors) - 1 - errors[::-1].index(min(errors))
    return curve[best][0], test_errors[best]


def test_exercise_3_accepts_the_reference(capsys):
    ch11.exercise_3(early_stop)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lowest_test, "lowest \\*test\\* error"),
    (last_point, "last iteration"),
    (last_of_ties, "the first one"),
])
def test_exercise_3_refuses_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch11.exercise_3(wrong)
