"""Checks for chapter 10, "Structure: removing whole channels and neurons"
(``chapters/10_structure.ipynb``).

Exercise 1: Li et al.'s ranking -- the outputs of smallest L1 norm over the masked weight.
Exercise 2: the columns of LeNet-5's fc1 that read the kept channels of conv2 (Flatten's order).
Exercise 3: the FLOP of a LeNet-5 rebuilt with fewer channels (conv2 loses inputs too).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

import minprune as mp
from checks import unanswered
from minprune.prune import structured
from minprune.prune.structured_surgery import remove_outputs


def _layer(seed: int, shape, density: float):
    """A Linear or Conv2d with random weights and a random mask at ``density``; the pruned
    weights keep their values (as in dynamic network surgery), so only weight * mask counts."""
    mp.manual_seed(seed)
    layer = mp.nn.Conv2d(shape[1], shape[0], shape[2]) if len(shape) == 4 else mp.nn.Linear(
        shape[1], shape[0])
    rng = np.random.default_rng(seed)
    layer.weight_mask = (rng.random(shape) < density).astype(np.float32)  # pruned weights kept
    return layer


def exercise_1(weakest_outputs) -> None:
    """``weakest_outputs(weight, mask, fraction) -> indices``: the ``round(fraction x outputs)``
    outputs (axis 0) whose masked weights have the smallest L1 norm, ascending; compared with
    `minprune.prune.structured.weakest_channels`."""
    layer = _layer(0, (12, 30), 0.4)
    answer = weakest_outputs(np.array(layer.weight.data), np.array(layer.weight_mask), 0.25)
    unanswered(answer, "Exercise 1")
    for seed, shape, density, fraction in ((0, (12, 30), 0.4, 0.25), (1, (50, 20, 5, 5), 0.3, 0.5),
                                           (2, (300, 784), 0.1, 0.7), (3, (20, 1, 5, 5), 1.0, 0.1)):
        layer = _layer(seed, shape, density)
        weight, mask = np.array(layer.weight.data), np.array(layer.weight_mask)
        got = np.sort(np.asarray(weakest_outputs(weight, mask, fraction)).ravel())
        expected = structured.weakest_channels(layer, fraction)
        assert got.size == expected.size, (
            f"shape {shape}, fraction {fraction}: expected round({fraction} x {shape[0]}) = "
            f"{expected.size} outputs, got {got.size}. Outputs are the rows (axis 0): a "
            "Linear's neurons, a Conv2d's filters")
        if np.array_equal(got, expected):
            continue
        flat, masked = np.abs(weight).reshape(shape[0], -1), np.abs(weight * mask)
        if np.array_equal(got, np.sort(np.argsort(flat.sum(1), kind="stable")[:got.size])):
            raise AssertionError(f"shape {shape}: you ranked the weights without their mask; a "
                                 "pruned weight is not part of the filter any more (weight * "
                                 "mask)")
        l2 = np.sqrt((masked.reshape(shape[0], -1) ** 2).sum(1))
        if np.array_equal(got, np.sort(np.argsort(l2, kind="stable")[:got.size])):
            raise AssertionError(f"shape {shape}: that is the L2 norm; Li et al. sum the "
                                 "absolute weights, s_j = sum |K| (the L1 norm)")
        l1 = masked.reshape(shape[0], -1).sum(1)
        if np.array_equal(got, np.sort(np.argsort(-l1, kind="stable")[:got.size])):
            raise AssertionError(f"shape {shape}: those are the strongest outputs; remove the "
                                 "ones of *smallest* L1 norm")
        raise AssertionError(f"shape {shape}, fraction {fraction}: expected outputs "
                             f"{expected.tolist()[:10]}..., got {got.tolist()[:10]}...: sum "
                             "|weight * mask| over every axis but 0, and take the smallest")
    print("Exercise 1: correct")


def exercise_2(fc1_columns) -> None:
    """``fc1_columns(kept_channels, height, width) -> columns``: the input columns of the Linear
    after ``Flatten`` that read the kept channels of a (C, height, width) map, in order."""
    answer = fc1_columns(np.array([0, 2]), 4, 4)
    unanswered(answer, "Exercise 2")
    for channels, kept, side in ((50, [0, 2, 3, 49], 4), (6, [1, 5], 3), (20, [7], 2)):
        mp.manual_seed(0)
        model = mp.nn.Sequential(OrderedDict(
            conv=mp.nn.Conv2d(1, channels, 5), flatten=mp.nn.Flatten(),
            fc=mp.nn.Linear(channels * side * side, 3), out=mp.nn.Linear(3, 2)))
        columns_before = np.arange(channels * side * side).astype(np.float32)
        model.fc.weight.data[...] = columns_before  # each weight holds its column's index
        removed = np.setdiff1d(np.arange(channels), kept)
        remove_outputs(model, "conv", removed)
        expected = model.fc.weight.data[0].astype(np.int64)
        got = np.asarray(fc1_columns(np.array(kept), side, side)).ravel()
        assert got.size == expected.size, (
            f"{len(kept)} kept channels of {side}x{side} each feed {expected.size} columns; "
            f"got {got.size}. Each channel feeds height x width columns, not one")
        if not np.array_equal(got, expected):
            interleaved = (np.arange(side * side)[:, None] * channels + np.array(kept)).ravel()
            assert not np.array_equal(np.sort(got), np.sort(interleaved)), (
                "that is channels-last order (h, w, c); Flatten reads (c, h, w): channel c "
                "owns the block c*h*w .. (c+1)*h*w - 1")
            assert np.array_equal(np.sort(got), expected), (
                f"channels {kept} of a {channels}x{side}x{side} map: expected columns "
                f"{expected.tolist()[:12]}..., got {got.tolist()[:12]}...")
            raise AssertionError("the right columns in the wrong order: keep them ascending, "
                                 "as the kept channels are")
    print("Exercise 2: correct")


def exercise_3(lenet5_flop) -> None:
    """``lenet5_flop(conv1, conv2, fc1) -> flop``: 2 x multiply-adds for one 28x28 image of a
    dense LeNet-5 with those numbers of outputs (fc2 keeps its 10); checked against a model
    rebuilt by `minprune.prune.structured.channel_prune`."""
    answer = lenet5_flop(20, 50, 500)
    unanswered(answer, "Exercise 3")
    for keep in ((20, 50, 500), (10, 50, 500), (20, 25, 250), (6, 12, 40)):
        mp.manual_seed(0)
        model = mp.models.lenet5()
        structured.channel_prune(model, {name: count for name, count in zip(
            ("conv1", "conv2", "fc1"), (20 - keep[0], 50 - keep[1], 500 - keep[2]), strict=True)})
        expected = _flop(model)
        got = lenet5_flop(*keep)
        if got == expected:
            continue
        assert got != expected // 2, (
            f"{keep}: {got:,} is the multiply-adds; the paper counts FLOP as 2 x multiply-adds")
        conv2_full_inputs = expected + 2 * 8 * 8 * 25 * keep[1] * (20 - keep[0])
        assert got != conv2_full_inputs, (
            f"{keep}: conv2 still reads 20 input channels in your count; removing conv1's "
            "channels removes conv2's kernels on them too (Li et al. Sec. 3.1)")
        raise AssertionError(f"conv1={keep[0]}, conv2={keep[1]}, fc1={keep[2]}: expected "
                             f"{expected:,} FLOP, got {got:,}. A conv's multiply-adds are its "
                             "weights x its output positions (24x24 for conv1, 8x8 for conv2)")
    print("Exercise 3: correct")


def _flop(model) -> int:
    """2 x multiply-adds of ``model`` (a LeNet-5 of any widths) on one 28x28 image."""
    side, total = 28, 0
    for layer in model:
        if isinstance(layer, mp.nn.Conv2d):
            side = side - layer.kernel_size + 1
            total += layer.weight.data.size * side * side
        elif isinstance(layer, mp.nn.MaxPool2d):
            side //= 2
        elif isinstance(layer, mp.nn.Linear):
            total += layer.weight.data.size
    return 2 * total
