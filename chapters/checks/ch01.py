"""Checks for chapter 1, ``01_autograd_and_lenet.ipynb``: a backward by hand (tanh), LeNet-5's
parameters counted from its shapes, where LeNet-5 spends its arithmetic (checked against a run
of the model), and the cross-entropy loss built from Tensor ops.

Each ``exercise_N`` lets an untouched template's ``NotImplementedError`` through and raises
``AssertionError`` with a hint for a wrong answer (``tests/chapters/test_checks_ch01.py`` feeds
each one plausible wrong answers).
"""

from __future__ import annotations

import numpy as np

import minprune as mp
from checks import unanswered

__all__ = ["exercise_1", "exercise_2", "exercise_3", "exercise_4"]

LENET5_LAYERS = ("conv1", "conv2", "fc1", "fc2")
FC1_KEPT = 0.08  # the paper's Table 3: fc1 of LeNet-5 keeps 8% of its weights


def _fill_in(answers: dict, exercise: str, what: str) -> None:
    """NotImplementedError naming the entries of a template dict still left as None."""
    if not isinstance(answers, dict):
        raise AssertionError(f"{exercise}: give a dict from layer name to {what}, got "
                             f"{type(answers).__name__}")
    missing = [layer for layer in LENET5_LAYERS if answers.get(layer) is None]
    if missing:
        raise NotImplementedError(f"{exercise}: fill in {what} for {', '.join(missing)} in the "
                                  "exercise cell above, run it, then run this check again")


def _close(value, target, rtol=1e-9) -> bool:
    return bool(np.isclose(float(value), float(target), rtol=rtol, atol=0))


# Exercise 1 ------------------------------------------------------------------------------------

def exercise_1(tanh_class) -> None:
    """``tanh_class``: a ``mp.Function`` whose forward is tanh; its backward is the answer."""
    points = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    upstream = np.array([1.0, -2.0, 0.5, 3.0, 1.0])  # the gradient arriving from above
    x = mp.Tensor(points, requires_grad=True)
    out = tanh_class.apply(x)
    assert np.allclose(out.data, np.tanh(points)), (
        "Exercise 1: the forward no longer computes tanh; change only backward")
    (out * upstream).sum().backward()  # an untouched template raises its NotImplementedError
    got = x.grad
    assert got is not None, ("Exercise 1: backward returned None; it must return the gradient "
                             "with respect to x, an array shaped like x")
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == points.shape, (
        f"Exercise 1: backward returned shape {got.shape} for an input of shape {points.shape}; "
        "the gradient has the input's shape")
    out_values = np.tanh(points)
    derivative = 1.0 - out_values**2
    if np.allclose(got, upstream * derivative):
        mp.gradcheck(tanh_class.apply, np.random.default_rng(0).standard_normal((3, 4)))
        print("Exercise 1: correct (and Tanh passes the gradient check)")
        return
    wrong = {
        "you return tanh'(x) alone: multiply it by grad, the gradient arriving from above "
        "(the chain rule)": derivative,
        "you pass grad through unchanged: multiply it by the derivative of tanh": upstream,
        "you multiply grad by tanh(x) itself, not by its derivative": upstream * out_values,
        "the derivative of tanh squares tanh(x): you used tanh(x) to the first power":
            upstream * (1.0 - out_values),
        "you squared x, the input; the derivative is written with tanh(x), which the forward "
        "kept in self.out": upstream * (1.0 - points**2),
        "mind the brackets: grad multiplies the whole derivative, not only its first term":
            upstream - out_values**2,
        "the sign is wrong: tanh is increasing, so its derivative is positive":
            -upstream * derivative,
    }
    for hint, value in wrong.items():
        if np.allclose(got, value):
            raise AssertionError(f"Exercise 1: {hint}")
    raise AssertionError(
        f"Exercise 1: at x = {points} with upstream gradient {upstream} your backward returns "
        f"{np.round(got, 4)}; it should return grad times the derivative of tanh at x")


# Exercise 2 ------------------------------------------------------------------------------------

def _layer_counts(model) -> dict:
    counts = {}
    for name, parameter in model.named_parameters():
        layer = name.split(".")[0]
        counts[layer] = counts.get(layer, 0) + int(parameter.size)
    return counts


