"""``minprune reproduce MODEL``: the paper's LeNet results, end to end, resumable.

Stages, one function each, saved as they complete under ``WORK`` (default
``runs/reproduce-MODEL``) so that a killed run picks up where it stopped:

1. **baseline** -- train the dense network (`minprune.prune.recipes`), or reuse its checkpoint;
2. **sensitivity** -- each layer pruned alone at a sweep of keep ratios, no retraining (Sec. 4);
3. **paper** -- iterative prune + retrain to the paper's per-layer Weights% (Tables 2, 3);
4. **beyond** -- more rounds while the error stays near the baseline's;
5. **tradeoff** -- the five curves of the paper's Fig. 5 (where the recipe asks for them).

The recipe says what each stage compares with; outputs go to ``results/MODEL/``:
``summary.json`` (every number, the command, wall times, the machine), ``table.txt`` (the
per-layer table beside the paper's) and the figures.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

import minprune.base.random as minprune_random
import minprune.nn.models as models
from minprune.base.arrays import check_device, cupy_module
from minprune.base.faults import kill_point
from minprune.base.settings import fast_mode
from minprune.data.dataset import Dataset, subset
from minprune.data.image_folder import ImageFolder
from minprune.data.mnist_loader import mnist
from minprune.prune.criteria import keep_ratio_prune, layer_std
from minprune.prune.dropout import dropout_ratios
from minprune.prune.figures import (
    plot_compression_curve,
    plot_mask,
    plot_sensitivity,
    plot_tradeoff,
    plot_weight_histograms,
)
from minprune.prune.formatting import format_summary, format_table
from minprune.prune.masks import layer_density, layers_by_weight_name
from minprune.prune.recipes import RECIPES, Recipe, fast_recipe, keep_ratio_plan
from minprune.prune.retraining import iterative_prune, retrain
from minprune.prune.sensitivity import sensitivity_analysis
from minprune.prune.tables import layer_table, summary_row
from minprune.sparse.export import save_sparse
from minprune.sparse.storage import storage_report
from minprune.training.checkpoint import atomic_write_json, load_checkpoint, load_json, save_json
from minprune.training.fingerprint import check_same_run, dataset_digest, plain, state_digest
from minprune.training.fit import evaluate, fit_phase

__all__ = ["reproduce", "fast_recipe", "train_baseline"]


@dataclass
class _Run:
    """What every stage of one ``reproduce`` run reads: the recipe, data, folders, logging."""

    recipe: Recipe
    train_set: Dataset
    test_set: Dataset
    work: Path
    out: Path
    progress: bool
    log: object
    start: Path | None = None
    device: str | None = None
    seconds: dict = field(default_factory=dict)

    def timed(self, stage: str, started: float) -> None:
        self.seconds[stage] = time.perf_counter() - started


def _fresh_model(recipe: Recipe):
    minprune_random.manual_seed(recipe.seed)
    return models.build(recipe.model, dropout=recipe.dropout)


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


def _copy(recipe: Recipe, model):
    clone = _fresh_model(recipe)
    clone.load_state_dict(model.state_dict())
    return clone


def train_baseline(recipe: Recipe, train_set, test_set, work: Path, *, l1: float = 0.0,
                   start=None, device=None, progress=False, log=print):
    """Train (or resume, or reuse) the dense baseline; return (model, error, seconds). With
    ``start`` (a checkpoint of a trained dense model), load it instead of training."""
    model = _fresh_model(recipe)
    if start is not None:
        state, _, _ = load_checkpoint(start)
        try:
            model.load_state_dict(state)
        except (KeyError, ValueError) as error:
            raise ValueError(f"{start} does not hold a {recipe.model}: {error}") from None
        log(f"baseline {recipe.model}: loaded {start}, not trained")
        return model, evaluate(model, test_set)["error"], 0.0
    phase = recipe.train if not l1 else replace(recipe.train, weight_decay=0.0, l1=l1)
    history = fit_phase(model, train_set, test_set, phase, seed=recipe.seed,
                        checkpoint=work / "checkpoint.npz", progress=progress, log=log,
                        device=device)
    error = evaluate(model, test_set)["error"]
    return model, error, sum(record["seconds"] for record in history)


def _keep_ratio_round(ratios: dict):
    """One round: threshold each layer at the magnitude that keeps ``ratios``; report the
    equivalent quality (threshold / std of the surviving weights), the paper's parameter."""
    def prune_round(model):
        stds = {name: layer_std(layer) for name, layer in layers_by_weight_name(model).items()}
        thresholds = keep_ratio_prune(model, ratios)
        return {name: thresholds[name] / stds[name] if stds[name] else 0.0 for name in thresholds}
    return prune_round


