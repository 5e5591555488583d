"""Stage 5 of ``minprune reproduce``: the five trade-off curves of the paper's Fig. 5 -- accuracy
change against the fraction of weights pruned, for L2 and L1 training, with and without
retraining, and the iterative prune-and-retrain curve of stages 3-4. Each point is cached in
``WORK/tradeoff.json`` with a fingerprint of what it was computed from, so a killed run resumes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace

from minprune.commands.reproduce_stages import Run, copy_for, train_baseline
from minprune.prune.criteria import keep_ratio_prune
from minprune.prune.figures import plot_tradeoff
from minprune.prune.retraining import retrain
from minprune.training.checkpoint import atomic_write_json, load_json
from minprune.training.fingerprint import check_same_run, dataset_digest, plain, state_digest
from minprune.training.fit import evaluate

__all__ = ["tradeoff_stage"]


def tradeoff_stage(run: Run, baseline, records) -> dict:
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
            model = copy_for(recipe, start)
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
