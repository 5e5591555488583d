"""The autograd core: Tensor basics, the backward walk, accumulation and no_grad; the forwards of
indexing, transpose, exp, log, relu, mean and dropout against NumPy (their gradients:
test_gradcheck_ops.py); the ops' own defaults, and None from backward for an input that needs no
gradient."""

import warnings

import numpy as np
import pytest

import minprune.autograd.functional as F
from minprune.autograd.tensor import Tensor, is_grad_enabled, no_grad


def test_tensor_is_float32_unless_given_another_float():
    assert Tensor([1, 2, 3]).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.float32
    assert Tensor(np.zeros(2, dtype=np.float64)).dtype == np.float64
    t = Tensor(np.ones((2, 3)), requires_grad=True)
    assert t.shape == (2, 3) and t.requires_grad and t.grad is None and t.is_leaf


def test_backward_through_a_shared_node_accumulates():
    x = Tensor(np.array([2.0, -3.0]), requires_grad=True)
    y = x * x  # used twice below
    z = (y + y * 3.0).sum()  # dz/dx = 4 * 2x
    z.backward()
    np.testing.assert_allclose(x.grad, 8 * x.data)


def test_grad_accumulates_across_backward_calls_like_pytorch():
    x = Tensor(np.ones(3), requires_grad=True)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 5.0))


def test_deep_graph_does_not_recurse():
    x = Tensor(np.ones(1), requires_grad=True)
    y = x
    for _ in range(5000):  # far past Python's default recursion limit of 1000
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_broadcast_gradient_sums_back_to_the_input_shape():
    a = Tensor(np.ones((4, 3)), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    (a * b).sum().backward()
    assert b.grad.shape == (3,)
    np.testing.assert_allclose(b.grad, [4.0, 4.0, 4.0])


def test_no_grad_records_nothing():
    x = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    assert is_grad_enabled()


def test_backward_needs_explicit_grad_for_non_scalars():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="single-element"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.ones(3))
    np.testing.assert_allclose(x.grad, 2.0)


def test_constants_get_no_gradient_and_ndarray_on_the_left_works():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    c = np.full((2, 2), 3.0, dtype=np.float32)
    y = c * x + c  # ndarray OP Tensor defers to Tensor's reflected operators
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, c)


def test_cross_entropy_is_stable_for_huge_logits_and_matches_a_reference():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    labels = np.array([0, 2])
    loss = F.cross_entropy(Tensor(logits), labels).item()
    reference = -np.mean([0.0, 3.0 - np.log(np.exp([1.0, 2.0, 3.0]).sum())])
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, reference)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 10]), "label 10 is out of range"),
        (np.array([0, -1]), "label -1 is out of range"),
        (np.array([0]), "labels must have shape"),
        (np.array([0.0, 1.0]), "must be integers"),
    ],
)
def test_cross_entropy_rejects_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        F.cross_entropy(Tensor(np.zeros((2, 10))), labels)


def test_dropout_is_inverted_and_identity_in_eval():
    x = Tensor(np.ones((200, 200)))
    out = F.dropout(x, 0.25, training=True, rng=np.random.default_rng(0)).data
    kept = out != 0
    assert 0.72 < kept.mean() < 0.78
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)
    assert F.dropout(x, 0.25, training=False) is x
    with pytest.raises(ValueError, match="p must be in"):
        F.dropout(x, 1.0)