# ---- 1. the dense baseline ------------------------------------------------------------------
def _baseline_stage(run: _Run):
    started = time.perf_counter()
    baseline, error, train_seconds = train_baseline(
        run.recipe, run.train_set, run.test_set, run.work / "baseline", start=run.start,
        device=run.device, progress=run.progress, log=run.log)
    run.timed("baseline", started)
    run.log(f"baseline {run.recipe.model}: test error {error:.2%}")
    return baseline, error, train_seconds


# ---- 2. sensitivity of each layer, no retraining --------------------------------------------
def _sensitivity_stage(run: _Run, baseline) -> list[dict]:
    started = time.perf_counter()
    sensitivity_set = subset(run.test_set, min(run.recipe.sensitivity_images,
                                               len(run.test_set)))
    rows = sensitivity_analysis(baseline, sensitivity_set,
                                keep_ratios=list(run.recipe.sensitivity_keep_ratios))
    plot_sensitivity(rows, run.out / "sensitivity.png",
                     f"{run.recipe.model}: each layer pruned alone, no retraining")
    run.timed("sensitivity", started)
    return rows


# ---- 3. iterative pruning to the paper's per-layer densities --------------------------------
def _paper_stage(run: _Run, baseline):
    recipe = run.recipe
    started = time.perf_counter()
    pruned = _copy(recipe, baseline)
    schedule = keep_ratio_plan(recipe, pruned)
    records = iterative_prune(
        pruned, run.train_set, run.test_set, [_keep_ratio_round(r) for r in schedule],
        recipe.retrain, state_dir=run.work / "paper", freeze=list(recipe.freeze_schedule) or None,
        seed=recipe.seed, plan=schedule, device=run.device, progress=run.progress, log=run.log)
    run.timed("paper", started)
    return pruned, records


def _paper_report(run: _Run, baseline, baseline_error, pruned, records, dense_weights):
    """The per-layer tables and the Table 1 line beside the paper's (``table.txt``), Figs. 4, 7."""
    recipe = run.recipe
    table = layer_table(pruned, run.test_set)
    dense_table = layer_table(baseline, run.test_set)
    row = summary_row(baseline_error, records[-1]["error_retrained"], pruned)
    text = (format_table(table, paper=recipe.paper_table or None) + "\n\n"
            + format_summary(row, paper=recipe.paper_summary) + "\n")
    (run.out / "table.txt").write_text(text)
    run.log(text)
    layers = layers_by_weight_name(pruned)
    name = recipe.histogram_layer
    plot_weight_histograms(dense_weights[name],
                           layers[name].weight.data[layers[name].weight_mask != 0],
                           run.out / "histogram.png", name)
    if recipe.mask_layer is not None:
        layer = recipe.mask_layer.removesuffix(".weight")
        plot_mask(layers[recipe.mask_layer].weight_mask, run.out / f"{layer}_mask.png",
                  f"{recipe.display_name} {layer} mask (black: kept)")
    return table, dense_table, row


