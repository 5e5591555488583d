"""Chapter 10's checks (chapters/checks/ch10.py) pass the reference answers and refuse plausible
wrong ones, each with a hint that names the mistake."""

import numpy as np
import pytest
from checks import ch10

# ---- Exercise 1: Li et al.'s L1 ranking -------------------------------------------------------


def weakest_outputs(weight, mask, fraction):
    norms = np.abs(weight * mask).reshape(len(weight), -1).sum(axis=1)
    return np.sort(np.argsort(norms, kind="stable")[:int(round(fraction * len(weight)))])


def without_mask(weight, mask, fraction):
    return weakest_outputs(weight, np.ones_like(mask), fraction)


def l2_norm(weight, mask, fraction):
    norms = np.sqrt(((weight * mask) ** 2).reshape(len(weight), -1).sum(axis=1))
    return np.sort(np.argsort(norms, kind="stable")[:int(round(fraction * len(weight)))])


def strongest(weight, mask, fraction):
    norms = np.abs(weight * mask).reshape(len(weight), -1).sum(axis=1)
    return np.sort(np.argsort(-norms, kind="stable")[:int(round(fraction * len(weight)))])


def kept_count(weight, mask, fraction):  # removes the fraction to keep
    norms = np.abs(weight * mask).reshape(len(weight), -1).sum(axis=1)
    return np.sort(np.argsort(norms, kind="stable")[:int(round((1 - fraction) * len(weight)))])


def test_exercise_1_passes_the_reference(capsys):
    ch10.exercise_1(weakest_outputs)
    assert "Exercise 1: correct" in capsys.readouterr().out


def test_exercise_1_template_asks_for_an_answer():
    with pytest.raises(NotImplementedError):
        ch10.exercise_1(lambda weight, mask, fraction: None)


@pytest.mark.parametrize("wrong, hint", [
    (without_mask, "without their mask"),
    (l2_norm, "L2 norm"),
    (strongest, "strongest"),
    (kept_count, "round"),
])
def test_exercise_1_refuses_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch10.exercise_1(wrong)


# ---- Exercise 2: fc1's columns after Flatten ---------------------------------------------------


def fc1_columns(kept_channels, height, width):
    block = height * width
    return (np.asarray(kept_channels)[:, None] * block + np.arange(block)).ravel()


def one_column_per_channel(kept_channels, height, width):
    return np.asarray(kept_channels)


def channels_last(kept_channels, height, width):
    channels = {(4, 4): 50, (3, 3): 6, (2, 2): 20}[(height, width)]
    return (np.arange(height * width)[:, None] * channels + np.asarray(kept_channels)).ravel()


def off_by_one_block(kept_channels, height, width):
    block = height * width
    return (np.asarray(kept_channels)[:, None] * block + np.arange(1, block + 1)).ravel()


def descending(kept_channels, height, width):
    return fc1_columns(kept_channels, height, width)[::-1]


def test_exercise_2_passes_the_reference(capsys):
    ch10.exercise_2(fc1_columns)
    assert "Exercise 2: correct" in capsys.readouterr().out


def test_exercise_2_template_asks_for_an_answer():
    with pytest.raises(NotImplementedError):
        ch10.exercise_2(lambda kept, height, width: None)


@pytest.mark.parametrize("wrong, hint", [
    (one_column_per_channel, "height x width columns"),
    (channels_last, "channels-last"),
    (off_by_one_block, "expected columns"),
    (descending, "wrong order"),
])
def test_exercise_2_refuses_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch10.exercise_2(wrong)


# ---- Exercise 3: FLOP of a thinner LeNet-5 -----------------------------------------------------


def lenet5_flop(conv1, conv2, fc1):
    return 2 * (conv1 * 25 * 24 * 24 + conv2 * conv1 * 25 * 8 * 8 + fc1 * conv2 * 16 + 10 * fc1)


def multiply_adds(conv1, conv2, fc1):
    return lenet5_flop(conv1, conv2, fc1) // 2


def conv2_keeps_its_inputs(conv1, conv2, fc1):
    return 2 * (conv1 * 25 * 24 * 24 + conv2 * 20 * 25 * 8 * 8 + fc1 * conv2 * 16 + 10 * fc1)


def weights_only(conv1, conv2, fc1):
    return 2 * (conv1 * 25 + conv2 * conv1 * 25 + fc1 * conv2 * 16 + 10 * fc1)


def input_side(conv1, conv2, fc1):
    return 2 * (conv1 * 25 * 28 * 28 + conv2 * conv1 * 25 * 12 * 12 + fc1 * conv2 * 16
                + 10 * fc1)


def test_exercise_3_passes_the_reference(capsys):
    ch10.exercise_3(lenet5_flop)
    assert "Exercise 3: correct" in capsys.readouterr().out


def test_exercise_3_template_asks_for_an_answer():
    with pytest.raises(NotImplementedError):
        ch10.exercise_3(lambda conv1, conv2, fc1: None)


@pytest.mark.parametrize("wrong, hint", [
    (multiply_adds, "2 x multiply-adds"),
    (conv2_keeps_its_inputs, "20 input channels"),
    (weights_only, "output positions"),
    (input_side, "output positions"),
])
def test_exercise_3_refuses_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch10.exercise_3(wrong)
