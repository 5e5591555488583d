"""The sparse inference engine against minprune's own dense forward (eval mode, no graph), and its
kernels against plain NumPy twins.

Random weights pruned to the paper's densities are enough for equality: the engine must reproduce
``weight * weight_mask`` whatever the values. Real MNIST images join in when $MINPRUNE_DATA is
set. Batches 1 and 7 take the per-image kernel, batch 20 the SpMM kernel (`SPMM_MIN_BATCH`). The
equality tests run on whichever backend MINPRUNE_BACKEND names (``make test-plain`` runs them on
the plain NumPy path); those about the fast path's stages pin it with ``use_backend("fast")``. The
kernel tests are small enough to run with ``NUMBA_DISABLE_JIT=1`` too; the CUDA test runs on a GPU
or under ``NUMBA_ENABLE_CUDASIM=1`` and skips, saying why, otherwise.
"""

import argparse
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minprune.base import random as minprune_random
from minprune.base.settings import use_backend
from minprune.base.tuning import (
    MIN_BLOCK,
    SPARSE_CONV_MAX_DENSITY,
    SPARSE_WIDE_CONV_MAX_DENSITY,
    SPMM_CHUNK,
    SPMM_MIN_BATCH,
)
from minprune.commands.cli_bench import add_bench_parser
from minprune.inference import engine, fused_chain, layer_checks
from minprune.inference.benchmarking import (
    PAPER_KEEP_RATIOS,
    benchmark_model,
    dense_logits,
    dense_numpy_forward,
)
from minprune.inference.engine_cpu import Conv2dStage, DenseConv2dStage, WideConv2dStage
from minprune.kernels.cuda_support import cuda_available
from minprune.kernels.inference import fc_chain_cpu, relative_cpu
from minprune.nn import (
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    Module,
    ReLU,
    Sequential,
    models,
)
from minprune.prune import keep_ratio_prune, layers_by_weight_name, set_mask
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.relative import RelativeIndexMatrix
from minprune.training.checkpoint import save_checkpoint

BATCHES = [1, 7, 20]
assert BATCHES[-1] >= SPMM_MIN_BATCH > BATCHES[1]  # both kernels are covered


def _assert_matches(actual, expected):
    """rtol 1e-5, and an absolute floor of 1e-6 of the logits' scale (sums run in another order)."""
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6 * scale)


def _pruned(name, keep_ratio=None, seed=0, **options):
    """A model with random weights and biases, pruned to ``keep_ratio`` (default: the paper's)."""
    minprune_random.manual_seed(seed)
    model = models.build(name, **options)
    rng = np.random.default_rng(seed)
    for _, parameter in model.named_parameters():
        if parameter.data.ndim == 1:
            parameter.data[...] = rng.uniform(-0.2, 0.2, parameter.data.shape)
    if keep_ratio == 0.0:  # keep_ratio_prune refuses 0: install empty masks directly
        for layer in layers_by_weight_name(model).values():
            set_mask(layer, np.zeros(layer.weight.shape))
    else:
        keep_ratio_prune(model, PAPER_KEEP_RATIOS[name] if keep_ratio is None else keep_ratio)
    return model.eval()


def _images(batch, seed=1, side=28):
    return np.random.default_rng(seed).random((batch, 1, side, side), dtype=np.float32)


@pytest.fixture(scope="module")
def lenet300():
    model = _pruned("lenet-300-100")
    return model, engine.compile_model(model)


@pytest.fixture(scope="module")
def lenet5():
    model = _pruned("lenet5")
    return model, engine.compile_model(model)


# -- equality with the dense model ---------------------------------------------------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_lenet_300_100_matches_dense(lenet300, batch):
    model, network = lenet300
    images = _images(batch)
    expected = dense_logits(model, images)
    _assert_matches(network(images), expected)
    _assert_matches(network(images.reshape(batch, 784)), expected)  # flat input too
    np.testing.assert_array_equal(network.predict(images), expected.argmax(axis=1))


@pytest.mark.parametrize("batch", BATCHES)
def test_lenet5_matches_dense(lenet5, batch):
    model, network = lenet5
    images = _images(batch)
    expected = dense_logits(model, images)
    _assert_matches(network(images), expected)
    _assert_matches(network(images.reshape(batch, 784)), expected)


@pytest.mark.parametrize("name", ["lenet-300-100", "lenet5"])
@pytest.mark.parametrize("batch", [1, 12])
def test_density_zero_leaves_the_bias_path(name, batch):
    model = _pruned(name, keep_ratio=0.0)
    network = engine.compile_model(model)
    assert network.nnz == 0
    logits = network(_images(batch))
    _assert_matches(logits, dense_logits(model, _images(batch)))
    np.testing.assert_array_equal(logits, np.broadcast_to(model[-1].bias.data, logits.shape))


@pytest.mark.parametrize("name", ["lenet-300-100", "lenet5"])
@pytest.mark.parametrize("batch", [1, 12])
def test_density_one_is_the_dense_model(name, batch):
    model = _pruned(name, keep_ratio=1.0)
    network = engine.compile_model(model)
    assert all(layer.density in (None, 1.0) for layer in network.layers)
    _assert_matches(network(_images(batch)), dense_logits(model, _images(batch)))


