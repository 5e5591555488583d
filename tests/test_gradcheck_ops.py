"""Every autograd op against central differences, in float64, on several shapes."""

import numpy as np
import pytest

import minprune.autograd.functional as F
from minprune.autograd.gradcheck import gradcheck
from minprune.autograd.tensor import Function, Tensor


class _NaNBackward(Function):
    """The identity, with a backward that is NaN at one element."""

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        grad = grad.copy()
        grad.flat[1] = np.nan
        return grad


def test_gradcheck_fails_a_backward_that_gives_nan():
    """A NaN gradient is never "within tolerance": gradcheck names the element."""
    with pytest.raises(AssertionError, match=r"input 0: autograd nan .* at \(0, 1\)"):
        gradcheck(lambda x: _NaNBackward.apply(x), randn(2, 3))


def randn(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape)


BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 1)),
    ((5,), ()),
]


@pytest.mark.parametrize("shape_a, shape_b", BROADCAST_PAIRS)
@pytest.mark.parametrize(
    "op",
    [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b],
    ids=["add", "sub", "mul"],
)
def test_binary_ops_broadcast(op, shape_a, shape_b):
    gradcheck(op, randn(*shape_a), randn(*shape_b, seed=1))


@pytest.mark.parametrize("shape_a, shape_b", BROADCAST_PAIRS)
def test_div_broadcast(shape_a, shape_b):
    denominator = 1.5 + np.abs(randn(*shape_b, seed=1))  # keep away from zero
    gradcheck(lambda a, b: a / b, randn(*shape_a), denominator)


def test_neg_and_reflected_scalars():
    gradcheck(lambda a: -a, randn(3, 2))
    gradcheck(lambda a: 2.0 - a * 3.0 + 1.0 / (a * a + 2.0), randn(4))


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3, 4), (4, 5)), ((1, 7), (7, 1)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)),
     ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((2, 3, 4), (4, 5))],
)
def test_matmul(shape_a, shape_b):
    gradcheck(lambda a, b: a @ b, randn(*shape_a), randn(*shape_b, seed=2))


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_and_mean(axis, keepdims):
    x = randn(2, 3, 4)
    gradcheck(lambda a: a.sum(axis=axis, keepdims=keepdims), x)
    gradcheck(lambda a: a.mean(axis=axis, keepdims=keepdims), x)


def test_reshape_and_flatten():
    gradcheck(lambda a: a.reshape(6, 4) * 2.0, randn(2, 3, 4))
    gradcheck(lambda a: a.reshape((4, 6)), randn(2, 3, 4))
    gradcheck(lambda a: a.flatten(), randn(2, 3, 4))


def test_gradcheck_keeps_a_transposed_input_transposed():
    """np.array keeps Fortran order, so the checker must not perturb through a flat copy."""
    x = randn(3, 4).T
    gradcheck(lambda a: a * 2.0, x)
    gradcheck(lambda a: a @ a.T, x)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
def test_exp_and_log(shape):
    gradcheck(lambda a: a.exp(), randn(*shape))
    gradcheck(F.exp, randn(*shape))
    positive = 0.5 + np.abs(randn(*shape))  # keep away from log's pole at 0
    gradcheck(lambda a: a.log(), positive)
    gradcheck(F.log, positive)
    gradcheck(lambda a: (a.exp() + 1.0).log(), randn(*shape))  # softplus


def test_exp_and_log_on_transposed_inputs():
    gradcheck(lambda a: a.exp(), randn(3, 4).T)
    gradcheck(lambda a: a.log(), (0.5 + np.abs(randn(3, 4))).T)
    gradcheck(lambda a: (a.T * 1.0).exp(), randn(2, 3, 4))  # a strided view inside the graph


@pytest.mark.parametrize(
    "shape, axes",
    [
        ((3, 4), None),
        ((3, 4), (1, 0)),
        ((2, 3, 4), None),
        ((2, 3, 4), (1, 0, 2)),
        ((2, 3, 4), (2, 0, 1)),
        ((2, 3, 4), (-1, 0, -2)),
        ((5,), None),
    ],
)
def test_transpose(shape, axes):
    projection = randn(*shape[::-1], seed=3)
    if axes is None:
        gradcheck(lambda a: a.T, randn(*shape))
        gradcheck(lambda a: a.transpose() * projection, randn(*shape))
    else:
        gradcheck(lambda a: a.transpose(*axes), randn(*shape))
        gradcheck(lambda a: a.transpose(axes), randn(*shape).T)  # non-contiguous input


