"""``minprune bench``: compile a pruned LeNet with the sparse engine, check its logits against the
dense model, and time sparse against dense -- latency at batch 1, throughput at --batch-size --
beside the bytes each holds for the weights (and the sparse file's bytes for the same weights).

    minprune bench --model lenet-300-100
    minprune bench --model lenet5 --checkpoint runs/pruned/checkpoint.npz --batch-size 256

Without --checkpoint the weights are random, pruned to the paper's per-layer densities (Tables 2
and 3): the time of a forward pass depends on the sparsity pattern's size, not on the values.

The model and the timers come from `minprune.inference.benchmarking`, shared with benchmarks/.
"""

from __future__ import annotations

import os
from pathlib import Path

import numba
import numpy as np

from minprune.inference.benchmarking import (
    benchmark_model,
    dense_logits,
    dense_numpy_forward,
    seconds_per_call,
)
from minprune.inference.engine import compile_model
from minprune.prune.recipes import MNIST_MODELS

__all__ = ["add_bench_parser", "run_bench"]

def add_bench_parser(commands) -> None:
    """Add the ``bench`` subcommand to an argparse subparsers object."""
    bench = commands.add_parser(
        "bench", help="time the sparse inference engine against the dense model"
    )
    bench.add_argument("--model", choices=MNIST_MODELS, default="lenet-300-100")
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
    network = compile_model(model)
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
    dense_bytes = sum(4 * int(np.prod(layer.weight_shape)) for layer in network.layers
                      if layer.weight_shape is not None)
    print(f"{'weights in memory':28s}{network.nbytes / 1e3:>11,.1f} {'KB':<9s}"
          f"{dense_bytes / 1e3:>11,.1f} {'KB':<9s}{dense_bytes / network.nbytes:>9.2f}x")
    print(f"(the sparse file holds the same weights in {network.file_nbytes / 1e3:,.1f} KB: the "
          f"engine keeps {network.nbytes / network.file_nbytes:.2f}x the file's bytes, "
          f"{network.dense_nbytes / 1e3:,.1f} KB of them dense)")
    print(f"({os.cpu_count()} cores, {numba.get_num_threads()} Numba threads, load average "
          f"{os.getloadavg()[0]:.1f}; medians of {args.repeats} rounds)")
    return 0