@pytest.mark.parametrize("name", ["lenet-300-100", "lenet5"])
def test_fused_chain_matches_the_plain_per_layer_engine(name):
    """The plain engine (one stage per layer) is the reference of the fused FC chain."""
    model = _pruned(name)
    with use_backend("fast"):
        plain, fused = engine.compile_model(model, fused=False), engine.compile_model(model)
    assert any(layer.runs_as.startswith("fused chain") for layer in fused.layers)
    assert not any("fused" in layer.runs_as for layer in plain.layers)
    for batch in BATCHES:
        images = _images(batch)
        _assert_matches(fused(images), plain(images))
        _assert_matches(plain(images), dense_logits(model, images))


def test_real_mnist_images(mnist_dir, lenet300, lenet5):
    from minprune.data import mnist

    _, test_set = mnist(mnist_dir)
    for batch in (1, 7, 200):
        images = np.ascontiguousarray(test_set.images[:batch])
        for model, network in (lenet300, lenet5):
            _assert_matches(network(images), dense_logits(model, images))


def test_dropout_is_the_identity():
    model = _pruned("lenet-300-100", dropout=0.5)
    network = engine.compile_model(model)
    assert [layer.runs_as for layer in network.layers if layer.kind == "dropout"] == [
        "identity (inference)"
    ] * 2
    for batch in (1, 12):
        _assert_matches(network(_images(batch)), dense_logits(model, _images(batch)))


def _mlp_64_128_64_10(dropout_before_relu: bool, nested: bool = False):
    """The issue's first-hour MLP on 8x8 images, pruned, optionally with a Dropout between each
    hidden Linear and its ReLU, optionally as nested Sequentials (as from_torch makes them)."""
    minprune_random.manual_seed(5)
    layers = OrderedDict(flatten=Flatten())
    for number, (fan_in, fan_out) in enumerate(((64, 128), (128, 64)), 1):
        layers[f"fc{number}"] = Linear(fan_in, fan_out)
        if dropout_before_relu:
            layers[f"drop{number}"] = Dropout(0.5)
        layers[f"relu{number}"] = ReLU()
    layers["fc3"] = Linear(64, 10)
    if nested:
        names = list(layers)
        layers = OrderedDict(features=Sequential(OrderedDict((n, layers[n]) for n in names[:-1])),
                             classifier=Sequential(OrderedDict(fc3=layers["fc3"])))
    model = Sequential(layers)
    keep_ratio_prune(model, {"*": 0.3})
    return model.eval()


@pytest.mark.parametrize("backend", ["fast", "plain"])
def test_a_dropout_between_linear_and_relu_is_dropped_and_the_chain_still_fuses(backend):
    with_dropout, without = _mlp_64_128_64_10(True), _mlp_64_128_64_10(False)
    with use_backend(backend):
        network = engine.compile_model(with_dropout, input_shape=(1, 8, 8))
        reference = engine.compile_model(without, input_shape=(1, 8, 8))
    if backend == "fast":
        assert {layer.runs_as.split(",")[0] for layer in network.layers
                if layer.kind != "dropout"} == {"fused chain 0"}
    images = np.random.default_rng(2).random((12, 1, 8, 8), dtype=np.float32)
    for batch in (1, 12):
        np.testing.assert_array_equal(network(images[:batch]), reference(images[:batch]))
    _assert_matches(network(images), dense_logits(with_dropout, images))


def test_nested_sequentials_compile_as_their_layers_in_order():
    nested, flat = _mlp_64_128_64_10(True, nested=True), _mlp_64_128_64_10(True)
    network = engine.compile_model(nested, input_shape=(64,))
    assert [layer.name for layer in network.layers][:3] == [
        "features.flatten", "features.fc1", "features.drop1"]
    assert network.layers[-1].name == "classifier.fc3"
    images = np.random.default_rng(3).random((5, 64), dtype=np.float32)
    np.testing.assert_array_equal(network(images),
                                  engine.compile_model(flat, input_shape=(64,))(images))


def test_an_image_without_its_batch_axis_is_told_to_add_it(lenet300):
    _, network = lenet300
    with pytest.raises(ValueError, match=r"got \(1, 28, 28\); for one sample, add the batch "
                                         r"axis: x\[None\] \(shape \(1, 1, 28, 28\)\)"):
        network.predict(_images(3)[0])
    with pytest.raises(ValueError, match=r"got \(784,\); .* x\[None\] \(shape \(1, 784\)\)"):
        network(np.zeros(784, np.float32))


def test_another_input_size_is_told_how_to_call_compile_model():
    model = _mlp_64_128_64_10(False)
    with pytest.raises(ValueError, match=r"layer 'fc1': Linear expects per-sample input \(64,\), "
                                         r"but receives \(784,\); .*compile_model\(model, "
                                         r"input_shape=\(C, H, W\) or \(features,\)\)"):
        engine.compile_model(model)
    conv = Sequential(OrderedDict(conv=Conv2d(3, 4, kernel_size=3)))
    with pytest.raises(ValueError, match=r"compile_model\(model, input_shape=\(3, H, W\)\)"):
        engine.compile_model(conv)


