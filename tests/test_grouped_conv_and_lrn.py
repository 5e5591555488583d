"""Grouped convolution, local response normalisation and overlapping max-pooling (the ops AlexNet
adds to the LeNets' set) against plain loops written from their definitions, against PyTorch
where it is installed, and their errors. The gradients are checked in test_gradcheck_ops.py."""

import numpy as np
import pytest

import minprune.autograd.functional as F
from minprune import nn
from minprune.autograd.tensor import Tensor
from minprune.kernels.training import pool as pool_kernels


def _conv2d_loops(x, weight, bias, stride, padding, groups):
    """The definition: out[n, o] sums the filter o over its group's channels, window by window."""
    n_images, channels, height, width = x.shape
    out_channels, group_channels, kh, kw = weight.shape
    filters_per_group = out_channels // groups
    padded = np.zeros((n_images, channels, height + 2 * padding, width + 2 * padding))
    padded[:, :, padding : padding + height, padding : padding + width] = x
    out_h = (height + 2 * padding - kh) // stride + 1
    out_w = (width + 2 * padding - kw) // stride + 1
    out = np.zeros((n_images, out_channels, out_h, out_w))
    for n in range(n_images):
        for o in range(out_channels):
            first = (o // filters_per_group) * group_channels  # the group's first channel
            for i in range(out_h):
                for j in range(out_w):
                    window = padded[n, first : first + group_channels,
                                    i * stride : i * stride + kh, j * stride : j * stride + kw]
                    out[n, o, i, j] = np.sum(window * weight[o]) + bias[o]
    return out


def _lrn_loops(x, size, alpha, beta, k):
    """Caffe's LRN formula, one channel at a time."""
    out = np.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels, c + size // 2 + 1)
        squares = np.sum(x[:, lo:hi] ** 2, axis=1)
        out[:, c] = x[:, c] / (k + alpha / size * squares) ** beta
    return out


CONV_CASES = [
    # x shape, weight shape, stride, padding, groups
    ((2, 4, 7, 7), (6, 2, 3, 3), 1, 1, 2),
    ((1, 6, 9, 8), (6, 2, 5, 5), 1, 2, 3),  # AlexNet's conv2 in miniature: 5x5, pad 2
    ((2, 4, 6, 6), (4, 1, 3, 3), 2, 0, 4),
    ((1, 3, 11, 11), (4, 3, 11, 11), 4, 0, 1),  # groups=1: the unchanged path, conv1's kernel
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", CONV_CASES)
def test_conv2d_matches_the_definition(x_shape, w_shape, stride, padding, groups):
    rng = np.random.default_rng(sum(x_shape))
    x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    bias = rng.standard_normal(w_shape[0])
    out = F.conv2d(x, weight, bias, stride, padding, groups=groups).data
    np.testing.assert_allclose(out, _conv2d_loops(x, weight, bias, stride, padding, groups),
                               rtol=1e-10, atol=1e-10)


def test_grouped_conv_is_the_groups_convolved_apart_and_a_block_diagonal_weight():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    out = F.conv2d(x, weight, padding=1, groups=2).data
    apart = [F.conv2d(x[:, 2 * g : 2 * g + 2], weight[3 * g : 3 * g + 3], padding=1).data
             for g in range(2)]
    np.testing.assert_allclose(out, np.concatenate(apart, axis=1), rtol=1e-6, atol=1e-6)
    block_diagonal = np.zeros((6, 4, 3, 3), np.float32)
    block_diagonal[:3, :2], block_diagonal[3:, 2:] = weight[:3], weight[3:]
    np.testing.assert_allclose(out, F.conv2d(x, block_diagonal, padding=1).data,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, size, alpha, beta, k", [
    ((2, 10, 3, 3), 5, 1e-4, 0.75, 1.0),
    ((1, 4, 2, 5), 3, 0.5, 1.5, 2.0),
    ((1, 2, 3, 3), 5, 1.0, 0.75, 1.0),  # the window is wider than the channels
])
def test_local_response_norm_matches_the_formula(shape, size, alpha, beta, k):
    x = np.random.default_rng(1).standard_normal(shape) * 20
    out = F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k).data
    np.testing.assert_allclose(out, _lrn_loops(x, size, alpha, beta, k), rtol=1e-12)


