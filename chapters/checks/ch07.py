"""Checks for chapter 7, "Toward AlexNet" (``chapters/07_toward_alexnet.ipynb``).

Exercise 1: the weights of a grouped convolution. Exercise 2: Table 1's parameter counts before
and after pruning. Exercise 3: one more cut -- which layer, halved, removes the most parameters
and which the most FLOP. Exercise 4: the hours of one ImageNet epoch.
"""

from __future__ import annotations

import numpy as np

import minprune as mp
from checks import unanswered

# AlexNet's convolutions as (in_channels, out_channels, kernel_size, groups) and Table 4's
# weights (the paper rounds them: 35K, 307K, 885K, 663K, 442K).
ALEXNET_CONVS = {"conv1": ((3, 96, 11, 1), 34_848), "conv2": ((96, 256, 5, 2), 307_200),
                 "conv3": ((256, 384, 3, 1), 884_736), "conv4": ((384, 384, 3, 2), 663_552),
                 "conv5": ((384, 256, 3, 2), 442_368)}
ILSVRC_TRAINING_IMAGES = 1_281_167


def exercise_1(grouped_conv_weights) -> None:
    """``grouped_conv_weights(in_channels, out_channels, kernel_size, groups)``: the weights of
    a square-kernel convolution split into ``groups``, biases left out."""
    answer = grouped_conv_weights(96, 256, 5, 2)
    unanswered(answer, "Exercise 1")
    assert answer != 614_400, "with groups=2 each filter sees only half of the 96 channels"
    assert answer != 153_600, ("only the input channels a filter sees are divided by groups: "
                               "there are still 256 filters, each seeing 96 / 2 = 48 channels")
    assert answer != 307_456, "weights only: the 256 biases are not weights"
    assert answer != 61_440, "the kernel is square: kernel_size x kernel_size weights per channel"
    assert answer == 307_200, (
        f"conv2 (96 -> 256, 5 x 5, groups 2): expected 307,200, got {answer!r}")
    for name, (shape, expected) in ALEXNET_CONVS.items():
        got = grouped_conv_weights(*shape)
        assert got == expected, (
            f"AlexNet's {name} (in={shape[0]}, out={shape[1]}, kernel={shape[2]}, "
            f"groups={shape[3]}): expected {expected:,}, got {got!r}")
    for shape in ((6, 9, 3, 3), (8, 8, 1, 8), (4, 12, 5, 1), (12, 4, 3, 4)):
        layer = mp.nn.Conv2d(shape[0], shape[1], kernel_size=shape[2], groups=shape[3])
        got = grouped_conv_weights(*shape)
        assert got == layer.weight.data.size, (
            f"Conv2d(in={shape[0]}, out={shape[1]}, kernel={shape[2]}, groups={shape[3]}) has a "
            f"weight of shape {layer.weight.shape}: expected {layer.weight.data.size}, got {got!r}")
    print("Exercise 1: correct")


def exercise_2(parameters_before_after, model) -> None:
    """``parameters_before_after(model)``: Table 1's ``(before, after)`` parameter counts of a
    pruned model, compared with `minprune.prune.summary_row`."""
    answer = parameters_before_after(model)
    unanswered(answer, "Exercise 2")
    assert isinstance(answer, (tuple, list)) and len(answer) == 2, (
        f"return the pair (before, after), got {answer!r}")
    before, after = answer
    expected = mp.prune.summary_row(0.0, 0.0, model)
    layers = mp.prune.layers_by_weight_name(model).values()
    weights = sum(layer.weight.data.size for layer in layers)
    biases = sum(layer.bias.data.size for layer in layers if layer.bias is not None)
    kept = sum(int(np.count_nonzero(layer.weight_mask)) for layer in layers)
    if biases:
        assert before != weights, (
            f"before counts the biases too: Table 1 counts all {expected['parameters_before']:,} "
            "parameters")
    assert before == expected["parameters_before"], (
        f"before: every parameter of the model, {expected['parameters_before']:,}; got {before!r}")
    assert after != before, "after counts the parameters the pruned model keeps, not all of them"
    if biases:
        assert after != kept, f"after keeps every bias too: {biases:,} of them, all unpruned"
    assert after != weights - kept + biases and after != weights - kept, (
        "after counts what is kept, not what was pruned")
    assert after == expected["parameters_after"], (
        f"after: the kept weights (where weight_mask is 1) plus every bias, "
        f"{expected['parameters_after']:,}; got {after!r}")
    print(f"Exercise 2: correct -- {before:,} -> {after:,} parameters, {before / after:.2f}x")


def _layer_name(answer) -> str:
    return str(answer).removesuffix(".weight")


def _cut_savings(table) -> tuple[dict, dict, float, float]:
    """Per layer: the weights and the FLOP that halving its kept weights removes (every input
    non-zero), with the network's total FLOP and the FLOP it keeps now."""
    rows = [row for row in table if row["layer"] != "total"]
    weights = {row["layer"]: row["weights"] * row["weights_kept"] / 2 for row in rows}
    flop = {row["layer"]: row["flop"] * row["weights_kept"] / 2 for row in rows}
    total = sum(row["flop"] for row in rows)
    kept = sum(row["flop"] * row["weights_kept"] for row in rows)
    return weights, flop, total, kept


