"""The sparse inference engine on the paper's pruned LeNets: latency at batch 1 and throughput at
batch 256, against dense NumPy, scipy.sparse and (when it imports) torch, all timed in one run.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/sparse_lenet.py
    python benchmarks/sparse_lenet.py --checkpoint runs/pruned-300/checkpoint.npz --crossover

- LeNet-300-100 pruned to 8/9/26% (Han et al., Table 2) at batch 1, microseconds per call (median
  over interleaved rounds; best round too): minprune's engine (`network(x)`, x (1, 1, 28, 28),
  and its fused kernel called bare), dense NumPy ``W @ x + b`` per layer with the same masked
  weights, scipy.sparse CSR, torch dense. Every method runs on the same stream of MNIST test
  images (1,000 of them, in turn; random uniform images when MNIST is not found): the engine
  skips zero activations (`minprune.kernels.inference.fc_chain_cpu`), so its time depends on the
  input, and it is also timed on random images, which have no zero pixel. Ratios are against the
  references measured in this run. Target: at least 4x dense NumPy.
- Batch 256, images per second: the engine against the dense forward
(`minprune.inference.benchmarking.
  dense_numpy_forward`: BLAS GEMM per Linear; Numba im2col + GEMM per Conv2d) for LeNet-300-100
  and for LeNet-5 pruned to 66/12/8/19% (Table 3); LeNet-5 at batch 1 the same way. Targets for
  LeNet-5: at least 2x dense at batch 256, 3x at batch 1. The script ends with each target's
  same-run speed-up.
- Memory: the engine's resident weight bytes (`SparseNetwork.nbytes`: values, steps, pointers,
  any copy) against the same weights' bytes in the sparse file (`file_nbytes`), for both LeNets
  and for AlexNet's fc6-fc8 (random weights pruned to Table 4's 9%, 9%, 25%; compiled from the
  file written by `save_sparse`, with the peak memory `tracemalloc` sees while compiling, against
  the 232 MB the three layers take dense). Target: at most 1.1x the file.
- ``--crossover``: the fused chain's two kernels (one SpMV chain per image, or SpMM) by batch
  size, which sets `minprune.base.tuning.SPMM_MIN_BATCH`.

Weights are random and pruned to the paper's densities unless ``--checkpoint`` (LeNet-300-100) or
``--lenet5-checkpoint`` give trained ones: the time depends on the sparsity pattern and on the
inputs' zeros, not on the weights' values (trained weights give real activation sparsity).
Results go to results/bench_lenet.json under a key naming the thread counts, with
the command, the machine and its load average before and after.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import tracemalloc
from collections import OrderedDict
from pathlib import Path

import numba
import numpy as np
import scipy.sparse
from sparse_timing import machine_description, time_interleaved

from minprune.base.paper import PAPER_KEEP_RATIOS
from minprune.data import DatasetError, mnist
from minprune.inference.benchmarking import benchmark_model, dense_logits, dense_numpy_forward
from minprune.inference.engine import compile_model
from minprune.kernels.inference import fc_chain_cpu
from minprune.nn import Linear, ReLU, Sequential
from minprune.prune import keep_ratio_prune
from minprune.sparse import save_sparse
from minprune.training.checkpoint import atomic_write_json

RESULTS_JSON = Path(__file__).resolve().parent.parent / "results" / "bench_lenet.json"
# Same-run speed-ups over dense NumPy the engine is held to (issue: speed).
TARGETS = {"lenet-300-100 batch 1": 4.0, "lenet5 batch 256": 2.0, "lenet5 batch 1": 3.0}
MEMORY_TARGET = 1.1  # the engine's resident weight bytes at most this times the file's


def memory_row(network) -> dict:
    """The engine's weight bytes against the file's, and how many of them are dense."""
    ratio = network.nbytes / network.file_nbytes
    return {"engine_weight_bytes": network.nbytes, "file_weight_bytes": network.file_nbytes,
            "dense_copy_bytes": network.dense_nbytes, "engine_over_file": round(ratio, 4),
            "target_met": ratio <= MEMORY_TARGET and network.dense_nbytes == 0}


def alexnet_classifier_memory() -> dict:
    """AlexNet's fc6-fc8 pruned to Table 4's densities, saved, then compiled from the file: the
    memory row, the file's size on disk, and tracemalloc's peak while compiling."""
    keep = PAPER_KEEP_RATIOS["alexnet"]
    model = Sequential(OrderedDict(fc6=Linear(9216, 4096), relu6=ReLU(), fc7=Linear(4096, 4096),
                                   relu7=ReLU(), fc8=Linear(4096, 1000)))
    keep_ratio_prune(model, {f"{ours}.weight": keep[f"{paper}.weight"]  # Table 4 says fc1-fc3
                             for ours, paper in (("fc6", "fc1"), ("fc7", "fc2"), ("fc8", "fc3"))})
    dense_bytes = sum(4 * layer.weight.data.size for layer in (model.fc6, model.fc7, model.fc8))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "alexnet_fc6_fc8.npz"
        save_sparse(path, model.eval(), input_shape=(9216,))
        del model
        tracemalloc.start()
        network = compile_model(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        row = memory_row(network)
        row.update(file_bytes_on_disk=path.stat().st_size, dense_weight_bytes=dense_bytes,
                   compile_from_file_peak_bytes=peak,
                   layers=[f"{layer.name}: {layer.runs_as}" for layer in network.layers])
    return row


def _check(network, model, images) -> float:
    """Max |sparse - dense| logits; raises if beyond rtol 1e-5 (the engine's contract)."""
    expected, actual = dense_logits(model, images), network(images)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6 * scale)
    return float(np.abs(actual - expected).max())


