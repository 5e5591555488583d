"""The three-step method: train, prune, retrain -- and iterate (Han et al. Sec. 3, Fig. 2).

One *round* prunes the model (any criterion: a function of the model that changes masks), then
retrains the survivors from their trained values (never re-initialised, Sec. 3.3) with the
learning rate lowered (1/10 of the original for LeNet, Sec. 3.2), the dropout ratio lowered in
proportion to the square root of the connections left (Sec. 3.2), and optionally part of the
network frozen (Sec. 3.3: retrain the FC layers with the conv layers fixed, and vice versa).
``iterative_prune`` runs rounds in order and saves the model after each completed round, so an
interrupted run (even by kill -9) resumes from its last completed round; inside a round, training
resumes from its last completed epoch.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from minprune.checkpoint import load_checkpoint, save_checkpoint
from minprune.nn.layers import Conv2d, Dropout, Linear
from minprune.optim import SGD
from minprune.prune.masks import density, layer_density, prunable_layers
from minprune.prune.sparse_training import SPARSE_MAX_DENSITY, sparse_kernels
from minprune.schedules import LRPolicy
from minprune.train import evaluate, fit

__all__ = [
    "Phase",
    "adjust_dropout",
    "frozen",
    "retrain",
    "iterative_prune",
    "geometric_keep_ratios",
]

FREEZE_CHOICES = (None, "conv", "fc")


@dataclass(frozen=True)
class Phase:
    """How to train in one phase (the initial training, or the retraining after a prune).

    ``weight_decay`` is L2, ``l1`` is L1 (Sec. 3.1 compares them; either may be chosen per phase).
    """

    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    l1: float = 0.0
    lr_policy: str = "inv"
    gamma: float = 1e-4
    power: float = 0.75
    step_size: int = 1
    batch_size: int = 64

    def policy(self) -> LRPolicy:
        return LRPolicy(self.lr_policy, self.lr, self.gamma, self.power, self.step_size)

    def optimizer(self, parameters) -> SGD:
        return SGD(parameters, lr=self.lr, momentum=self.momentum,
                   weight_decay=self.weight_decay, l1=self.l1)


def adjust_dropout(model) -> dict:
    """Set every Dropout's ratio to D_r = D_o * sqrt(C_ir / C_io) (Sec. 3.2, Eq. 2).

    C_i counts the connections of the prunable layer whose outputs the dropout acts on (the
    nearest Linear/Conv2d before it), ``o`` the original and ``r`` the retrained network, so
    C_ir / C_io is that layer's density. D_o is remembered on the module (``original_p``) the
    first time, so repeated rounds always scale the original ratio. Returns
    ``{dropout name: (D_o, D_r)}``; a model without dropout returns ``{}``.
    """
    adjusted, previous = {}, None
    for name, module in model.named_modules():
        if isinstance(module, Linear | Conv2d):
            previous = module
        elif isinstance(module, Dropout) and previous is not None:
            if not hasattr(module, "original_p"):
                module.original_p = module.p
            module.p = module.original_p * float(np.sqrt(layer_density(previous)))
            adjusted[name] = (module.original_p, module.p)
    return adjusted


@contextlib.contextmanager
def frozen(model, part: str | None):
    """Within the block, the ``part`` ("conv" or "fc") layers' parameters get no gradient."""
    if part not in FREEZE_CHOICES:
        raise ValueError(f"freeze must be one of {FREEZE_CHOICES}, got {part!r}")
    kind = {"conv": Conv2d, "fc": Linear}.get(part)
    changed = []
    if kind is not None:
        for module in model.modules():
            if isinstance(module, kind):
                for parameter in module._parameters.values():
                    if parameter.requires_grad:
                        parameter.requires_grad = False
                        changed.append(parameter)
    try:
        yield
    finally:
        for parameter in changed:
            parameter.requires_grad = True


def retrain(model, train_set, test_set, phase: Phase, *, freeze=None, seed=0, checkpoint=None,
            progress=False, log=print, sparse_max_density=SPARSE_MAX_DENSITY) -> list[dict]:
    """Retrain the survivors of a pruned ``model`` for one phase (masks hold throughout).

    Linear layers at density <= ``sparse_max_density`` train on their kept connections only
    (`minprune.prune.sparse_training`; same results up to float32 summation order); None keeps
    every layer on the dense masked path."""
    with frozen(model, freeze), sparse_kernels(model, sparse_max_density):
        optimizer = phase.optimizer([p for p in model.parameters() if p.requires_grad])
        optimizer.apply_masks()
        return fit(model, optimizer, train_set, test_set, epochs=phase.epochs,
                   batch_size=phase.batch_size, lr_policy=phase.policy(), seed=seed,
                   checkpoint=checkpoint, progress=progress, log=log)


