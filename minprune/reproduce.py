"""``minprune reproduce MODEL``: the paper's LeNet results, end to end, resumable.

Stages, each saved as it completes under ``WORK`` (default ``runs/reproduce-MODEL``), so a killed
run picks up where it stopped:

1. **baseline** -- train the dense network (``recipes.py``), or reuse its checkpoint;
2. **sensitivity** -- each layer pruned alone at a sweep of keep ratios, no retraining (Sec. 4);
3. **paper** -- iterative prune + retrain to the paper's per-layer Weights% (Tables 2, 3);
4. **beyond** -- more rounds while the error stays at or below the baseline's;
5. **tradeoff** (LeNet-300-100) -- the five curves of the paper's Fig. 5.

Outputs under ``results/MODEL/``: ``summary.json`` (every number, with the command, wall times and
the machine), ``table.txt`` (the per-layer table beside the paper's), and the figures.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from minprune import models
from minprune import random as minprune_random
from minprune.checkpoint import atomic_write_json
from minprune.data import Dataset, mnist, subset
from minprune.prune import figures, report
from minprune.prune.criteria import keep_ratio_prune, layer_std
from minprune.prune.masks import layer_density, prunable_layers
from minprune.prune.retrain import geometric_keep_ratios, iterative_prune, retrain
from minprune.prune.sensitivity import sensitivity_analysis
from minprune.recipes import RECIPES, Recipe
from minprune.sparse.export import save_sparse
from minprune.sparse.storage import storage_report
from minprune.train import evaluate, fit

__all__ = ["reproduce", "fast_recipe", "train_baseline"]


def fast_recipe(recipe: Recipe) -> Recipe:
    """A minutes-long version of ``recipe`` for tests and notebooks (``--fast``): few epochs and
    rounds. Its numbers show the pipeline works, not the paper's results."""
    return replace(
        recipe,
        train=replace(recipe.train, epochs=2),
        retrain=replace(recipe.retrain, epochs=1),
        rounds=2,
        beyond_rounds=2,
        sensitivity_keep_ratios=(1.0, 0.3, 0.1),
        tradeoff_fractions=(0.5, 0.9),
        tradeoff_retrain_epochs=1,
    )


def _fresh_model(recipe: Recipe):
    minprune_random.manual_seed(recipe.seed)
    return models.build(recipe.model, dropout=recipe.dropout)


def train_baseline(recipe: Recipe, train_set, test_set, work: Path, *, l1: float = 0.0,
                   progress=False, log=print):
    """Train (or resume, or reuse) the dense baseline; return (model, error, seconds)."""
    phase = recipe.train if not l1 else replace(recipe.train, weight_decay=0.0, l1=l1)
    model = _fresh_model(recipe)
    optimizer = phase.optimizer(model.parameters())
    history = fit(model, optimizer, train_set, test_set, epochs=phase.epochs,
                  batch_size=phase.batch_size, lr_policy=phase.policy(), seed=recipe.seed,
                  checkpoint=work / "checkpoint.npz", progress=progress, log=log)
    error = evaluate(model, test_set)["error"]
    return model, error, sum(record["seconds"] for record in history)


def _copy(recipe: Recipe, model):
    clone = _fresh_model(recipe)
    clone.load_state_dict(model.state_dict())
    return clone


def _keep_ratio_round(ratios: dict):
    """One round: threshold each layer at the magnitude that keeps ``ratios``; report the
    equivalent quality (threshold / std of the surviving weights), the paper's parameter."""
    def prune_round(model):
        stds = {name: layer_std(layer) for name, layer in prunable_layers(model).items()}
        thresholds = keep_ratio_prune(model, ratios)
        return {name: thresholds[name] / stds[name] if stds[name] else 0.0 for name in thresholds}
    return prune_round


