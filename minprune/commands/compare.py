"""``minprune compare MODEL``: how far magnitude pruning goes -- four schedules on one footing.

Han et al.'s iterative rounds (Sec. 3.4), one-shot pruning, gradual magnitude pruning (Zhu & Gupta
2017, `minprune.prune.gradual`) and Dynamic Network Surgery (Guo et al. 2016,
`minprune.prune.surgery`, holding its size) each start from the same dense baseline and get the
same training budget after it (`Comparison.budget` epochs).

Every decision is made on a validation split -- the last 5,000 training images, never trained on:

1. **search**: at the target size (60x for LeNet-300-100, 110x for LeNet-5), each schedule runs
   with every learning rate of `Comparison.learning_rates` and every allocation of
   `Comparison.allocations` (how the size is shared among layers,
   `minprune.prune.allocation`); its setting is the one with the lowest validation error;
2. **ladder**: each schedule, with its setting, at every size of `Comparison.compressions`;
3. **chosen point**: each schedule's most compressed ladder run whose validation error is at most
   the dense baseline's plus `Comparison.tolerance` -- "no loss of accuracy", as Table 1 has it.

The test set is read once per schedule, at the end, for its chosen point and its run at the
target size. (``minprune reproduce`` still picks its "most compressed within the error" points by
test error; the README says so.)

Outputs go to ``results/MODEL/schedules/``: ``summary.json`` (every run: its setting, densities,
compression, validation error, seconds; each schedule's setting, chosen point and target-size
run with their test errors) and ``compare.png`` (validation error against compression per
schedule, the test errors read and the published points). Resumable: each finished run is saved
with its model under ``WORK`` and a fingerprint of the settings; a killed comparison loses at
most the run in progress.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import minprune.base.random as minprune_random
import minprune.nn.models as models
from minprune.base.paper import LATER_LENET_RECORDS, PAPER_KEEP_RATIOS, PAPER_SUMMARY
from minprune.base.settings import fast_mode
from minprune.data.batching import batch_count
from minprune.data.dataset import subset, validation_split
from minprune.data.mnist_loader import mnist
from minprune.nn.module import copy_model
from minprune.prune.allocation import keep_ratios_for_compression
from minprune.prune.criteria import keep_ratio_prune
from minprune.prune.figures import plot_compression_curve
from minprune.prune.gradual import gradual_prune
from minprune.prune.masks import layer_density, layers_by_weight_name
from minprune.prune.recipes import RECIPES
from minprune.prune.retraining import geometric_keep_ratios, iterative_prune, retrain
from minprune.prune.surgery import network_surgery
from minprune.prune.tables import summary_row
from minprune.training.checkpoint import (
    atomic_write_json,
    load_checkpoint,
    load_json,
    save_checkpoint,
    save_json,
)
from minprune.training.fingerprint import check_same_run, dataset_digest, plain, state_digest
from minprune.training.fit import evaluate, fit_phase
from minprune.training.phase import Phase

__all__ = ["Comparison", "COMPARISONS", "compare", "SCHEDULES"]


@dataclass(frozen=True)
class Comparison:
    """The settings of one comparison, fixed before it ran; what they leave open
    (``learning_rates`` x ``allocations``) is searched per schedule on the validation split."""

    model: str
    budget: int  # training epochs after the dense baseline, the same for every schedule
    compressions: tuple  # the ladder of sizes (Table 1's count: every weight and bias)
    target: float  # the size the search runs at
    learning_rates: tuple  # searched; the paper's retraining rate is 1/10 of training's
    allocations: tuple  # searched: exponents of `keep_ratios_for_compression` (0: Table 2/3)
    tolerance: float = 0.001  # chosen point: validation error <= the baseline's + this
    iterative_rounds: int = 5
    gradual_ramp: float = 0.75  # the cubic ramp ends this far into the budget; then fine-tuning
    gradual_every: int = 100  # iterations between mask updates (Zhu & Gupta's dt)
    surgery_every: int = 10  # iterations between mask re-evaluations (Guo et al.: 1)
    validation_size: int = 5000
    batch_size: int = 64
    seed: int = 0


COMPARISONS = {
    "lenet-300-100": Comparison("lenet-300-100", budget=30, compressions=(12, 24, 40, 60, 80),
                                target=60, learning_rates=(0.005, 0.02),
                                allocations=(0.0, 0.25, 0.5)),
    # LeNet-5 epochs cost ~12x LeNet-300-100's (its convolutions): a smaller ladder, 10 epochs.
    "lenet5": Comparison("lenet5", budget=10, compressions=(40, 70, 110), target=110,
                         learning_rates=(0.002, 0.008), allocations=(0.25, 0.5)),
}


def fast_comparison(comparison: Comparison) -> Comparison:
    """A minutes-long comparison for tests (``--fast``): 2 epochs, two sizes, a 2-point search."""
    return replace(comparison, budget=2, compressions=(12, 30), target=30,
                   learning_rates=comparison.learning_rates[:1], allocations=(0.0, 0.5),
                   iterative_rounds=2, validation_size=1000, gradual_every=20, surgery_every=20)


def _phase(comparison: Comparison, train_set, epochs: int, lr: float) -> Phase:
    """The one training phase every schedule runs: SGD at ``lr``, dropped 10x for the last
    quarter of the epochs."""
    per_epoch = batch_count(len(train_set), comparison.batch_size)
    return Phase(epochs=epochs, lr=lr, lr_policy="step", gamma=0.1,
                 step_size=max(1, int(0.75 * epochs * per_epoch)),
                 batch_size=comparison.batch_size)


# ---- the four schedules: each prunes ``model`` to ``ratios`` inside the budget, in place -------
def run_one_shot(model, ratios: dict, lr: float, comparison: Comparison, train_set, validation,
                 log) -> None:
    """Prune once to ``ratios``, then retrain for the whole budget."""
    keep_ratio_prune(model, ratios)
    retrain(model, train_set, None, _phase(comparison, train_set, comparison.budget, lr),
            seed=comparison.seed, progress=False, log=log)


def run_iterative(model, ratios: dict, lr: float, comparison: Comparison, train_set, validation,
                  log) -> None:
    """Han et al.'s rounds (Sec. 3.4): geometric steps to ``ratios``, the budget shared among the
    rounds (their errors are logged on ``validation``; nothing is decided on them)."""
    rounds = comparison.iterative_rounds
    plan = geometric_keep_ratios(ratios, rounds)
    iterative_prune(model, train_set, validation, [{"keep_ratio": r} for r in plan],
                    _phase(comparison, train_set, comparison.budget // rounds, lr),
                    seed=comparison.seed, progress=False, log=log)


def run_gradual(model, ratios: dict, lr: float, comparison: Comparison, train_set, validation,
                log) -> None:
    """Zhu & Gupta's cubic ramp to ``ratios`` over the first ``gradual_ramp`` of the budget."""
    budget = comparison.budget
    per_epoch = batch_count(len(train_set), comparison.batch_size)
    gradual_prune(model, train_set, None, _phase(comparison, train_set, budget, lr),
                  final_keep_ratio=ratios,
                  end_step=int(comparison.gradual_ramp * budget * per_epoch),
                  every=comparison.gradual_every, seed=comparison.seed, progress=False, log=log)


