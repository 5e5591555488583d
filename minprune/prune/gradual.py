"""Gradual magnitude pruning: sparsity ramps up during training (Zhu & Gupta 2017).

Zhu and Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model
compression" (arXiv:1710.01878), Sec. 3, Eq. 1: from step t0, every dt steps, each layer's
smallest-magnitude weights are masked so that its sparsity is

    s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3,    t = t0, t0 + dt, ..., t0 + n dt,

fast at first, when there are many redundant weights, and slowly near the end. Training goes on
between the updates (and, if the phase lasts longer than the ramp, after it), so the network
recovers while it is pruned instead of in rounds of retraining afterwards (Han et al.'s way,
`minprune.prune.iterative_prune`). Masks only ever lose connections: a pruned weight stays zero
(`minprune.training.optim.SGD`) and counts as the smallest at the next update (`keep_ratio_prune`).

Where minprune departs from the paper:

- Ratios are given as keep ratios (``1 - s``), the vocabulary of the rest of minprune; the ramp
  itself is the paper's formula in sparsity (`cubic_sparsity`).
- ``end_step`` names t0 + n dt. When ``end_step - begin_step`` is not a multiple of ``every``,
  the last update comes at ``end_step``, less than ``every`` steps after the one before it.
- The paper fits the ramp to each model's own learning-rate schedule (pruning while the rate is
  high enough for the network to recover); here the phase's policy runs unchanged (Caffe's
  ``inv`` for LeNet), so choose ``begin_step`` and ``end_step`` against it.
"""

from __future__ import annotations

import numpy as np

from minprune.data.batching import batch_count
from minprune.data.entry import as_dataset
from minprune.prune.criteria import check_keep_ratio, keep_ratio_prune
from minprune.prune.masks import layers_by_weight_name, resolve_per_layer
from minprune.training.fit import fit, log_function
from minprune.training.phase import Phase

__all__ = ["cubic_sparsity", "gradual_prune"]


def cubic_sparsity(step: int, initial_sparsity: float, final_sparsity: float, begin_step: int,
                   end_step: int) -> float:
    """Zhu & Gupta's Eq. 1: the sparsity at ``step``, s_i before ``begin_step`` (t0), s_f from
    ``end_step`` (t0 + n dt) on, and the cubic ramp between."""
    if end_step <= begin_step:
        raise ValueError(f"end_step must be after begin_step, got {begin_step} and {end_step}")
    progress = min(max((step - begin_step) / (end_step - begin_step), 0.0), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


def _check_step(name: str, value, least: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"gradual_prune: {name} must be an int >= {least}, got {value!r}")


def gradual_prune(model, train_set, eval_set, phase: Phase, *, final_keep_ratio,
                  initial_keep_ratio=1.0, begin_step: int = 0, end_step: int | None = None,
                  every: int = 100, seed: int = 0, checkpoint=None, on_step=None,
                  progress: bool | None = None, log=print) -> list[dict]:
    """Train ``model`` for one phase while pruning it along the cubic ramp; return one record per
    epoch.

    ``final_keep_ratio`` (k_f = 1 - s_f) and ``initial_keep_ratio`` (k_i = 1 - s_i) are numbers
    in (0, 1] or per-layer dicts with a ``'*'`` default; k_f <= k_i. Steps count SGD iterations
    of this phase: a mask update "at step t" comes after t steps, the one at step 0 before the
    first. Updates come at ``begin_step``, every ``every`` steps after it, and at ``end_step``
    (default: the phase's last step). ``checkpoint`` (a path) saves after every epoch and resumes
    from it (`minprune.training.fit.fit`; the masks are in the model's state); a checkpoint written
    with other ramp settings is refused (`RunMismatchError`). ``on_step(iteration, model)``, if
    given, is called after every step and its mask update (to watch the run).

    Each record is `fit`'s (epoch, iteration, lr, losses, errors -- ``test_error`` on
    ``eval_set`` -- and seconds) with the ``keep_ratio`` the ramp had reached per layer (None
    before its first update), the ``layer_density`` that leaves and the overall ``density``.

    ``train_set`` and ``eval_set`` (None: no ``test_error``) are each a `Dataset`, an
    `ImageFolder` or an ``(images, labels)`` pair; ``progress`` (None: bars only when stderr is
    a terminal) and ``log`` (None: quiet) as in `fit`.
    """
    train_set = as_dataset(train_set, "gradual_prune: train_set")
    eval_set = as_dataset(eval_set, "gradual_prune: eval_set", allow_none=True)
    log = log_function(log)
    layers = layers_by_weight_name(model)
    final = resolve_per_layer(final_keep_ratio, layers, "final_keep_ratio", check_keep_ratio)
    initial = resolve_per_layer(initial_keep_ratio, layers, "initial_keep_ratio",
                                check_keep_ratio)
    for name in layers:
        if final[name] > initial[name]:
            raise ValueError(f"gradual_prune: final_keep_ratio for {name!r} ({final[name]}) is "
                             f"above its initial_keep_ratio ({initial[name]}); the ramp only "
                             "prunes")
    total_steps = phase.epochs * batch_count(len(train_set), phase.batch_size)
    end_step = total_steps if end_step is None else end_step
    _check_step("every", every, 1)
    _check_step("begin_step", begin_step, 0)
    _check_step("end_step", end_step, begin_step + 1)
    if end_step > total_steps:
        raise ValueError(f"gradual_prune: end_step {end_step} is past the phase's last step "
                         f"{total_steps} ({phase.epochs} epochs), so the ramp would not finish")

    def keep_ratios_at(step: int) -> dict:
        return {name: 1.0 - cubic_sparsity(step, 1.0 - initial[name], 1.0 - final[name],
                                           begin_step, end_step) for name in layers}

    def last_update(step: int) -> int | None:
        """The step of the last mask update at or before ``step`` (None: none yet)."""
        if step < begin_step:
            return None
        if step >= end_step:
            return end_step
        return begin_step + (step - begin_step) // every * every

    def prune_on_schedule(step: int, model) -> None:
        if last_update(step) == step:
            keep_ratio_prune(model, keep_ratios_at(step))
        if on_step is not None and step > 0:
            on_step(step, model)

    kept_at_start = {name: int(np.count_nonzero(layer.weight_mask))
                     for name, layer in layers.items()}
    prune_on_schedule(0, model)
    optimizer = phase.optimizer([p for p in model.parameters() if p.requires_grad])
    optimizer.apply_masks()
    settings = {"initial_keep_ratio": initial, "final_keep_ratio": final,
                "begin_step": begin_step, "end_step": end_step, "every": every}
    history = fit(model, optimizer, train_set, eval_set, epochs=phase.epochs,
                  batch_size=phase.batch_size, lr_policy=phase.policy(), seed=seed,
                  checkpoint=checkpoint, progress=progress, log=log, on_step=prune_on_schedule,
                  fingerprint={"gradual_prune": settings})
    sizes = {name: layer.weight_mask.size for name, layer in layers.items()}
    for record in history:
        # What keep_ratio_prune left at the last update: masks are a function of the schedule.
        step = last_update(record["iteration"])
        ratios = keep_ratios_at(step) if step is not None else None
        kept = {name: kept_at_start[name] if ratios is None
                else min(round(ratios[name] * sizes[name]), kept_at_start[name])
                for name in layers}
        record["keep_ratio"] = ratios  # None before the ramp begins
        record["layer_density"] = {name: kept[name] / sizes[name] for name in layers}
        record["density"] = sum(kept.values()) / sum(sizes.values())
    return history
