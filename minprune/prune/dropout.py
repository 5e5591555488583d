"""Lower the dropout ratio for retraining, in proportion to the connections left (Sec. 3.2).

Han et al. Eq. 2: D_r = D_o * sqrt(C_ir / C_io). A pruned layer has fewer connections and so
less to over-fit with; its dropout is lowered accordingly (0.5 at 9% density becomes ~0.15).
The original ratios D_o are passed in explicitly, so that every round scales the original ratio,
never the one a previous round lowered.
"""

from __future__ import annotations

import numpy as np

from minprune.nn.layers import Conv2d, Dropout, Linear
from minprune.prune.masks import layer_density

__all__ = ["dropout_ratios", "adjust_dropout"]


def dropout_ratios(model) -> dict:
    """``{dropout name: p}`` for every Dropout of ``model``: record these (D_o) before the first
    prune, to pass to :func:`adjust_dropout` in every round."""
    return {name: module.p for name, module in model.named_modules()
            if isinstance(module, Dropout)}


def adjust_dropout(model, original_p: dict) -> dict:
    """Set every Dropout's ratio to D_r = D_o * sqrt(C_ir / C_io) (Sec. 3.2, Eq. 2).

    C_i counts the connections of the prunable layer whose outputs the dropout acts on (the
    nearest Linear/Conv2d before it), ``o`` the original and ``r`` the retrained network, so
    C_ir / C_io is that layer's density. ``original_p`` is ``{dropout name: D_o}`` (see
    :func:`dropout_ratios`). Returns ``{dropout name: (D_o, D_r)}``; a model without dropout
    returns ``{}``.
    """
    adjusted, previous = {}, None
    for name, module in model.named_modules():
        if isinstance(module, Linear | Conv2d):
            previous = module
        elif isinstance(module, Dropout) and previous is not None:
            if name not in original_p:
                raise ValueError(
                    f"adjust_dropout: no original ratio for dropout {name!r}; original_p has "
                    f"{sorted(original_p)} (record them with dropout_ratios before pruning)"
                )
            module.p = original_p[name] * float(np.sqrt(layer_density(previous)))
            adjusted[name] = (original_p[name], module.p)
    return adjusted
