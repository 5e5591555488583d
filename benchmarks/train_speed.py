"""Training speed: one epoch of MNIST at batch 64 with SGD momentum, minprune vs PyTorch CPU.

    python benchmarks/train_speed.py                 # both networks, one epoch each
    python benchmarks/train_speed.py --model lenet5 --repeats 2

Both frameworks train the same architecture on the same batches (real MNIST when MINPRUNE_DATA or
the cache holds it, otherwise random images of the right shape: speed does not depend on pixel
values), with the same solver (lr 0.01, momentum 0.9, weight decay 5e-4). PyTorch is optional:
without it only minprune's times are printed. The ratio is minprune's time over PyTorch's, both
measured in this run; the targets (issue: foundation) are <= 1.0 for LeNet-300-100 and <= 1.5 for
LeNet-5. Results are appended to ``results/bench_train.json`` with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import minprune
import minprune.functional as F
import minprune.models as models
from minprune.data import DatasetError, batches, mnist
from minprune.optim import SGD

RESULTS = Path(__file__).resolve().parent.parent / "results" / "bench_train.json"


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["lenet-300-100", "lenet5", "both"], default="both")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=60_000, help="images per epoch")
    parser.add_argument("--repeats", type=int, default=1, help="epochs timed; the best is kept")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        torch = None
    if args.no_torch:
        torch = None
    images, labels, source = load_images(args.images)
    names = ["lenet-300-100", "lenet5"] if args.model == "both" else [args.model]
    print(
        f"{len(images)} {source}, batch {args.batch_size}, {os.cpu_count()} cores"
        + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "")
    )
    rows = []
    for name in names:
        minprune_epoch(name, images[:640], labels[:640], args.batch_size)  # compile the kernels
        ours = min(
            minprune_epoch(name, images, labels, args.batch_size) for _ in range(args.repeats)
        )
        row = {"model": name, "minprune_s": ours}
        line = f"{name:14s} minprune {ours:6.2f} s/epoch"
        if torch is not None:
            theirs = min(
                torch_epoch(name, images, labels, args.batch_size, torch)
                for _ in range(args.repeats)
            )
            row |= {"torch_s": theirs, "ratio": ours / theirs}
            line += f"   torch {theirs:6.2f} s/epoch   ratio {ours / theirs:.2f}"
        print(line, flush=True)
        rows.append(row)
    if not args.no_save:
        record = {
            "command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "data": source,
            "batch_size": args.batch_size,
            "images": len(images),
            "results": rows,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        RESULTS.parent.mkdir(exist_ok=True)
        history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        RESULTS.write_text(json.dumps(history + [record], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