def test_other_input_dtypes_are_converted(lenet300):
    model, network = lenet300
    images = _images(3)
    _assert_matches(network(images.astype(np.float64)), dense_logits(model, images))
    _assert_matches(network(images[:, :, ::-1, :]), dense_logits(model, images[:, :, ::-1, :]))


def test_network_keeps_its_own_copy_of_the_weights():
    model = _pruned("lenet-300-100")
    network = engine.compile_model(model)
    before = network(_images(2))
    model.fc1.weight.data[...] = 0.0
    np.testing.assert_array_equal(network(_images(2)), before)


def test_a_model_without_flatten_and_a_generic_conv_net():
    """Linear first (input_shape (784,)); conv with stride and padding, ReLU after it, a Flatten
    that no Linear follows."""
    minprune_random.manual_seed(3)
    mlp = Sequential(OrderedDict(fc1=Linear(784, 20), relu=ReLU(), fc2=Linear(20, 5, bias=False)))
    network = engine.compile_model(mlp, input_shape=(784,))
    flat = _images(4).reshape(4, 784)
    _assert_matches(network(flat), dense_logits(mlp, flat))
    conv = Sequential(
        OrderedDict(
            conv=Conv2d(1, 3, kernel_size=3, stride=2, padding=1),
            relu=ReLU(),
            pool=MaxPool2d(2, 2),
            flatten=Flatten(),
        )
    )
    network = engine.compile_model(conv)
    images = _images(5) - 0.5
    assert network.layers[-1].output_shape == (3 * 7 * 7,)
    _assert_matches(network(images), dense_logits(conv, images))


@pytest.mark.parametrize("stride, padding, keep", [(1, 1, 0.5), (1, 2, 0.2), (2, 1, 0.2),
                                                   (1, 0, 0.5), (1, 0, 0.2)])
def test_pruned_convs_of_every_stride_and_padding_match_the_dense_model(stride, padding, keep):
    """Each sparse conv path (patch-free for stride 1 and no padding, patches otherwise) on a
    pruned layer, against the masked dense model: a padded conv must never take the no-padding
    path."""
    minprune_random.manual_seed(5)
    conv = Sequential(OrderedDict(conv=Conv2d(1, 4, kernel_size=3, stride=stride,
                                              padding=padding), flatten=Flatten()))
    keep_ratio_prune(conv, keep)
    conv.conv.bias.data[...] = [0.1, -0.2, 0.3, -0.4]  # each path adds the bias
    images = _images(3) - 0.5
    network = engine.compile_model(conv)
    assert "dense" not in network.layers[0].runs_as, network.layers[0].runs_as
    _assert_matches(network(images), dense_logits(conv, images))


@pytest.mark.parametrize(
    ("padding", "break_even", "sparse_path"),
    [(0, SPARSE_WIDE_CONV_MAX_DENSITY, WideConv2dStage.runs_as),
     (1, SPARSE_CONV_MAX_DENSITY, Conv2dStage.runs_as)],
)
def test_a_conv_runs_sparse_at_any_density_unless_dense_above_asks(
        padding, break_even, sparse_path):
    """The default engine holds no dense copy: a conv runs sparse however dense it is.
    ``dense_above=d`` runs it dense from one weight above d (`minprune.base.tuning`'s densities
    say where that pays), and its dense weight is counted in ``nbytes`` and ``dense_nbytes``."""
    at_break_even = round(break_even * 100)  # of the 4 x 25 weights
    assert at_break_even / 100 == break_even  # a density a 100-weight layer can have
    minprune_random.manual_seed(7)
    conv = Sequential(OrderedDict(conv=Conv2d(1, 4, kernel_size=5, padding=padding),
                                  flatten=Flatten()))
    conv.conv.bias.data[...] = [0.1, -0.2, 0.3, -0.4]
    order = np.random.default_rng(0).permutation(100)
    images = _images(2, side=8) - 0.5
    for kept in (at_break_even, at_break_even + 1, 100):
        mask = np.zeros(100, np.float32)
        mask[order[:kept]] = 1.0
        set_mask(conv.conv, mask.reshape(4, 1, 5, 5))
        with use_backend("fast"):
            default = engine.compile_model(conv.eval(), input_shape=(1, 8, 8))
            asked = engine.compile_model(conv, input_shape=(1, 8, 8), dense_above=break_even)
        assert default.layers[0].density == kept / 100
        assert default.layers[0].runs_as == sparse_path and default.dense_nbytes == 0
        dense = kept > at_break_even
        assert asked.layers[0].runs_as == (DenseConv2dStage.runs_as if dense else sparse_path)
        assert asked.dense_nbytes == (4 * 100 if dense else 0)
        assert asked.nbytes == (4 * 100 if dense else default.nbytes)
        for network in (default, asked):
            _assert_matches(network(images), dense_logits(conv, images))


