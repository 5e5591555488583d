"""Connections or channels? Han et al.'s pruning run by the sparse engine against Li et al.'s
channel pruning run dense, on both LeNets, at equal error chosen on validation (issue 23, part A).

    MINPRUNE_DATA=/work/shared/data/mnist OPENBLAS_NUM_THREADS=1 nice -n 19 \
        python benchmarks/structured.py train
    MINPRUNE_DATA=/work/shared/data/mnist python benchmarks/structured.py time  # run it alone

``train`` (per model; ``--model`` picks one) trains a dense baseline on MNIST's first 55,000
training images and keeps the last 5,000 as a validation split. From it, three roads each climb a
ladder of rounds (prune, retrain a short phase, measure the validation error):

(a) connections (Han et al.): keep ratios in equal geometric steps towards Table 2/3's
    per-layer densities (`mp.prune.keep_ratio_prune`, `geometric_keep_ratios`), retrained;
(b) channels (Li et al. 2017, `minprune.prune.structured`): every layer that feeds another loses
    the same fraction of its outputs of smallest L1 norm per round, layers rebuilt smaller;
(c) both: channels first -- from the (b) model of lowest validation error (the channels that
    go without loss; (b)'s chosen model sits at the tolerance's edge already) -- then (a)'s
    ladder of connection rounds.

Each road's chosen point is its smallest model (parameters kept, biases counted) whose
validation error is within ``TOLERANCE`` of the baseline's; the test set is read once, for the
baseline and each chosen point. The schedules are short (stated in the record): a few epochs of
training and one or two per round, not the paper's, and the retraining rate is not searched.

Every ladder model is saved under ``runs/structured/MODEL/`` (`mp.sparse.save_sparse`; for (b)
and the baseline also as dense float32 arrays, `numpy.savez`). ``time`` loads them and measures,
in one run, each model's latency at batch 1 (microseconds, median of rounds over a stream of MNIST
test images) and at batch 256: (b) and the baseline by dense NumPy
(`minprune.inference.benchmarking.dense_numpy_forward`: BLAS per Linear, im2col + GEMM per
Conv2d), (a) and (c) by the sparse engine (`mp.inference.compile_model`). Records:
``results/structured/MODEL.json`` (command, machine, schedule, every ladder point with its
parameters, bytes on disk, FLOP and validation error; the chosen points with their test error and
latencies) and ``results/structured/structured.png`` (validation error against parameters and
against latency, both roads and both models).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import minprune as mp
from minprune.base.paper import PAPER_KEEP_RATIOS
from minprune.data.dataset import subset, validation_split
from minprune.data.mnist_loader import mnist
from minprune.inference.benchmarking import dense_numpy_forward, seconds_per_call
from minprune.nn import Conv2d, Linear, MaxPool2d
from minprune.nn.module import copy_model
from minprune.prune import structured
from minprune.prune.criteria import keep_ratio_prune
from minprune.prune.retraining import geometric_keep_ratios, retrain
from minprune.sparse import load_model, save_sparse
from minprune.training.fit import evaluate, fit_phase

ROOT = Path(__file__).resolve().parents[1]
RESULTS, WORK = ROOT / "results" / "structured", ROOT / "runs" / "structured"
ROUND_IMAGES = [None]  # set per model from its schedule (None: every training image)
TOLERANCE = 0.002  # a chosen point's validation error is at most the baseline's + this
SCHEDULES = {  # epochs of the dense baseline, rounds per road, epochs per round, rates
    "lenet-300-100": {"dense_epochs": 8, "lr": 0.01, "retrain_lr": 0.002, "round_epochs": 2,
                      "connection_rounds": 5, "channel_rounds": 6, "channel_fraction": 0.3,
                      "both_rounds": 4, "sensitivity": [0.25, 0.5, 0.75, 0.9]},
    # LeNet-5's epochs cost ~15x LeNet-300-100's: each round retrains on 20,000 of the images.
    "lenet5": {"dense_epochs": 3, "lr": 0.01, "retrain_lr": 0.002, "round_epochs": 1,
               "round_images": 20_000, "connection_rounds": 3, "channel_rounds": 4,
               "channel_fraction": 0.3, "both_rounds": 2, "sensitivity": [0.25, 0.5, 0.75, 0.9]},
}
LABELS = {"dense": "dense baseline", "a": "(a) connections, sparse engine",
          "b": "(b) channels, dense", "c": "(c) channels then connections, sparse engine"}


def command_line() -> str:
    """This run's command, with the thread settings it ran under. (One OpenBLAS thread: with
    2 shared cores, multi-threaded GEMMs on LeNet-300-100's small batches waited on descheduled
    threads and trained >10x slower.)"""
    threads = " ".join(f"{key}={os.environ[key]}" for key in ("OPENBLAS_NUM_THREADS",
                                                               "NUMBA_NUM_THREADS")
                       if key in os.environ)
    return f"{threads} python benchmarks/structured.py {' '.join(sys.argv[1:])}".strip()


def flop(model, input_shape=(1, 28, 28)) -> dict:
    """2 x multiply-adds for one image: ``dense`` as the layers' shapes stand, ``kept`` counting
    only the weights the masks keep (what a sparse kernel does; the inputs' zeros not counted)."""
    shape, dense, kept = input_shape, 0, 0
    for layer in model:
        if isinstance(layer, Conv2d):
            side = (shape[1] + 2 * layer.padding - layer.kernel_size) // layer.stride + 1
            positions = side * side
            dense += layer.weight.data.size * positions
            kept += int(np.count_nonzero(layer.weight_mask)) * positions
            shape = (layer.out_channels, side, side)
        elif isinstance(layer, MaxPool2d):
            side = (shape[1] - layer.kernel_size) // layer.stride + 1
            shape = (shape[0], side, side)
        elif isinstance(layer, Linear):
            dense += layer.weight.data.size
            kept += int(np.count_nonzero(layer.weight_mask))
            shape = (layer.out_features,)
    return {"dense": 2 * dense, "kept": 2 * kept}


def save_dense(path: Path, model) -> int:
    """Every weight (masked) and bias as dense float32 in one uncompressed .npz; its bytes."""
    arrays = {}
    for name, layer in model.named_modules():
        if isinstance(layer, Linear | Conv2d):
            arrays[f"{name}.weight"] = (layer.weight.data * layer.weight_mask).astype(np.float32)
            arrays[f"{name}.bias"] = layer.bias.data.astype(np.float32)
    np.savez(path, **arrays)
    return path.stat().st_size


def point(model, road: str, index: int, validation, folder: Path) -> dict:
    """Measure and save one ladder model."""
    path = folder / f"{road}{index}.npz"
    with warnings.catch_warnings():  # dense models (baseline, (b)) compress nothing: said above
        warnings.simplefilter("ignore", UserWarning)
        save_sparse(path, model, input_shape=(1, 28, 28))
    record = {"road": road, "round": index, "file": str(path.relative_to(ROOT)),
              "parameters": structured.parameter_count(model, kept_only=road != "b"),
              "dense_parameters": structured.parameter_count(model),
              "sparse_file_bytes": path.stat().st_size,
              "flop": flop(model)["kept" if road in ("a", "c") else "dense"],
              "shapes": {name: list(layer.weight.shape) for name, layer in model.named_modules()
                         if isinstance(layer, Linear | Conv2d)},
              "validation_error": evaluate(model, validation)["error"]}
    if road in ("b", "dense"):
        record["dense_file_bytes"] = save_dense(folder / f"{road}{index}-dense.npz", model)
    record["bytes"] = record["dense_file_bytes" if road in ("b", "dense") else "sparse_file_bytes"]
    return record


def round_images(train, index: int):
    """What round ``index`` retrains on: ``ROUND_IMAGES`` images drawn for it, or all."""
    if ROUND_IMAGES[0] is None or ROUND_IMAGES[0] >= len(train):
        return train
    return subset(train, ROUND_IMAGES[0], np.random.default_rng(index))


def connection_ladder(model, name, rounds, phase, train, validation, folder, road) -> list:
    """Rounds of magnitude pruning towards the paper's densities, each retrained."""
    ladder = []
    for index, ratios in enumerate(geometric_keep_ratios(PAPER_KEEP_RATIOS[name], rounds), 1):
        keep_ratio_prune(model, ratios)
        retrain(model, round_images(train, index), None, phase, seed=index, progress=False,
                log=None)
        ladder.append(point(model, road, index, validation, folder) | {"keep_ratios": ratios})
        print(f"{name} ({road}) round {index}: {ladder[-1]['parameters']} parameters, "
              f"validation error {ladder[-1]['validation_error']:.4f}", flush=True)
    return ladder


def channel_ladder(model, name, settings, phase, train, validation, folder) -> list:
    """Rounds of channel pruning: each removes ``channel_fraction`` of every layer's outputs."""
    ladder = []
    for index in range(1, settings["channel_rounds"] + 1):
        report = structured.channel_prune(model, {"*": settings["channel_fraction"]})
        retrain(model, round_images(train, index), None, phase, seed=index, progress=False,
                log=None)
        ladder.append(point(model, "b", index, validation, folder) | {"outputs": report})
        print(f"{name} (b) round {index}: {report}, validation error "
              f"{ladder[-1]['validation_error']:.4f}", flush=True)
    return ladder


def chosen(ladder: list, limit: float) -> dict:
    """The ladder's smallest model within ``limit``; the first rung (its start) when none is."""
    within = [rung for rung in ladder if rung["validation_error"] <= limit + 1e-12]
    return min(within, key=lambda rung: rung["parameters"]) if within else ladder[0]


def train(name: str, fast: bool, reuse_dense: bool = False) -> None:
    settings = dict(SCHEDULES[name])
    if fast:  # a seconds-long smoke run of the whole pipeline
        settings.update(dense_epochs=1, round_epochs=1, connection_rounds=2, channel_rounds=2,
                        both_rounds=1, sensitivity=[0.5])
    started = time.perf_counter()
    mp.manual_seed(0)
    train_all, test = mnist()
    train_set, validation = validation_split(train_all, 5000)
    if fast:
        train_set, validation, test = (subset(train_set, 2000), subset(validation, 500),
                                       subset(test, 1000))
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    ROUND_IMAGES[0] = settings.get("round_images")
    dense_from = "trained in this run"
    if reuse_dense and (folder / "dense0.npz").exists():
        model = load_model(folder / "dense0.npz")
        dense_from = (f"{folder.relative_to(ROOT)}/dense0.npz, trained by an earlier run of "
                      "this command with the same dense schedule (--reuse-dense)")
    else:
        model = mp.nn.models.build(name)
        fit_phase(model, train_set, None, mp.Phase(epochs=settings["dense_epochs"],
                                                   lr=settings["lr"]), progress=False, log=None)
    dense = point(model, "dense", 0, validation, folder)
    limit = dense["validation_error"] + TOLERANCE
    print(f"{name}: dense validation error {dense['validation_error']:.4f}", flush=True)
    sensitivity = structured.sensitivity(model, validation, settings["sensitivity"])
    phase = mp.Phase(epochs=settings["round_epochs"], lr=settings["retrain_lr"])
    ladders = {"a": [dense] + connection_ladder(copy_model(model), name,
                                                settings["connection_rounds"], phase,
                                                train_set, validation, folder, "a"),
               "b": [dense] + channel_ladder(copy_model(model), name, settings, phase,
                                             train_set, validation, folder)}
    start_c = min(ladders["b"][1:], key=lambda rung: (rung["validation_error"],
                                                      rung["parameters"]))
    model_c = load_model(ROOT / start_c["file"])
    ladders["c"] = [start_c] + connection_ladder(model_c, name, settings["both_rounds"], phase,
                                                 train_set, validation, folder, "c")
    choices = {"dense": dense} | {road: chosen(ladder, limit) for road, ladder in ladders.items()}
    for rung in choices.values():  # the test set, read once per chosen point
        rung["test_error"] = evaluate(load_model(ROOT / rung["file"]), test)["error"]
    record = {"model": name, "fast": fast,
              "command": command_line(),
              "machine": "2 cores" if os.cpu_count() == 2 else f"{os.cpu_count()} cores",
              "schedule": settings, "tolerance": TOLERANCE, "dense_baseline": dense_from,
              "validation": "the last 5,000 of MNIST's 60,000 training images",
              "train_seconds": time.perf_counter() - started,
              "sensitivity": sensitivity, "ladders": ladders,
              "chosen": {road: {"file": rung["file"], "round": rung["round"]}
                         for road, rung in choices.items()},
              "test_errors": {road: rung["test_error"] for road, rung in choices.items()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}{'-fast' if fast else ''}.json").write_text(json.dumps(record, indent=1))


def latency(model_file: Path, road: str, images: np.ndarray, batch: int) -> float:
    """Microseconds per call at ``batch`` (median of rounds), over a stream of test images."""
    model = load_model(model_file).eval()
    forward = (dense_numpy_forward(model) if road in ("b", "dense")
               else mp.inference.compile_model(model))
    batches = [images[i:i + batch] for i in range(0, len(images) - batch + 1, batch)][:8]
    calls = iter(range(10 ** 9))
    repeats, per_repeat = (25, 100) if batch == 1 else (21, 4)
    return 1e6 * seconds_per_call(lambda: forward(batches[next(calls) % len(batches)]),
                                  repeats, per_repeat)


def time_all(names, fast: bool) -> None:
    _, test = mnist()
    images = np.asarray(test.images[:2048], dtype=np.float32)
    for name in names:
        path = RESULTS / f"{name}{'-fast' if fast else ''}.json"
        record = json.loads(path.read_text())
        measured = {}  # a model on two ladders (the baseline, (c)'s start) is timed once
        for rung in (rung for ladder in record["ladders"].values() for rung in ladder):
            if rung["file"] not in measured:
                measured[rung["file"]] = {
                    f"latency_us_batch{batch}": latency(ROOT / rung["file"], rung["road"],
                                                        images, batch) for batch in (1, 256)}
                print(f"{name} {rung['file']}: {measured[rung['file']]}", flush=True)
            rung.update(measured[rung["file"]])
        record["timing_command"] = command_line()
        record["timing"] = ("median of rounds, MNIST test images, default threads, 2 cores, "
                            "run with every other process on the machine paused")
        path.write_text(json.dumps(record, indent=1))
    draw(names, fast)


def draw(names, fast: bool) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minprune.prune.structured_figures import plot_roads
    records = [json.loads((RESULTS / f"{n}{'-fast' if fast else ''}.json").read_text())
               for n in names]
    figure = plot_roads(records)
    figure.savefig(RESULTS / f"structured{'-fast' if fast else ''}.png", dpi=110,
                   bbox_inches="tight")
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["train", "time", "draw"])
    parser.add_argument("--model", choices=sorted(SCHEDULES), default=None)
    parser.add_argument("--fast", action="store_true", help="a smoke run on MNIST subsets")
    parser.add_argument("--reuse-dense", action="store_true",
                        help="start from the dense baseline an earlier train run saved")
    args = parser.parse_args()
    names = [args.model] if args.model else sorted(SCHEDULES, reverse=True)
    if args.step == "train":
        for name in names:
            train(name, args.fast, args.reuse_dense)
    elif args.step == "time":
        time_all(names, args.fast)
    else:
        draw(names, args.fast)


if __name__ == "__main__":
    main()
