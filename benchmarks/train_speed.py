"""Training speed: one epoch of MNIST at batch 64 with SGD momentum, minprune vs PyTorch CPU.

    python benchmarks/train_speed.py                 # both networks, 2 rounds
    python benchmarks/train_speed.py --model lenet5 --rounds 3

Both frameworks train the same architecture on the same batches (real MNIST when MINPRUNE_DATA or
the cache holds it, otherwise random images of the right shape: speed does not depend on pixel
values), with the same solver (lr 0.01, momentum 0.9, weight decay 5e-4). PyTorch is optional:
without it only minprune's times are printed. Each framework runs at each thread setting (1 and 2
threads: OpenBLAS and Numba for minprune, intra-op threads for torch) in its own process, one epoch
per round, the settings taking turns so that a slow spell of the machine hits all of them; the
best epoch of each framework is kept. The ratio is minprune's best over PyTorch's best, both
measured in this run; the targets are <= 0.9 for LeNet-300-100 and <= 1.0 for LeNet-5. Results
are appended to ``results/bench_train.json`` with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import minprune
import minprune.autograd.functional as F
import minprune.nn.models as models
from minprune.data import DatasetError, batches, mnist
from minprune.training.optim import SGD

RESULTS = Path(__file__).resolve().parent.parent / "results" / "bench_train.json"
TARGETS = {"lenet-300-100": 0.9, "lenet5": 1.0}  # minprune's epoch over PyTorch's, at most


def load_images(n_train: int):
    try:
        train, _ = mnist(download=False)
        return train.images[:n_train], train.labels[:n_train], "MNIST"
    except DatasetError:
        rng = np.random.default_rng(0)
        images = rng.random((n_train, 1, 28, 28), dtype=np.float32)
        return images, rng.integers(0, 10, n_train), "random images"


def minprune_epoch(name, images, labels, batch_size):
    minprune.manual_seed(0)
    model = models.build(name)
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for x, y in batches((images, labels), batch_size, rng=rng):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def torch_model(name, torch):
    nn = torch.nn
    if name == "lenet-300-100":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 300),
            nn.ReLU(),
            nn.Linear(300, 100),
            nn.ReLU(),
            nn.Linear(100, 10),
        )
    return nn.Sequential(
        nn.Conv2d(1, 20, 5),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 50, 5),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(800, 500),
        nn.ReLU(),
        nn.Linear(500, 10),
    )


def torch_epoch(name, images, labels, batch_size, torch):
    torch.manual_seed(0)
    model = torch_model(name, torch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for x, y in batches((images, labels), batch_size, rng=rng):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            model(torch.from_numpy(x)), torch.from_numpy(y.astype(np.int64))
        )
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def worker(args) -> int:
    """One framework at one thread setting (set by the parent through the environment): print the
    seconds of each timed epoch as JSON on the last line."""
    images, labels, _ = load_images(args.images)
    if args.framework == "torch":
        import torch

        torch.set_num_threads(args.threads)
        torch_epoch(args.model, images[:640], labels[:640], args.batch_size, torch)  # warm up
        times = [torch_epoch(args.model, images, labels, args.batch_size, torch)
                 for _ in range(args.repeats)]
    else:
        minprune_epoch(args.model, images[:640], labels[:640], args.batch_size)  # compile
        times = [minprune_epoch(args.model, images, labels, args.batch_size)
                 for _ in range(args.repeats)]
    print(json.dumps(times))
    return 0


def run_setting(framework: str, threads: int, model: str, args) -> list[float]:
    """Seconds per epoch of a fresh process: minprune's thread pools (OpenBLAS, Numba) are sized
    when the libraries load, so each setting gets its own interpreter; torch's too, alike."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--worker", framework, "--threads", str(threads),
               "--model", model, "--images", str(args.images), "--batch-size",
               str(args.batch_size), "--repeats", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["lenet-300-100", "lenet5", "both"], default="both")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=60_000, help="images per epoch")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds; each times one epoch of every framework and thread setting, "
                             "in turn, and the best epoch of each setting is kept")
    parser.add_argument("--threads", default="1,2", help="thread settings to try (best is kept)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--worker", choices=["minprune", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.framework = args.worker
        args.threads = int(args.threads)
        return worker(args)
    try:
        import torch
    except ImportError:
        torch = None
    frameworks = ["minprune"] + ([] if torch is None or args.no_torch else ["torch"])
    thread_settings = [int(t) for t in args.threads.split(",")]
    _, _, source = load_images(args.images)
    names = ["lenet-300-100", "lenet5"] if args.model == "both" else [args.model]
    print(f"{args.images} {source}, batch {args.batch_size}, {os.cpu_count()} cores"
          + (f", torch {torch.__version__}" if "torch" in frameworks else "")
          + f"; threads tried: {thread_settings}, {args.rounds} rounds")
    rows = []
    for name in names:
        times = {(f, t): [] for f in frameworks for t in thread_settings}
        for _ in range(args.rounds):
            for framework, threads in times:
                times[framework, threads] += run_setting(framework, threads, name, args)
        best = {f: min((min(v), t) for (g, t), v in times.items() if g == f) for f in frameworks}
        row = {"model": name,
               "seconds_per_epoch": {f"{f} {t} threads": [round(x, 3) for x in v]
                                     for (f, t), v in times.items()},
               "minprune_s": round(best["minprune"][0], 3),
               "minprune_threads": best["minprune"][1]}
        line = f"{name:14s} minprune {best['minprune'][0]:6.2f} s/epoch ({best['minprune'][1]} thr)"
        if "torch" in best:
            ratio = best["minprune"][0] / best["torch"][0]
            row |= {"torch_s": round(best["torch"][0], 3), "torch_threads": best["torch"][1],
                    "ratio": round(ratio, 3), "target_ratio_at_most": TARGETS[name],
                    "target_met": ratio <= TARGETS[name]}
            line += (f"   torch {best['torch'][0]:6.2f} s/epoch ({best['torch'][1]} thr)"
                     f"   ratio {ratio:.2f} (target <= {TARGETS[name]})")
        print(line, flush=True)
        rows.append(row)
    if not args.no_save:
        record = {
            "command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "load_average_1min": round(os.getloadavg()[0], 2),
            "data": source,
            "batch_size": args.batch_size,
            "images": args.images,
            "results": rows,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        RESULTS.parent.mkdir(exist_ok=True)
        history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        RESULTS.write_text(json.dumps(history + [record], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
