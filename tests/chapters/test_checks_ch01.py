"""Chapter 1's checks (chapters/checks/ch01.py) pass the solutions and refuse plausible wrong
answers with a hint that names the mistake."""

import numpy as np
import pytest
from checks import ch01

import minprune as mp

# Exercise 1: the backward of tanh -------------------------------------------------------------

def _tanh(backward):
    class Tanh(mp.Function):
        def forward(self, x):
            self.out = np.tanh(x)
            return self.out

    Tanh.backward = backward
    return Tanh


def _right_backward(self, grad):
    return grad * (1.0 - self.out**2)


def test_exercise_1_passes_the_solution(capsys):
    ch01.exercise_1(_tanh(_right_backward))
    assert "Exercise 1: correct" in capsys.readouterr().out


def test_exercise_1_template_says_what_to_do():
    def template(self, grad):
        raise NotImplementedError("Exercise 1: return grad times the derivative of tanh")

    with pytest.raises(NotImplementedError, match="Exercise 1"):
        ch01.exercise_1(_tanh(template))


@pytest.mark.parametrize(("backward", "mistake"), [
    (lambda self, grad: 1.0 - self.out**2, "multiply it by grad"),
    (lambda self, grad: grad * (1.0 - self.out), "squares"),
    (lambda self, grad: grad * self.out, "not by its derivative"),
    (lambda self, grad: grad * 1.0 - self.out**2, "brackets"),
    (lambda self, grad: grad, "unchanged"),
    (lambda self, grad: None, "returned None"),
    (lambda self, grad: grad * (self.out**2 - 1.0), "sign"),
    (lambda self, grad: grad * (1.0 - self.out**2) * 0.5, "should return"),
])
def test_exercise_1_rejects_wrong_backwards(fails_with_hint, backward, mistake):
    hint = fails_with_hint(ch01.exercise_1, _tanh(backward))
    assert mistake in hint


def test_exercise_1_rejects_a_backward_that_squares_the_input(fails_with_hint):
    class SquaresX(mp.Function):
        def forward(self, x):
            self.x, self.out = x, np.tanh(x)
            return self.out

        def backward(self, grad):
            return grad * (1.0 - self.x**2)

    assert "squared x" in fails_with_hint(ch01.exercise_1, SquaresX)


# Exercise 2: LeNet-5's parameters by hand ------------------------------------------------------

RIGHT_COUNTS = {"conv1": 520, "conv2": 25_050, "fc1": 400_500, "fc2": 5_010}


@pytest.fixture(scope="module")
def lenet5():
    return mp.models.lenet5()


def test_exercise_2_passes_the_solution(lenet5, capsys):
    ch01.exercise_2(dict(RIGHT_COUNTS), lenet5)
    assert "431,080" in capsys.readouterr().out


def test_exercise_2_template_names_what_is_missing(lenet5):
    with pytest.raises(NotImplementedError, match="conv1, conv2, fc1, fc2"):
        ch01.exercise_2({"conv1": None, "conv2": None, "fc1": None, "fc2": None}, lenet5)
    with pytest.raises(NotImplementedError, match="fc2"):
        ch01.exercise_2({**RIGHT_COUNTS, "fc2": None}, lenet5)


@pytest.mark.parametrize(("wrong", "mistake"), [
    ({"conv1": 500}, "bias"),                          # weights only
    ({"fc1": 400_000}, "bias"),
    ({"conv2": 50 * 5 * 5 + 50}, "20 channels"),        # a filter seeing one channel
    ({"fc1": 50 * 20 * 20 * 500 + 500}, "too few"),     # no pooling at all: 20x20 -> too many
    ({"fc1": 50 * 7 * 7 * 500 + 500}, "pooling"),       # padded ("same") convolutions
    ({"fc1": 50 * 8 * 8 * 500 + 500}, "pooling"),       # the second pooling forgotten
    ({"fc2": 500 * 10}, "bias"),
    ({"conv1": 20 * 5 * 5 * 2}, "kernel area"),
])
def test_exercise_2_rejects_wrong_counts(lenet5, fails_with_hint, wrong, mistake):
    hint = fails_with_hint(ch01.exercise_2, {**RIGHT_COUNTS, **wrong}, lenet5)
    if mistake == "too few":
        mistake = "too many"
    assert mistake in hint


# Exercise 3: where LeNet-5 does its arithmetic -------------------------------------------------

RIGHT_FLOP = {"conv1": 576_000, "conv2": 3_200_000, "fc1": 800_000, "fc2": 10_000}
RIGHT_SHARE = (4_586_000 - 0.92 * 800_000) / 4_586_000


def test_exercise_3_passes_the_solution(lenet5, capsys):
    ch01.exercise_3(dict(RIGHT_FLOP), "conv2", RIGHT_SHARE, lenet5)
    assert "Exercise 3: correct" in capsys.readouterr().out


