"""The sparse engine against the dense forward at every batch size from 1 to 1,024, for both
pruned LeNets: images per second, the engine's per-layer choices, and a plot.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/engine_sweep.py \\
        --checkpoint runs/reproduce-lenet-300-100/paper/rounds.npz \\
        --lenet5-checkpoint runs/reproduce-lenet5/paper/rounds.npz

For each network and batch size (1, 2, 4, ..., 1,024) the engine (`compile_model(model)`) and the
dense forward (`minprune.inference.benchmarking.dense_numpy_forward`: BLAS per Linear, im2col + GEMM
per Conv2d, the masked weights) run on the same MNIST test images, their calls interleaved over
``--rounds`` rounds; the median is kept. The target (issue: speed): the engine at least as fast
as dense at every batch size, which the engine meets by picking per layer (dense convolution
above `minprune.base.tuning.SPARSE_CONV_MAX_DENSITY`, the FC chain's SpMV or SpMM by
batch). Without checkpoints the weights are random, pruned to the paper's densities (speed depends
on the pattern and on the inputs' zeros, not on the values). Records go to
``results/bench_engine_sweep.json`` (with the command, machine and thread settings) and the plot
to ``results/engine_sweep.png`` (one thread each) or ``engine_sweep_default_threads.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
from sparse_lenet import test_images  # noqa: E402
from sparse_timing import machine_description, time_interleaved  # noqa: E402

from minprune.inference.benchmarking import benchmark_model, dense_numpy_forward  # noqa: E402
from minprune.inference.engine import compile_model  # noqa: E402
from minprune.training.checkpoint import atomic_write_json  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"
BATCHES = tuple(2**k for k in range(11))  # 1 .. 1024


def sweep(name: str, checkpoint, images: np.ndarray, rounds: int) -> dict:
    model, source = benchmark_model(name, checkpoint)
    network, dense = compile_model(model), dense_numpy_forward(model)
    np.testing.assert_allclose(network(images[:64]), dense(images[:64]), rtol=1e-4, atol=1e-4)
    rows = []
    for batch in BATCHES:
        x = np.ascontiguousarray(images[:batch])
        calls = max(1, 256 // batch)
        timings = time_interleaved({"engine": lambda x=x: network(x),
                                    "dense": lambda x=x: dense(x)}, rounds, calls)
        engine, reference = timings["engine"]["median_ms"], timings["dense"]["median_ms"]
        rows.append({"batch": batch, "engine_images_per_s": round(batch / engine * 1e3),
                     "dense_images_per_s": round(batch / reference * 1e3),
                     "speedup": round(reference / engine, 2)})
        print(f"  {name:14s} batch {batch:5d}: engine {rows[-1]['engine_images_per_s']:8d} img/s"
              f"  dense {rows[-1]['dense_images_per_s']:8d} img/s  {rows[-1]['speedup']:5.2f}x",
              flush=True)
    slowest = min(rows, key=lambda row: row["speedup"])
    return {"weights": source, "layers": [f"{layer.name}: {layer.runs_as}"
                                          for layer in network.layers],
            "rows": rows, "lowest_speedup": slowest["speedup"],
            "lowest_speedup_at_batch": slowest["batch"],
            "target_met": slowest["speedup"] >= 1.0}


def plot(results: dict, path: Path, threads: str) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (name, record) in zip(axes, results.items(), strict=True):
        batches = [row["batch"] for row in record["rows"]]
        ax.plot(batches, [row["engine_images_per_s"] for row in record["rows"]], "o-",
                label="sparse engine")
        ax.plot(batches, [row["dense_images_per_s"] for row in record["rows"]], "s--",
                label="dense (BLAS, im2col + GEMM)")
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="images per second",
               title=f"{name} (lowest speed-up {record['lowest_speedup']:.2f}x)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    figure.suptitle(f"Pruned LeNets, engine vs dense: python benchmarks/engine_sweep.py, "
                    f"2 cores, {threads}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="trained LeNet-300-100 checkpoint")
    parser.add_argument("--lenet5-checkpoint", default=None, help="trained LeNet-5 checkpoint")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    args = parser.parse_args()
    images, inputs = test_images(max(BATCHES))
    threads = (f"Numba {numba.get_num_threads()} threads, OPENBLAS_NUM_THREADS="
               f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"inputs: {inputs}; {threads}")
    results = {"lenet-300-100": sweep("lenet-300-100", args.checkpoint, images, args.rounds),
               "lenet5": sweep("lenet5", args.lenet5_checkpoint, images, args.rounds)}
    for name, record in results.items():
        print(f"{name}: lowest speed-up {record['lowest_speedup']}x at batch "
              f"{record['lowest_speedup_at_batch']} (target >= 1.0 at every batch: "
              f"{'met' if record['target_met'] else 'not met'})")
    one_thread_each = numba.get_num_threads() == 1 and os.environ.get("OPENBLAS_NUM_THREADS") == "1"
    name = "engine_sweep.png" if one_thread_each else "engine_sweep_default_threads.png"
    figure = RESULTS / name
    plot(results, figure, threads)
    record = {"command": "python " + " ".join(sys.argv), "inputs": inputs, "threads": threads,
              "details": machine_description(), **results}
    path = RESULTS / "bench_engine_sweep.json"
    history = json.loads(path.read_text()) if path.exists() else {}
    history[threads] = record
    atomic_write_json(path, history)
    print(f"wrote {path} [{threads!r}] and {figure}")


if __name__ == "__main__":
    main()
