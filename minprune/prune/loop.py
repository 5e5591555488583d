"""The paper's loop, Han et al. Sec. 3 and Fig. 2: prune, lower the dropout, retrain, repeat.

A trained network is pruned (every weight below its layer's threshold goes), the dropout ratio
is lowered as the connections were (Sec. 3.2, Eq. 2), and the survivors are retrained from the
values they have -- never re-initialised, Sec. 3.3 -- at a lower learning rate (Sec. 4.1, 4.2);
then again, for as many rounds as asked (Sec. 3.4: several gentle rounds beat one aggressive
one). That is all of :func:`prune_retrain`. Saving, resuming and checking a run's fingerprint are
`minprune.prune.retraining.iterative_prune`'s, around it.

A round that prunes nothing is said out loud (a warning): it would retrain for nothing, and the
usual cause is a keep ratio read as a fraction of the survivors. A keep ratio is a fraction of
each layer's *original* weights, so ``[{"keep_ratio": 0.5}] * 3`` stays at 50% after round 1,
while quality rounds compound (each prunes the survivors again). Falling keep ratios that reach
a target in steps: `minprune.prune.rounds.rounds_to`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict

from minprune.prune.dropout import adjust_dropout
from minprune.prune.masks import density, layer_density, layers_by_weight_name
from minprune.training.fit import evaluate

__all__ = ["prune_retrain"]


def prune_retrain(model, rounds, retrain, test_set, phase, *, freezes, original_dropout,
                  first_round=0, log=print):
    """Yield one record per round of ``rounds`` (from ``first_round``), each after its round.

    ``rounds[i](model)`` prunes and returns what it pruned at (`minprune.prune.rounds`);
    ``retrain(model, phase, freeze, index)`` retrains the survivors for one ``phase`` with the
    part ``freezes[index]`` fixed and returns `fit`'s epoch records; ``original_dropout`` is
    ``{name: D_o}``. The caller may stop between rounds (the loop holds no state of its own).
    A round that prunes nothing warns (UserWarning, naming the round) and retrains anyway.
    """
    for index in range(first_round, len(rounds)):
        where = f"round {index + 1}/{len(rounds)}"
        density_before = density(model)
        pruned_at = rounds[index](model)                      # 2. prune: |w| < threshold -> 0
        if density(model) == density_before:
            warnings.warn(_pruned_nothing(where, density_before), stacklevel=2)
        dropout = adjust_dropout(model, original_dropout)     # Sec. 3.2: D_r = D_o sqrt(C_r/C_o)
        error_pruned = evaluate(model, test_set)["error"]
        log(f"{where}: density {density(model):.2%}, error before retraining {error_pruned:.2%}")
        history = retrain(model, phase, freezes[index], index)  # 3. retrain the survivors
        error_retrained = evaluate(model, test_set)["error"]
        log(f"{where}: density {density(model):.2%}, error after retraining "
            f"{error_retrained:.2%}")
        yield {
            "round": index + 1,
            "density": density(model),
            "layer_density": {name: layer_density(layer)
                              for name, layer in layers_by_weight_name(model).items()},
            # What the round pruned at (thresholds, or reproduce's equivalent qualities), saved
            # as "decided", the key of the committed results/*.json and of saved rounds; beside
            # it, for thresholds, the std they were taken from (`StdOf`).
            "decided": {k: float(v) for k, v in (pruned_at or {}).items()},
            **({"std_of": str(pruned_at.std_of)} if hasattr(pruned_at, "std_of") else {}),
            "dropout": dropout,
            "freeze": freezes[index],
            "error_pruned": error_pruned,
            "error_retrained": error_retrained,
            "retrain_seconds": sum(record["seconds"] for record in history),
            "phase": asdict(phase),
        }


def _pruned_nothing(where: str, kept: float) -> str:
    """The warning for a round whose prune step left the density where it was."""
    return (f"{where} pruned nothing (density {kept:.2%} before and after its prune step) and "
            "retrains anyway. If it is a keep-ratio round: a keep ratio is a fraction of each "
            "layer's original weights, not of its survivors, so [{'keep_ratio': 0.5}] * 3 keeps "
            "50% in every round. For rounds "
            "that go further each time, give falling keep ratios, e.g. "
            "mp.prune.rounds_to(keep_ratio=0.125, rounds=3) (round k keeps 0.125 ** (k/3), "
            "mp.prune.geometric_keep_ratios)")