def test_exercise_3_template_says_what_to_do(lenet5):
    with pytest.raises(NotImplementedError, match="Exercise 3"):
        ch01.exercise_3(dict.fromkeys(RIGHT_FLOP), None, None, lenet5)
    with pytest.raises(NotImplementedError, match="busiest_layer"):
        ch01.exercise_3(dict(RIGHT_FLOP), None, None, lenet5)
    with pytest.raises(NotImplementedError, match="share_left"):
        ch01.exercise_3(dict(RIGHT_FLOP), "conv2", None, lenet5)


@pytest.mark.parametrize(("wrong", "mistake"), [
    ({"conv2": 1_600_000}, "multiply-adds"),            # MACs, not FLOP
    ({"conv1": 2 * 500}, "every position"),             # each weight used once
    ({"conv2": 25_000}, "every position"),
    ({"conv1": 2 * 500 * 28 * 28}, "fits whole"),       # the input's positions
    ({"conv1": 576_000 + 20 * 24 * 24}, "bias"),        # bias adds counted
    ({"fc1": 400_000}, "multiply-adds"),
    ({"fc1": 2 * 400_500}, "bias"),                    # biases as weights
    ({"fc2": 30_000}, "times what a run"),
])
def test_exercise_3_rejects_wrong_counts(lenet5, fails_with_hint, wrong, mistake):
    hint = fails_with_hint(ch01.exercise_3, {**RIGHT_FLOP, **wrong}, "conv2", RIGHT_SHARE, lenet5)
    assert mistake in hint


@pytest.mark.parametrize(("busiest", "share", "mistake"), [
    ("fc1", RIGHT_SHARE, "stores the most"),            # parameters, not arithmetic
    ("conv2", 1 - 0.92 * 400_500 / 431_080, "parameters"),  # the weights' share left
    ("conv2", 0.08, "fc1 alone"),
    ("conv2", 1 - RIGHT_SHARE, "removed"),
    ("conv2", 100 * RIGHT_SHARE, "percentage"),
    ("conv2", 0.5, "flop counts"),
])
def test_exercise_3_rejects_wrong_predictions(lenet5, fails_with_hint, busiest, share, mistake):
    hint = fails_with_hint(ch01.exercise_3, dict(RIGHT_FLOP), busiest, share, lenet5)
    assert mistake in hint


# Exercise 4: cross-entropy from Tensor ops -----------------------------------------------------

def right_cross_entropy(logits, labels):
    shifted = logits - logits.data.max(axis=1, keepdims=True)
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    return -log_probs[np.arange(len(labels)), labels].mean()


def test_exercise_4_passes_the_solution(capsys):
    ch01.exercise_4(right_cross_entropy)
    assert "Exercise 4: correct" in capsys.readouterr().out


def test_exercise_4_template_says_what_to_do():
    def template(logits, labels):
        raise NotImplementedError("Exercise 4: write the loss from Tensor ops")

    with pytest.raises(NotImplementedError, match="Exercise 4"):
        ch01.exercise_4(template)


def _summed(logits, labels):
    shifted = logits - logits.data.max(axis=1, keepdims=True)
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    return -log_probs[np.arange(len(labels)), labels].sum()


def _unshifted(logits, labels):
    log_probs = logits - logits.exp().sum(axis=1, keepdims=True).log()
    return -log_probs[np.arange(len(labels)), labels].mean()


def _no_normaliser(logits, labels):
    return -logits[np.arange(len(labels)), labels].mean()


def _positive(logits, labels):
    return -right_cross_entropy(logits, labels)


def _over_columns(logits, labels):
    log_probs = logits - logits.exp().sum(axis=0, keepdims=True).log()
    return -log_probs[np.arange(len(labels)), labels].mean()


def _every_label(logits, labels):
    shifted = logits - logits.data.max(axis=1, keepdims=True)
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    return -log_probs[:, labels].mean()


def _numpy_only(logits, labels):
    z = logits.data - logits.data.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean()


def _detached(logits, labels):
    return mp.Tensor(_numpy_only(logits, labels))


def _per_row(logits, labels):
    shifted = logits - logits.data.max(axis=1, keepdims=True)
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    return -log_probs[np.arange(len(labels)), labels]


@pytest.mark.parametrize(("wrong", "mistake"), [
    (_summed, "mean"),
    (_unshifted, "maximum"),
    (_no_normaliser, "normaliser"),
    (_positive, "sign"),
    (_over_columns, "each row"),
    (_every_label, "one entry per row"),
    (_numpy_only, "Tensor ops"),
    (_detached, "gradient"),
    (_per_row, "one number"),
])
def test_exercise_4_rejects_wrong_losses(fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch01.exercise_4, wrong)
