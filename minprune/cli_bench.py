"""``minprune bench``: compile a pruned LeNet with the sparse engine, check its logits against the
dense model, and time sparse against dense -- latency at batch 1, throughput at --batch-size.

    minprune bench --model lenet-300-100
    minprune bench --model lenet5 --checkpoint runs/pruned/checkpoint.npz --batch-size 256

Without --checkpoint the weights are random, pruned to the paper's per-layer densities (Tables 2
and 3): the time of a forward pass depends on the sparsity pattern's size, not on the values.

The helpers (`benchmark_model`, `dense_numpy_forward`, `seconds_per_call`) are shared with
benchmarks/sparse_lenet.py, which times more methods and writes results/bench_lenet.json.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numba
import numpy as np

from minprune import models
from minprune import random as minprune_random
from minprune.checkpoint import load_checkpoint
from minprune.kernels import im2col
from minprune.kernels.pool import max_pool_forward
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from minprune.paper import PAPER_LENET5, PAPER_LENET_300_100
from minprune.prune import keep_ratio_prune
from minprune.sparse import engine
from minprune.tensor import Tensor, no_grad

__all__ = [
    "PAPER_KEEP_RATIOS",
    "add_bench_parser",
    "run_bench",
    "benchmark_model",
    "dense_logits",
    "dense_numpy_forward",
    "seconds_per_call",
]

# The paper's "weights kept" per layer: LeNet-300-100 8/9/26%, LeNet-5 66/12/8/19%.
PAPER_KEEP_RATIOS = {
    name: {f"{row['layer']}.weight": row["weights_kept"] for row in table[:-1]}  # not "total"
    for name, table in (("lenet-300-100", PAPER_LENET_300_100), ("lenet5", PAPER_LENET5))
}


def benchmark_model(name: str, checkpoint: str | Path | None = None, seed: int = 0):
    """(model in eval mode, a sentence saying where its weights come from).

    With ``checkpoint`` (a minprune checkpoint .npz): its weights and masks, as saved. Without:
    random weights and biases (seeded), pruned by magnitude to `PAPER_KEEP_RATIOS`.
    """
    minprune_random.manual_seed(seed)
    model = models.build(name)
    if checkpoint is not None:
        state, _, _ = load_checkpoint(checkpoint)
        try:
            model.load_state_dict(state)
        except (KeyError, ValueError) as error:
            raise ValueError(f"{checkpoint} does not hold a {name}: {error}") from None
        source = f"weights and masks from {checkpoint}"
    else:
        rng = np.random.default_rng(seed)
        for _, parameter in model.named_parameters():
            if parameter.data.ndim == 1:  # biases start at 0; give the bias path some work
                parameter.data[...] = rng.uniform(-0.1, 0.1, parameter.data.shape)
        keep_ratio_prune(model, PAPER_KEEP_RATIOS[name])
        kept = ", ".join(f"{k.split('.')[0]} {v:.0%}" for k, v in PAPER_KEEP_RATIOS[name].items())
        source = f"random weights pruned to the paper's densities ({kept}); speed does not " \
            "depend on the values"
    return model.eval(), source


def dense_logits(model, images: np.ndarray) -> np.ndarray:
    """minprune's own dense forward (weight * weight_mask), eval mode, no graph."""
    model.eval()
    with no_grad():
        return model(Tensor(np.asarray(images, dtype=np.float32))).data


def dense_numpy_forward(model):
    """A dense forward of the masked model, the reference for speed: NumPy ``W @ x`` per Linear
    (a BLAS GEMV at batch 1, a GEMM otherwise); per Conv2d, minprune's Numba im2col, one BLAS GEMM
    and the layout move (as minprune's training forward does, without the autograd); MaxPool2d by
    minprune's Numba pooling kernel. Weights are multiplied by their masks once, here."""
    steps = []
    for layer in model:
        kind = type(layer)
        if kind is Linear:
            steps.append(_dense_linear(layer))
        elif kind is Conv2d:
            steps.append(_dense_conv(layer))
        elif kind is MaxPool2d:
            steps.append(_dense_max_pool(layer))
        elif kind is ReLU:
            steps.append(lambda x: np.maximum(x, np.float32(0.0)))
        elif kind is Flatten:
            steps.append(lambda x: x.reshape(len(x), -1))
        elif kind is not Dropout:
            raise ValueError(f"dense_numpy_forward: cannot run layer '{layer.name}' ({kind})")

    def forward(x):
        for step in steps:
            x = step(x)
        return x

    return forward