def test_transpose_then_matmul_and_reduce():
    gradcheck(lambda a, b: (a.T @ b).sum(axis=0), randn(4, 3), randn(4, 5, seed=2))
    gradcheck(lambda a: a.transpose(2, 0, 1).reshape(4, 6), randn(2, 3, 4))


INDICES = {
    "int": 1,
    "negative int": -1,
    "slice": slice(1, None),
    "reversed slice": slice(None, None, -2),
    "int and slice": (1, slice(0, 3)),
    "ints": (0, 2, 1),
    "ellipsis and newaxis": (Ellipsis, None, 2),
    "boolean mask": np.array([[True, False, True, True], [False, False, True, False],
                              [True, True, False, False]])[None].repeat(2, axis=0),
    "fancy": np.array([1, 0]),
    "fancy repeated": np.array([1, 1, 0, 1]),
    "list repeated": [0, 0, 1],
    "fancy pair repeated": (np.array([0, 1, 1, 0]), slice(None), np.array([3, 3, 3, 0])),
    "fancy 2-D repeated": (slice(None), np.array([[0, 2], [2, 2]])),
}


@pytest.mark.parametrize("index", INDICES.values(), ids=INDICES.keys())
def test_index(index):
    gradcheck(lambda a: a[index], randn(2, 3, 4))


@pytest.mark.parametrize("index", INDICES.values(), ids=INDICES.keys())
def test_index_a_transposed_input(index):
    # (4, 3, 2) reversed to (2, 3, 4): the op indexes a strided view, both as given and in-graph.
    gradcheck(lambda a: a[index], randn(4, 3, 2).T)
    gradcheck(lambda a: a.T[index] * 3.0, randn(4, 3, 2))


def test_index_feeds_the_rest_of_the_graph():
    rows = np.array([0, 2, 2, 1])
    gradcheck(lambda w, x: (w[rows] @ x).exp().sum(axis=1), randn(3, 4) * 0.5, randn(4, 2))
    gradcheck(lambda a: a[:, 1:] * a[:, :-1], randn(3, 4))  # overlapping reads of one input


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4, 5)])
def test_relu(shape):
    gradcheck(F.relu, randn(*shape))


@pytest.mark.parametrize("shape, axis", [((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1)])
def test_log_softmax(shape, axis):
    gradcheck(lambda a: F.log_softmax(a, axis=axis), randn(*shape) * 3)


@pytest.mark.parametrize("n, classes", [(1, 2), (4, 10), (7, 3)])
def test_cross_entropy(n, classes):
    labels = np.random.default_rng(n).integers(0, classes, size=n)
    gradcheck(lambda a: F.cross_entropy(a, labels), randn(n, classes) * 2)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout(p):
    # Same mask in every call: a fresh generator with a fixed seed each time.
    gradcheck(lambda a: F.dropout(a, p, rng=np.random.default_rng(3)), randn(4, 6))


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("shape_x", [(3, 4), (1, 4), (2, 3, 4)])
def test_linear(shape_x, with_bias):
    weight = randn(5, 4, seed=5)
    if with_bias:
        gradcheck(F.linear, randn(*shape_x), weight, randn(5, seed=6))
    else:
        gradcheck(F.linear, randn(*shape_x), weight)


def test_masked_linear_and_conv2d_in_one_op():
    """The layers pass their mask into the op: gradients match the masked weight's, and are zero
    where the mask prunes (the mask itself gets none)."""
    rng = np.random.default_rng(11)
    mask = (rng.random((5, 4)) < 0.5).astype(np.float64)
    gradcheck(lambda x, w, b: F.linear(x, w, b, mask=mask), randn(3, 4), randn(5, 4, seed=5),
              randn(5, seed=6))
    conv_mask = (rng.random((3, 2, 3, 3)) < 0.5).astype(np.float64)
    for x_shape in ((2, 2, 6, 6), (1, 2, 4, 4)):  # per-image and one-GEMM layouts
        gradcheck(lambda x, w, b: F.conv2d(x, w, b, mask=conv_mask), randn(*x_shape),
                  randn(3, 2, 3, 3, seed=7), randn(3, seed=8))
    weight = Tensor(randn(5, 4, seed=5), requires_grad=True)
    F.linear(randn(3, 4), weight, mask=mask).sum().backward()
    assert np.all(weight.grad[mask == 0] == 0)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("density", [0.0, 0.4, 1.0])
def test_sparse_linear(density, with_bias):
    mask = (np.random.default_rng(7).random((5, 4)) < density).astype(np.float32)
    bias = (randn(5, seed=6),) if with_bias else ()
    gradcheck(
        lambda x, w, *b: F.sparse_linear(x, w, b[0] if b else None, mask),
        randn(3, 4),
        randn(5, 4, seed=5),
        *bias,
    )


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding",
    [
        ((2, 1, 6, 6), (3, 1, 3, 3), 1, 0),
        ((1, 2, 5, 7), (2, 2, 3, 2), 2, 1),
        ((2, 3, 4, 4), (1, 3, 1, 1), 1, 0),
        ((1, 1, 5, 5), (2, 1, 5, 5), 1, 2),
        # fewer output positions than taps: one GEMM for the batch (the cases above: per image)
        ((2, 3, 4, 4), (2, 3, 3, 3), 1, 0),
        ((1, 2, 6, 5), (3, 2, 3, 3), 2, 1),
    ],
)
def test_conv2d(x_shape, w_shape, stride, padding):
    def conv(x, w, b):
        return F.conv2d(x, w, b, stride=stride, padding=padding)

    gradcheck(conv, randn(*x_shape), randn(*w_shape, seed=7), randn(w_shape[0], seed=8))
    gradcheck(lambda x, w: F.conv2d(x, w, stride=stride, padding=padding),
              randn(*x_shape), randn(*w_shape, seed=7))


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, groups",
    [
        ((2, 4, 5, 5), (6, 2, 3, 3), 1, 1, 2),  # AlexNet's conv4 in miniature
        ((1, 6, 6, 5), (3, 2, 2, 3), 2, 0, 3),
        ((1, 4, 4, 4), (4, 1, 3, 3), 1, 1, 4),  # one channel per group (depthwise)
    ],
)
def test_grouped_conv2d(x_shape, w_shape, stride, padding, groups):
    def conv(x, w, b):
        return F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    gradcheck(conv, randn(*x_shape), randn(*w_shape, seed=7), randn(w_shape[0], seed=8))
    gradcheck(lambda x, w: F.conv2d(x, w, stride=stride, padding=padding, groups=groups),
              randn(*x_shape), randn(*w_shape, seed=7))


