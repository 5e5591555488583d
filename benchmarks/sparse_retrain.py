"""Retraining a pruned network on its pattern: the sparse Linear op against the dense masked path,
per layer by density and for whole retraining epochs, both measured in this run.

    python benchmarks/sparse_retrain.py \
        --checkpoint runs/reproduce-lenet-300-100/paper/rounds.npz \
        --lenet5-checkpoint runs/reproduce-lenet5/paper/rounds.npz

1. One Linear layer of LeNet-300-100's fc1 shape (784 -> 300) at batch 64: forward + backward
   (input and weight gradients) per step, dense masked (``weight * mask``, three BLAS GEMMs) vs
   the sparse op (`minprune.autograd.ops.pattern_linear`), for densities 1% .. 100%. Where the ratio
   crosses 1 sets `minprune.prune.SPARSE_MAX_DENSITY`.
2. Whole retraining epochs with `minprune.prune.retrain` (lr 0.001, momentum 0.9, L2 5e-4,
   batch 64, as the recipes' retraining phases), sparse kernels off (``sparse_max_density=None``)
   and on (the default), alternating, on the pruned LeNet-300-100 (8/9/26%, Han et al. Table 2)
   and LeNet-5 (66/12/8/19%, Table 3; its conv layers stay dense). Weights come from the
   checkpoints when given, else random weights pruned to the paper's densities.

Training data: MNIST when found (never downloaded here), else random images. Results go to
results/bench_retrain.json with the command, the machine and its load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from sparse_timing import machine_description, time_interleaved

import minprune.base.random as minprune_random
from minprune.autograd.tensor import Tensor
from minprune.data import Dataset, DatasetError, mnist, subset
from minprune.inference.benchmarking import benchmark_model
from minprune.nn import Linear
from minprune.prune import SPARSE_MAX_DENSITY, retrain, set_mask
from minprune.training.checkpoint import atomic_write_json
from minprune.training.phase import Phase

RESULTS_JSON = Path(__file__).resolve().parent.parent / "results" / "bench_retrain.json"
DENSITIES = (0.01, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


def layer_sweep(rounds: int) -> dict:
    """Milliseconds per forward + backward step of a 784 -> 300 layer at batch 64, by density."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.random((64, 784), dtype=np.float32))
    table = {}
    for density in DENSITIES:
        minprune_random.manual_seed(0)
        layer = Linear(784, 300)
        set_mask(layer, (rng.random((300, 784)) < density).astype(np.float32))

        def step(sparse, layer=layer):
            layer.sparse_kernels = sparse
            layer.zero_grad()
            layer(x).sum().backward()

        timings = time_interleaved(
            {"dense": lambda: step(False), "sparse": lambda: step(True)}, rounds, 20
        )
        row = {name: round(t["median_ms"], 4) for name, t in timings.items()}
        row["sparse_over_dense"] = round(row["sparse"] / row["dense"], 3)
        table[f"{density:.0%}"] = row
        print(
            f"  density {density:5.0%}: dense {row['dense']:7.3f} ms   sparse {row['sparse']:7.3f}"
            f" ms   sparse/dense {row['sparse_over_dense']:.2f}"
        )
    return table


def training_data(images: int) -> tuple[Dataset, str]:
    try:
        train, _ = mnist(download=False)
        return subset(train, images), f"the first {images} MNIST training images"
    except DatasetError:
        rng = np.random.default_rng(0)
        data = Dataset(
            rng.random((images, 1, 28, 28), dtype=np.float32),
            rng.integers(0, 10, images).astype(np.int64),
        )
        return data, f"{images} random images (MNIST not found)"


def epoch_times(name: str, checkpoint, train: Dataset, repeats: int) -> dict:
    """Seconds per retraining pass over ``train``, sparse kernels off and on, alternating."""
    phase = Phase(lr=0.001, epochs=1, batch_size=64, weight_decay=5e-4, lr_policy="fixed")
    seconds = {"dense masked": [], "sparse kernels": []}
    errors = {}
    for _ in range(repeats):
        for label, max_density in (("dense masked", None), ("sparse kernels", SPARSE_MAX_DENSITY)):
            model, source = benchmark_model(name, checkpoint)
            model.train()
            started = time.perf_counter()
            history = retrain(model, train, None, phase, log=lambda *a: None,
                              sparse_max_density=max_density)
            seconds[label].append(time.perf_counter() - started)
            errors[label] = history[-1]["train_error"]
    result = {
        "weights": source,
        "seconds_median": {label: round(float(np.median(s)), 3) for label, s in seconds.items()},
        "seconds_all": {label: [round(t, 3) for t in s] for label, s in seconds.items()},
        "train_error_last_repeat": errors,
    }
    medians = result["seconds_median"]
    result["speedup"] = round(medians["dense masked"] / medians["sparse kernels"], 2)
    print(f"  {name}: {medians}  speedup {result['speedup']}x  ({source})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="pruned LeNet-300-100 checkpoint")
    parser.add_argument("--lenet5-checkpoint", default=None, help="pruned LeNet-5 checkpoint")
    parser.add_argument("--images", type=int, default=60000, help="LeNet-300-100 pass size")
    parser.add_argument("--lenet5-images", type=int, default=15000, help="LeNet-5 pass size")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds, layer sweep")
    args = parser.parse_args()
    load_before = os.getloadavg()
    result = {
        "machine": "2 cores" if os.cpu_count() == 2 else f"{os.cpu_count()} cores",
        "details": machine_description(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
        "sparse_max_density": SPARSE_MAX_DENSITY,
    }
    print("one 784 -> 300 Linear layer, batch 64, forward + backward (ms per step):")
    result["layer_784x300_batch64_ms"] = layer_sweep(args.rounds)
    print("retraining passes (seconds), sparse kernels off vs on:")
    train, source = training_data(args.images)
    result["lenet_300_100"] = {"data": source} | epoch_times(
        "lenet-300-100", args.checkpoint, train, args.repeats
    )
    train5, source5 = training_data(args.lenet5_images)
    result["lenet5"] = {"data": source5} | epoch_times(
        "lenet5", args.lenet5_checkpoint, train5, args.repeats
    )
    result["load_average_1min_before_after"] = [
        round(load_before[0], 2),
        round(os.getloadavg()[0], 2),
    ]
    result["command"] = "python " + " ".join(sys.argv)
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    results[f"openblas_threads={result['OPENBLAS_NUM_THREADS']}"] = result
    atomic_write_json(RESULTS_JSON, results)
    load = result["load_average_1min_before_after"]
    print(f"wrote {RESULTS_JSON}; load average before, after: {load}")


if __name__ == "__main__":
    main()
