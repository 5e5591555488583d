"""Conv2d's two CPU layouts (`minprune.autograd.ops.conv`): one GEMM for the batch, or one per image
(`minprune.autograd.fast.conv2d_per_image`, chosen by the fast backend for layers with many
output positions and few taps) give the same outputs and gradients, and each shape takes the
layout the rule says; a grouped convolution is its groups convolved apart."""

import numpy as np
import pytest

import minprune.autograd.functional as F
from minprune.autograd import fast, plain
from minprune.autograd.tensor import Tensor
from minprune.base.settings import use_backend

CASES = [
    # x shape, weight shape, stride, padding: LeNet-5's conv1 and conv2 at batch 2, and padded ones
    ((2, 1, 28, 28), (20, 1, 5, 5), 1, 0),
    ((2, 20, 12, 12), (50, 20, 5, 5), 1, 0),
    ((2, 3, 9, 8), (4, 3, 3, 3), 2, 1),
    ((1, 4, 7, 7), (5, 4, 5, 5), 1, 2),
]


def _forward_backward(x, weight, bias, stride, padding):
    tensors = [Tensor(a, requires_grad=True) for a in (x, weight, bias)]
    with use_backend("fast"):  # the layouts are the fast backend's
        out = F.conv2d(*tensors, stride=stride, padding=padding)
    grad_out = np.random.default_rng(5).standard_normal(out.shape).astype(np.float32)
    (out * Tensor(grad_out)).sum().backward()
    return out.data, *(t.grad for t in tensors)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_per_image_and_batch_layouts_agree(monkeypatch, x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(np.float32)
    weight = rng.standard_normal(w_shape).astype(np.float32)
    bias = rng.standard_normal(w_shape[0]).astype(np.float32)
    results = {}
    for per_image in (True, False):
        monkeypatch.setattr(fast, "per_image_layout", lambda *args, choice=per_image: choice)
        results[per_image] = _forward_backward(x, weight, bias, stride, padding)
    for name, a, b in zip(("out", "grad x", "grad weight", "grad bias"), *results.values(),
                          strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)


def test_the_rule_picks_per_image_for_lenet5_conv1_only():
    # (positions per image, taps per filter): conv1 576 >= 25; conv2 64 < 500; grouped: never
    assert fast.per_image_layout(24 * 24, 25, groups=1)
    assert not fast.per_image_layout(8 * 8, 500, groups=1)
    assert not fast.per_image_layout(27 * 27, 48 * 25, groups=2)
    assert not plain.per_image_layout(24 * 24, 25, groups=1)  # plain: one GEMM for the batch


# -- found by mutation testing ------------------------------------------------------------------


def test_the_rule_takes_per_image_from_exactly_the_threshold():
    from minprune.base.tuning import PER_IMAGE_MIN_POSITIONS_PER_TAP

    at_threshold = PER_IMAGE_MIN_POSITIONS_PER_TAP * 25
    assert fast.per_image_layout(at_threshold, 25, groups=1)
    assert not fast.per_image_layout(at_threshold - 1, 25, groups=1)


@pytest.mark.parametrize("backend_name", ["fast", "plain"])
def test_a_grouped_conv_and_its_gradients_are_its_groups_convolved_apart(backend_name):
    """AlexNet's two-GPU halves: with groups=2, filters 0-2 see channels 0-1 and filters 3-5
    channels 2-3, in the output and in every gradient (one GEMM per group, Conv2d's docstring)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    weight = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    projection = rng.standard_normal((2, 6, 5, 5)).astype(np.float32)
    grouped, apart = [[Tensor(a, requires_grad=True) for a in (x, weight, bias)] for _ in "ab"]
    with use_backend(backend_name):
        out = F.conv2d(*grouped, padding=1, groups=2)
        (out * Tensor(projection)).sum().backward()
        for g in range(2):
            filters, channels = slice(3 * g, 3 * g + 3), slice(2 * g, 2 * g + 2)
            x_g, w_g, b_g = apart[0][:, channels], apart[1][filters], apart[2][filters]
            out_g = F.conv2d(x_g, w_g, b_g, padding=1)
            np.testing.assert_allclose(out.data[:, filters], out_g.data, rtol=1e-5, atol=1e-5)
            (out_g * Tensor(projection[:, filters])).sum().backward()
    for name, got, want in zip(("x", "weight", "bias"), grouped, apart, strict=True):
        np.testing.assert_allclose(got.grad, want.grad, rtol=1e-5, atol=1e-5, err_msg=name)