@pytest.mark.parametrize(
    "shape, size, alpha, beta, k",
    [
        ((2, 7, 3, 3), 5, 1.0, 0.75, 2.0),  # alpha large enough that the divisor matters
        ((1, 3, 2, 4), 3, 0.5, 1.5, 1.0),
        ((2, 2, 2, 2), 5, 2.0, 0.75, 1.0),  # the window is wider than the channels
        ((1, 4, 2, 2), 1, 1.0, 0.75, 1.0),
        ((1, 6, 2, 2), 5, 1e-4, 0.75, 1.0),  # AlexNet's settings
    ],
)
def test_local_response_norm(shape, size, alpha, beta, k):
    gradcheck(lambda x: F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k),
              randn(*shape) * 2)


@pytest.mark.parametrize(
    "shape, kernel, stride",
    [((2, 3, 4, 4), 2, 2), ((1, 2, 5, 5), 3, 1), ((1, 1, 6, 5), 2, 3),
     ((1, 2, 7, 7), 3, 2)],  # AlexNet's overlapping 3/2 windows
)
def test_max_pool2d(shape, kernel, stride):
    gradcheck(lambda x: F.max_pool2d(x, kernel, stride), randn(*shape))


def test_gradcheck_catches_a_wrong_backward():
    """The checker itself must fail on a wrong gradient, or the tests above prove nothing."""
    from minprune.autograd.ops.activation import ReLU

    class WrongReLU(ReLU):
        def backward(self, grad):
            return grad * 2.0 * self.positive

    with pytest.raises(AssertionError, match="autograd"):
        gradcheck(WrongReLU.apply, randn(3, 4))


def test_gradcheck_catches_an_index_backward_that_overwrites_repeats():
    """Scattering with ``zeros[index] = grad`` keeps one of each repeated index's gradients."""
    from minprune.autograd.ops.indexing import Index

    class OverwritingIndex(Index):
        def backward(self, grad):
            grad_a = np.zeros(self.shape, dtype=grad.dtype)
            grad_a[self.index] = grad
            return grad_a

    repeated = np.array([1, 1, 0])
    gradcheck(lambda a: OverwritingIndex.apply(a, index=np.array([1, 0])), randn(3, 2))
    with pytest.raises(AssertionError, match="autograd"):
        gradcheck(lambda a: OverwritingIndex.apply(a, index=repeated), randn(3, 2))