def _storage(pruned, dense, work: Path) -> dict:
    """Bytes on disk of the pruned model saved sparse vs the dense model saved with ``np.savez``
    (weights and biases, no masks), plus the per-layer accounting of Sec. 4."""
    work.mkdir(parents=True, exist_ok=True)
    sparse_path, dense_path = work / "pruned_sparse.npz", work / "dense.npz"
    save_sparse(sparse_path, pruned.state_dict())
    np.savez(dense_path, **{name: p.data for name, p in dense.named_parameters()})
    layers = {}
    for name, layer in prunable_layers(pruned).items():
        kind = "conv" if layer.weight.ndim == 4 else "fc"
        accounting = storage_report(layer.weight.data, layer.weight_mask, layer_kind=kind)
        layers[name] = {"dense_bytes": accounting.dense_bytes, "csr_bytes": accounting.csr_bytes,
                        "relative_index_bytes": accounting.relative_bytes,
                        "index_overhead": accounting.index_overhead}
    sparse_bytes, dense_bytes = sparse_path.stat().st_size, dense_path.stat().st_size
    return {"file_bytes_sparse": sparse_bytes, "file_bytes_dense": dense_bytes,
            "file_ratio": dense_bytes / sparse_bytes, "layers": layers}


def _most_compressed(curve, error_limit):
    """The most compressed point whose error is at most ``error_limit`` (the dense point at
    worst)."""
    within = [point for point in curve if point["error"] <= error_limit + 1e-12]
    return max(within, key=lambda point: point["compression"], default=curve[0])


def _points(records, model):
    """Curve points; compression counts parameters as Table 1 does (all weights and biases before,
    kept weights and all biases after)."""
    parameters = sum(p.size for p in model.parameters())
    weights = sum(layer.weight.size for layer in prunable_layers(model).values())
    return [{"round": r["round"], "density": r["density"],
             "compression": parameters / (r["density"] * weights + parameters - weights),
             "error": r["error_retrained"], "error_pruned": r["error_pruned"]}
            for r in records]


def _tradeoff(recipe, baseline, train_set, test_set, work, paper_records, progress, log):
    """Fig. 5: accuracy loss vs fraction pruned, five ways; results cached in tradeoff.json."""
    cache = work / "tradeoff.json"
    done = json.loads(cache.read_text()) if cache.exists() else {}
    l1_model, l1_error, _ = train_baseline(recipe, train_set, test_set, work / "baseline-l1",
                                           l1=recipe.tradeoff_l1, progress=progress, log=log)
    starts = {"L2": (baseline, recipe.retrain),
              "L1": (l1_model, replace(recipe.retrain, weight_decay=0.0, l1=recipe.tradeoff_l1))}
    base_accuracy = {"L2": evaluate(baseline, test_set)["accuracy"],
                     "L1": 1.0 - l1_error}
    for fraction in recipe.tradeoff_fractions:
        for reg, (start, phase) in starts.items():
            key = f"{reg}:{fraction}"
            if key in done:
                continue
            model = _copy(recipe, start)
            keep_ratio_prune(model, 1.0 - fraction)
            without = evaluate(model, test_set)["accuracy"]
            retrain(model, train_set, None, replace(phase, epochs=recipe.tradeoff_retrain_epochs),
                    seed=recipe.seed, progress=progress, log=log)
            with_retrain = evaluate(model, test_set)["accuracy"]
            done[key] = {"without": without - base_accuracy[reg],
                         "with": with_retrain - base_accuracy[reg]}
            atomic_write_json(cache, done)
            log(f"tradeoff {key}: accuracy change {done[key]['without']:+.2%} without "
                f"retraining, {done[key]['with']:+.2%} with")
    curves = {}
    for reg in ("L2", "L1"):
        curves[f"{reg} reg w/o retrain"] = [
            (f, done[f"{reg}:{f}"]["without"]) for f in recipe.tradeoff_fractions]
        curves[f"{reg} reg w/ retrain"] = [
            (f, done[f"{reg}:{f}"]["with"]) for f in recipe.tradeoff_fractions]
    curves["L2 reg w/ iterative prune and retrain"] = [
        (1.0 - r["density"], (1.0 - r["error_retrained"]) - base_accuracy["L2"])
        for r in paper_records]
    return curves, {"l1_baseline_error": l1_error, "l1": recipe.tradeoff_l1}


