"""The sparse engine's plain NumPy path (`minprune.inference.engine_plain`) against its fast path.

`compile_model(..., backend="cpu")` runs `engine_plain` when the backend is "plain" and the Numba
stages otherwise; the same pruned models must give the same logits either way (float32 sums in
another order: rtol 1e-4). The plain products are also checked on their own against dense NumPy,
edge cases included (empty rows, density 0 and 1, 1xN, Nx1).
"""

from collections import OrderedDict

import numpy as np
import pytest

from minprune.base import random as minprune_random
from minprune.base.settings import use_backend
from minprune.base.tuning import SPMM_MIN_BATCH
from minprune.inference.benchmarking import benchmark_model, dense_logits
from minprune.inference.engine import compile_model
from minprune.inference.engine_plain import conv2d_patches, csr_times
from minprune.kernels.training.im2col import im2col_reference
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from minprune.prune import keep_ratio_prune
from minprune.sparse.csr import CSRMatrix

BATCHES = [1, 7, SPMM_MIN_BATCH]  # the fused chain's per-sample kernel, and its SpMM


def _both(model, **options):
    """The model compiled on the fast path and on the plain one."""
    with use_backend("fast"):
        fast = compile_model(model, **options)
    with use_backend("plain"):
        plain = compile_model(model, **options)
    return fast, plain


def _images(batch, seed=1):
    """Images with ~60% exact zeros, as MNIST has: the fast chain skips zero inputs."""
    images = np.random.default_rng(seed).random((batch, 1, 28, 28), dtype=np.float32)
    images[images < 0.6] = 0.0
    return images


@pytest.mark.parametrize("name", ["lenet-300-100", "lenet5"])
def test_plain_and_fast_engines_give_the_same_logits(name):
    model, _ = benchmark_model(name)
    fast, plain = _both(model)
    assert all(label.startswith("plain NumPy") or label in ("reshape", "identity (inference)")
               for label in (layer.runs_as for layer in plain.layers))
    assert not any("plain" in layer.runs_as for layer in fast.layers)
    for batch in BATCHES:
        images = _images(batch)
        logits = plain(images)
        assert logits.dtype == np.float32 and logits.shape == (batch, 10)
        np.testing.assert_allclose(logits, fast(images), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(plain(images.reshape(batch, 784)), logits)


def test_every_fast_conv_path_matches_the_plain_one():
    """Stride 1 unpadded (patch-free kernel), stride and padding (patches), and dense (asked for
    with dense_above), each beside a pool, Dropout and a Linear, against plain and dense."""
    minprune_random.manual_seed(2)
    fast_paths = set()
    for keep_ratio in (0.2, 1.0):  # sparse kernels, then the dense stage
        model = Sequential(OrderedDict(
            wide=Conv2d(1, 4, kernel_size=3), relu1=ReLU(),
            strided=Conv2d(4, 3, kernel_size=3, stride=2, padding=1), pool=MaxPool2d(2, 2),
            flatten=Flatten(), drop=Dropout(0.5), fc=Linear(3 * 6 * 6, 5),
        ))
        keep_ratio_prune(model, {"*": keep_ratio})
        model.eval()
        fast, plain = _both(model, dense_above=0.5)
        fast_paths |= {layer.runs_as.split(" ")[0] for layer in fast.layers}
        images = _images(3) - 0.3
        np.testing.assert_allclose(plain(images), fast(images), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(plain(images), dense_logits(model, images), rtol=1e-4,
                                   atol=1e-5)
    assert {"relative_cpu.conv2d_wide", "relative_cpu.conv2d_images", "dense"} <= fast_paths


def test_the_backend_is_read_when_compiling():
    model, _ = benchmark_model("lenet-300-100")
    with use_backend("plain"):
        network = compile_model(model)
    with use_backend("fast"):  # compiled plain, it stays plain
        assert network.layers[1].runs_as.startswith("plain NumPy")
        assert network.dense_nbytes == 0


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (7, 5)])
@pytest.mark.parametrize("density", [0.0, 0.4, 1.0])
def test_csr_times_is_the_dense_product(shape, density):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal(shape).astype(np.float32)
    mask = rng.random(shape) < density
    weight[0] = 0.0  # an empty row
    x = rng.standard_normal((4, shape[1])).astype(np.float32)
    y = csr_times(CSRMatrix.from_dense(weight * mask, mask), x)
    assert y.dtype == np.float32 and y.shape == (4, shape[0])
    np.testing.assert_allclose(y, x @ (weight * mask).T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kernel, stride, padding", [(1, 1, 0), (3, 1, 0), (3, 2, 1), (5, 3, 2)])
def test_conv2d_patches_is_im2col(kernel, stride, padding):
    images = np.random.default_rng(1).standard_normal((2, 3, 7, 8)).astype(np.float32)
    expected = im2col_reference(images, kernel, kernel, stride, stride, padding, padding)
    np.testing.assert_array_equal(conv2d_patches(images, kernel, stride, padding), expected.T)
