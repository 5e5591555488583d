"""``minprune reproduce MODEL``: the paper's LeNet results, end to end, resumable.

Stages, one function each, saved as they complete under ``WORK`` (default
``runs/reproduce-MODEL``) so that a killed run picks up where it stopped:

1. **baseline** -- train the dense network (`minprune.prune.recipes`), or reuse its checkpoint;
2. **sensitivity** -- each layer pruned alone at a sweep of keep ratios, no retraining (Sec. 5,
   Fig. 6);
3. **paper** -- iterative prune + retrain to the paper's per-layer Weights% (Tables 2, 3);
4. **beyond** -- more rounds while the error stays near the baseline's;
5. **tradeoff** -- the five curves of the paper's Fig. 5 (where the recipe asks for them).

The recipe says what each stage compares with; outputs go to ``results/MODEL/``:
``summary.json`` (every number, the command, wall times, the machine), ``table.txt`` (the
per-layer table beside the paper's) and the figures.

This file runs the stages in order and writes the summary; stages 1-4 are in
`reproduce_stages`, stage 5 in `reproduce_tradeoff`, the tables, figures and curve in
`reproduce_report`.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import asdict
from pathlib import Path

from minprune.base.arrays import check_device, cupy_module
from minprune.base.faults import kill_point
from minprune.base.settings import fast_mode
from minprune.commands.reproduce_report import (
    compression_curve,
    paper_report,
    rounds_with_quality_source,
    storage,
)
from minprune.commands.reproduce_stages import (
    Run,
    baseline_stage,
    beyond_stage,
    paper_stage,
    sensitivity_stage,
    train_baseline,
)
from minprune.commands.reproduce_tradeoff import tradeoff_stage
from minprune.data.dataset import subset
from minprune.data.image_folder import ImageFolder
from minprune.data.mnist_loader import mnist
from minprune.prune.masks import layers_by_weight_name
from minprune.prune.recipes import RECIPES, Recipe, fast_recipe
from minprune.training.checkpoint import save_json

__all__ = ["reproduce", "fast_recipe", "train_baseline"]


def _data(recipe: Recipe, data_dir, fast: bool):
    """The training and test sets: MNIST (``data_dir`` or $MINPRUNE_DATA; a 6,000 / 2,000 subset
    in fast mode), or an ImageNet-style folder ``data_dir`` with ``train/`` and ``val/`` class
    folders (`minprune.data.ImageFolder`, the recipe's crop size)."""
    if recipe.dataset == "mnist":
        train_set, test_set = mnist(data_dir)
        if fast:
            train_set, test_set = subset(train_set, 6000), subset(test_set, 2000)
        return train_set, test_set
    if data_dir is None:
        raise ValueError(f"reproduce {recipe.model}: give --data DIR, a folder with train/ and "
                         "val/ holding one folder of images per class (ImageNet's layout)")
    root = Path(data_dir)
    return (ImageFolder(root / "train", train=True, crop=recipe.image_size),
            ImageFolder(root / "val", train=False, crop=recipe.image_size))


def reproduce(name: str, *, results_dir="results", work_dir=None, fast=None, tradeoff=None,
              data_dir=None, checkpoint=None, device=None, progress=False, log=print,
              command=None) -> dict:
    """Run every stage for ``name`` (a key of `minprune.prune.recipes.RECIPES`); return the summary.

    ``fast`` (default: `minprune.base.settings.fast_mode`, from ``MINPRUNE_FAST``) runs
    :func:`fast_recipe` on a data subset; ``tradeoff`` (default: the recipe's) runs Fig. 5.
    ``data_dir``: MNIST's folder (default $MINPRUNE_DATA), or for AlexNet and VGG-16 the image
    folder with ``train/`` and ``val/``. ``checkpoint``: a trained dense model to start from
    instead of training the baseline. ``device`` ("cuda"): where training and retraining run;
    pruning, sensitivity, tables and exports always run on the host."""
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(RECIPES)}")
    started = time.perf_counter()
    fast = fast_mode() if fast is None else fast
    recipe = fast_recipe(RECIPES[name]) if fast else RECIPES[name]
    work = Path(work_dir or f"runs/reproduce-{name}{'-fast' if fast else ''}")
    out = Path(results_dir) / (f"{name}-fast" if fast else name)
    out.mkdir(parents=True, exist_ok=True)
    if device is not None and check_device(device) == "cuda":
        cupy_module()  # no CuPy or no GPU: say which now, not after the data is loaded
    train_set, test_set = _data(recipe, data_dir, fast)
    run = Run(recipe, train_set, test_set, work, out, progress, log,
               start=Path(checkpoint) if checkpoint is not None else None, device=device)

    baseline, baseline_error, train_seconds = baseline_stage(run)
    kill_point("stage")
    dense_weights = {n: layer.weight.data.copy()
                     for n, layer in layers_by_weight_name(baseline).items()}
    sensitivity = sensitivity_stage(run, baseline)
    kill_point("stage")
    pruned, paper_records = paper_stage(run, baseline)
    kill_point("stage")
    table, dense_table, row = paper_report(run, baseline, baseline_error, pruned, paper_records,
                                           dense_weights)
    bytes_on_disk = storage(pruned, baseline, work)
    kill_point("stage")
    beyond_records = beyond_stage(run, pruned, baseline_error)
    kill_point("stage")
    beyond = compression_curve(run, baseline_error, pruned, paper_records, beyond_records)
    run_tradeoff = recipe.tradeoff if tradeoff is None else tradeoff
    tradeoff_info = (tradeoff_stage(run, baseline, paper_records + beyond_records)
                     if run_tradeoff else None)
    kill_point("stage")

    summary = {
        "model": name,
        "fast": fast,
        "command": command or f"minprune reproduce {name}" + (" --fast" if fast else ""),
        "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
        "baseline_error": baseline_error,
        "baseline_train_seconds": train_seconds,
        "paper_point": row,
        "paper_rounds": rounds_with_quality_source(paper_records),
        "layer_table": table,
        "dense_layer_table": dense_table,
        "storage": bytes_on_disk,
        "paper": recipe.paper,
        "beyond": beyond,
        "sensitivity": sensitivity,
        "tradeoff": tradeoff_info,
        "seconds": run.seconds,
        "wall_seconds_this_run": time.perf_counter() - started,
        "recipe": {"train": asdict(recipe.train), "retrain": asdict(recipe.retrain),
                   "targets": recipe.targets, "rounds": recipe.rounds,
                   "dropout": recipe.dropout, "seed": recipe.seed},
    }
    save_json(out / "summary.json", summary)
    best, best_paper = beyond["best_within_baseline_error"], beyond[
        "best_within_paper_baseline_error"]
    log(f"{name}: {row['compression']:.1f}x at {row['error_after']:.2%} (paper point); most "
        f"compressed within our baseline error: {best['compression']:.1f}x at "
        f"{best['error']:.2%}, within the paper's: {best_paper['compression']:.1f}x at "
        f"{best_paper['error']:.2%}; wrote {out}")
    return summary


def main_command(args) -> int:
    """Entry for ``minprune reproduce`` (see ``minprune.commands.cli``); ``--fast`` forces the fast
    mode, otherwise ``MINPRUNE_FAST`` decides."""
    reproduce(args.model, results_dir=args.results, work_dir=args.work,
              fast=True if args.fast else None, data_dir=args.data, checkpoint=args.checkpoint,
              device=args.device,
              tradeoff=False if args.no_tradeoff else None,
              progress=False if args.no_progress else None,
              command="minprune " + shlex.join(args.argv))
    return 0