def geometric_keep_ratios(targets: dict, rounds: int) -> list[dict]:
    """Per-round keep ratios that reach ``targets`` (``{name: final keep ratio}``) in ``rounds``
    equal multiplicative steps: round k keeps ``target ** (k / rounds)`` of each layer."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    return [{name: float(target ** (k / rounds)) for name, target in targets.items()}
            for k in range(1, rounds + 1)]


def _layer_densities(model) -> dict:
    return {name: layer_density(layer) for name, layer in prunable_layers(model).items()}


def iterative_prune(model, train_set, test_set, rounds, phase: Phase, *, state_dir,
                    freeze=None, seed=0, plan=None, progress=False, log=print) -> list[dict]:
    """Run prune-retrain ``rounds`` on ``model``; return one record per round.

    ``rounds`` is a list of functions ``prune(model) -> dict`` (e.g. ``lambda m:
    threshold_prune(m, {"*": 1.0})``), each returning what it decided (thresholds). After each
    completed round the model and the records so far are saved to ``state_dir/rounds.npz``; when
    that file exists the completed rounds are skipped. ``freeze`` is None, "conv" or "fc", or a
    list with one entry per round. ``plan`` (JSON-able, e.g. the per-round keep ratios) describes
    the rounds: a saved state written under another plan or phase is refused rather than silently
    reused. Each record holds the round's densities, thresholds, dropout
    ratios, test error before and after retraining, and epochs/seconds spent.
    """
    state_dir = Path(state_dir)
    state_path = state_dir / "rounds.npz"
    freezes = freeze if isinstance(freeze, list) else [freeze] * len(rounds)
    if len(freezes) != len(rounds):
        raise ValueError(f"freeze has {len(freezes)} entries for {len(rounds)} rounds")
    for part in freezes:
        if part not in FREEZE_CHOICES:
            raise ValueError(f"freeze must be one of {FREEZE_CHOICES}, got {part!r}")
    records = []
    settings = json.loads(json.dumps({"phase": asdict(phase), "plan": plan, "seed": seed}))
    if state_path.exists():
        model_state, _, meta = load_checkpoint(state_path)
        saved = meta.get("settings") or {}
        differ = sorted(key for key in settings if saved.get(key) != settings[key])
        if differ:
            raise ValueError(
                f"{state_path} was written by a run with other settings (different {differ}); "
                f"delete {state_dir} to start these rounds afresh"
            )
        records = meta["records"]
        done = min(len(records), len(freezes))
        if [r["freeze"] for r in records[:done]] != freezes[:done]:
            raise ValueError(f"{state_path}: its completed rounds froze other layers than asked")
        model.load_state_dict(model_state)
        log(f"resumed {state_path}: {len(records)} of {len(rounds)} rounds done")
    for index in range(len(records), len(rounds)):
        decided = rounds[index](model)
        dropout = adjust_dropout(model)
        pruned_error = evaluate(model, test_set)["error"]
        log(f"round {index + 1}/{len(rounds)}: density {density(model):.2%}, "
            f"error before retraining {pruned_error:.2%}")
        history = retrain(model, train_set, test_set, phase, freeze=freezes[index],
                          seed=seed + index, checkpoint=state_dir / f"round{index + 1}.npz",
                          progress=progress, log=log)
        error = evaluate(model, test_set)["error"]
        records.append({
            "round": index + 1,
            "density": density(model),
            "layer_density": _layer_densities(model),
            "decided": {k: float(v) for k, v in (decided or {}).items()},
            "dropout": dropout,
            "freeze": freezes[index],
            "error_pruned": pruned_error,
            "error_retrained": error,
            "retrain_seconds": sum(r["seconds"] for r in history),
            "phase": asdict(phase),
        })
        save_checkpoint(state_path, model.state_dict(), records=records, settings=settings)
        (state_dir / f"round{index + 1}.npz").unlink(missing_ok=True)
        log(f"round {index + 1}/{len(rounds)}: density {density(model):.2%}, "
            f"error after retraining {error:.2%}")
    return records
