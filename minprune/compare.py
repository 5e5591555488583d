"""``minprune compare MODEL``: how far magnitude pruning goes -- four schedules on one footing.

Han et al.'s iterative rounds (Sec. 3), one-shot pruning, gradual magnitude pruning (Zhu & Gupta
2017, `minprune.prune.gradual`) and Dynamic Network Surgery (Guo et al. 2016,
`minprune.prune.surgery`) each start from the same dense baseline and get the same training
budget after it (`Comparison.budget` epochs), at a ladder of sizes: Han et al.'s per-layer keep
ratios (Tables 2, 3) times each of `Comparison.factors`.

Decisions are made on a validation split -- the last 5,000 training images, never trained on:
each schedule's best point is its most compressed run whose validation error is at most the
paper's baseline error (1.64% / 0.80%). The test set is read once, for the chosen points, at the
end. (``minprune reproduce`` still picks its "most compressed within the error" points by test
error; the README says so.)

Outputs go to ``results/MODEL/schedules/``: ``summary.json`` (every run: densities, compression,
validation error, seconds; the chosen points with their test error; the settings) and
``compare.png`` (validation error against compression per schedule, the chosen points' test errors
and the published points). Resumable: each finished run is saved with its model under ``WORK``
and a fingerprint of the settings; a killed comparison loses at most the run in progress.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import minprune.models as models
import minprune.random as minprune_random
from minprune.checkpoint import (
    atomic_write_json,
    load_checkpoint,
    load_json,
    save_checkpoint,
    save_json,
)
from minprune.data.batching import batch_count
from minprune.data.dataset import subset, validation_split
from minprune.data.mnist_loader import mnist
from minprune.fingerprint import check_same_run, dataset_digest, plain, state_digest
from minprune.paper import LATER_LENET_RECORDS, PAPER_KEEP_RATIOS, PAPER_SUMMARY
from minprune.phase import Phase
from minprune.prune.criteria import keep_ratio_prune
from minprune.prune.figures import plot_compression_curve
from minprune.prune.gradual import gradual_prune
from minprune.prune.masks import layer_density, layers_by_weight_name
from minprune.prune.retraining import geometric_keep_ratios, iterative_prune, retrain
from minprune.prune.surgery import network_surgery
from minprune.prune.tables import summary_row
from minprune.recipes import RECIPES
from minprune.settings import fast_mode
from minprune.train import evaluate, fit_phase

__all__ = ["Comparison", "COMPARISONS", "compare", "SCHEDULES"]

SCHEDULES = ("one-shot", "iterative", "gradual", "surgery")


@dataclass(frozen=True)
class Comparison:
    """The settings of one comparison. None was tuned on the test set: the learning rate is the
    paper's 1/10 of the training rate for every schedule, the ramp and intervals are the
    defaults of Zhu & Gupta and Guo et al., the sizes a ladder fixed in advance."""

    model: str
    budget: int  # training epochs after the dense baseline, the same for every schedule
    factors: tuple  # sizes: Han et al.'s per-layer keep ratios times each factor
    retrain_lr: float  # every schedule's learning rate (1/10 of the training rate, Sec. 3.2)
    iterative_rounds: int = 5
    gradual_ramp: float = 0.75  # the cubic ramp ends this far into the budget; then fine-tuning
    gradual_every: int = 100  # iterations between mask updates (Zhu & Gupta's dt)
    surgery_every: int = 1  # Guo et al. re-evaluate masks at every step, with a decaying chance
    validation_size: int = 5000
    batch_size: int = 64
    seed: int = 0


COMPARISONS = {
    "lenet-300-100": Comparison("lenet-300-100", budget=20, factors=(1.0, 0.5, 0.3, 0.2, 0.15),
                                retrain_lr=0.005),
    # Three sizes only: a LeNet-5 run takes 3-4 minutes on one core (conv2 dominates).
    "lenet5": Comparison("lenet5", budget=10, factors=(0.4, 0.2, 0.1), retrain_lr=0.002),
}


def fast_comparison(comparison: Comparison) -> Comparison:
    """A minutes-long comparison for tests (``--fast``): 2 epochs, two sizes."""
    return replace(comparison, budget=2, factors=(1.0, 0.3), iterative_rounds=2,
                   validation_size=1000, gradual_every=20, surgery_every=20)


def _phase(comparison: Comparison, train_set, epochs: int) -> Phase:
    """The one training phase every schedule runs: SGD at ``retrain_lr``, dropped 10x for the
    last quarter of the epochs."""
    per_epoch = batch_count(len(train_set), comparison.batch_size)
    return Phase(epochs=epochs, lr=comparison.retrain_lr, lr_policy="step", gamma=0.1,
                 step_size=max(1, int(0.75 * epochs * per_epoch)),
                 batch_size=comparison.batch_size)


def _ratios(comparison: Comparison, factor: float) -> dict:
    return {name: min(1.0, ratio * factor)
            for name, ratio in PAPER_KEEP_RATIOS[comparison.model].items()}


def _run_schedule(schedule: str, model, ratios: dict, comparison: Comparison, train_set,
                  validation, log) -> None:
    """Prune ``model`` to ``ratios`` with ``schedule`` inside the budget, in place."""
    budget = comparison.budget
    quiet = {"progress": False, "log": log}
    if schedule == "one-shot":
        keep_ratio_prune(model, ratios)
        retrain(model, train_set, None, _phase(comparison, train_set, budget),
                seed=comparison.seed, **quiet)
    elif schedule == "iterative":
        rounds = comparison.iterative_rounds
        plan = geometric_keep_ratios(ratios, rounds)
        iterative_prune(model, train_set, validation, [{"keep_ratio": r} for r in plan],
                        _phase(comparison, train_set, budget // rounds),
                        seed=comparison.seed, **quiet)
    elif schedule == "gradual":
        phase = _phase(comparison, train_set, budget)
        per_epoch = batch_count(len(train_set), comparison.batch_size)
        gradual_prune(model, train_set, None, phase, final_keep_ratio=ratios,
                      end_step=int(comparison.gradual_ramp * budget * per_epoch),
                      every=comparison.gradual_every, seed=comparison.seed, **quiet)
    elif schedule == "surgery":
        network_surgery(model, train_set, None, _phase(comparison, train_set, budget),
                        keep_ratio=ratios, every=comparison.surgery_every,
                        seed=comparison.seed, **quiet)
    else:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")


def _record(model, schedule: str, factor: float, validation, seconds: float) -> dict:
    row = summary_row(0.0, 0.0, model)
    return {"schedule": schedule, "factor": factor,
            "layer_density": {n: layer_density(layer)
                              for n, layer in layers_by_weight_name(model).items()},
            "parameters_after": row["parameters_after"], "compression": row["compression"],
            "validation_error": evaluate(model, validation)["error"], "seconds": seconds}


def _baseline(comparison: Comparison, recipe, train_set, validation, work: Path, log):
    minprune_random.manual_seed(comparison.seed)
    model = models.build(comparison.model)
    fit_phase(model, train_set, validation, recipe.train, seed=comparison.seed,
              checkpoint=work / "baseline.npz", progress=False, log=log)
    return model


def _copy(comparison: Comparison, model):
    minprune_random.manual_seed(comparison.seed)
    clone = models.build(comparison.model)
    clone.load_state_dict(model.state_dict())
    return clone


def _choose(runs: list[dict], error_limit: float) -> dict:
    """Per schedule, its most compressed run within ``error_limit`` on validation (or None)."""
    chosen = {}
    for schedule in SCHEDULES:
        within = [r for r in runs if r["schedule"] == schedule
                  and r["validation_error"] <= error_limit + 1e-12]
        chosen[schedule] = max(within, key=lambda r: r["compression"], default=None)
    return chosen


def compare(name: str, *, results_dir="results", work_dir=None, fast=None, data_dir=None,
            schedules=SCHEDULES, log=print, command=None) -> dict:
    """Run the comparison for ``name`` (``lenet-300-100`` or ``lenet5``); return the summary."""
    if name not in COMPARISONS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(COMPARISONS)}")
    unknown = [s for s in schedules if s not in SCHEDULES]
    if unknown:
        raise ValueError(f"unknown schedules {unknown}; expected some of {list(SCHEDULES)}")
    started = time.perf_counter()
    fast = fast_mode() if fast is None else fast
    comparison = fast_comparison(COMPARISONS[name]) if fast else COMPARISONS[name]
    recipe = RECIPES[name]
    if fast:
        recipe = replace(recipe, train=replace(recipe.train, epochs=2))
    train_all, test_set = mnist(data_dir)
    if fast:
        train_all, test_set = subset(train_all, 7000), subset(test_set, 2000)
    train_set, validation = validation_split(train_all, comparison.validation_size)
    work = Path(work_dir or f"runs/compare-{name}{'-fast' if fast else ''}")
    out = Path(results_dir) / (f"{name}-fast" if fast else name) / "schedules"
    out.mkdir(parents=True, exist_ok=True)

    baseline = _baseline(comparison, recipe, train_set, validation, work, log)
    baseline_validation = evaluate(baseline, validation)["error"]
    error_limit = PAPER_SUMMARY[name]["error_before"]
    fingerprint = plain({"comparison": asdict(comparison), "train": asdict(recipe.train),
                         "baseline": state_digest(baseline.state_dict()),
                         "train_data": dataset_digest(train_set),
                         "validation": dataset_digest(validation)})
    cache = work / "runs.json"
    runs = []
    if cache.exists():
        saved = load_json(cache, "saved comparison runs")
        check_same_run(cache, saved.get("fingerprint") if isinstance(saved, dict) else None,
                       fingerprint, f"delete {work} to run the comparison afresh")
        runs = saved["runs"]
    done = {(r["schedule"], r["factor"]) for r in runs}
    for schedule in schedules:
        for factor in comparison.factors:
            if (schedule, factor) in done:
                continue
            run_started = time.perf_counter()
            model = _copy(comparison, baseline)
            _run_schedule(schedule, model, _ratios(comparison, factor), comparison, train_set,
                          validation, lambda message: None)
            record = _record(model, schedule, factor, validation,
                             time.perf_counter() - run_started)
            save_checkpoint(work / f"{schedule}-{factor}.npz", model.state_dict(),
                            fingerprint=fingerprint)
            runs.append(record)
            atomic_write_json(cache, {"fingerprint": fingerprint, "runs": runs})
            log(f"{schedule} x{factor}: {record['compression']:.1f}x, validation error "
                f"{record['validation_error']:.2%} ({record['seconds']:.0f} s)")

    chosen = _choose(runs, error_limit)
    best = {}
    for schedule, run in chosen.items():  # the test set, read once per chosen point
        if run is None:
            best[schedule] = None
            continue
        model = _copy(comparison, baseline)
        state, _, meta = load_checkpoint(work / f"{schedule}-{run['factor']}.npz")
        check_same_run(work / f"{schedule}-{run['factor']}.npz", meta.get("fingerprint"),
                       fingerprint, f"delete {work} to run the comparison afresh")
        model.load_state_dict(state)
        best[schedule] = {**run, "test_error": evaluate(model, test_set)["error"]}
    baseline_test = evaluate(baseline, test_set)["error"]
    points = [{"compression": 1.0, "error": baseline_validation, "series": schedule}
              for schedule in schedules]
    points += [{"compression": r["compression"], "error": r["validation_error"],
                "series": r["schedule"]} for r in sorted(runs, key=lambda r: r["compression"])]
    published = LATER_LENET_RECORDS[name] + [
        {"label": f"{schedule} (chosen, test error)", "compression": point["compression"],
         "error": point["test_error"]} for schedule, point in best.items() if point]
    plot_compression_curve(
        points, out / "compare.png",
        f"{name}: four schedules, {comparison.budget} epochs each", baseline_error=error_limit,
        paper_points=published, error_label="Error (%): curves validation, stars test",
        caption=(f"Curves: validation error of each run (`minprune compare {name}`). Stars: "
                 "published test errors, and each schedule's chosen point (the most compressed "
                 "within the dashed limit on validation) with its test error."))
    summary = {
        "model": name, "fast": fast,
        "command": command or f"minprune compare {name}" + (" --fast" if fast else ""),
        "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
        "settings": asdict(comparison), "baseline_train": asdict(recipe.train),
        "error_limit": error_limit, "baseline_validation_error": baseline_validation,
        "baseline_test_error": baseline_test, "runs": runs, "best": best,
        "published": LATER_LENET_RECORDS[name],
        "wall_seconds_this_run": time.perf_counter() - started,
    }
    save_json(out / "summary.json", summary)
    for schedule, point in best.items():
        log(f"{schedule}: " + ("no run within the error limit" if point is None else
            f"{point['compression']:.1f}x at {point['test_error']:.2%} test error "
            f"({point['validation_error']:.2%} validation)"))
    return summary


def main_command(args) -> int:
    """Entry for ``minprune compare`` (see ``minprune.cli``)."""
    compare(args.model, results_dir=args.results, work_dir=args.work,
            fast=True if args.fast else None, data_dir=args.data,
            schedules=tuple(args.schedules.split(",")) if args.schedules else SCHEDULES,
            command="minprune " + shlex.join(args.argv))
    return 0