@pytest.mark.parametrize("dense_above", [-0.1, 1.5, "0.3", True])
def test_dense_above_must_be_a_density(dense_above):
    model = _pruned("lenet5")
    with pytest.raises(ValueError, match=r"dense_above must be None or a density in \[0, 1\], "
                                         rf"got {dense_above!r}"):
        engine.compile_model(model, dense_above=dense_above)


def _relu_pairs_mlp():
    """Linear -> ReLU -> ReLU twice, then a last Linear: 12 -> 10 -> 8 -> 3, pruned, with biases."""
    minprune_random.manual_seed(4)
    layers = OrderedDict()
    for number, (fan_in, fan_out) in enumerate(((12, 10), (10, 8)), 1):
        layers[f"fc{number}"] = Linear(fan_in, fan_out)
        layers[f"relu{number}"], layers[f"again{number}"] = ReLU(), ReLU()
    layers["fc3"] = Linear(8, 3)
    model = Sequential(layers)
    keep_ratio_prune(model, {"*": 0.5})
    for layer in (model.fc1, model.fc2, model.fc3):
        layer.bias.data[...] = np.linspace(-0.3, 0.3, layer.bias.data.shape[0])
    return model.eval()


def test_a_second_relu_ends_an_fc_chain_and_the_chains_are_numbered_in_order():
    """A ReLU fuses into the chain only right after a Linear; one more ReLU runs as its own stage,
    and the next Linear opens the next chain."""
    model = _relu_pairs_mlp()
    with use_backend("fast"):
        network = engine.compile_model(model, input_shape=(12,))
    by_column, by_row = ", 8-bit steps by column (CSC)", ", 8-bit steps by row (CSR)"
    assert [layer.runs_as for layer in network.layers] == [
        "fused chain 0" + by_column, "fused chain 0", "np.maximum",  # the network's input
        "fused chain 1" + by_row, "fused chain 1", "np.maximum",
        "fused chain 2" + by_row]
    x = np.random.default_rng(0).standard_normal((5, 12)).astype(np.float32)
    _assert_matches(network(x), dense_logits(model, x))


def test_a_relu_on_the_flattened_input_runs_before_the_fc_chain():
    """Flatten -> ReLU -> Linear: no Linear before that ReLU to fuse it with, so it runs as its
    own stage, on the input, and the chain starts at the Linear."""
    minprune_random.manual_seed(5)
    model = Sequential(OrderedDict(flatten=Flatten(), relu0=ReLU(), fc1=Linear(64, 10),
                                   relu1=ReLU(), fc2=Linear(10, 3)))
    keep_ratio_prune(model, {"*": 0.5})
    with use_backend("fast"):
        network = engine.compile_model(model.eval(), input_shape=(1, 8, 8))
    assert [layer.runs_as.split(",")[0] for layer in network.layers] == [
        "reshape", "np.maximum", *["fused chain 0"] * 3]
    images = _images(4, side=8) - 0.5  # negatives for the first ReLU to clip
    _assert_matches(network(images), dense_logits(model, images))


def _conv_dropout_net():
    """conv -> ReLU -> Dropout -> pool -> Flatten -> fc1 -> ReLU -> fc2 on (1, 8, 8) images: a
    Dropout outside any FC chain, and an FC chain that starts at a Flatten deep in the network."""
    minprune_random.manual_seed(6)
    model = Sequential(OrderedDict(
        conv=Conv2d(1, 3, kernel_size=3), relu=ReLU(), drop=Dropout(0.5), pool=MaxPool2d(2, 2),
        flatten=Flatten(), fc1=Linear(27, 6), relu1=ReLU(), fc2=Linear(6, 4)))
    keep_ratio_prune(model, {"*": 0.5})
    model.fc1.bias.data[...] = np.linspace(-0.2, 0.2, 6)
    return model.eval()


def test_a_flatten_opens_the_fc_chain_and_a_dropout_outside_it_takes_no_stage():
    model = _conv_dropout_net()
    with use_backend("fast"):
        network = engine.compile_model(model, input_shape=(1, 8, 8))
    assert [layer.runs_as.split(",")[0] for layer in network.layers] == [
        WideConv2dStage.runs_as, "np.maximum", "identity (inference)", "pool.max_pool_forward",
        *["fused chain 0"] * 4]
    images = _images(3, seed=4, side=8) - 0.5
    _assert_matches(network(images), dense_logits(model, images))


