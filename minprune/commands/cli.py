"""The ``minprune`` command line.

    minprune train --model lenet-300-100 --epochs 20 --out runs/lenet-300-100
    minprune prune --model lenet-300-100 --checkpoint runs/lenet-300-100/checkpoint.npz \
        --quality "fc1.weight=1.3,*=1.0" --rounds 3 --retrain-epochs 3 --out runs/pruned
    minprune sensitivity --model lenet5 --checkpoint runs/lenet5/checkpoint.npz --out runs/sens
    minprune reproduce lenet-300-100
    minprune compress lenet-300-100

``train`` trains a model from scratch on MNIST, by default with Caffe's LeNet solver settings
(`minprune.training.phase.Phase`), checkpointing after every epoch to ``OUT/checkpoint.npz``; run
the same command again to resume an interrupted run. It writes ``OUT/summary.json`` (test error,
epochs, wall time, the command) and prints the test error.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import minprune.base.random as minprune_random
import minprune.nn.models as models
from minprune.base.arrays import DeviceUnavailable
from minprune.base.paper import RETRAIN_LR_FACTOR
from minprune.commands.cli_bench import add_bench_parser
from minprune.commands.compress_cli import add_compress_parser
from minprune.data.dataset import DatasetError, subset
from minprune.data.mnist_loader import mnist
from minprune.prune.recipes import MNIST_MODELS, RECIPES
from minprune.training.checkpoint import (
    CheckpointError,
    atomic_write_json,
    load_checkpoint,
    load_model_checkpoint,
    save_json,
)
from minprune.training.fit import TrainingDiverged, evaluate, fit
from minprune.training.phase import Phase

__all__ = ["main", "build_parser", "machine_description", "version"]

# The training defaults (Caffe's LeNet solver) are Phase's; the options below show them.
DEFAULTS = Phase()


def version() -> str:
    """The installed minprune's version, as ``minprune --version`` prints it."""
    try:
        return importlib.metadata.version("minprune")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def machine_description() -> str:
    """What the numbers were measured on, e.g. 'x86_64, 2 cores, Python 3.11.7'."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (defaults: Caffe's LeNet solver)")
    group.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    group.add_argument("--lr", type=float, default=DEFAULTS.lr, help="base learning rate")
    group.add_argument("--momentum", type=float, default=DEFAULTS.momentum)
    group.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay,
                       help="L2 regularisation")
    group.add_argument("--l1", type=float, default=DEFAULTS.l1, help="L1 regularisation")
    group.add_argument("--lr-policy", choices=["fixed", "step", "inv"],
                       default=DEFAULTS.lr_policy)
    group.add_argument("--gamma", type=float, default=None,
                       help=f"inv/step policy gamma (inv: {DEFAULTS.gamma}; step: required)")
    group.add_argument("--power", type=float, default=DEFAULTS.power, help="inv policy power")
    group.add_argument("--step-size", type=int, default=None,
                       help="step policy: iterations per step (required with --lr-policy step)")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    group.add_argument("--no-progress", action="store_true",
                       help="no progress bar (default: bars when stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    """The ``minprune`` parser with its subcommands (``bench`` from
    `minprune.commands.cli_bench`)."""
    parser = argparse.ArgumentParser(
        prog="minprune",
        description="Han et al. 2015, 'Learning both Weights and Connections', in NumPy + Numba.",
    )
    parser.add_argument("--version", action="version", version=f"minprune {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a LeNet on MNIST from scratch")
    train.add_argument("--model", choices=MNIST_MODELS, required=True)
    train.add_argument("--epochs", type=int, required=True)
    train.add_argument("--out", type=Path, required=True, help="output folder")
    train.add_argument("--dropout", type=float, default=0.0, help="dropout ratio (0: none)")
    train.add_argument("--record", type=Path, default=None,
                       help="also merge this run's result into a JSON file of baselines "
                            "(e.g. results/baseline.json)")
    _add_training_options(train)
    train.set_defaults(run=run_train)

    prune = commands.add_parser("prune", help="prune a trained model, retraining after each round")
    prune.add_argument("--model", choices=MNIST_MODELS, required=True)
    prune.add_argument("--checkpoint", type=Path, required=True, help="a trained checkpoint")
    prune.add_argument("--out", type=Path, required=True)
    how = prune.add_mutually_exclusive_group(required=True)
    how.add_argument("--quality", type=per_layer_value,
                     help="threshold = quality x std per layer: '1.0' or 'fc1.weight=1.3,*=1.0'")
    how.add_argument("--keep-ratio", type=per_layer_value,
                     help="final fraction kept per layer, reached geometrically over the rounds")
    prune.add_argument("--std-of", choices=["surviving", "dense"], default="surviving")
    prune.add_argument("--rounds", type=int, default=1)
    prune.add_argument("--retrain-epochs", type=int, default=3)
    prune.add_argument("--retrain-lr", type=float, default=DEFAULTS.lr * RETRAIN_LR_FACTOR,
                       help="the paper: 1/10 of the original rate for LeNet")
    prune.add_argument("--retrain-l1", type=float, default=DEFAULTS.l1)
    prune.add_argument("--retrain-weight-decay", type=float, default=DEFAULTS.weight_decay)
    prune.add_argument("--freeze", choices=["conv", "fc"], default=None)
    prune.add_argument("--dropout", type=float, default=0.0)
    prune.add_argument("--data", default=None)
    prune.add_argument("--no-progress", action="store_true")
    prune.set_defaults(run=run_prune)

    sensitivity = commands.add_parser("sensitivity", help="prune each layer alone, no retraining")
    sensitivity.add_argument("--model", choices=MNIST_MODELS, required=True)
    sensitivity.add_argument("--checkpoint", type=Path, required=True)
    sensitivity.add_argument("--out", type=Path, required=True)
    sensitivity.add_argument("--keep-ratios", default="1,0.5,0.3,0.2,0.1,0.05,0.03,0.02,0.01")
    sensitivity.add_argument("--tolerance", type=float, default=0.005,
                             help="accuracy drop allowed when suggesting keep ratios")
    sensitivity.add_argument("--images", type=int, default=10_000, help="test images used")
    sensitivity.add_argument("--data", default=None)
    sensitivity.set_defaults(run=run_sensitivity)

    reproduce = commands.add_parser("reproduce", help="the paper's results, end to end")
    reproduce.add_argument("model", choices=sorted(RECIPES))
    reproduce.add_argument("--data", type=Path, default=None,
                           help="MNIST's folder (default $MINPRUNE_DATA); for alexnet and vgg16 "
                                "an image folder with train/ and val/ class folders")
    reproduce.add_argument("--checkpoint", type=Path, default=None,
                           help="a trained dense model to start from instead of training one")
    reproduce.add_argument("--device", choices=["cpu", "cuda"], default=None,
                           help="where training and retraining run (cuda: needs CuPy and a "
                                "GPU); pruning and tables run on the CPU")
    reproduce.add_argument("--results", type=Path, default=Path("results"))
    reproduce.add_argument("--work", type=Path, default=None,
                           help="where checkpoints go (default runs/reproduce-MODEL)")
    reproduce.add_argument("--fast", action="store_true",
                           help="minutes-long smoke run on a subset (not the paper's numbers); "
                                "MINPRUNE_FAST=1 does the same")
    reproduce.add_argument("--no-tradeoff", action="store_true", help="skip the Fig. 5 curves")
    reproduce.add_argument("--no-progress", action="store_true")
    reproduce.set_defaults(run=run_reproduce)

    compare = commands.add_parser(
        "compare", help="Han's iterative rounds beside one-shot, gradual pruning and surgery")
    compare.add_argument("model", choices=MNIST_MODELS)
    compare.add_argument("--results", type=Path, default=Path("results"))
    compare.add_argument("--work", type=Path, default=None,
                         help="where runs are saved (default runs/compare-MODEL)")
    compare.add_argument("--data", type=Path, default=None, help="MNIST (default $MINPRUNE_DATA)")
    compare.add_argument("--fast", action="store_true",
                         help="minutes-long smoke run on a subset (not the results)")
    compare.add_argument("--schedules", default=None,
                         help="comma-separated subset of one-shot,iterative,gradual,surgery")
    compare.add_argument("--budget", type=int, default=None,
                         help="training epochs per run after the baseline (default: the "
                              "model's, 30 / 10); another budget writes schedules-N-epochs/")
    compare.set_defaults(run=run_compare)

    add_compress_parser(commands)
    add_bench_parser(commands)
    return parser


def per_layer_value(text: str):
    """'1.0' -> 1.0; 'fc1.weight=1.3,*=1.0' -> {'fc1.weight': 1.3, '*': 1.0}."""
    try:
        if "=" not in text:
            return float(text)
        pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or 'layer=value,...' (e.g. 'fc1.weight=1.3,*=1.0'), got {text!r}"
        ) from None


def _load_trained(args):
    model = models.build(args.model, dropout=getattr(args, "dropout", 0.0))
    return load_model_checkpoint(model, args.checkpoint, args.model)


def run_prune(args) -> int:
    """``minprune prune``: prune-retrain rounds on a trained checkpoint, then the tables."""
    import minprune.prune.criteria as criteria
    from minprune.prune.formatting import format_summary, format_table
    from minprune.prune.masks import layers_by_weight_name, resolve_per_layer
    from minprune.prune.retraining import geometric_keep_ratios, iterative_prune
    from minprune.prune.tables import layer_table, summary_row

    if args.rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {args.rounds}")
    model = _load_trained(args)
    layers = layers_by_weight_name(model)
    names = list(layers)
    if args.quality is not None:
        resolve_per_layer(args.quality, names, "quality", criteria.check_quality)
        dense_std = {n: criteria.layer_std(layer) for n, layer in layers.items()}

        def one_round(m):
            return criteria.threshold_prune(m, args.quality, std_of=args.std_of,
                                            dense_std=dense_std if args.std_of == "dense" else None)
        rounds = [one_round] * args.rounds
        plan = [{"quality": args.quality, "std_of": args.std_of}] * args.rounds
    else:
        targets = resolve_per_layer(args.keep_ratio, names, "keep_ratio",
                                             criteria.check_keep_ratio)
        plan = [{"keep_ratio": r} for r in geometric_keep_ratios(targets, args.rounds)]
        rounds = [lambda m, r=spec["keep_ratio"]: criteria.keep_ratio_prune(m, r)
                  for spec in plan]
    train_set, test_set = mnist(args.data)
    dense_error = evaluate(model, test_set)["error"]
    phase = Phase(epochs=args.retrain_epochs, lr=args.retrain_lr, l1=args.retrain_l1,
                  weight_decay=args.retrain_weight_decay)
    records = iterative_prune(model, train_set, test_set, rounds, phase, state_dir=args.out,
                              freeze=args.freeze, plan=plan,
                              progress=False if args.no_progress else None)
    table = layer_table(model, test_set)
    row = summary_row(dense_error, records[-1]["error_retrained"], model)
    print(format_table(table) + "\n" + format_summary(row))
    save_json(args.out / "summary.json", {
        "command": "minprune " + shlex.join(args.argv), "machine": machine_description(),
        "summary": row, "layer_table": table, "rounds": records})
    return 0


def run_sensitivity(args) -> int:
    """``minprune sensitivity``: each layer pruned alone, the figure and suggested keep ratios."""
    from minprune.prune.figures import plot_sensitivity
    from minprune.prune.sensitivity import keep_ratios_for_tolerance, sensitivity_analysis

    ratios = [float(r) for r in args.keep_ratios.split(",")]
    model = _load_trained(args)
    _, test_set = mnist(args.data)
    test_set = subset(test_set, min(args.images, len(test_set)))
    rows = sensitivity_analysis(model, test_set, keep_ratios=ratios)
    accuracy = evaluate(model, test_set)["accuracy"]
    suggested = keep_ratios_for_tolerance(rows, args.tolerance, accuracy)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_sensitivity(rows, args.out / "sensitivity.png",
                     f"{args.model}: each layer pruned alone, no retraining")
    save_json(args.out / "sensitivity.json", {
        "command": "minprune " + shlex.join(args.argv), "machine": machine_description(),
        "baseline_accuracy": accuracy, "rows": rows, "suggested_keep_ratios": suggested})
    for row in rows:
        print(f"{row['layer']:>14s} keep {row['keep_ratio']:6.1%}  accuracy {row['accuracy']:.2%}")
    print(f"keep ratios within a {args.tolerance:.1%} accuracy drop: {suggested}")
    return 0


def run_reproduce(args) -> int:
    """``minprune reproduce``: see `minprune.commands.reproduce`."""
    from minprune.commands.reproduce import main_command

    return main_command(args)


def run_compare(args) -> int:
    """``minprune compare``: see `minprune.commands.compare`."""
    from minprune.commands.compare import main_command

    return main_command(args)


def _policy_settings(args) -> None:
    """Fill --gamma and --step-size with Caffe's inv defaults, unless --lr-policy step needs the
    user's own (Phase's gamma 1e-4 and step size 1 would take the rate to nothing at once)."""
    if args.lr_policy == "step" and (args.gamma is None or args.step_size is None):
        raise ValueError("--lr-policy step needs --gamma and --step-size, e.g. --gamma 0.1 "
                         "--step-size 14000 (iterations between drops)")
    args.gamma = DEFAULTS.gamma if args.gamma is None else args.gamma
    args.step_size = DEFAULTS.step_size if args.step_size is None else args.step_size


def run_train(args) -> int:
    """``minprune train``: train from scratch (resuming from OUT's checkpoint), write a summary."""
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    _policy_settings(args)
    config = {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in vars(args).items()
        if key not in ("run", "no_progress", "epochs", "out", "data", "command", "argv", "record")
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
    phase = Phase(epochs=args.epochs, lr=args.lr, momentum=args.momentum,
                  weight_decay=args.weight_decay, l1=args.l1, lr_policy=args.lr_policy,
                  gamma=args.gamma, power=args.power, step_size=args.step_size,
                  batch_size=args.batch_size)
    optimizer = phase.optimizer(model.parameters())
    started = time.perf_counter()
    history = fit(
        model,
        optimizer,
        train_set,
        test_set,
        epochs=phase.epochs,
        batch_size=phase.batch_size,
        lr_policy=phase.policy(),
        seed=args.seed,
        checkpoint=checkpoint,
        progress=False if args.no_progress else None,
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
    if args.record is not None:
        recorded = json.loads(args.record.read_text()) if args.record.exists() else {}
        recorded[args.model] = {k: v for k, v in summary.items() if k != "history"}
        atomic_write_json(args.record, recorded)
    print(f"{args.model}: test error {result['error']:.2%} after {args.epochs} epochs "
          f"({summary['train_seconds']:.0f} s of training); wrote {args.out / 'summary.json'}")
    return 0


def main(argv=None) -> int:
    """Run the command line; errors the user can fix print one line and return 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except (ValueError, DatasetError, CheckpointError, TrainingDiverged,
            DeviceUnavailable) as error:
        print(f"minprune {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
