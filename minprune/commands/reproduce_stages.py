"""The stages of ``minprune reproduce`` that train and prune (1-4), one function each.

What they share is a `Run` (the recipe, the data, the folders, the log). Each stage saves its
state under the run's work folder as it goes (`fit_phase`, `iterative_prune`), so a killed run
resumes; `minprune.commands.reproduce` calls them in order, `reproduce_report` writes what they
found and `reproduce_tradeoff` is stage 5.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import minprune.base.random as minprune_random
import minprune.nn.models as models
from minprune.data.dataset import Dataset, subset
from minprune.nn.module import copy_model
from minprune.prune.criteria import StdOf, keep_ratio_prune, layer_std
from minprune.prune.dropout import dropout_ratios
from minprune.prune.figures import plot_sensitivity
from minprune.prune.masks import layer_density, layers_by_weight_name
from minprune.prune.recipes import Recipe, keep_ratio_plan
from minprune.prune.retraining import iterative_prune
from minprune.prune.sensitivity import sensitivity_analysis
from minprune.training.checkpoint import load_model_checkpoint
from minprune.training.fit import evaluate, fit_phase

__all__ = ["Run", "train_baseline", "copy_for", "Qualities", "QUALITY_SOURCE", "QUALITY_STD_OF"]

# reproduce prunes each round to a keep ratio (the paper's per-layer Weights%), not at a quality:
# the paper publishes no qualities. The quality a round amounts to is worked out after the fact,
# relative to `layer_std`: the std of the layer's surviving weights just before the round prunes.
QUALITY_STD_OF = StdOf.SURVIVING
QUALITY_SOURCE = ("after the fact: the round pruned to a keep ratio; quality = its threshold / "
                  "the std of the layer's surviving weights before the round")


class Qualities(dict):
    """``{layer name: quality}`` that a keep-ratio round amounts to (`QUALITY_SOURCE`); its
    ``std_of`` goes beside them in the round's record (`minprune.prune.loop`)."""

    std_of = QUALITY_STD_OF


@dataclass
class Run:
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


def copy_for(recipe: Recipe, model):
    """A copy of ``model`` to prune, with the global generator reseeded at ``recipe.seed`` as
    each copy has always begun (it feeds dropout while retraining)."""
    clone = copy_model(model)
    minprune_random.manual_seed(recipe.seed)
    return clone


def train_baseline(recipe: Recipe, train_set, test_set, work: Path, *, l1: float = 0.0,
                   start=None, device=None, progress=False, log=print):
    """Train (or resume, or reuse) the dense baseline; return (model, error, seconds). With
    ``start`` (a checkpoint of a trained dense model), load it instead of training."""
    model = _fresh_model(recipe)
    if start is not None:
        load_model_checkpoint(model, start, recipe.model)
        log(f"baseline {recipe.model}: loaded {start}, not trained")
        return model, evaluate(model, test_set)["error"], 0.0
    phase = recipe.train if not l1 else replace(recipe.train, weight_decay=0.0, l1=l1)
    history = fit_phase(model, train_set, test_set, phase, seed=recipe.seed,
                        checkpoint=work / "checkpoint.npz", progress=progress, log=log,
                        device=device)
    error = evaluate(model, test_set)["error"]
    return model, error, sum(record["seconds"] for record in history)


def _keep_ratio_round(ratios: dict, log):
    """One round: threshold each layer at the magnitude that keeps ``ratios``; return (and log)
    the quality that threshold amounts to, the paper's parameter (`QUALITY_SOURCE`)."""
    def prune_round(model):
        stds = {name: layer_std(layer) for name, layer in layers_by_weight_name(model).items()}
        thresholds = keep_ratio_prune(model, ratios)
        qualities = Qualities({name: thresholds[name] / stds[name] if stds[name] else 0.0
                               for name in thresholds})
        log("pruned to keep ratios; the quality that is, after the fact (threshold / std of the "
            f"{QUALITY_STD_OF} weights): "
            + ", ".join(f"{name} {quality:.3f}" for name, quality in qualities.items()))
        return qualities
    return prune_round


# ---- 1. the dense baseline ------------------------------------------------------------------
def baseline_stage(run: Run):
    started = time.perf_counter()
    baseline, error, train_seconds = train_baseline(
        run.recipe, run.train_set, run.test_set, run.work / "baseline", start=run.start,
        device=run.device, progress=run.progress, log=run.log)
    run.timed("baseline", started)
    run.log(f"baseline {run.recipe.model}: test error {error:.2%}")
    return baseline, error, train_seconds


# ---- 2. sensitivity of each layer, no retraining --------------------------------------------
def sensitivity_stage(run: Run, baseline) -> list[dict]:
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
def paper_stage(run: Run, baseline):
    recipe = run.recipe
    started = time.perf_counter()
    pruned = copy_for(recipe, baseline)
    schedule = keep_ratio_plan(recipe, pruned)
    records = iterative_prune(
        pruned, run.train_set, run.test_set,
        [_keep_ratio_round(r, run.log) for r in schedule], recipe.retrain,
        state_dir=run.work / "paper", freeze=list(recipe.freeze_schedule) or None,
        seed=recipe.seed, plan=schedule, device=run.device, progress=run.progress, log=run.log)
    run.timed("paper", started)
    return pruned, records


# ---- 4. beyond the paper: keep pruning while the error stays near the baseline's ------------
def beyond_stage(run: Run, pruned, baseline_error) -> list[dict]:
    recipe = run.recipe
    started = time.perf_counter()
    beyond = copy_for(recipe, pruned)
    original_dropout = dropout_ratios(beyond)  # the same in every call below (Sec. 3.2)
    ratios = {n: layer_density(layer) for n, layer in layers_by_weight_name(pruned).items()}
    plan = [{n: r * recipe.beyond_factor ** k for n, r in ratios.items()}
            for k in range(1, recipe.beyond_rounds + 1)]
    records = iterative_prune(
        beyond, run.train_set, run.test_set, [_keep_ratio_round(r, run.log) for r in plan],
        recipe.beyond_retrain or recipe.retrain, state_dir=run.work / "beyond",
        seed=recipe.seed + 100, plan=plan, original_dropout=original_dropout,
        # past the knee of the curve: stop
        stop_when=lambda record: record["error_retrained"] > 2 * baseline_error,
        device=run.device, progress=run.progress, log=run.log)
    run.timed("beyond", started)
    return records
