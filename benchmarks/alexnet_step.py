"""One AlexNet training step, minprune against PyTorch on the same device, same-run ratio.

    python benchmarks/alexnet_step.py                    # CPU, batch 2 (the issue's CPU check)
    python benchmarks/alexnet_step.py --batch 256 --device cuda   # on a GPU machine

A step is forward, cross-entropy, backward and an SGD-momentum update (lr 0.01, momentum 0.9,
weight decay 5e-4) of Caffe's AlexNet (`minprune.nn.models.alexnet`, 60,965,224 parameters) on
random 227 x 227 images; PyTorch runs the very same network, converted with `minprune.interop.torch`
(same layers, groups, LRN, dropout). The median of ``--steps`` timed steps after two warm-up
steps is reported for each, and the ratio minprune / PyTorch, both measured in this run. Results
are appended to ``results/bench_alexnet.json`` with the command, thread settings and machine.
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
import minprune.autograd.functional as F
from minprune.nn.models import alexnet
from minprune.training.optim import SGD

RESULTS = Path(__file__).resolve().parent.parent / "results" / "bench_alexnet.json"


def _median_seconds(step, steps: int) -> float:
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def minprune_step_seconds(images, labels, steps: int, device: str) -> float:
    minprune.manual_seed(0)
    model = alexnet()
    if device != "cpu":
        model.to(device)
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        loss.item()  # waits for the device

    return _median_seconds(step, steps)


def torch_step_seconds(images, labels, steps: int, device: str) -> float:
    import torch

    from minprune.interop.torch import to_torch

    minprune.manual_seed(0)
    net = to_torch(alexnet(), device=device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.from_numpy(images).to(device)
    y = torch.from_numpy(labels).to(device)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
        loss.item()

    return _median_seconds(step, steps)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = (rng.random((args.batch, 3, 227, 227), dtype=np.float32) - 0.5) * 100
    labels = rng.integers(0, 1000, args.batch)
    ours = minprune_step_seconds(images, labels, args.steps, args.device)
    print(f"minprune AlexNet step, batch {args.batch}, {args.device}: {ours * 1000:.0f} ms")
    result = {"batch": args.batch, "device": args.device, "steps": args.steps,
              "minprune_seconds": ours}
    try:
        theirs = torch_step_seconds(images, labels, args.steps, args.device)
    except (ImportError, AssertionError, RuntimeError) as error:  # no torch, or no CUDA build
        print(f"no PyTorch reference time on {args.device}: {error}")
    else:
        result.update(torch_seconds=theirs, ratio=ours / theirs)
        print(f"PyTorch  AlexNet step, batch {args.batch}, {args.device}: {theirs * 1000:.0f} ms"
              f"  -> minprune / PyTorch = {ours / theirs:.2f}x")
    result.update(
        command="python benchmarks/alexnet_step.py " + " ".join(sys.argv[1:] if argv is None
                                                               else argv),
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        threads={name: os.environ.get(name) for name in
                 ("OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")},
    )
    if not args.no_record:
        records = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        records.append(result)
        RESULTS.write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