def _linear_layers(model):
    names = [layer.name for layer in model if type(layer).__name__ == "Linear"]
    return [
        ((model[n].weight.data * model[n].weight_mask).astype(np.float32), model[n].bias.data)
        for n in names
    ]


def test_images(count: int) -> tuple[np.ndarray, str]:
    """(float32 (count, 1, 28, 28) images, where they come from): MNIST test images when the
    dataset is found ($MINPRUNE_DATA or the cache; never downloaded here), else random."""
    try:
        _, test = mnist(download=False)
    except DatasetError as error:
        print(f"MNIST not found ({str(error).splitlines()[0]}); timing on random images")
        images = np.random.default_rng(0).random((count, 1, 28, 28), dtype=np.float32)
        return images, "random uniform images (MNIST not found)"
    return np.ascontiguousarray(test.images[:count]), f"the first {count} MNIST test images"


def batch1_methods(model, network, images) -> dict:
    """Batch-1 forward of LeNet-300-100 by each method, each call on the next of ``images`` in
    turn; all return the (10,) or (1, 10) logits."""
    layers = _linear_layers(model)
    singles = [images[i : i + 1] for i in range(len(images))]  # (1, 1, 28, 28) each
    vectors = [image.reshape(-1).copy() for image in images]  # writable (torch warns otherwise)
    flats = [vector.reshape(1, -1) for vector in vectors]
    turn = itertools.cycle(range(len(images)))
    chain = network.stages[0]  # the fused chain: the only stage of LeNet-300-100
    out = np.empty((1, chain.out_features), np.float32)
    noise = np.random.default_rng(1).random((1, 1, 28, 28), dtype=np.float32)

    def mlp(pairs):
        """Forward of (matrix, bias) pairs with ReLU between them, on the next image's vector."""

        def forward():
            h = vectors[next(turn)]
            for i, (matrix, bias) in enumerate(pairs):
                h = matrix @ h + bias
                if i < len(pairs) - 1:
                    h = np.maximum(h, np.float32(0.0))
            return h

        return forward

    dense_numpy = mlp(layers)
    scipy_csr = mlp([(scipy.sparse.csr_array(weight), bias) for weight, bias in layers])

    methods = {
        "minprune engine network(x)": lambda: network(singles[next(turn)]),
        "minprune fused kernel, bare call": lambda: fc_chain_cpu.fc_chain_per_sample(
            flats[next(turn)], *chain.packed, out
        ),
        "minprune engine, random image": lambda: network(noise),
        "dense NumPy W @ x": dense_numpy,
        f"scipy {scipy.__version__} CSR @ x": scipy_csr,
    }
    try:
        import torch
    except ImportError:
        return methods
    torch.set_num_threads(numba.get_num_threads())
    torch_layers = [(torch.from_numpy(w), torch.from_numpy(b.copy())) for w, b in layers]
    torch_vectors = [torch.from_numpy(vector) for vector in vectors]

    def torch_dense():
        with torch.inference_mode():
            h = torch_vectors[next(turn)]
            for i, (weight, bias) in enumerate(torch_layers):
                h = torch.addmv(bias, weight, h)
                if i < len(torch_layers) - 1:
                    h = torch.relu(h)
            return h

    methods[f"torch {torch.__version__} dense addmv"] = torch_dense
    return methods


