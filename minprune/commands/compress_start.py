"""The starting point of ``minprune compress``: a pruned LeNet that never saw the validation split.

Deep Compression's first stage is this paper's pruning, at the same per-layer rates (Han, Mao &
Dally 2016, Sec. 2). ``minprune reproduce`` trains and prunes on all 60,000 training images, so
its model has seen every image a validation split could hold. ``compress`` therefore runs
reproduce's own stages 1 and 3 (`minprune.commands.reproduce_stages`: the dense baseline, then
iterative prune + retrain to the paper's Weights%) on the first 55,000 training images, with the
last 5,000 (`minprune.data.validation_split`) as the set each round is measured on. The test set
is not read here. The stages save and resume as in ``reproduce`` (fingerprinted checkpoints under
``WORK/baseline`` and ``WORK/paper``).

``--checkpoint`` skips this: a pruned model's checkpoint (weights and masks) is loaded instead.
Then the validation split may have been trained on (a reproduce model was), which the summary
says.
"""

from __future__ import annotations

import time
from pathlib import Path

import minprune.base.random as minprune_random
import minprune.nn.models as models
from minprune.commands.reproduce_stages import Run, baseline_stage, paper_stage
from minprune.prune.recipes import Recipe
from minprune.training.checkpoint import load_model_checkpoint
from minprune.training.fit import evaluate

__all__ = ["pruned_start"]


def pruned_start(recipe: Recipe, train_set, validation, work: Path, *, checkpoint=None,
                 progress=False, log=print):
    """``(pruned model, dense baseline or None, record)``: reproduce's baseline and paper stages
    trained on ``train_set``, measured on ``validation`` (or ``checkpoint`` loaded, without a
    baseline); the record holds the validation errors, the seconds and where the model came
    from."""
    started = time.perf_counter()
    if checkpoint is not None:
        minprune_random.manual_seed(recipe.seed)
        model = models.build(recipe.model, dropout=recipe.dropout)
        load_model_checkpoint(model, checkpoint, recipe.model)
        return model, None, {
            "source": f"checkpoint {checkpoint} (may have trained on the validation split)",
            "validation_error_pruned": evaluate(model, validation)["error"],
            "seconds": time.perf_counter() - started}
    run = Run(recipe, train_set, validation, Path(work), Path(work), progress, log)
    baseline, baseline_error, train_seconds = baseline_stage(run)
    pruned, records = paper_stage(run, baseline)
    return pruned, baseline, {
        "source": ("minprune reproduce's baseline and paper stages on the first "
                   f"{len(train_set):,} training images"),
        "validation_error_dense": baseline_error,
        "validation_error_pruned": records[-1]["error_retrained"],
        "rounds": [{k: r[k] for k in ("round", "density", "error_pruned", "error_retrained")}
                   for r in records],
        "seconds": time.perf_counter() - started,
        # what training took when it ran (kept in the checkpoints, so a resumed run still knows)
        "training_seconds": {"baseline": train_seconds,
                             "pruning_rounds": sum(r["retrain_seconds"] for r in records)},
    }
