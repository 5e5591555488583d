"""The plain backend (NumPy expressions, `minprune.autograd.plain`) and the fast one (Numba,
`minprune.autograd.fast`) train to the same numbers: the same LeNet-300-100 and LeNet-5 steps
(forward, backward, masked SGD with momentum, weight decay and L1), and the pattern op, run under
each backend from the same seeds, agree to float32 summation order. Each backend also keeps its
own contract: float32 stays float32, the pattern op is the masked dense layer and uses the layer's
pattern cache, and the setting really chooses the code an op runs."""

import numpy as np
import pytest

import minprune
import minprune.autograd.functional as F
from minprune.autograd import backend, fast, plain
from minprune.autograd.tensor import Tensor
from minprune.base.settings import use_backend
from minprune.nn import models
from minprune.prune import keep_ratio_prune, sparse_kernels
from minprune.training.optim import SGD

RTOL, ATOL = 1e-4, 1e-5


def _train(build, backend_name, steps=3, pattern=False):
    """Weights and losses after a few SGD steps of a pruned model under ``backend_name``."""
    minprune.manual_seed(0)
    model = build()
    keep_ratio_prune(model, {"*": 0.3})
    rng = np.random.default_rng(1)
    images = rng.random((8, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, size=8)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, l1=1e-5)
    losses = []
    with use_backend(backend_name), sparse_kernels(model, 1.0 if pattern else None):
        for _ in range(steps):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(Tensor(images)), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses, model.state_dict(), optimizer.state_dict()


@pytest.mark.parametrize(
    "build, pattern",
    [(models.lenet_300_100, False), (models.lenet_300_100, True), (models.lenet5, False)],
    ids=["lenet-300-100", "lenet-300-100-pattern", "lenet5"],
)
def test_both_backends_train_to_the_same_numbers(build, pattern):
    fast_run = _train(build, "fast", pattern=pattern)
    plain_run = _train(build, "plain", pattern=pattern)
    np.testing.assert_allclose(plain_run[0], fast_run[0], rtol=RTOL)
    for part in (1, 2):
        for name, want in fast_run[part].items():
            np.testing.assert_allclose(
                plain_run[part][name], want, rtol=RTOL, atol=ATOL, err_msg=name
            )


