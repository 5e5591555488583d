"""The plain backend (NumPy expressions, `minprune.autograd.plain`) and the fast one (Numba,
`minprune.autograd.fast`) train to the same numbers: the same LeNet-300-100 and LeNet-5 steps
(forward, backward, masked SGD with momentum, weight decay and L1), and the pattern op, run under
each backend from the same seeds, agree to float32 summation order."""

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
