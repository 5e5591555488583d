"""What one prune-retrain round prunes, given as a function or as data.

A round is either a function ``prune(model) -> {name: value}`` (it changes masks and returns what
it pruned at, e.g. thresholds), or a dict with exactly one key:

- ``{"quality": q}``: the paper's rule, Sec. 3: prune ``|w| < q x std`` of each layer's surviving
  weights (`threshold_prune`);
- ``{"keep_ratio": r}``: keep the largest-magnitude fraction ``r`` of each layer
  (`keep_ratio_prune`).

``q`` and ``r`` are one number for every layer or a per-layer dict with a ``'*'`` default, e.g.
``{"quality": {"fc1.weight": 1.3, "*": 1.0}}``. Data rounds are checked against the model before
any round runs.
"""

from __future__ import annotations

from collections.abc import Callable

from minprune.prune.criteria import (
    check_keep_ratio,
    check_quality,
    keep_ratio_prune,
    threshold_prune,
)
from minprune.prune.masks import layers_by_weight_name, resolve_per_layer

__all__ = ["round_functions", "ROUND_KINDS"]

# The keys a data round may have: its check and the criterion it runs.
ROUND_KINDS = {
    "quality": (check_quality, threshold_prune),
    "keep_ratio": (check_keep_ratio, keep_ratio_prune),
}


def _function_of(index: int, spec, names: list) -> Callable:
    """The function for data round ``index``; ValueError naming the round when it is malformed."""
    expected = (f"a function prune(model) or a dict with one key, "
                f"{' or '.join(repr(kind) for kind in ROUND_KINDS)}")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"rounds[{index}]: expected {expected}, got {spec!r}")
    (kind, setting), = spec.items()
    if kind not in ROUND_KINDS:
        raise ValueError(f"rounds[{index}]: unknown key {kind!r}; expected {expected}")
    check, criterion = ROUND_KINDS[kind]
    try:
        resolve_per_layer(setting, names, kind, check)
    except ValueError as error:
        raise ValueError(f"rounds[{index}]: {error}") from None
    return lambda model: criterion(model, setting)


def round_functions(rounds, model) -> list:
    """``rounds`` (functions or data rounds, see the module docstring) as functions, every data
    round checked against ``model``'s prunable layers first."""
    rounds = list(rounds)
    names = list(layers_by_weight_name(model))
    return [spec if callable(spec) else _function_of(index, spec, names)
            for index, spec in enumerate(rounds)]