def test_pattern_linear_products_agree():
    rng = np.random.default_rng(3)
    mask = (rng.random((7, 9)) < 0.3).astype(np.float32)
    x = rng.standard_normal((5, 9)).astype(np.float32)
    weight = rng.standard_normal((7, 9)).astype(np.float32)
    bias = rng.standard_normal(7).astype(np.float32)
    grad = rng.standard_normal((5, 7)).astype(np.float32)
    want_y, want_backward = plain.pattern_linear(x, weight, bias, mask)
    got_y, got_backward = fast.pattern_linear(x, weight, bias, mask)
    np.testing.assert_allclose(got_y, want_y, rtol=RTOL, atol=ATOL)
    for got, want in zip(got_backward(grad, True, True), want_backward(grad), strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_masked_sgd_updates_agree():
    rng = np.random.default_rng(4)
    mask = (rng.random((6, 5)) < 0.5).astype(np.float32)
    weight = rng.standard_normal((6, 5)).astype(np.float32) * mask
    velocity = rng.standard_normal((6, 5)).astype(np.float32) * mask
    grad = rng.standard_normal((6, 5)).astype(np.float32)
    hyper = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3, "l1": 1e-4}
    arrays = {name: (weight.copy(), velocity.copy()) for name in ("fast", "plain")}
    fast.masked_sgd_update_for(weight)(*arrays["fast"], grad, mask, **hyper)
    plain.masked_sgd_update(*arrays["plain"], grad, mask, **hyper)
    for got, want in zip(arrays["plain"], arrays["fast"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        assert not got[mask == 0].any()


def test_the_setting_chooses_the_module():
    with use_backend("fast"):
        assert backend.ops_for(np) is fast
        assert backend.masked_sgd_update_for(np.ones(2, np.float32), np.ones(2)) is not (
            plain.masked_sgd_update
        )
        assert backend.masked_sgd_update_for(np.ones(2), np.ones(2)) is plain.masked_sgd_update
    with use_backend("plain"):
        assert backend.ops_for(np) is plain
        assert backend.masked_sgd_update_for(np.ones(2, np.float32), np.ones(2)) is (
            plain.masked_sgd_update
        )
    assert backend.ops_for(object()) is plain  # any other array module (CuPy): plain
    with pytest.raises(ValueError, match=r"one of \['fast', 'plain'\], got 'numba'"):
        minprune.set_backend("numba")


# -- each backend's contract on its own (found by mutation testing) -----------------------------


def _float32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


MASK = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=np.float32)

# name: (the op, the shapes of its float32 inputs); the conv cases take each of its layouts
FLOAT32_OPS = {
    "linear": (F.linear, [(2, 3), (4, 3), (4,)]),
    "sparse linear": (lambda x, w, b: F.sparse_linear(x, w, b, MASK), [(2, 3), (4, 3), (4,)]),
    "conv2d, per image": (F.conv2d, [(2, 1, 6, 6), (2, 1, 3, 3), (2,)]),
    "conv2d, one GEMM": (lambda x, w, b: F.conv2d(x, w, b, padding=1),
                         [(1, 2, 4, 4), (3, 2, 3, 3), (3,)]),
    "grouped conv2d": (lambda x, w, b: F.conv2d(x, w, b, groups=2),
                       [(1, 4, 5, 5), (4, 2, 3, 3), (4,)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [(1, 2, 4, 4)]),
    "index": (lambda x: x[[0, 0, 2]], [(3, 4)]),
    "dropout": (lambda x: F.dropout(x, 0.5, rng=np.random.default_rng(0)), [(4, 5)]),
}


@pytest.mark.parametrize("backend_name", ["fast", "plain"])
@pytest.mark.parametrize("name", FLOAT32_OPS)
def test_a_float32_op_keeps_its_output_and_gradients_float32(name, backend_name):
    """A float32 model trains in float32 under either backend: no op's output or gradient is
    promoted to float64 by a helper array (zeros, ones, empty) made without the inputs' dtype."""
    op, shapes = FLOAT32_OPS[name]
    inputs = [Tensor(_float32(*shape, seed=i), requires_grad=True) for i, shape in
              enumerate(shapes)]
    with use_backend(backend_name):
        out = op(*inputs)
        out.sum().backward()
    assert out.dtype == np.float32
    assert [t.grad.dtype for t in inputs] == [np.float32] * len(inputs)


@pytest.mark.parametrize("backend_name", ["fast", "plain"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no bias"])
def test_sparse_linear_is_the_masked_dense_layer(with_bias, dtype, backend_name):
    """Sec. 3.5's retraining on a pattern: the output and the three gradients of
    ``F.sparse_linear`` are ``F.linear``'s with the mask, in the inputs' dtype (float32 runs the
    Numba kernels, float64 their NumPy twins)."""
    arrays = [_float32(5, 3), _float32(4, 3, seed=1)] + ([_float32(4, seed=2)] if with_bias else [])
    results = []
    with use_backend(backend_name):
        for op in (F.sparse_linear, lambda x, w, b, mask: F.linear(x, w, b, mask=mask)):
            inputs = [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
            bias = inputs[2] if with_bias else None
            out = op(inputs[0], inputs[1], bias, MASK.astype(dtype))
            (out * Tensor(_float32(5, 4, seed=3).astype(dtype))).sum().backward()
            results.append([out.data] + [t.grad for t in inputs])
    for got, want in zip(*results, strict=True):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_pattern_products_backward_gives_what_is_asked_and_all_by_default():
    """``backward(grad, need_x, need_weight)``: both backends give all three gradients when asked
    nothing; the fast one skips the product not asked for (None), as `SparseLinear` asks."""
    x, weight, bias, grad = _float32(5, 3), _float32(4, 3, seed=1), _float32(4), _float32(5, 4)
    _, plain_backward = plain.pattern_linear(x, weight, bias, MASK)
    want = plain_backward(grad)
    _, fast_backward = fast.pattern_linear(x, weight, bias, MASK)
    for got, expected in zip(fast_backward(grad), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    grad_x, grad_weight, _ = fast_backward(grad, False, True)
    assert grad_x is None
    np.testing.assert_allclose(grad_weight, want[1], rtol=RTOL, atol=ATOL)
    grad_x, grad_weight, _ = fast_backward(grad, True, False)
    assert grad_weight is None
    np.testing.assert_allclose(grad_x, want[0], rtol=RTOL, atol=ATOL)


def _read_only(mask):
    mask = mask.copy()
    mask.flags.writeable = False
    return mask


def test_a_pattern_cache_builds_a_read_only_masks_pattern_once():
    """A layer's `PatternCache` builds the pattern of its (read-only) mask once, a new mask's
    anew, and after `clear` again; a writeable mask, which could change under it, every call."""
    from minprune.autograd.ops.pattern_linear import PatternCache

    cache = PatternCache()
    first, second = _read_only(MASK), _read_only(MASK[::-1])
    pattern = cache.pattern_of(first)
    assert cache.pattern_of(first) is pattern
    np.testing.assert_array_equal(cache.pattern_of(second).positions, np.flatnonzero(second))
    cache.clear()
    rebuilt = cache.pattern_of(second)
    assert cache.pattern_of(second) is rebuilt
    np.testing.assert_array_equal(rebuilt.positions, np.flatnonzero(second))
    writeable = MASK.copy()
    built = cache.pattern_of(writeable)
    assert cache.pattern_of(writeable) is not built
    np.testing.assert_array_equal(built.positions, np.flatnonzero(writeable))


def test_sparse_linear_takes_its_pattern_from_the_layers_cache():
    from minprune.autograd.ops.pattern_linear import PatternCache

    asked = []

    class RecordingCache(PatternCache):
        def pattern_of(self, mask):
            asked.append(mask)
            return super().pattern_of(mask)

    mask = _read_only(MASK)
    with use_backend("fast"):
        F.sparse_linear(_float32(2, 3), _float32(4, 3), None, mask, patterns=RecordingCache())
    assert len(asked) == 1
    np.testing.assert_array_equal(asked[0], mask)


# case: (the call, {backend: the (module, function) it must run})
DISPATCH = {
    "conv2d, per image": (
        lambda: F.conv2d(_float32(1, 1, 12, 12), _float32(2, 1, 5, 5)),  # 64 positions, 25 taps
        {"fast": [(fast, "conv2d_per_image")], "plain": [(plain, "im2col")]},
    ),
    "conv2d, one GEMM": (
        lambda: F.conv2d(_float32(1, 2, 6, 6), _float32(2, 2, 5, 5)),  # 4 positions, 50 taps
        {"fast": [(fast, "im2col")], "plain": [(plain, "im2col")]},
    ),
    "max_pool2d": (
        lambda: F.max_pool2d(_float32(1, 2, 4, 4), 2),
        {"fast": [(fast, "max_pool_forward")], "plain": [(plain, "max_pool_forward")]},
    ),
    "sparse linear": (
        lambda: F.sparse_linear(_float32(2, 3), _float32(4, 3), None, MASK),
        {"fast": [(fast, "pattern_linear")], "plain": [(plain, "pattern_linear")]},
    ),
}


@pytest.mark.parametrize("backend_name", ["fast", "plain"])
@pytest.mark.parametrize("case", DISPATCH)
def test_an_op_runs_the_code_of_the_chosen_backend(monkeypatch, case, backend_name):
    """The comparisons above prove something only if each op runs what the setting names (and
    the fast conv takes the per-image layout its rule picks)."""
    call, expected = DISPATCH[case]
    ran = []
    for module in (fast, plain):
        for name in ("im2col", "conv2d_per_image", "max_pool_forward", "pattern_linear"):
            if hasattr(module, name):
                original = getattr(module, name)

                def recorded(*args, _original=original, _where=(module, name), **kwargs):
                    ran.append(_where)
                    return _original(*args, **kwargs)

                monkeypatch.setattr(module, name, recorded)
    with use_backend(backend_name):
        call()
    assert ran == expected[backend_name]


@pytest.mark.parametrize("backend_name", ["fast", "plain"])
def test_masked_sgd_update_without_decay_or_l1_is_momentum_sgd(backend_name):
    """weight_decay and l1 default to 0: ``v = momentum * v + grad; w -= lr * v``, masked."""
    mask = (np.random.default_rng(5).random((4, 3)) < 0.5).astype(np.float32)
    weight, velocity, grad = _float32(4, 3) * mask, _float32(4, 3, seed=1) * mask, _float32(4, 3)
    want_velocity = (0.9 * velocity + grad) * mask
    want_weight = (weight - 0.1 * (0.9 * velocity + grad)) * mask
    update = fast.masked_sgd_update_for(weight) if backend_name == "fast" else (
        plain.masked_sgd_update)
    update(weight, velocity, grad, mask, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(velocity, want_velocity, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(weight, want_weight, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("layout", ["float64", "transposed float32"])
def test_the_fast_masked_sgd_update_takes_a_gradient_plain_takes(layout):
    """The fused update converts a float64 or strided gradient (plain's expressions take any) to
    the contiguous float32 its kernel reads."""
    mask = (np.random.default_rng(6).random((4, 3)) < 0.5).astype(np.float32)
    weight, velocity = _float32(4, 3) * mask, _float32(4, 3, seed=1) * mask
    grad = _float32(4, 3, seed=2).astype(np.float64) if layout == "float64" else (
        _float32(3, 4, seed=2).T)
    hyper = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3, "l1": 1e-4}
    arrays = {name: (weight.copy(), velocity.copy()) for name in ("fast", "plain")}
    fast.masked_sgd_update_for(weight)(*arrays["fast"], grad, mask, **hyper)
    plain.masked_sgd_update(*arrays["plain"], grad, mask, **hyper)
    for got, want in zip(arrays["fast"], arrays["plain"], strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
