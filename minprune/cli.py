"""The ``minprune`` command line.

    minprune train --model lenet-300-100 --epochs 20 --out runs/lenet-300-100

``train`` trains a model from scratch on MNIST with Caffe's LeNet solver settings by default (SGD,
lr 0.01, momentum 0.9, weight decay 5e-4, ``inv`` policy with gamma 1e-4 and power 0.75, batch 64),
checkpointing after every epoch to ``OUT/checkpoint.npz``; run the same command again to resume an
interrupted run. It writes ``OUT/summary.json`` (test error, epochs, wall time, the command) and
prints the test error.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from minprune import models
from minprune import random as minprune_random
from minprune.checkpoint import CheckpointError, atomic_write_json, load_checkpoint
from minprune.data import DatasetError, mnist
from minprune.optim import SGD
from minprune.schedules import LRPolicy
from minprune.train import TrainingDiverged, evaluate, fit

__all__ = ["main", "build_parser", "machine_description"]


def machine_description() -> str:
    """What the numbers were measured on, e.g. 'x86_64, 2 cores, Python 3.11.7'."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (defaults: Caffe's LeNet solver)")
    group.add_argument("--batch-size", type=int, default=64)
    group.add_argument("--lr", type=float, default=0.01, help="base learning rate")
    group.add_argument("--momentum", type=float, default=0.9)
    group.add_argument("--weight-decay", type=float, default=5e-4, help="L2 regularisation")
    group.add_argument("--l1", type=float, default=0.0, help="L1 regularisation")
    group.add_argument("--lr-policy", choices=["fixed", "step", "inv"], default="inv")
    group.add_argument("--gamma", type=float, default=1e-4, help="inv/step policy gamma")
    group.add_argument("--power", type=float, default=0.75, help="inv policy power")
    group.add_argument("--step-size", type=int, default=1, help="step policy: iterations per step")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minprune",
        description="Han et al. 2015, 'Learning both Weights and Connections', in NumPy + Numba.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a LeNet on MNIST from scratch")
    train.add_argument("--model", choices=sorted(models.MODELS), required=True)
    train.add_argument("--epochs", type=int, required=True)
    train.add_argument("--out", type=Path, required=True, help="output folder")
    train.add_argument("--dropout", type=float, default=0.0, help="dropout ratio (0: none)")
    _add_training_options(train)
    train.set_defaults(run=run_train)
    return parser


def run_train(args) -> int:
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    config = {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in vars(args).items()
        if key not in ("run", "no_progress", "epochs", "out", "data", "command", "argv")
    }
    checkpoint = args.out / "checkpoint.npz"
    if checkpoint.exists():
        _, _, meta = load_checkpoint(checkpoint)
        if meta.get("config") != config:
            raise ValueError(
                f"{checkpoint} was written with a different configuration "
                f"({meta.get('config')}); use another --out folder or delete it"
            )
    minprune_random.manual_seed(args.seed)
    train_set, test_set = mnist(args.data)
    model = models.build(args.model, dropout=args.dropout)
    optimizer = SGD(
        model.parameters(),
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        l1=args.l1,
    )
    policy = LRPolicy(args.lr_policy, args.lr, args.gamma, args.power, args.step_size)
    started = time.perf_counter()
    history = fit(
        model,
        optimizer,
        train_set,
        test_set,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr_policy=policy,
        seed=args.seed,
        checkpoint=checkpoint,
        progress=not args.no_progress,
        extra_meta={"config": config},
    )
    result = evaluate(model, test_set)
    summary = {
        "model": args.model,
        "test_error": result["error"],
        "test_loss": result["loss"],
        "parameters": sum(p.size for p in model.parameters()),
        "epochs": args.epochs,
        "iterations": history[-1]["iteration"] if history else 0,
        "train_seconds": sum(record["seconds"] for record in history),
        "wall_seconds_this_run": time.perf_counter() - started,
        "command": "minprune " + shlex.join(args.argv),
        "machine": machine_description(),
        "config": config,
        "history": history,
    }
    atomic_write_json(args.out / "summary.json", summary)
    print(f"{args.model}: test error {result['error']:.2%} after {args.epochs} epochs "
          f"({summary['train_seconds']:.0f} s of training); wrote {args.out / 'summary.json'}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except (ValueError, DatasetError, CheckpointError, TrainingDiverged) as error:
        print(f"minprune {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
