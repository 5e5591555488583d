"""Training pruned Linear layers on their pattern: the same numbers as the dense masked path (up
to float32 summation order), switched on and off by `sparse_kernels`, and used by `retrain`."""

import gc
import weakref

import numpy as np
import pytest
from toy_data import blobs

from minprune.autograd import functional as F
from minprune.autograd.ops.pattern_linear import PatternCache
from minprune.autograd.tensor import Tensor
from minprune.base import random as minprune_random
from minprune.nn import Linear, models
from minprune.prune import keep_ratio_prune, retrain, set_mask, sparse_kernels
from minprune.training.phase import Phase


def _loss_and_grads(layer, x):
    layer.zero_grad()
    out = layer(Tensor(x, requires_grad=True))
    loss = (F.relu(out) * out).sum()
    loss.backward()
    return out.data, layer.weight.grad.copy(), layer.bias.grad.copy()


def test_sparse_layer_matches_the_dense_masked_layer():
    minprune_random.manual_seed(0)
    layer = Linear(40, 30)
    layer.bias.data[...] = np.random.default_rng(1).standard_normal(30)
    mask = (np.random.default_rng(2).random((30, 40)) < 0.1).astype(np.float32)
    set_mask(layer, mask)
    x = np.random.default_rng(3).standard_normal((16, 40)).astype(np.float32)
    dense = _loss_and_grads(layer, x)
    layer.sparse_kernels = True
    sparse = _loss_and_grads(layer, x)
    for got, want in zip(sparse, dense, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not sparse[1][mask == 0].any()


def test_a_newly_assigned_or_loaded_mask_gets_its_own_pattern():
    """A layer caches its pattern by the (read-only) mask array; a new mask is a new array."""
    minprune_random.manual_seed(0)
    layer = Linear(6, 4)
    layer.sparse_kernels = True
    patterns = layer.patterns
    first = patterns.pattern_of(layer.weight_mask)
    assert patterns.pattern_of(layer.weight_mask) is first  # cached while the mask is unchanged
    set_mask(layer, np.eye(4, 6, dtype=np.float32))
    second = patterns.pattern_of(layer.weight_mask)
    assert second is not first and second.nnz == 4
    state = layer.state_dict()
    state["weight_mask"] = np.ones((4, 6), np.float32)
    layer.load_state_dict(state, unprune=True)
    assert patterns.pattern_of(layer.weight_mask).nnz == 24
    x = np.ones((2, 6), np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weight.data.T + layer.bias.data,
                               rtol=1e-6)
    writeable = np.ones((4, 6), np.float32)
    cache = PatternCache()
    assert cache.pattern_of(writeable) is not cache.pattern_of(writeable)  # could change


def test_patterns_and_masks_go_with_their_model():
    """No module-level cache keeps masks alive: after retraining three pruned LeNet-300-100s on
    their patterns and deleting them, neither a mask nor a pattern is still referenced."""
    train = blobs(64)
    masks, patterns = [], []
    for seed in range(3):
        minprune_random.manual_seed(seed)
        model = models.lenet_300_100()
        keep_ratio_prune(model, {"fc1.weight": 0.08, "fc2.weight": 0.09, "fc3.weight": 0.26})
        with sparse_kernels(model) as switched:
            assert switched
            F.cross_entropy(model(Tensor(train.images[:8])), train.labels[:8]).backward()
            layer = switched[0]
            masks.append(weakref.ref(layer.weight_mask))
            patterns.append(weakref.ref(layer.patterns.pattern_of(layer.weight_mask)))
        assert layer.patterns._pattern is None  # the block's end dropped it
        del model, layer, switched
    gc.collect()
    assert [ref() for ref in masks + patterns] == [None] * 6


def test_a_replaced_mask_is_freed_while_its_layer_lives():
    minprune_random.manual_seed(0)
    layer = Linear(6, 4)
    layer.sparse_kernels = True
    layer(Tensor(np.ones((2, 6), np.float32)))
    old_mask = weakref.ref(layer.weight_mask)
    set_mask(layer, np.eye(4, 6, dtype=np.float32))
    gc.collect()
    assert old_mask() is None


def test_sparse_kernels_switches_only_sparse_enough_linear_layers_and_restores():
    minprune_random.manual_seed(0)
    model = models.lenet_300_100()
    keep_ratio_prune(model, {"fc1.weight": 0.08, "fc2.weight": 0.5, "fc3.weight": 0.26})
    with sparse_kernels(model, max_density=0.3) as switched:
        assert [layer.name for layer in switched] == ["fc1", "fc3"]
        assert model["fc1"].sparse_kernels and not model["fc2"].sparse_kernels
    assert not any(getattr(m, "sparse_kernels", False) for m in model.modules())
    with sparse_kernels(model, max_density=None) as switched:
        assert switched == []
    with pytest.raises(ValueError, match=r"max_density must be in \[0, 1\] or None, got 1.5"):
        with sparse_kernels(model, max_density=1.5):
            pass


def test_retrain_on_the_pattern_follows_the_dense_retrain(tmp_path):
    """One epoch of retraining a pruned model, sparse kernels on vs off: same accuracy to the
    sample and weights equal to float32 round-off accumulated over the epoch's steps."""
    train, test = blobs(256), blobs(64, seed=1)
    results = []
    for max_density in (None, 1.0):
        minprune_random.manual_seed(0)
        model = models.lenet_300_100()
        keep_ratio_prune(model, {"fc1.weight": 0.1, "fc2.weight": 0.1, "fc3.weight": 0.3})
        phase = Phase(lr=0.01, epochs=1, batch_size=32, weight_decay=1e-4)
        history = retrain(model, train, test, phase, log=lambda *a: None,
                          sparse_max_density=max_density)
        results.append((history[-1], model.state_dict()))
    (dense_log, dense_state), (sparse_log, sparse_state) = results
    assert sparse_log["test_error"] == pytest.approx(dense_log["test_error"], abs=2 / 64)
    for name, value in dense_state.items():
        np.testing.assert_allclose(sparse_state[name], value, rtol=1e-3, atol=1e-4, err_msg=name)