def reproduce(name: str, *, results_dir="results", work_dir=None, fast=False, tradeoff=None,
              progress=False, log=print, command=None) -> dict:
    """Run every stage for ``name`` (``lenet-300-100`` or ``lenet5``); return the summary."""
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(RECIPES)}")
    started = time.perf_counter()
    recipe = fast_recipe(RECIPES[name]) if fast else RECIPES[name]
    work = Path(work_dir or f"runs/reproduce-{name}{'-fast' if fast else ''}")
    out = Path(results_dir) / (f"{name}-fast" if fast else name)
    out.mkdir(parents=True, exist_ok=True)
    tradeoff = (name == "lenet-300-100") if tradeoff is None else tradeoff
    train_set, test_set = mnist()
    if fast:
        train_set, test_set = subset(train_set, 6000), subset(test_set, 2000)
    timings = {}

    # 1. the dense baseline
    t = time.perf_counter()
    baseline, baseline_error, train_seconds = train_baseline(
        recipe, train_set, test_set, work / "baseline", progress=progress, log=log)
    timings["baseline"] = time.perf_counter() - t
    log(f"baseline {name}: test error {baseline_error:.2%}")
    dense_weights = {n: layer.weight.data.copy()
                     for n, layer in prunable_layers(baseline).items()}

    # 2. sensitivity of each layer, no retraining
    t = time.perf_counter()
    sensitivity_set = Dataset(test_set.images[:5000], test_set.labels[:5000])
    sensitivity = sensitivity_analysis(baseline, sensitivity_set,
                                       keep_ratios=list(recipe.sensitivity_keep_ratios))
    figures.plot_sensitivity(sensitivity, out / "sensitivity.png",
                             f"{name}: each layer pruned alone, no retraining")
    timings["sensitivity"] = time.perf_counter() - t

    # 3. iterative pruning to the paper's per-layer densities
    t = time.perf_counter()
    pruned = _copy(recipe, baseline)
    schedule = geometric_keep_ratios(recipe.targets, recipe.rounds)
    freeze = list(recipe.freeze_schedule) or None
    paper_records = iterative_prune(
        pruned, train_set, test_set, [_keep_ratio_round(r) for r in schedule], recipe.retrain,
        state_dir=work / "paper", freeze=freeze, seed=recipe.seed, plan=schedule,
        progress=progress, log=log)
    timings["paper"] = time.perf_counter() - t
    table = report.layer_table(pruned, test_set)
    dense_table = report.layer_table(baseline, test_set)
    pruned_error = paper_records[-1]["error_retrained"]
    row = report.summary_row(baseline_error, pruned_error, pruned)
    paper_table = report.PAPER_LENET_300_100 if name == "lenet-300-100" else report.PAPER_LENET5
    text = (report.format_table(table, paper=paper_table) + "\n\n"
            + report.format_summary(row, paper=report.PAPER_SUMMARY.get(name)) + "\n")
    (out / "table.txt").write_text(text)
    log(text)
    layer_name = "fc1.weight" if name == "lenet-300-100" else "conv2.weight"
    layer = prunable_layers(pruned)[layer_name]
    figures.plot_weight_histograms(dense_weights[layer_name],
                                   layer.weight.data[layer.weight_mask != 0],
                                   out / "histogram.png", layer_name)
    if name == "lenet-300-100":
        figures.plot_mask(pruned.fc1.weight_mask, out / "fc1_mask.png",
                          "LeNet-300-100 fc1 mask (black: kept)")

    storage = _storage(pruned, baseline, work)

    # 4. beyond the paper: keep pruning while the error stays at the baseline's
    t = time.perf_counter()
    beyond = _copy(recipe, pruned)
    ratios = {n: layer_density(layer) for n, layer in prunable_layers(pruned).items()}
    beyond_plan = [{n: r * recipe.beyond_factor ** k for n, r in ratios.items()}
                   for k in range(1, recipe.beyond_rounds + 1)]
    beyond_records = []
    for count in range(1, recipe.beyond_rounds + 1):
        if count < len(beyond_records):
            continue  # resumed: these rounds were saved by an earlier run
        beyond_records = iterative_prune(
            beyond, train_set, test_set, [_keep_ratio_round(r) for r in beyond_plan[:count]],
            recipe.beyond_retrain or recipe.retrain, state_dir=work / "beyond",
            seed=recipe.seed + 100, plan=beyond_plan, progress=progress, log=log)
        if beyond_records[-1]["error_retrained"] > 2 * baseline_error:
            break  # past the knee of the curve
    timings["beyond"] = time.perf_counter() - t
    curve = [{"round": 0, "density": 1.0, "compression": 1.0, "error": baseline_error}]
    curve += _points(paper_records, pruned)
    curve += [dict(p, round=p["round"] + len(paper_records))
              for p in _points(beyond_records, pruned)]
    best = _most_compressed(curve, baseline_error)
    best_paper = _most_compressed(curve, recipe.paper.get("error_before", baseline_error))
    figures.plot_compression_curve(curve, out / "compression.png",
                                   f"{name}: iterative pruning, test error vs compression",
                                   baseline_error=baseline_error,
                                   paper_points=recipe.paper.get("others"))

    # 5. the five trade-off curves (Fig. 5)
    tradeoff_info = None
    if tradeoff:
        t = time.perf_counter()
        curves, tradeoff_info = _tradeoff(recipe, baseline, train_set, test_set, work,
                                          paper_records + beyond_records, progress, log)
        figures.plot_tradeoff(curves, out / "tradeoff.png")
        tradeoff_info["curves"] = {k: [list(p) for p in v] for k, v in curves.items()}
        timings["tradeoff"] = time.perf_counter() - t

    summary = {
        "model": name,
        "fast": fast,
        "command": command or f"minprune reproduce {name}" + (" --fast" if fast else ""),
        "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
        "baseline_error": baseline_error,
        "baseline_train_seconds": train_seconds,
        "paper_point": row,
        "paper_rounds": paper_records,
        "layer_table": table,
        "dense_layer_table": dense_table,
        "storage": storage,
        "paper": recipe.paper,
        "beyond": {"curve": curve, "best_within_baseline_error": best,
                   "best_within_paper_baseline_error": best_paper},
        "sensitivity": sensitivity,
        "tradeoff": tradeoff_info,
        "seconds": timings,
        "wall_seconds_this_run": time.perf_counter() - started,
        "recipe": {"train": recipe.train.__dict__, "retrain": recipe.retrain.__dict__,
                   "targets": recipe.targets, "rounds": recipe.rounds,
                   "dropout": recipe.dropout, "seed": recipe.seed},
    }
    report.save_json(out / "summary.json", summary)
    log(f"{name}: {row['compression']:.1f}x at {pruned_error:.2%} (paper point); most "
        f"compressed within our baseline error: {best['compression']:.1f}x at "
        f"{best['error']:.2%}, within the paper's: {best_paper['compression']:.1f}x at "
        f"{best_paper['error']:.2%}; wrote {out}")
    return summary


def main_command(args) -> int:
    """Entry for ``minprune reproduce`` (see ``minprune.cli``)."""
    reproduce(args.model, results_dir=args.results, work_dir=args.work, fast=args.fast,
              tradeoff=False if args.no_tradeoff else None, progress=not args.no_progress,
              command="minprune " + shlex.join(args.argv))
    return 0