def _storage(pruned, dense, work: Path) -> dict:
    """Bytes on disk of the pruned model saved sparse vs the dense model saved with ``np.savez``
    (weights and biases, no masks), plus the per-layer accounting of Sec. 4."""
    work.mkdir(parents=True, exist_ok=True)
    sparse_path, dense_path = work / "pruned_sparse.npz", work / "dense.npz"
    save_sparse(sparse_path, pruned.state_dict())
    np.savez(dense_path, **{name: p.data for name, p in dense.named_parameters()})
    layers = {}
    for name, layer in layers_by_weight_name(pruned).items():
        kind = "conv" if layer.weight.ndim == 4 else "fc"
        accounting = storage_report(layer.weight.data, layer.weight_mask, layer_kind=kind)
        layers[name] = {"dense_bytes": accounting.dense_bytes, "csr_bytes": accounting.csr_bytes,
                        "relative_index_bytes": accounting.relative_bytes,
                        "index_overhead": accounting.index_overhead}
    sparse_bytes, dense_bytes = sparse_path.stat().st_size, dense_path.stat().st_size
    return {"file_bytes_sparse": sparse_bytes, "file_bytes_dense": dense_bytes,
            "file_ratio": dense_bytes / sparse_bytes, "layers": layers}


# ---- 4. beyond the paper: keep pruning while the error stays near the baseline's ------------
def _beyond_stage(run: _Run, pruned, baseline_error) -> list[dict]:
    recipe = run.recipe
    started = time.perf_counter()
    beyond = _copy(recipe, pruned)
    original_dropout = dropout_ratios(beyond)  # the same in every call below (Sec. 3.2)
    ratios = {n: layer_density(layer) for n, layer in layers_by_weight_name(pruned).items()}
    plan = [{n: r * recipe.beyond_factor ** k for n, r in ratios.items()}
            for k in range(1, recipe.beyond_rounds + 1)]
    records = iterative_prune(
        beyond, run.train_set, run.test_set, [_keep_ratio_round(r) for r in plan],
        recipe.beyond_retrain or recipe.retrain, state_dir=run.work / "beyond",
        seed=recipe.seed + 100, plan=plan, original_dropout=original_dropout,
        # past the knee of the curve: stop
        stop_when=lambda record: record["error_retrained"] > 2 * baseline_error,
        device=run.device, progress=run.progress, log=run.log)
    run.timed("beyond", started)
    return records


def _points(records, model):
    """Curve points; compression counts parameters as Table 1 does (all weights and biases before,
    kept weights and all biases after)."""
    parameters = sum(p.size for p in model.parameters())
    weights = sum(layer.weight.size for layer in layers_by_weight_name(model).values())
    return [{"round": r["round"], "density": r["density"],
             "compression": parameters / (r["density"] * weights + parameters - weights),
             "error": r["error_retrained"], "error_pruned": r["error_pruned"]}
            for r in records]


def _most_compressed(curve, error_limit):
    """The most compressed point whose error is at most ``error_limit`` (the dense point at
    worst)."""
    within = [point for point in curve if point["error"] <= error_limit + 1e-12]
    return max(within, key=lambda point: point["compression"], default=curve[0])


def _compression_curve(run: _Run, baseline_error, pruned, paper_records, beyond_records):
    """Every round's (compression, error), the best points, and the figure beside the paper's."""
    curve = [{"round": 0, "density": 1.0, "compression": 1.0, "error": baseline_error}]
    curve += _points(paper_records, pruned)
    curve += [dict(p, round=p["round"] + len(paper_records))
              for p in _points(beyond_records, pruned)]
    paper = run.recipe.paper
    best = _most_compressed(curve, baseline_error)
    best_paper = _most_compressed(curve, paper.get("error_before", baseline_error))
    plot_compression_curve(curve, run.out / "compression.png",
                           f"{run.recipe.model}: iterative pruning, test error vs compression",
                           baseline_error=baseline_error, paper_points=paper.get("others"))
    return {"curve": curve, "best_within_baseline_error": best,
            "best_within_paper_baseline_error": best_paper}