def exercise_2(by_hand: dict, model) -> None:
    """``by_hand``: ``{layer: weights + biases}`` for LeNet-5; ``model``: ``mp.models.lenet5()``."""
    _fill_in(by_hand, "Exercise 2", "a parameter count")
    counts = _layer_counts(model)
    weights = {layer: int(module.weight.size) for layer, module in
               ((name, getattr(model, name)) for name in LENET5_LAYERS)}
    for layer in LENET5_LAYERS:
        got, expected = by_hand[layer], counts[layer]
        if _close(got, expected):
            continue
        hint = f"Exercise 2: {layer}: you counted {got:,}, "
        if _close(got, weights[layer]):
            hint += "its weights only: add one bias per output (per filter for a convolution)"
        elif layer == "conv2" and _close(got, 50 * 5 * 5 + 50):
            hint += ("as if each filter saw one channel: a conv2 filter spans all 20 channels "
                     "that conv1 hands on")
        elif layer == "fc1":
            low = "too few" if got < expected else "too many"
            hint += (f"{low}: count the numbers that leave the second pooling layer -- follow "
                     "the side of a 28x28 image through conv (5x5, no padding: the filter fits "
                     "only where it fits whole), pool (2x2 halves it), conv, pool -- times "
                     "conv2's 50 channels, then outputs x inputs plus biases")
        else:
            hint += ("not the model's count: a layer holds outputs x inputs x kernel area "
                     "weights, plus one bias per output")
        raise AssertionError(hint)
    print(f"Exercise 2: correct ({sum(counts.values()):,} parameters in all)")


# Exercise 3 ------------------------------------------------------------------------------------

def lenet5_flop(model) -> dict:
    """FLOP per image of each LeNet-5 layer, from a forward pass (``mp.prune.layer_table``)."""
    images = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    rows = mp.prune.layer_table(model, (images, np.zeros(2, dtype=np.int64)))
    return {row["layer"]: int(row["flop"]) for row in rows if row["layer"] != "total"}


def exercise_3(flop: dict, busiest_layer, share_left, model) -> None:
    """``flop``: ``{layer: FLOP per image}``; ``busiest_layer``: the layer with the most;
    ``share_left``: the fraction of the dense arithmetic left when only fc1 keeps 8%."""
    _fill_in(flop, "Exercise 3", "a FLOP count")
    measured = lenet5_flop(model)
    shapes = {name: getattr(model, name) for name in LENET5_LAYERS}
    for layer in LENET5_LAYERS:
        got, expected = flop[layer], measured[layer]
        if _close(got, expected):
            continue
        module = shapes[layer]
        weights = int(module.weight.size)
        positions = expected // (2 * weights)  # output positions (1 for a fully connected layer)
        outputs = positions * module.weight.shape[0]
        hint = f"Exercise 3: {layer}: you counted {got:,} FLOP, "
        if _close(got, expected / 2):
            hint += ("the multiply-adds: the paper counts a multiply and an add as two FLOP "
                     "(2 x multiply-adds)")
        elif positions > 1 and (_close(got, 2 * weights) or _close(got, weights)):
            hint += ("as if each weight were used once: a convolution applies each of its "
                     "weights at every position of its output")
        elif _close(got, expected + outputs) or _close(got, expected + 2 * outputs):
            hint += "the bias adds included: the paper's tables leave them out"
        elif positions > 1 and got > expected:
            hint += ("too many: a 5x5 filter without padding visits only the positions where it "
                     "fits whole, so count the output's positions, not the input's")
        else:
            hint += (f"{got / expected:.2f} times what a run of the model counts: FLOP per image "
                     "are 2 x (weights x the positions each weight is used at)")
        raise AssertionError(hint)
    busiest = max(measured, key=measured.get)
    unanswered(busiest_layer, "Exercise 3 (busiest_layer)")
    if busiest_layer != busiest:
        raise AssertionError(
            f"Exercise 3: busiest_layer is {busiest_layer!r}, but your own flop counts say "
            "otherwise: the layer that stores the most is not the one that computes the most")
    unanswered(share_left, "Exercise 3 (share_left)")
    total = sum(measured.values())
    expected_share = (total - (1 - FC1_KEPT) * measured["fc1"]) / total
    share = float(share_left)
    if abs(share - expected_share) <= 0.005:
        print(f"Exercise 3: correct ({busiest} computes the most; fc1 at 8% leaves "
              f"{expected_share:.0%} of the arithmetic)")
        return
    parameters = _layer_counts(model)
    weight_share = 1 - (1 - FC1_KEPT) * parameters["fc1"] / sum(parameters.values())
    if share > 1:
        hint = "give a fraction between 0 and 1, not a percentage"
    elif abs(share - weight_share) <= 0.01:
        hint = ("that is the share of the *parameters* left; the question is about the "
                "arithmetic, so weigh each layer by its FLOP, not its weights")
    elif abs(share - FC1_KEPT) <= 0.005:
        hint = "8% is what is left of fc1 alone; the other layers keep all of their arithmetic"
    elif abs(share - (1 - expected_share)) <= 0.005:
        hint = "that is the share removed; give the share left"
    else:
        hint = ("use your flop counts: fc1's shrink to 8%, the other layers' stay whole, over "
                "the dense total")
    raise AssertionError(f"Exercise 3: share_left is {share:.3f}; {hint}")