def run_surgery(model, ratios: dict, lr: float, comparison: Comparison, train_set, validation,
                log) -> None:
    """Guo et al.'s prune-and-splice, holding the size at ``ratios`` for the whole budget."""
    network_surgery(model, train_set, None,
                    _phase(comparison, train_set, comparison.budget, lr), keep_ratio=ratios,
                    hold_size=True, every=comparison.surgery_every, seed=comparison.seed,
                    progress=False, log=log)


# The schedules compared, in the order they run and are reported; a new one is one entry.
SCHEDULES = {"one-shot": run_one_shot, "iterative": run_iterative, "gradual": run_gradual,
             "surgery": run_surgery}


def _key(run: dict) -> tuple:
    return run["schedule"], run["target_compression"], run["lr"], run["allocation"]


def _file(work: Path, run: dict) -> Path:
    schedule, compression, lr, allocation = _key(run)
    return work / f"{schedule}-{compression:g}x-lr{lr:g}-a{allocation:g}.npz"


def _record(model, run: dict, validation, seconds: float) -> dict:
    row = summary_row(0.0, 0.0, model)
    return {**run,
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
    """A copy of ``model`` to prune, with the global generator reseeded at ``comparison.seed``
    as each run has always begun."""
    clone = copy_model(model)
    minprune_random.manual_seed(comparison.seed)
    return clone


def _setting(runs: list[dict], schedule: str, comparison: Comparison) -> dict:
    """A schedule's setting: its search run (at the target) with the lowest validation error."""
    searched = [r for r in runs if r["schedule"] == schedule
                and r["target_compression"] == comparison.target]
    best = min(searched, key=lambda r: r["validation_error"])  # ties: the first searched
    return {"lr": best["lr"], "allocation": best["allocation"]}


def _ladder(runs: list[dict], schedule: str, setting: dict) -> list[dict]:
    return sorted((r for r in runs if r["schedule"] == schedule and r["lr"] == setting["lr"]
                   and r["allocation"] == setting["allocation"]),
                  key=lambda r: r["compression"])


def _choose(ladder: list[dict], error_limit: float) -> dict | None:
    """The most compressed run within ``error_limit`` on validation (or None)."""
    within = [r for r in ladder if r["validation_error"] <= error_limit + 1e-12]
    return max(within, key=lambda r: r["compression"], default=None)


class _Runner:
    """Runs (or reuses) one schedule at one size and setting, saving each finished run."""

    def __init__(self, comparison, baseline, train_set, validation, work, fingerprint, log):
        self.comparison, self.baseline = comparison, baseline
        self.train_set, self.validation = train_set, validation
        self.work, self.fingerprint, self.log = work, fingerprint, log
        self.cache = work / "runs.json"
        self.runs = []
        if self.cache.exists():
            saved = load_json(self.cache, "saved comparison runs")
            check_same_run(self.cache,
                           saved.get("fingerprint") if isinstance(saved, dict) else None,
                           fingerprint, f"delete {work} to run the comparison afresh")
            self.runs = saved["runs"]

    def __call__(self, schedule: str, compression: float, lr: float, allocation: float) -> None:
        run = {"schedule": schedule, "target_compression": compression, "lr": lr,
               "allocation": allocation}
        if any(_key(r) == _key(run) for r in self.runs):
            return
        started = time.perf_counter()
        model = _copy(self.comparison, self.baseline)
        ratios = keep_ratios_for_compression(model, compression,
                                             PAPER_KEEP_RATIOS[self.comparison.model],
                                             allocation)
        SCHEDULES[schedule](model, ratios, lr, self.comparison, self.train_set,
                            self.validation, lambda message: None)
        record = _record(model, run, self.validation, time.perf_counter() - started)
        save_checkpoint(_file(self.work, run), model.state_dict(), fingerprint=self.fingerprint)
        self.runs.append(record)
        atomic_write_json(self.cache, {"fingerprint": self.fingerprint, "runs": self.runs})
        self.log(f"{schedule} {compression:g}x lr {lr:g} allocation {allocation:g}: "
                 f"{record['compression']:.1f}x, validation error "
                 f"{record['validation_error']:.2%} ({record['seconds']:.0f} s)")

    def test_error(self, run: dict, test_set) -> float:
        path = _file(self.work, run)
        state, _, meta = load_checkpoint(path)
        check_same_run(path, meta.get("fingerprint"), self.fingerprint,
                       f"delete {self.work} to run the comparison afresh")
        model = _copy(self.comparison, self.baseline)
        model.load_state_dict(state)
        return evaluate(model, test_set)["error"]


def compare(name: str, *, results_dir="results", work_dir=None, fast=None, data_dir=None,
            schedules=tuple(SCHEDULES), budget=None, log=print, command=None) -> dict:
    """Run the comparison for ``name`` (``lenet-300-100`` or ``lenet5``); return the summary.

    ``budget`` (epochs per run) replaces the model's; the search then runs again at it, and
    the outputs go to ``schedules-BUDGET-epochs/`` and the runs to ``WORK/BUDGET-epochs/``, from
    the same dense baseline (``WORK/baseline.npz``).
    """
    if name not in COMPARISONS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(COMPARISONS)}")
    unknown = [s for s in schedules if s not in SCHEDULES]
    if unknown:
        raise ValueError(f"unknown schedules {unknown}; expected some of {list(SCHEDULES)}")
    started = time.perf_counter()
    fast = fast_mode() if fast is None else fast
    comparison = fast_comparison(COMPARISONS[name]) if fast else COMPARISONS[name]
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < comparison.iterative_rounds):
        raise ValueError(f"budget must be an int of at least {comparison.iterative_rounds} "
                         f"epochs (one per iterative round), got {budget!r}")
    other_budget = budget is not None and budget != comparison.budget
    if other_budget:
        comparison = replace(comparison, budget=budget)
    recipe = RECIPES[name]
    if fast:
        recipe = replace(recipe, train=replace(recipe.train, epochs=2))
    train_all, test_set = mnist(data_dir)
    if fast:
        train_all, test_set = subset(train_all, 7000), subset(test_set, 2000)
    train_set, validation = validation_split(train_all, comparison.validation_size)
    fast_suffix = "-fast" if fast else ""
    out = (Path(results_dir) / f"{name}{fast_suffix}"
           / ("schedules" + (f"-{budget}-epochs" if other_budget else "")))
    out.mkdir(parents=True, exist_ok=True)

    shared = Path(work_dir or f"runs/compare-{name}{fast_suffix}")
    work = shared / f"{budget}-epochs" if other_budget else shared
    baseline = _baseline(comparison, recipe, train_set, validation, shared, log)  # any budget
    baseline_validation = evaluate(baseline, validation)["error"]
    error_limit = baseline_validation + comparison.tolerance
    fingerprint = plain({"comparison": asdict(comparison), "train": asdict(recipe.train),
                         "baseline": state_digest(baseline.state_dict()),
                         "train_data": dataset_digest(train_set),
                         "validation": dataset_digest(validation)})
    runner = _Runner(comparison, baseline, train_set, validation, work, fingerprint, log)
    for schedule in schedules:  # 1. the search, at the target size
        for lr in comparison.learning_rates:
            for allocation in comparison.allocations:
                runner(schedule, comparison.target, lr, allocation)
    settings = {s: _setting(runner.runs, s, comparison) for s in schedules}
    for schedule in schedules:  # 2. the ladder, with each schedule's setting
        for compression in comparison.compressions:
            runner(schedule, compression, **settings[schedule])

    ladders = {s: _ladder(runner.runs, s, settings[s]) for s in schedules}
    best, at_target = {}, {}
    for schedule, ladder in ladders.items():  # 3. chosen on validation; test read once, at the end
        chosen = _choose(ladder, error_limit)
        target = next(r for r in ladder if r["target_compression"] == comparison.target)
        read = {_key(run): runner.test_error(run, test_set)
                for run in (chosen, target) if run is not None}
        best[schedule] = None if chosen is None else {**chosen, "test_error": read[_key(chosen)]}
        at_target[schedule] = {**target, "test_error": read[_key(target)]}
    baseline_test = evaluate(baseline, test_set)["error"]

    points = [{"compression": 1.0, "error": baseline_validation, "series": schedule}
              for schedule in schedules]
    points += [{"compression": r["compression"], "error": r["validation_error"],
                "series": schedule} for schedule, ladder in ladders.items() for r in ladder]
    stars = LATER_LENET_RECORDS[name] + [
        {"label": f"{schedule} at {comparison.target:g}x (test)", "series": schedule,
         "compression": point["compression"], "error": point["test_error"]}
        for schedule, point in at_target.items()]
    plot_compression_curve(
        points, out / "compare.png",
        f"{name}: four schedules, {comparison.budget} epochs each",
        baseline_error=error_limit, paper_points=stars,
        error_label="Error (%): curves validation, stars test",
        caption=(f"Curves: validation error of each run with its schedule's searched setting "
                 f"(`minprune compare {name}`); dashed: the dense baseline's validation error "
                 f"+ {comparison.tolerance:.2%}. Stars: published test errors, and each "
                 f"schedule's run at {comparison.target:g}x with its test error."))
    summary = {
        "model": name, "fast": fast,
        "command": command or f"minprune compare {name}" + (" --fast" if fast else ""),
        "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
        "comparison": asdict(comparison), "baseline_train": asdict(recipe.train),
        "error_limit": error_limit, "baseline_validation_error": baseline_validation,
        "baseline_test_error": baseline_test, "paper_error": PAPER_SUMMARY[name]["error_before"],
        "settings": settings, "runs": runner.runs, "best": best, "at_target": at_target,
        "published": LATER_LENET_RECORDS[name],
        "wall_seconds_this_run": time.perf_counter() - started,
    }
    save_json(out / "summary.json", summary)
    for schedule in schedules:
        point, target = best[schedule], at_target[schedule]
        log(f"{schedule} (lr {settings[schedule]['lr']:g}, allocation "
            f"{settings[schedule]['allocation']:g}): chosen "
            + ("none" if point is None else
               f"{point['compression']:.1f}x at {point['test_error']:.2%} test error "
               f"({point['validation_error']:.2%} validation)")
            + f"; at {comparison.target:g}x: {target['test_error']:.2%} test error "
              f"({target['validation_error']:.2%} validation)")
    return summary


def main_command(args) -> int:
    """Entry for ``minprune compare`` (see ``minprune.commands.cli``)."""
    compare(args.model, results_dir=args.results, work_dir=args.work,
            fast=True if args.fast else None, data_dir=args.data,
            schedules=tuple(args.schedules.split(",")) if args.schedules else tuple(SCHEDULES),
            budget=args.budget,
            command="minprune " + shlex.join(args.argv))
    return 0