def test_conv_and_pool_validate_their_input():
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\)"):
        F.conv2d(np.zeros((1, 28, 28)), np.zeros((2, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\) for weight .* got \(1, 3, 8, 8\)"):
        F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((2, 1, 5, 5)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(np.zeros((1, 1, 3, 3)), np.zeros((2, 1, 5, 5)))
    with pytest.raises(ValueError, match="stride must be"):
        F.conv2d(np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 5, 5)), stride=0)
    with pytest.raises(ValueError, match="kernel 3 is larger"):
        F.max_pool2d(np.zeros((1, 1, 2, 2)), 3)


FORWARD_INDICES = [
    1,
    -2,
    slice(None, None, -1),
    (1, slice(1, 3)),
    (Ellipsis, 0),
    (None, 1),
    np.array([3, 3, 0]),
    [0, 0],
    (np.array([0, 2]), np.array([1, 1])),
    np.arange(12).reshape(4, 3) % 2 == 0,
    (1, 2),
]


@pytest.mark.parametrize("index", FORWARD_INDICES, ids=repr)
def test_indexing_matches_numpy(index):
    x = np.arange(12.0).reshape(4, 3)
    for tensor, array in ((Tensor(x), x), (Tensor(x.T).T, x), (Tensor(x).T.T, x)):
        out = tensor[index]
        assert isinstance(out, Tensor) and out.shape == array[index].shape
        np.testing.assert_array_equal(out.data, array[index])


def test_repeated_fancy_index_accumulates_its_gradients():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x[[0, 0, 2, 0]] * np.array([1.0, 10.0, 100.0, 1000.0])).sum().backward()
    np.testing.assert_array_equal(x.grad, [1011.0, 0.0, 100.0])
    y = Tensor(np.ones((2, 3)), requires_grad=True)
    (y[:, [1, 1]].sum() + y[1].sum()).backward()
    np.testing.assert_array_equal(y.grad, [[0.0, 2.0, 0.0], [1.0, 3.0, 1.0]])


@pytest.mark.parametrize(
    "index, message",
    [
        (4, "out of bounds"),
        ((0, -4), "out of bounds"),
        (np.array([0, 7]), "out of bounds"),
        ((0, 0, 0), "too many indices"),
        (1.0, "only integers"),
        ("0", "only integers"),
        (np.array([0.0, 1.0]), "must be of integer"),
        ((np.array([0, 1]), np.array([0, 1, 2])), "could not be broadcast"),
        (np.ones((4, 4), dtype=bool), "boolean index did not match"),
    ],
)
def test_bad_index_raises_numpys_index_error(index, message):
    x = Tensor(np.zeros((4, 3)), requires_grad=True)
    with pytest.raises(IndexError, match=message):
        x[index]


def test_transpose_matches_numpy_and_rejects_bad_axes():
    x = np.arange(24.0).reshape(2, 3, 4)
    t = Tensor(x)
    np.testing.assert_array_equal(t.T.data, x.T)
    np.testing.assert_array_equal(t.transpose().data, x.transpose())
    for axes in [(1, 0, 2), (2, 0, 1), (-1, 0, 1)]:
        assert t.transpose(*axes).shape == x.transpose(axes).shape
        np.testing.assert_array_equal(t.transpose(*axes).data, x.transpose(axes))
        np.testing.assert_array_equal(t.transpose(axes).data, x.transpose(axes))
        np.testing.assert_array_equal(t.transpose(list(axes)).data, x.transpose(axes))
    assert Tensor(np.ones(5)).T.shape == (5,)
    for bad in [(0, 1), (0, 1, 3), (0, 0, 1)]:
        with pytest.raises(ValueError):  # NumPy's, raised before any axis is used
            t.transpose(*bad)


def test_transpose_gradient_has_the_input_layout():
    x = Tensor(np.ones((2, 3, 4)), requires_grad=True)
    (x.transpose(2, 0, 1) * np.arange(4.0)[:, None, None]).sum().backward()
    assert x.grad.shape == (2, 3, 4)
    np.testing.assert_array_equal(x.grad, np.broadcast_to(np.arange(4.0), (2, 3, 4)))