def test_fc_layers_are_stored_by_column_where_they_read_the_input_and_once():
    """EIE's column layout for the layer that reads the network's input (an image, mostly zeros:
    through a Flatten too); the file's row layout for every other layer, after a ReLU too
    (`minprune.base.tuning` says why). Each layer is held once: nbytes is the
    RelativeIndexMatrix bytes, no dense copy."""
    minprune_random.manual_seed(8)
    mlp = Sequential(OrderedDict(flatten=Flatten(), fc1=Linear(64, 32), relu=ReLU(),
                                 fc2=Linear(32, 16), fc3=Linear(16, 10)))
    keep_ratio_prune(mlp, {"*": 0.3})
    deeper = _conv_dropout_net()
    with use_backend("fast"):
        after_relu = Sequential(OrderedDict(conv=deeper.conv, relu=ReLU(), flatten=Flatten(),
                                            fc1=Linear(108, 6), relu1=ReLU(), fc2=deeper.fc2))
        keep_ratio_prune(after_relu, {"*": 1.0, "fc1.weight": 0.5})
        for model, layouts in ((mlp.eval(), ("csc", "csr", "csr")), (deeper, ("csr", "csr")),
                               (after_relu.eval(), ("csr", "csr"))):
            network = engine.compile_model(model, input_shape=(1, 8, 8))
            chain = network.stages[-1]
            assert chain.layouts == layouts and network.dense_nbytes == 0
            layers = [layer for layer in layers_by_weight_name(model).values()
                      if isinstance(layer, Linear)]
            expected = [RelativeIndexMatrix.from_csr(layer_checks.masked_csr(layer)[0], layout)
                        for layer, layout in zip(layers, layouts, strict=True)]
            assert chain.nbytes == sum(matrix.nbytes for matrix in expected)


def _spy_on(monkeypatch, module, names, calls):
    """Replace each kernel ``module.name`` by one that records its name, then runs it."""

    def recording(name, kernel):
        def run(*args):
            calls.append(name)
            return kernel(*args)
        return run

    for name in names:
        monkeypatch.setattr(module, name, recording(name, getattr(module, name)))


@pytest.mark.parametrize("parallel", [False, True])
def test_numba_threads_start_only_when_parallel_and_batched(monkeypatch, parallel):
    """The default engine keeps every batched stage on one thread (`compile_model` says why);
    ``parallel=True`` reaches each conv stage and FC chain, and a conv's image loop then runs on
    Numba's threads for two images or more -- never for one."""
    minprune_random.manual_seed(9)
    model = Sequential(OrderedDict(
        wide=Conv2d(1, 2, kernel_size=3), padded=Conv2d(2, 2, kernel_size=3, padding=1),
        flatten=Flatten(), fc1=Linear(2 * 4 * 4, 5), relu=ReLU(), fc2=Linear(5, 3)))
    keep_ratio_prune(model, {"*": 0.25})
    with use_backend("fast"):
        options = {"parallel": True} if parallel else {}  # the default: serial
        network = engine.compile_model(model.eval(), input_shape=(1, 6, 6), **options)
        per_layer = engine.compile_model(model, input_shape=(1, 6, 6), fused=False, **options)
    assert [layer.runs_as for layer in network.layers[:2]] == [
        WideConv2dStage.runs_as, Conv2dStage.runs_as]
    assert [stage.parallel for stage in network.stages if hasattr(stage, "parallel")] == [
        parallel] * 3  # the two convs and the FC chain
    assert [stage.parallel for stage in per_layer.stages if hasattr(stage, "parallel")] == [
        parallel] * 2
    calls = []
    _spy_on(monkeypatch, relative_cpu, ["conv2d_wide_parallel", "conv2d_wide",
                                        "conv2d_images_parallel", "conv2d_images"], calls)
    images = _images(2, side=6) - 0.5
    for batch in (1, 2):
        calls.clear()
        _assert_matches(network(images[:batch]), dense_logits(model, images[:batch]))
        threads = parallel and batch > 1
        assert calls == (["conv2d_wide_parallel", "conv2d_images_parallel"] if threads
                         else ["conv2d_wide", "conv2d_images"])


# -- description ---------------------------------------------------------------------------------


def test_layers_describe_the_network(lenet300, lenet5):
    model, _ = lenet300
    with use_backend("fast"):
        network = engine.compile_model(model)
    assert [layer.name for layer in network.layers] == [
        "flatten",
        "fc1",
        "relu1",
        "fc2",
        "relu2",
        "fc3",
    ]
    densities = {layer.name: layer.density for layer in network.layers if layer.nnz is not None}
    assert densities == pytest.approx({"fc1": 0.08, "fc2": 0.09, "fc3": 0.26}, abs=1e-3)
    assert all(layer.runs_as.startswith("fused chain 0") for layer in network.layers)
    assert network.layers[1].weight_shape == (300, 784)
    # 5 bytes a stored weight (float32 value, 8-bit step) and 4 a column pointer
    assert 5 * network.nnz < network.nbytes < 5 * network.nnz + 4 * (784 + 300 + 100 + 3) + 100
    assert network.file_nbytes < network.nbytes < 1.1 * network.file_nbytes
    assert "fc1" in network.summary() and "8.00%" in repr(network)
    _, network5 = lenet5
    assert network5.layers[0].kind == "conv2d" and network5.layers[0].output_shape == (20, 24, 24)
    assert network5.layers[0].weight_shape == (20, 1, 5, 5)


# -- errors ---------------------------------------------------------------------------------------