# ---- 5. the five trade-off curves (Fig. 5) --------------------------------------------------
def _tradeoff_stage(run: _Run, baseline, records) -> dict:
    """Fig. 5: accuracy loss vs fraction pruned, five ways; results cached in tradeoff.json."""
    recipe, test_set = run.recipe, run.test_set
    started = time.perf_counter()
    l1_model, l1_error, _ = train_baseline(recipe, run.train_set, test_set,
                                           run.work / "baseline-l1", l1=recipe.tradeoff_l1,
                                           progress=run.progress, log=run.log)
    cache = run.work / "tradeoff.json"
    fingerprint = plain({
        "retrain": asdict(recipe.retrain), "l1": recipe.tradeoff_l1,
        "retrain_epochs": recipe.tradeoff_retrain_epochs, "seed": recipe.seed,
        "L2_start": state_digest(baseline.state_dict()),
        "L1_start": state_digest(l1_model.state_dict()),
        "train_data": dataset_digest(run.train_set), "test_data": dataset_digest(test_set)})
    done = {}
    if cache.exists():
        saved = load_json(cache, "cached trade-off curves")
        check_same_run(cache, saved.get("fingerprint") if isinstance(saved, dict) else None,
                       fingerprint, f"delete {cache} to compute the curves afresh")
        done = saved["results"]
    starts = {"L2": (baseline, recipe.retrain),
              "L1": (l1_model, replace(recipe.retrain, weight_decay=0.0, l1=recipe.tradeoff_l1))}
    base_accuracy = {"L2": evaluate(baseline, test_set)["accuracy"], "L1": 1.0 - l1_error}
    for fraction in recipe.tradeoff_fractions:
        for reg, (start, phase) in starts.items():
            key = f"{reg}:{fraction}"
            if key in done:
                continue
            model = _copy(recipe, start)
            keep_ratio_prune(model, 1.0 - fraction)
            without = evaluate(model, test_set)["accuracy"]
            retrain(model, run.train_set, None,
                    replace(phase, epochs=recipe.tradeoff_retrain_epochs), seed=recipe.seed,
                    progress=run.progress, log=run.log)
            with_retrain = evaluate(model, test_set)["accuracy"]
            done[key] = {"without": without - base_accuracy[reg],
                         "with": with_retrain - base_accuracy[reg]}
            atomic_write_json(cache, {"fingerprint": fingerprint, "results": done})
            run.log(f"tradeoff {key}: accuracy change {done[key]['without']:+.2%} without "
                    f"retraining, {done[key]['with']:+.2%} with")
    curves = {}
    for reg in ("L2", "L1"):
        curves[f"{reg} reg w/o retrain"] = [
            (f, done[f"{reg}:{f}"]["without"]) for f in recipe.tradeoff_fractions]
        curves[f"{reg} reg w/ retrain"] = [
            (f, done[f"{reg}:{f}"]["with"]) for f in recipe.tradeoff_fractions]
    curves["L2 reg w/ iterative prune and retrain"] = [
        (1.0 - r["density"], (1.0 - r["error_retrained"]) - base_accuracy["L2"])
        for r in records]
    plot_tradeoff(curves, run.out / "tradeoff.png", quantity="accuracy_change")
    run.timed("tradeoff", started)
    return {"l1_baseline_error": l1_error, "l1": recipe.tradeoff_l1,
            "curves": {k: [list(p) for p in v] for k, v in curves.items()}}


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
    run = _Run(recipe, train_set, test_set, work, out, progress, log,
               start=Path(checkpoint) if checkpoint is not None else None, device=device)

    baseline, baseline_error, train_seconds = _baseline_stage(run)
    kill_point("stage")
    dense_weights = {n: layer.weight.data.copy()
                     for n, layer in layers_by_weight_name(baseline).items()}
    sensitivity = _sensitivity_stage(run, baseline)
    kill_point("stage")
    pruned, paper_records = _paper_stage(run, baseline)
    kill_point("stage")
    table, dense_table, row = _paper_report(run, baseline, baseline_error, pruned, paper_records,
                                            dense_weights)
    storage = _storage(pruned, baseline, work)
    kill_point("stage")
    beyond_records = _beyond_stage(run, pruned, baseline_error)
    kill_point("stage")
    beyond = _compression_curve(run, baseline_error, pruned, paper_records, beyond_records)
    run_tradeoff = recipe.tradeoff if tradeoff is None else tradeoff
    tradeoff_info = (_tradeoff_stage(run, baseline, paper_records + beyond_records)
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
        "paper_rounds": paper_records,
        "layer_table": table,
        "dense_layer_table": dense_table,
        "storage": storage,
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
              tradeoff=False if args.no_tradeoff else None, progress=not args.no_progress,
              command="minprune " + shlex.join(args.argv))
    return 0