def exercise_3(most_parameters, most_flop, flop_kept_after, table) -> None:
    """One more cut. ``most_parameters`` and ``most_flop``: the layer whose kept weights,
    halved, remove the most parameters and the most FLOP (every input non-zero);
    ``flop_kept_after``: the fraction of the network's FLOP kept after halving ``most_flop``.
    ``table`` is the chapter's `minprune.prune.layer_table` of the pruned AlexNet."""
    for value in (most_parameters, most_flop, flop_kept_after):
        unanswered(value, "Exercise 3")
    saved_weights, saved_flop, total_flop, kept_flop = _cut_savings(table)
    names = sorted(saved_weights)
    for answer in (most_parameters, most_flop):
        assert _layer_name(answer) in saved_weights, (
            f"{answer!r} is not a layer of the table: give one of {names}")
    best_weights = max(saved_weights, key=saved_weights.get)
    best_flop = max(saved_flop, key=saved_flop.get)
    largest_dense = max(saved_flop, key=lambda name: next(
        row["flop"] for row in table if row["layer"] == name))

    mine = _layer_name(most_parameters)
    assert mine == best_weights, (
        f"halving {mine} removes {saved_weights[mine] / 1e6:.2f}M weights; another layer "
        "removes more: count what each layer keeps, not what it had")
    mine = _layer_name(most_flop)
    if mine == best_weights and mine != best_flop:
        raise AssertionError(
            f"{mine} holds the most weights, but each of them is used once per image: it does "
            f"{saved_flop[mine] / 1e6:.1f}M of the kept FLOP that a cut would remove; a "
            "convolution uses each weight at every output position")
    if mine == largest_dense and mine != best_flop:
        raise AssertionError(
            f"{mine} does the most FLOP dense, but a cut halves what a layer *keeps*: compare "
            "the layers' FLOP times their Weights%")
    assert mine == best_flop, (
        f"halving {mine} removes {saved_flop[mine] / 1e6:.1f}M FLOP; another layer removes more")

    value = float(flop_kept_after)
    assert 0 <= value <= 1, (
        f"flop_kept_after is a fraction of the network's FLOP (0.5 for half), got {value!r}")
    now = kept_flop / total_flop
    assert not np.isclose(value, now, atol=5e-4), (
        f"{value:.3f} is what the network keeps before the cut: subtract what halving "
        f"{best_flop} removes")
    expected = (kept_flop - saved_flop[best_flop]) / total_flop
    for other in saved_flop:
        if other != best_flop:
            assert not np.isclose(value, (kept_flop - saved_flop[other]) / total_flop,
                                  atol=2e-4), (
                f"{value:.3f} is what halving {other} would leave; the cut is to {best_flop}")
    assert not np.isclose(value, (kept_flop - saved_flop[best_flop]) / kept_flop, atol=5e-4), (
        "a fraction of the dense network's FLOP (all of Table 4's FLOP column), not of what "
        "the pruned one keeps")
    assert abs(value - expected) < 1e-3, (
        f"flop_kept_after: {value:.4f} is off; the network keeps {now:.3f} of its FLOP now -- "
        f"take away what halving {best_flop}'s kept weights removes, over the total FLOP")
    print(f"Exercise 3: correct -- {best_weights} for the parameters, {best_flop} for the FLOP "
          f"(then {expected:.1%} of the FLOP kept)")


def exercise_4(epoch_hours) -> None:
    """``epoch_hours(step_seconds, batch_size, images=1_281_167)``: the hours of one pass over
    the images at ``step_seconds`` per step of ``batch_size`` images."""
    answer = epoch_hours(1.0, 256)
    unanswered(answer, "Exercise 4")
    images = ILSVRC_TRAINING_IMAGES
    assert not np.isclose(answer, images / 3600, rtol=1e-3), (
        "one step trains a whole batch: an epoch has far fewer steps than images")
    assert not np.isclose(answer, images / 256, rtol=1e-3), "seconds to hours: an hour is 3,600 s"
    assert not np.isclose(answer, images / 256 / 60, rtol=1e-3), (
        "that is minutes: an hour is 3,600 s")
    cases = [  # (step seconds, batch size, images, expected hours)
        (1.0, 256, images, 5005 / 3600),
        (0.5, 2, 7200, 0.5),
        (3.6, 3, 10, 4 * 3.6 / 3600),
        (7.2, 4, 9, 3 * 7.2 / 3600),
    ]
    for step_seconds, batch_size, count, expected in cases:
        got = epoch_hours(step_seconds, batch_size, images=count)
        where = (f"{count:,} images at batch {batch_size}, {step_seconds} s a step: expected "
                 f"{expected:.6g} h, got {got!r}")
        steps = got * 3600 / step_seconds
        if not np.isclose(got, expected, rtol=1e-9):
            if np.isclose(steps, count // batch_size, rtol=1e-9):
                raise AssertionError(f"{where} -- the last, partial batch is a step too")
            if np.isclose(steps, count / batch_size, rtol=1e-9):
                raise AssertionError(f"{where} -- a step trains a whole batch or the last, "
                                     "partial one: count whole steps")
            if np.isclose(steps, count // batch_size + 1, rtol=1e-9):
                raise AssertionError(f"{where} -- when the batch size divides the images there "
                                     "is no partial batch")
            raise AssertionError(where)
    print(f"Exercise 4: correct -- an epoch at batch 256 is 5,005 steps, {answer:.2f} h at 1 s "
          "a step")