def test_exp_and_log_match_numpy_and_keep_float32():
    x = np.array([[-2.0, 0.0], [0.5, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(Tensor(x).exp().data, np.exp(x))
    np.testing.assert_array_equal(F.exp(x).data, np.exp(x))
    np.testing.assert_array_equal(Tensor(np.exp(x)).log().data, np.log(np.exp(x)))
    np.testing.assert_array_equal(F.log(np.exp(x)).data, np.log(np.exp(x)))
    assert Tensor(x).exp().dtype == Tensor(np.exp(x)).log().dtype == np.float32


def test_new_ops_record_nothing_under_no_grad():
    x = Tensor(np.ones((3, 2)), requires_grad=True)
    with no_grad():
        outputs = [x[[0, 0]], x.T, x.transpose(1, 0), x.exp(), x.log(), x.relu()]
    assert all(not out.requires_grad and out.is_leaf for out in outputs)


def test_vector_at_vector_backward():
    # Used to raise AxisError: the backward expanded the 0-d gradient at axis -2 first.
    a = Tensor(np.arange(3.0), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    out = a @ b
    assert out.item() == 3.0
    out.backward()
    np.testing.assert_array_equal(a.grad, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(b.grad, [0.0, 1.0, 2.0])


def test_each_leaf_owns_its_gradient():
    # Add hands one gradient to both inputs; the leaves and the caller's grad used to share it.
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    g = np.full(3, 2.0, dtype=np.float32)
    (a + b).backward(g)
    assert a.grad is not b.grad and a.grad is not g and b.grad is not g
    a.grad *= 0.5
    np.testing.assert_array_equal(b.grad, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(g, [2.0, 2.0, 2.0])
    c = Tensor(np.ones((2, 3)), requires_grad=True)  # a view of the caller's grad, too
    c.reshape(6).backward(g2 := np.ones(6, dtype=np.float32))
    c.grad *= 3.0
    np.testing.assert_array_equal(g2, np.ones(6))


def test_none_inputs_reach_forward_as_none_and_get_no_gradient():
    from minprune.autograd.tensor import Function

    class AddOptional(Function):
        def forward(self, a, b=None):
            self.seen = b
            return a if b is None else a + b

        def backward(self, grad):
            assert self.needs_input_grad == (True, False)
            return grad, None

    a = Tensor(np.ones(2), requires_grad=True)
    out = AddOptional.apply(a, None)
    assert out._function.seen is None and out._function.inputs[1] is None
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [1.0, 1.0])
    np.testing.assert_array_equal(F.linear(np.ones((1, 2)), np.ones((3, 2))).data, [[2.0] * 3])


def test_relu_passes_no_gradient_where_its_input_is_exactly_zero():
    # After pruning, a neuron whose inputs are all pruned and whose bias is 0 outputs exactly 0:
    # no gradient may flow back through it (PyTorch's convention too).
    x = Tensor(np.array([-1.0, 0.0, 2.0, 0.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0, 0.0])


def test_a_neuron_with_every_input_pruned_gets_no_gradient_upstream():
    import minprune as mp

    layer = mp.nn.Linear(3, 2)
    layer.bias.data[:] = 0.0
    mask = np.ones((2, 3), dtype=np.float32)
    mask[0, :] = 0.0  # neuron 0: no input connections left
    mp.prune.set_mask(layer, mask)
    x = Tensor(np.array([[1.0, -2.0, 0.5]], dtype=np.float32), requires_grad=True)
    hidden = layer(x).relu()
    assert hidden.data[0, 0] == 0.0
    (hidden * Tensor(np.array([[5.0, 0.0]], dtype=np.float32))).sum().backward()
    np.testing.assert_array_equal(layer.bias.grad, [0.0, 0.0])
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0, 0.0]])


# -- forwards a gradient check cannot judge, and the backward's contract (found by mutation
# testing: a forward that is wrong the same way as its backward passes a gradient check) ---------


def test_relu_matches_numpy_between_zero_and_one():
    x = np.array([-1.5, -0.25, 0.0, 0.25, 0.5, 1.0, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(F.relu(x).data, np.maximum(x, 0.0))


@pytest.mark.parametrize("axis", [None, 0, (0, 2), -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_mean_matches_numpy(axis, keepdims):
    x = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4) - 7.5
    out = Tensor(x).mean(axis=axis, keepdims=keepdims)
    want = x.mean(axis=axis, keepdims=keepdims)
    assert out.shape == want.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.data, want, rtol=1e-6)


def test_mean_over_nothing_is_the_empty_sum_zero_without_a_warning():
    """Deliberately not NumPy's NaN and "Mean of empty slice" warning: the op divides by 1 when
    there is nothing to average, so an empty batch gives 0 and an empty gradient."""
    x = Tensor(np.zeros((0, 3), dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = x.mean(axis=0)
        out.sum().backward()
    np.testing.assert_array_equal(out.data, [0.0, 0.0, 0.0])
    assert x.grad.shape == (0, 3)


def test_each_op_called_directly_has_its_functional_forms_defaults():
    """The op classes are public (``Conv2d.apply(x, w)``): their defaults are F's and Tensor's."""
    from minprune.autograd.ops.activation import Dropout
    from minprune.autograd.ops.arithmetic import Mean, Sum
    from minprune.autograd.ops.conv import Conv2d, MaxPool2d

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    pairs = [
        (Conv2d.apply(x, weight), F.conv2d(x, weight, stride=1, padding=0, groups=1)),
        (MaxPool2d.apply(x), F.max_pool2d(x, 2, stride=2)),
        (Sum.apply(x), Tensor(x).sum(axis=None, keepdims=False)),
        (Mean.apply(x), Tensor(x).mean(axis=None, keepdims=False)),
        (Dropout.apply(x, rng=np.random.default_rng(1)),
         F.dropout(x, 0.5, rng=np.random.default_rng(1))),
    ]
    for got, want in pairs:
        assert got.shape == want.shape
        np.testing.assert_allclose(got.data, want.data, rtol=1e-6, atol=1e-6)


def test_dropout_keeps_a_unit_whose_float32_draw_is_at_least_p():
    """A unit survives when its uniform float32 draw u from the generator has u >= p, so it is
    dropped with probability exactly p, and a seed gives one mask (on the GPU too)."""

    class ChosenDraws:
        def random(self, shape, dtype):
            assert dtype == np.float32
            return np.array([[0.25, 0.5, 0.75]], dtype=dtype)

    out = F.dropout(Tensor(np.ones((1, 3), dtype=np.float32)), 0.5, rng=ChosenDraws()).data
    np.testing.assert_array_equal(out, [[0.0, 2.0, 2.0]])
    x = np.ones((50, 40), dtype=np.float32)
    out = F.dropout(Tensor(x), 0.3, rng=np.random.default_rng(5)).data
    kept = np.random.default_rng(5).random(x.shape, dtype=np.float32) >= 0.3
    np.testing.assert_array_equal(out != 0, kept)


def _float32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


MASK = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=np.float32)

# name: (the op on tensors, the shapes of its inputs); every input is one gradients may reach
OPS_WITH_INPUTS = {
    "mul": (lambda a, b: a * b, [(2, 3), (2, 3)]),
    "div": (lambda a, b: a / b, [(2, 3), (2, 3)]),
    "matmul": (lambda a, b: a @ b, [(2, 3), (3, 2)]),
    "linear": (F.linear, [(2, 3), (4, 3), (4,)]),
    "sparse linear": (lambda x, w, b: F.sparse_linear(x, w, b, MASK), [(2, 3), (4, 3), (4,)]),
    "conv2d, one GEMM": (F.conv2d, [(1, 2, 4, 4), (3, 2, 3, 3), (3,)]),
    "conv2d, per image": (F.conv2d, [(1, 1, 6, 6), (2, 1, 3, 3), (2,)]),
}


@pytest.mark.parametrize("backend_name", ["fast", "plain"])
@pytest.mark.parametrize(
    "name, constant",
    [(name, i) for name, (_, shapes) in OPS_WITH_INPUTS.items() for i in range(len(shapes))],
)
def test_an_op_computes_no_gradient_for_an_input_that_needs_none(name, constant, backend_name):
    """`Function`'s contract: backward returns None for an input that needs no gradient (the
    images into the first layer, a frozen weight, a constant) -- no wasted product -- and still
    the gradient of every other input, the same as when all need one."""
    from minprune.base.settings import use_backend

    op, shapes = OPS_WITH_INPUTS[name]
    arrays = [_float32(*shape, seed=i) for i, shape in enumerate(shapes)]
    with use_backend(backend_name):
        everything = [Tensor(a, requires_grad=True) for a in arrays]
        op(*everything).sum().backward()
        inputs = [Tensor(a, requires_grad=i != constant) for i, a in enumerate(arrays)]
        out = op(*inputs)
        grads = out._function.backward(np.ones(out.shape, dtype=np.float32))
        out.sum().backward()
    assert [g is None for g in grads] == [i == constant for i in range(len(arrays))]
    for i, (t, reference) in enumerate(zip(inputs, everything, strict=True)):
        if i != constant:
            np.testing.assert_allclose(t.grad, reference.grad, rtol=1e-5, atol=1e-6)