def crossover(network, images, rounds: int) -> dict:
    """Microseconds per call of the two chain kernels by batch size (the first images)."""
    chain = network.stages[0]
    table = {}
    for batch in (1, 2, 4, 8, 12, 16, 24, 32, 64):
        x = np.ascontiguousarray(images[:batch].reshape(batch, chain.in_features))
        out = np.empty((batch, chain.out_features), np.float32)
        timings = time_interleaved(
            {
                "per_sample": lambda x=x, out=out: fc_chain_cpu.fc_chain_per_sample(
                    x, *chain.packed, out
                ),
                "SpMM": lambda x=x, out=out: fc_chain_cpu.fc_chain_spmm(x, *chain.packed, out),
            },
            rounds,
            max(1, 200 // batch),
        )
        table[batch] = {name: round(t["median_ms"] * 1e3, 2) for name, t in timings.items()}
        print(
            f"  batch {batch:3d}: one SpMV chain per image {table[batch]['per_sample']:9.1f} us"
            f"   SpMM (one thread) {table[batch]['SpMM']:9.1f} us"
        )
    return table


def throughput(network, model, images, rounds: int, calls: int = 1) -> dict:
    """Images per second at this batch: engine vs dense (median and best of interleaved rounds)."""
    dense = dense_numpy_forward(model)
    timings = time_interleaved(
        {"engine": lambda: network(images), "dense": lambda: dense(images)}, rounds, calls
    )
    result = {
        f"{name}_images_per_s": {
            "median": round(len(images) / (t["median_ms"] / 1e3)),
            "best": round(len(images) / (t["best_ms"] / 1e3)),
        }
        for name, t in timings.items()
    }
    result["speedup_median"] = round(
        timings["dense"]["median_ms"] / timings["engine"]["median_ms"], 2
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="trained LeNet-300-100 checkpoint")
    parser.add_argument("--lenet5-checkpoint", default=None, help="trained LeNet-5 checkpoint")
    parser.add_argument("--rounds", type=int, default=40, help="interleaved timing rounds")
    parser.add_argument("--calls", type=int, default=500, help="calls per round at batch 1")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--crossover", action="store_true", help="also time the chain kernels by batch size"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    stream, inputs = test_images(max(1000, args.batch_size))
    images = stream[: args.batch_size]
    result = {"machine": "2 cores" if os.cpu_count() == 2 else f"{os.cpu_count()} cores"}
    result["inputs"] = inputs
    result["details"] = machine_description()
    result["threads"] = {
        "numba": numba.get_num_threads(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
    }

    model, source = benchmark_model("lenet-300-100", args.checkpoint)
    network = compile_model(model)
    print(f"inputs: {inputs}\nLeNet-300-100: {source}\n{network.summary()}")
    lenet300 = {
        "weights": source,
        "nnz": network.nnz,
        "nbytes": network.nbytes,
        "max_abs_difference_vs_dense": _check(network, model, images),
    }

    print(f"\nbatch 1, microseconds per call ({args.rounds} interleaved rounds x {args.calls}):")
    timings = time_interleaved(batch1_methods(model, network, stream), args.rounds, args.calls)
    batch1 = {
        name: {"median_us": round(t["median_ms"] * 1e3, 2), "best_us": round(t["best_ms"] * 1e3, 2)}
        for name, t in timings.items()
    }
    ours = batch1["minprune engine network(x)"]["median_us"]
    for name, t in batch1.items():
        print(
            f"  {name:38s} median {t['median_us']:7.2f}  best {t['best_us']:7.2f}   "
            f"{t['median_us'] / ours:5.2f}x the engine's time"
        )
    lenet300["batch_1"] = batch1
    lenet300["batch_1_time_relative_to_engine"] = {
        name: round(t["median_us"] / ours, 2) for name, t in batch1.items()
    }
    speedup = batch1["dense NumPy W @ x"]["median_us"] / ours
    lenet300["batch_1_speedup_vs_dense"] = round(speedup, 2)
    lenet300["batch_1_target_met"] = speedup >= TARGETS["lenet-300-100 batch 1"]

    print(f"\nbatch {args.batch_size}, images per second (median of {args.rounds // 2} rounds):")
    lenet300[f"batch_{args.batch_size}"] = throughput(network, model, images, args.rounds // 2)
    print(f"  LeNet-300-100: {lenet300[f'batch_{args.batch_size}']}")
    if args.crossover:
        print("\nfused-chain kernels by batch size (LeNet-300-100):")
        lenet300["crossover_us"] = crossover(network, stream, max(5, args.rounds // 4))
    result["lenet_300_100"] = lenet300

    model5, source5 = benchmark_model("lenet5", args.lenet5_checkpoint)
    network5 = compile_model(model5)
    print(f"\nLeNet-5: {source5}")
    result["lenet5"] = {
        "weights": source5,
        "runs_as": [f"{layer.name}: {layer.runs_as}" for layer in network5.layers],
        "nnz": network5.nnz,
        "nbytes": network5.nbytes,
        "dense_nbytes": network5.dense_nbytes,
        "max_abs_difference_vs_dense": _check(network5, model5, images),
        f"batch_{args.batch_size}": throughput(network5, model5, images, max(5, args.rounds // 4)),
        "batch_1": throughput(network5, model5, stream[:1], args.rounds, calls=100),
    }
    print(f"  LeNet-5: {result['lenet5'][f'batch_{args.batch_size}']}")
    print(f"  LeNet-5 batch 1: {result['lenet5']['batch_1']}")
    lenet300["dense_nbytes"] = network.dense_nbytes
    result["speedups_vs_dense"] = {
        "lenet-300-100 batch 1": lenet300["batch_1_speedup_vs_dense"],
        "lenet5 batch 256": result["lenet5"][f"batch_{args.batch_size}"]["speedup_median"],
        "lenet5 batch 1": result["lenet5"]["batch_1"]["speedup_median"],
    }
    result["memory"] = {"lenet-300-100": memory_row(network), "lenet5": memory_row(network5),
                        "alexnet fc6-fc8": alexnet_classifier_memory()}
    print(f"\nweights in memory, engine against the sparse file (target <= {MEMORY_TARGET}x, "
          "no dense copy):")
    for name, row in result["memory"].items():
        print(f"  {name:16s} engine {row['engine_weight_bytes'] / 1e3:10,.1f} KB   file "
              f"{row['file_weight_bytes'] / 1e3:10,.1f} KB   {row['engine_over_file']:.3f}x   "
              f"dense copies {row['dense_copy_bytes']} B   "
              f"{'met' if row['target_met'] else 'not met'}")
    alexnet = result["memory"]["alexnet fc6-fc8"]
    print(f"  AlexNet fc6-fc8 compiled from its {alexnet['file_bytes_on_disk'] / 1e6:.1f} MB file "
          f"with a peak of {alexnet['compile_from_file_peak_bytes'] / 1e6:.1f} MB allocated "
          f"(dense: {alexnet['dense_weight_bytes'] / 1e6:.1f} MB)")
    result["targets"] = {name: {"at_least": target,
                                "measured": result["speedups_vs_dense"][name],
                                "met": result["speedups_vs_dense"][name] >= target}
                         for name, target in TARGETS.items()}
    print("\ntargets (engine / dense NumPy, same run):")
    for name, target in result["targets"].items():
        print(f"  {name:22s} {target['measured']:5.2f}x  (at least {target['at_least']}x: "
              f"{'met' if target['met'] else 'not met'})")

    result["load_average_1min_before_after"] = [
        round(load_before[0], 2),
        round(os.getloadavg()[0], 2),
    ]
    key = f"numba_threads={numba.get_num_threads()}"
    key += f",openblas_threads={result['threads']['OPENBLAS_NUM_THREADS']}"
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    results[key] = {"command": "python " + " ".join(sys.argv), **result}
    atomic_write_json(RESULTS_JSON, results)
    load = result["load_average_1min_before_after"]
    print(f"\nwrote {RESULTS_JSON} [{key!r}]; load average before, after: {load}")


if __name__ == "__main__":
    main()