def test_alexnet_ops_match_pytorch_forward_and_backward():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    # LRN with AlexNet's settings; inputs large enough (~100) that alpha / n visibly matters.
    x = (rng.standard_normal((2, 12, 5, 5)) * 100).astype(np.float32)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    ours = Tensor(x, requires_grad=True)
    out = F.local_response_norm(ours, 5, alpha=1e-4, beta=0.75, k=1.0)
    (out * grad).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    expected = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)(theirs)
    (expected * torch.from_numpy(grad)).sum().backward()
    assert np.abs(out.data - x).max() > 1.0  # the normalisation did something
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-4, atol=1e-5)

    # Grouped conv: AlexNet's conv2 shape in miniature (5x5, pad 2, 2 groups).
    x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    weight = rng.standard_normal((6, 4, 5, 5)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    tensors = [Tensor(a, requires_grad=True) for a in (x, weight, bias)]
    out = F.conv2d(*tensors, padding=2, groups=2)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    (out * grad).sum().backward()
    torch_tensors = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    expected = torch.nn.functional.conv2d(*torch_tensors, padding=2, groups=2)
    (expected * torch.from_numpy(grad)).sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(tensors, torch_tensors, strict=True):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_overlapping_max_pool_3_stride_2_as_alexnet_pools():
    """Kernel 3, stride 2: windows share a row and a column; 55 -> 27 -> 13 -> 6 as in AlexNet."""
    x = np.random.default_rng(3).standard_normal((2, 3, 55, 55)).astype(np.float32)
    out = F.max_pool2d(x, 3, 2).data
    expected, _ = pool_kernels.max_pool_forward_reference(x, 3, 2)
    np.testing.assert_array_equal(out, expected)
    sizes = [out.shape[2]]
    for _ in range(2):
        out = F.max_pool2d(out, 3, 2).data
        sizes.append(out.shape[2])
    assert sizes == [27, 13, 6]


def test_a_grouped_layers_mask_has_its_weights_shape_and_zeroes_its_gradient():
    layer = nn.Conv2d(4, 6, kernel_size=3, padding=1, groups=2)
    assert layer.weight.shape == layer.weight_mask.shape == (6, 2, 3, 3)
    assert "groups=2" in repr(layer)
    mask = np.ones((6, 2, 3, 3), np.float32)
    mask[1, 0] = 0
    layer.weight_mask = mask
    x = Tensor(np.random.default_rng(4).standard_normal((2, 4, 5, 5)).astype(np.float32))
    before = layer(x).data
    layer.weight.data[1, 0] += 100.0  # pruned weights have no effect on the output ...
    np.testing.assert_array_equal(layer(x).data, before)
    layer(x).sum().backward()
    assert np.all(layer.weight.grad[1, 0] == 0)  # ... and get no gradient
    assert np.any(layer.weight.grad[1, 1] != 0)


def test_conv2d_groups_errors_name_the_argument_and_the_value():
    x, weight = np.zeros((1, 4, 5, 5)), np.zeros((6, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: groups must be an int >= 1, got 0"):
        F.conv2d(x, weight, groups=0)
    with pytest.raises(ValueError, match=r"the input's 4 channels are not divisible by groups=3"):
        F.conv2d(x, np.zeros((6, 1, 3, 3)), groups=3)
    with pytest.raises(ValueError, match=r"the weight's 6 filters .* not divisible by groups=4"):
        F.conv2d(x, np.zeros((6, 1, 3, 3)), groups=4)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4, H, W\) for weight "
                                         r"\(6, 2, 3, 3\) and groups=2, got \(1, 6, 5, 5\)"):
        F.conv2d(np.zeros((1, 6, 5, 5)), weight, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: in_channels=3 is not divisible by groups=2"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: out_channels=5 is not divisible by groups=2"):
        nn.Conv2d(4, 5, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: groups must be an int >= 1, got 1.5"):
        nn.Conv2d(4, 4, 3, groups=1.5)


def test_local_response_norm_errors_name_the_argument_and_the_value():
    x = np.ones((1, 3, 2, 2))
    with pytest.raises(ValueError, match=r"size must be odd .* got 4"):
        F.local_response_norm(x, 4)
    with pytest.raises(ValueError, match=r"local_response_norm: size must be an int >= 1"):
        F.local_response_norm(x, 0)
    with pytest.raises(ValueError, match=r"local_response_norm: k must be > 0.0, got 0"):
        F.local_response_norm(x, 5, k=0)
    with pytest.raises(ValueError, match=r"local_response_norm: alpha must be >= 0.0"):
        F.local_response_norm(x, 5, alpha=-1e-4)
    with pytest.raises(ValueError, match=r"local_response_norm: beta must be a finite number"):
        F.local_response_norm(x, 5, beta=float("nan"))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\), got \(3, 4\)"):
        F.local_response_norm(np.ones((3, 4)), 5)
    layer = nn.LocalResponseNorm(5)
    assert repr(layer) == "LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=1.0)"
    assert not list(layer.parameters())
