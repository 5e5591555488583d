"""Lower the dropout ratio for retraining, in proportion to the connections left (Sec. 3.2).

Han et al. Eq. 2: D_r = D_o * sqrt(C_ir / C_io). A pruned layer has fewer connections and so
less to over-fit with; its dropout is lowered accordingly (0.5 at 9% density becomes ~0.15).
D_o is the ratio each Dropout was built with (``Dropout.original_p``), which the adjustment never
overwrites: it sets the ratio in use (``Dropout.p``), so every round -- and every later call of
`iterative_prune` or `retrain` on the same model -- scales the original ratio, never one that a
previous round lowered.
"""

from __future__ import annotations

import numpy as np

from minprune.nn.layers import Conv2d, Dropout, Linear
from minprune.prune.masks import layer_density

__all__ = ["dropout_ratios", "adjust_dropout"]


def dropout_ratios(model) -> dict:
    """``{dropout name: D_o}`` for every Dropout of ``model``: the ratio it was built with
    (``original_p``, Sec. 3.2's D_o), whatever ratio an earlier adjustment left in use."""
    return {name: module.original_p for name, module in model.named_modules()
            if isinstance(module, Dropout)}


def adjust_dropout(model, original_p: dict | None = None) -> dict:
    """Set every Dropout's ratio to D_r = D_o * sqrt(C_ir / C_io) (Sec. 3.2, Eq. 2).

    C_i counts the connections of the prunable layer whose outputs the dropout acts on (the
    nearest Linear/Conv2d before it), ``o`` the original and ``r`` the retrained network, so
    C_ir / C_io is that layer's density. ``original_p`` is ``{dropout name: D_o}``; by default
    the ratios the Dropouts were built with (:func:`dropout_ratios`). Only the ratio in use,
    ``p``, changes. Returns ``{dropout name: (D_o, D_r)}``; a model without dropout returns ``{}``.
    """
    original_p = dropout_ratios(model) if original_p is None else original_p
    after, previous = [], None  # (dropout name, dropout, the prunable layer before it)
    for name, module in model.named_modules():
        if isinstance(module, Linear | Conv2d):
            previous = module
        elif isinstance(module, Dropout) and previous is not None:
            after.append((name, module, previous))
    for name, _, _ in after:  # every D_o is checked before any ratio changes
        if name not in original_p:
            raise ValueError(
                f"adjust_dropout: no original ratio for dropout {name!r}; original_p has "
                f"{sorted(original_p)} (give D_o for every dropout, or None for the built "
                "ratios)"
            )
    adjusted = {}
    for name, module, layer in after:
        module.p = original_p[name] * float(np.sqrt(layer_density(layer)))
        adjusted[name] = (original_p[name], module.p)
    return adjusted