def test_wrong_input_shape_names_expected_and_actual(lenet300, lenet5):
    _, network = lenet300
    with pytest.raises(
        ValueError,
        match=r"expected input of shape \(N, 1, 28, 28\) or \(N, 784\), "
        r"got \(3, 28, 28\)",
    ):
        network(np.zeros((3, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"got \(784,\)"):
        network(np.zeros(784, np.float32))
    with pytest.raises(ValueError, match=r"got \(2, 1, 28, 27\)"):
        lenet5[1](np.zeros((2, 1, 28, 27), np.float32))
    with pytest.raises(ValueError, match="expected a float array"):
        network("images")


class Tanh(Module):
    def forward(self, x):
        return x


def test_unsupported_layer_is_named():
    model = Sequential(OrderedDict(flatten=Flatten(), fc=Linear(784, 10), squash=Tanh()))
    with pytest.raises(ValueError, match=r"layer 'squash': the sparse engine cannot run a Tanh"):
        engine.compile_model(model)


def test_compile_refuses_grouped_convs_and_lrn_rather_than_compute_something_else():
    grouped = Sequential(OrderedDict(conv=Conv2d(2, 4, kernel_size=3, groups=2)))
    with pytest.raises(ValueError, match=r"layer 'conv': the sparse engine cannot run a grouped "
                                         r"Conv2d \(groups=2\); it runs Conv2d with groups=1"):
        engine.compile_model(grouped, input_shape=(2, 8, 8))
    normalised = Sequential(OrderedDict(conv=Conv2d(1, 4, 3), norm=LocalResponseNorm(5)))
    with pytest.raises(ValueError, match=r"layer 'norm': the sparse engine cannot run a "
                                         r"LocalResponseNorm; it runs Linear, Conv2d \(groups=1"):
        engine.compile_model(normalised)
    minprune_random.manual_seed(0)
    with pytest.raises(ValueError, match="layer 'norm1': the sparse engine cannot run"):
        engine.compile_model(models.alexnet(num_classes=10), input_shape=(3, 227, 227))


def test_dense_numpy_forward_runs_grouped_convs():
    minprune_random.manual_seed(6)
    model = Sequential(OrderedDict(conv=Conv2d(4, 6, kernel_size=3, padding=1, groups=2),
                                   relu=ReLU(), flatten=Flatten(), fc=Linear(6 * 5 * 5, 3)))
    keep_ratio_prune(model, {"*": 0.5})
    images = np.random.default_rng(1).standard_normal((2, 4, 5, 5)).astype(np.float32)
    _assert_matches(dense_numpy_forward(model)(images), dense_logits(model, images))


def test_compile_checks_model_shapes_and_backend():
    with pytest.raises(ValueError, match="expected a minprune.nn.Sequential"):
        engine.compile_model(Linear(784, 10))
    no_flatten = Sequential(OrderedDict(fc=Linear(784, 10)))
    with pytest.raises(ValueError, match=r"layer 'fc': Linear expects per-sample input \(784,\)"):
        engine.compile_model(no_flatten)
    wrong_channels = Sequential(OrderedDict(conv=Conv2d(3, 4, kernel_size=3)))
    with pytest.raises(ValueError, match=r"layer 'conv': Conv2d expects per-sample input \(3, H"):
        engine.compile_model(wrong_channels)
    with pytest.raises(ValueError, match="layer 'conv'.*smaller than the kernel"):
        engine.compile_model(Sequential(OrderedDict(conv=Conv2d(1, 2, 5))), input_shape=(1, 3, 3))
    with pytest.raises(ValueError, match="backend must be one of"):
        engine.compile_model(no_flatten, backend="tpu")
    with pytest.raises(ValueError, match="input_shape must be positive ints"):
        engine.compile_model(no_flatten, input_shape=(0, 784))


# -- the kernels against plain NumPy twins ------------------------------------------------------


@st.composite
def fc_chains(draw):
    """(matrices, dense float64 twins, biases, relu flags): 1-3 layers of 1-12 units, densities
    including 0 and 1 (so empty rows, 1xN and Nx1 layers occur)."""
    sizes = draw(st.lists(st.integers(1, 12), min_size=2, max_size=4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    matrices, dense, biases, relu_after = [], [], [], []
    for inputs, outputs in zip(sizes[:-1], sizes[1:], strict=True):
        density = draw(st.sampled_from([0.0, 0.3, 1.0]))
        values = rng.standard_normal((outputs, inputs)).astype(np.float32)
        mask = (rng.random((outputs, inputs)) < density).astype(np.float32)
        matrices.append(CSRMatrix.from_dense(values * mask, mask))
        dense.append((values * mask).astype(np.float64))
        biases.append(rng.standard_normal(outputs).astype(np.float32))
        relu_after.append(draw(st.booleans()))
    return matrices, dense, biases, relu_after


def _chain_reference(x, dense, biases, relu_after):
    """The slow twin: float64 dense matrix products, layer by layer."""
    h = x.astype(np.float64)
    for weight, bias, relu in zip(dense, biases, relu_after, strict=True):
        h = h @ weight.T + bias
        if relu:
            h = np.maximum(h, 0.0)
    return h


def _packed(matrices, biases, relu_after, layouts):
    relative = [RelativeIndexMatrix.from_csr(m, layout)
                for m, layout in zip(matrices, layouts, strict=True)]
    return fused_chain.pack_fc_chain(relative, biases, relu_after)


def _check_every_kernel(x, packed, expected):
    rows = expected.shape[1]
    for kernel in (fc_chain_cpu.fc_chain_per_sample, fc_chain_cpu.fc_chain_spmm):
        out = np.full((x.shape[0], rows), np.nan, np.float32)
        kernel(x, *packed, out)
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    for blocks in sorted({1, 2, x.shape[0]}):  # one sample per block included
        batched = np.full((x.shape[0], rows), np.nan, np.float32)
        fc_chain_cpu.fc_chain_batched(x, *packed, blocks, batched)
        np.testing.assert_allclose(batched, expected, rtol=1e-4, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(
    chain=fc_chains(),
    batch=st.integers(1, 9),
    seed=st.integers(0, 1000),
    zeros=st.floats(0.0, 1.0),
)
def test_fc_chain_kernels_match_reference(chain, batch, seed, zeros):
    """The per-sample kernel, the SpMM and its parallel blocks, each layer by row or by column
    (drawn), on inputs with a drawn fraction of exact zeros (which the column layout skips)."""
    matrices, dense, biases, relu_after = chain
    layouts = np.random.default_rng(seed).choice(["csr", "csc"], len(matrices))
    packed = _packed(matrices, biases, relu_after, layouts)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, matrices[0].shape[1])).astype(np.float32)
    x[rng.random(x.shape) < zeros] = 0.0
    _check_every_kernel(x, packed, _chain_reference(x, dense, biases, relu_after))


@pytest.mark.parametrize("layouts", [("csr", "csr"), ("csc", "csc"), ("csr", "csc")])
def test_fc_chain_kernels_walk_fillers_and_chunks(layouts):
    """Lines longer than 256 with gaps past one 8-bit step (filler entries), and a batch that
    spans several SpMM chunks and a partial one."""
    rng = np.random.default_rng(11)
    dense = [rng.standard_normal((700, 600)).astype(np.float32),
             rng.standard_normal((5, 700)).astype(np.float32)]
    for weight in dense:
        weight[rng.random(weight.shape) < 0.995] = 0.0
    dense[0][3, [0, 599]] = [1.5, -2.0]  # a 599-column gap in row 3
    dense[0][[0, 699], 7] = [0.5, 0.25]  # a 699-row gap in column 7
    matrices = [CSRMatrix.from_dense(weight) for weight in dense]
    biases = [rng.standard_normal(len(weight)).astype(np.float32) for weight in dense]
    packed = _packed(matrices, biases, [True, False], layouts)
    assert packed.steps.size > sum(m.nnz for m in matrices)  # fillers are there
    x = rng.standard_normal((2 * SPMM_CHUNK + 3, 600)).astype(np.float32)
    x[:, ::3] = 0.0
    expected = _chain_reference(x, [w.astype(np.float64) for w in dense], biases, [True, False])
    _check_every_kernel(x, packed, expected)


def test_parallel_spmm_splits_the_batch_into_blocks_that_cover_it():
    """A batch of 3 * MIN_BLOCK + 5 in the engine's blocks and in 3: every row of the output
    written, by the right block."""
    rng = np.random.default_rng(4)
    dense = [rng.standard_normal((20, 30)).astype(np.float32) for _ in range(2)]
    dense[1] = dense[1][:, :20]
    for weight in dense:
        weight[rng.random(weight.shape) < 0.7] = 0.0
    matrices = [CSRMatrix.from_dense(weight) for weight in dense]
    biases = [rng.standard_normal(20).astype(np.float32) for _ in range(2)]
    packed = _packed(matrices, biases, [True, False], ["csc", "csc"])
    batch = 3 * MIN_BLOCK + 5
    x = rng.standard_normal((batch, 30)).astype(np.float32)
    expected = _chain_reference(x, [w.astype(np.float64) for w in dense], biases, [True, False])
    assert 1 <= fc_chain_cpu.spmm_blocks(batch) <= 3
    for blocks in (fc_chain_cpu.spmm_blocks(batch), 3):
        out = np.full((batch, 20), np.nan, np.float32)
        fc_chain_cpu.fc_chain_batched(x, *packed, blocks, out)
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_pack_fc_chain_checks_layer_sizes():
    a = RelativeIndexMatrix.from_csr(CSRMatrix.from_dense(np.ones((3, 4), np.float32)))
    with pytest.raises(ValueError, match="layer 0 is a CSRMatrix, expected a minprune.sparse"):
        fused_chain.pack_fc_chain([a.to_csr()], [np.zeros(3, np.float32)], [True])
    with pytest.raises(ValueError, match="layer 1 has 4 columns but layer 0 gives 3 outputs"):
        fused_chain.pack_fc_chain([a, a], [np.zeros(3, np.float32)] * 2, [True, False])
    with pytest.raises(ValueError, match="one bias and one relu flag per matrix"):
        fused_chain.pack_fc_chain([a], [], [True])
    with pytest.raises(ValueError, match=r"its bias must have shape \(3,\), got \(4,\)"):
        fused_chain.pack_fc_chain([a], [np.zeros(4, np.float32)], [True])


def test_dense_numpy_forward_matches_the_model(lenet5, lenet300):
    """The benchmarks' dense reference is itself checked against minprune's forward."""
    for model, _ in (lenet300, lenet5):
        for batch in (1, 3):
            images = _images(batch)
            _assert_matches(dense_numpy_forward(model)(images), dense_logits(model, images))


# -- CUDA ----------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(
    not cuda_available(),
    reason="no CUDA GPU found and NUMBA_ENABLE_CUDASIM is not set "
    "(run `NUMBA_ENABLE_CUDASIM=1 pytest -m cuda` to use Numba's simulator)",
)
def test_cuda_backend_matches_dense():
    """Tiny, because the simulator runs every GPU thread as a Python thread."""
    from numba import cuda

    minprune_random.manual_seed(5)
    model = Sequential(
        OrderedDict(
            conv=Conv2d(1, 2, kernel_size=3),
            pool=MaxPool2d(2, 2),
            flatten=Flatten(),
            fc1=Linear(18, 4),
            relu=ReLU(),
            fc2=Linear(4, 3),
        )
    )
    keep_ratio_prune(model, {"*": 0.5})
    model.fc1.bias.data[...] = [0.1, -0.2, 0.3, -0.4]
    network = engine.compile_model(model, backend="cuda", input_shape=(1, 8, 8))
    images = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32) - 0.5
    expected = dense_logits(model, images)
    _assert_matches(network(images), expected)
    _assert_matches(network(images.reshape(2, 64)), expected)
    on_device = network(cuda.to_device(images))
    assert not isinstance(on_device, np.ndarray)
    _assert_matches(on_device.copy_to_host(), expected)
    np.testing.assert_array_equal(network.predict(images), expected.argmax(axis=1))
    assert network.nbytes > 0 and network.layers[0].runs_as.startswith("products_cuda")


def test_cuda_backend_without_a_gpu_is_an_error():
    if cuda_available():
        pytest.skip("a GPU (or the simulator) is available")
    with pytest.raises(ValueError, match="backend 'cuda' needs a CUDA GPU"):
        engine.compile_model(
            Sequential(OrderedDict(fc=Linear(4, 2))), backend="cuda", input_shape=(4,)
        )


# -- minprune bench -------------------------------------------------------------------------------


def _bench_args(*argv):
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


@pytest.mark.parametrize("name", ["lenet-300-100", "lenet5"])
def test_bench_command_checks_and_reports(name, capsys):
    args = _bench_args("--model", name, "--batch-size", "3", "--repeats", "1")
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "random weights pruned to the paper's densities" in printed
    assert "sparse logits match the dense model" in printed
    assert "batch 1 latency" in printed and "batch 3 throughput" in printed
    network = engine.compile_model(benchmark_model(name)[0])
    dense_kb = sum(4 * np.prod(layer.weight_shape) for layer in network.layers
                   if layer.weight_shape is not None) / 1e3
    memory_line = next(line for line in printed.splitlines() if line.startswith("weights in"))
    assert memory_line.split() == ["weights", "in", "memory", f"{network.nbytes / 1e3:,.1f}", "KB",
                                   f"{dense_kb:,.1f}", "KB",
                                   f"{dense_kb * 1e3 / network.nbytes:.2f}x"]
    assert (f"the sparse file holds the same weights in {network.file_nbytes / 1e3:,.1f} KB: the "
            f"engine keeps {network.nbytes / network.file_nbytes:.2f}x the file's bytes, 0.0 KB "
            "of them dense" in printed)


def test_bench_command_loads_a_checkpoint(tmp_path, capsys):
    model, _ = benchmark_model("lenet-300-100", seed=4)
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, model.state_dict(), epoch=1)
    args = _bench_args("--checkpoint", str(path), "--batch-size", "2", "--repeats", "1")
    assert args.run(args) == 0
    assert f"weights and masks from {path}" in capsys.readouterr().out
    wrong = _bench_args("--model", "lenet5", "--checkpoint", str(path), "--repeats", "1")
    with pytest.raises(ValueError, match="does not hold a lenet5"):
        wrong.run(wrong)
    with pytest.raises(ValueError, match="--batch-size must be >= 1"):
        args.batch_size = 0
        args.run(args)


def test_compile_model_is_reachable_from_the_inference_package():
    import minprune.inference

    assert minprune.inference.compile_model is engine.compile_model
    assert minprune.inference.SparseNetwork is engine.SparseNetwork


@pytest.mark.parametrize("name", ["lenet-300-100", "lenet5"])
def test_parallel_engine_matches_the_serial_one(name):
    """compile_model(parallel=True) (conv image loop and SpMM blocks on Numba's threads) computes
    what the default, serial engine does, at a batch that takes every batched kernel."""
    from minprune.inference.benchmarking import benchmark_model

    model, _ = benchmark_model(name)
    images = np.random.default_rng(3).random((2 * MIN_BLOCK + 3, 1, 28, 28),
                                             dtype=np.float32)
    images[images < 0.7] = 0.0
    serial, parallel = engine.compile_model(model), engine.compile_model(model, parallel=True)
    np.testing.assert_allclose(parallel(images), serial(images), rtol=1e-5, atol=1e-5)