# Exercise 4 ------------------------------------------------------------------------------------

def exercise_4(cross_entropy) -> None:
    """``cross_entropy(logits, labels)``: the batch mean of -log softmax(z)[label], a Tensor."""
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((6, 10))
    labels = np.array([3, 0, 9, 3, 7, 1])
    reference = mp.functional.cross_entropy(mp.Tensor(logits), labels).item()
    result = cross_entropy(mp.Tensor(logits), labels)  # a template raises NotImplementedError
    assert isinstance(result, mp.Tensor), (
        f"Exercise 4: your function returned a {type(result).__name__}; build the loss from "
        "Tensor ops on logits and return the Tensor, so that backward can run through it")
    assert result.size == 1, (
        f"Exercise 4: your loss has shape {result.shape}; it is one number, the mean over the "
        "batch of each row's loss")
    ours = result.item()
    if not np.isclose(ours, reference):
        rows = logits - logits.max(axis=1, keepdims=True)
        log_probs = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
        per_row = -log_probs[np.arange(len(labels)), labels]
        columns = logits - np.log(np.exp(logits).sum(axis=0, keepdims=True))
        if np.isclose(ours, per_row.sum()):
            hint = "you summed over the batch: the loss is the mean"
        elif np.isclose(ours, -reference):
            hint = "the sign is wrong: the loss is minus the log-probability of the label"
        elif np.isclose(ours, -logits[np.arange(len(labels)), labels].mean()):
            hint = ("you left out the normaliser: log softmax(z)_j is z_j minus the log of the "
                    "sum of exp over the row")
        elif np.isclose(ours, -columns[np.arange(len(labels)), labels].mean()):
            hint = "softmax normalises each row over its 10 classes (axis 1), not each column"
        elif np.isclose(ours, -log_probs[:, labels].mean()):
            hint = ("pick one entry per row -- the entry of that row's own label -- not every "
                    "label for every row")
        else:
            hint = "compare each step with the formula above on a single row"
        raise AssertionError(f"Exercise 4: your loss is {ours:.6f}, "
                             f"mp.functional.cross_entropy gives {reference:.6f}; {hint}")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        large = cross_entropy(mp.Tensor(1000.0 * logits), labels).item()
        expected_large = mp.functional.cross_entropy(mp.Tensor(1000.0 * logits), labels).item()
    assert np.isfinite(large) and np.isclose(large, expected_large), (
        f"Exercise 4: with logits a thousand times larger your loss is {large} (expected "
        f"{expected_large:.2f}): exp overflows; subtract each row's maximum first")
    tracked = cross_entropy(mp.Tensor(logits, requires_grad=True), labels)
    assert tracked.requires_grad, (
        "Exercise 4: the value is right but no gradient can flow back to the logits: the loss "
        "was computed on plain arrays and wrapped in a Tensor afterwards; use Tensor ops on "
        "logits (only the row maximum may come from logits.data)")
    try:
        mp.gradcheck(lambda z: cross_entropy(z, labels), logits)
    except AssertionError as error:
        raise AssertionError(
            f"Exercise 4: the value is right but the autograd gradient is not ({error}): every "
            "step that depends on the logits must be a Tensor op on logits (only the row "
            "maximum may come from logits.data)") from None
    print(f"Exercise 4: correct ({ours:.6f} = {reference:.6f}, and the gradient passes the check)")