def _masked_weight_and_bias(layer):
    weight = (layer.weight.data * layer.weight_mask).astype(np.float32)
    bias = np.zeros(len(weight), np.float32) if layer.bias is None else layer.bias.data
    return weight, bias


def _dense_max_pool(layer):
    return lambda x: max_pool_forward(x, layer.kernel_size, layer.stride)[0]  # (out, argmax)


def _dense_linear(layer):
    weight, bias = _masked_weight_and_bias(layer)

    def linear(x):
        if len(x) == 1:
            return (weight @ x[0] + bias)[None]  # GEMV
        return x @ weight.T + bias

    return linear


def _dense_conv(layer):
    weight, bias = _masked_weight_and_bias(layer)
    matrix = weight.reshape(len(weight), -1)
    kernel, stride, padding = layer.kernel_size, layer.stride, layer.padding

    def conv(x):
        batch, _, height, width = x.shape
        out_h = im2col.conv_output_size(height, kernel, stride, padding)
        out_w = im2col.conv_output_size(width, kernel, stride, padding)
        rows = im2col.im2col(x, kernel, kernel, stride, padding) @ matrix.T
        return im2col.rows_to_nchw(rows, bias, (batch, len(matrix), out_h, out_w))

    return conv


def seconds_per_call(function, repeats: int, calls_per_repeat: int = 1) -> float:
    """Median over ``repeats`` rounds of the mean time of ``calls_per_repeat`` back-to-back calls
    (after two untimed warm-up calls: JIT, caches)."""
    function()
    function()
    rounds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls_per_repeat):
            function()
        rounds.append((time.perf_counter() - started) / calls_per_repeat)
    return statistics.median(rounds)


def add_bench_parser(commands) -> None:
    """Add the ``bench`` subcommand to an argparse subparsers object."""
    bench = commands.add_parser(
        "bench", help="time the sparse inference engine against the dense model"
    )
    bench.add_argument("--model", choices=sorted(models.MODELS), default="lenet-300-100")
    bench.add_argument("--checkpoint", type=Path, default=None,
                       help="a minprune checkpoint (default: random weights at the paper's "
                            "densities)")
    bench.add_argument("--batch-size", type=int, default=256, help="batch for throughput")
    bench.add_argument("--repeats", type=int, default=50,
                       help="timed rounds, median reported (batch 1: 10 calls per round)")
    bench.set_defaults(run=run_bench)


def run_bench(args) -> int:
    """Compile, check against the dense model (exit 1 on a mismatch), print the timings."""
    for option in ("batch_size", "repeats"):
        if getattr(args, option) < 1:
            flag = "--" + option.replace("_", "-")
            raise ValueError(f"{flag} must be >= 1, got {getattr(args, option)}")
    model, source = benchmark_model(args.model, args.checkpoint)
    network = engine.compile(model)
    print(f"minprune bench: {args.model}, {source}")
    print(network.summary())

    images = np.random.default_rng(1).random((args.batch_size, 1, 28, 28), dtype=np.float32)
    expected, actual = dense_logits(model, images), network(images)
    scale = max(1.0, float(np.abs(expected).max()))
    error = float(np.abs(actual - expected).max())
    if not np.allclose(actual, expected, rtol=1e-5, atol=1e-6 * scale):
        print(f"MISMATCH: sparse logits differ from the dense model by up to {error:.3g}")
        return 1
    print(f"check: sparse logits match the dense model on {args.batch_size} random images "
          f"(max |difference| {error:.2g})")

    dense = dense_numpy_forward(model)
    print(f"{'':28s}{'sparse engine':>21s}{'dense':>21s}{'speed-up':>10s}")
    for batch, label, unit in (
        (images[:1], "batch 1 latency", "us"),
        (images, f"batch {args.batch_size} throughput", "images/s"),
    ):
        calls = 10 if len(batch) == 1 else 1
        times = [
            seconds_per_call(lambda f=f, b=batch: f(b), args.repeats, calls)
            for f in (network, dense)
        ]
        values = [t * 1e6 if len(batch) == 1 else len(batch) / t for t in times]
        print(f"{label:28s}{values[0]:>11,.1f} {unit:<9s}{values[1]:>11,.1f} {unit:<9s}"
              f"{times[1] / times[0]:>9.2f}x")
    print(f"({os.cpu_count()} cores, {numba.get_num_threads()} Numba threads, load average "
          f"{os.getloadavg()[0]:.1f}; medians of {args.repeats} rounds)")
    return 0
