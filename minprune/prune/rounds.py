"""What one prune-retrain round prunes, given as a function or as data.

A round is either a function ``prune(model) -> {name: value}`` (it changes masks and returns what
it pruned at, e.g. thresholds), or a dict with one kind of round:

- ``{"quality": q}``: the paper's rule, Sec. 4: prune ``|w| < q x std`` of each layer
  (`threshold_prune`); ``{"quality": q, "std_of": "dense"}`` names the std (`StdOf`; default
  "surviving", minprune's reading). The dense std is taken from the model as the rounds start,
  before anything is pruned;
- ``{"keep_ratio": r}``: keep the largest-magnitude fraction ``r`` of each layer
  (`keep_ratio_prune`). ``r`` is a fraction of the layer's *original* weights, not of the ones
  the last round left: ``[{"keep_ratio": 0.5}] * 3`` keeps 50% after every round (rounds 2 and 3
  prune nothing, and `minprune.prune.loop.prune_retrain` warns), while quality rounds compound
  (each prunes the survivors again). To reach a keep ratio in several rounds, give falling ones:
  `rounds_to` (``rounds_to(keep_ratio=0.125, rounds=3)`` keeps 50%, 25%, 12.5%).

``q`` and ``r`` are one number for every layer or a per-layer dict with a ``'*'`` default, e.g.
``{"quality": {"fc1.weight": 1.3, "*": 1.0}}``. Data rounds are checked against the model before
any round runs.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral

from minprune.prune.criteria import (
    STD_OF,
    StdOf,
    check_keep_ratio,
    check_quality,
    keep_ratio_prune,
    layer_std,
    threshold_prune,
)
from minprune.prune.masks import layers_by_weight_name, resolve_per_layer

__all__ = ["round_functions", "rounds_to", "ROUND_KINDS", "ROUND_OPTIONS"]

# The kinds of data round: its check and the criterion it runs.
ROUND_KINDS = {
    "quality": (check_quality, threshold_prune),
    "keep_ratio": (check_keep_ratio, keep_ratio_prune),
}
# The keys a data round of a kind may have beside its own.
ROUND_OPTIONS = {"quality": ("std_of",), "keep_ratio": ()}


def _function_of(index: int, spec, names: list, dense_std: dict) -> Callable:
    """The function for data round ``index``; ValueError naming the round when it is malformed."""
    expected = (f"a function prune(model) or a dict with one key, "
                f"{' or '.join(repr(kind) for kind in ROUND_KINDS)} (a 'quality' round may add "
                "'std_of')")
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"rounds[{index}]: expected {expected}, got {spec!r}")
    kinds = [key for key in spec if key in ROUND_KINDS]
    unknown = [key for key in spec if key not in ROUND_KINDS
               and not any(key in ROUND_OPTIONS[kind] for kind in kinds)]
    if unknown:
        raise ValueError(f"rounds[{index}]: unknown key {unknown[0]!r}; expected {expected}")
    if len(kinds) != 1:
        raise ValueError(f"rounds[{index}]: expected {expected}, got {spec!r}")
    kind = kinds[0]
    check, criterion = ROUND_KINDS[kind]
    try:
        resolve_per_layer(spec[kind], names, kind, check)
    except ValueError as error:
        raise ValueError(f"rounds[{index}]: {error}") from None
    if kind == "keep_ratio":
        return lambda model: criterion(model, spec[kind])
    std_of = spec.get("std_of", StdOf.SURVIVING)
    if std_of not in STD_OF:
        raise ValueError(f"rounds[{index}]: std_of must be one of "
                         f"{[str(kind) for kind in STD_OF]}, got {std_of!r}")
    if std_of == StdOf.DENSE:
        return lambda model: criterion(model, spec[kind], std_of, dense_std)
    return lambda model: criterion(model, spec[kind], std_of)


def _dense_std(model) -> dict:
    """``{name: std}`` of the dense layers, for rounds that prune at quality x the dense std."""
    layers = layers_by_weight_name(model)
    pruned = [name for name, layer in layers.items() if not layer.weight_mask.all()]
    if pruned:
        raise ValueError(f"std_of='dense': {pruned} are already pruned, so their dense std is "
                         "gone; start the rounds from the unpruned model")
    return {name: layer_std(layer) for name, layer in layers.items()}


def round_functions(rounds, model) -> list:
    """``rounds`` (functions or data rounds, see the module docstring) as functions, every data
    round checked against ``model``'s prunable layers first."""
    if isinstance(rounds, dict) or callable(rounds) or isinstance(rounds, str):
        raise TypeError(f"rounds must be a list, one entry per round, got {rounds!r}; for one "
                        f"round write [{rounds!r}], for several falling keep ratios "
                        "mp.prune.rounds_to(keep_ratio=..., rounds=...)")
    rounds = list(rounds)
    names = list(layers_by_weight_name(model))
    dense = any(isinstance(spec, dict) and spec.get("std_of") == StdOf.DENSE for spec in rounds)
    dense_std = _dense_std(model) if dense else {}
    return [spec if callable(spec) else _function_of(index, spec, names, dense_std)
            for index, spec in enumerate(rounds)]


def rounds_to(keep_ratio, rounds: int) -> list[dict]:
    """Data rounds that reach ``keep_ratio`` in ``rounds`` equal multiplicative steps (Sec. 3.4:
    several gentle rounds beat one aggressive one): round k keeps ``keep_ratio ** (k / rounds)``
    of each layer's original weights (`minprune.prune.retraining.geometric_keep_ratios`).

    ``keep_ratio`` is one number in (0, 1] or a per-layer dict with a ``'*'`` default. E.g.
    ``rounds_to(keep_ratio=0.125, rounds=3)`` is ``[{"keep_ratio": 0.5}, {"keep_ratio": 0.25},
    {"keep_ratio": 0.125}]`` (up to rounding), ready for `iterative_prune`.
    """
    # Imported here: retraining imports this module (for round_functions).
    from minprune.prune.retraining import geometric_keep_ratios

    if not isinstance(rounds, Integral) or isinstance(rounds, bool) or rounds < 1:
        raise ValueError(f"rounds_to: rounds must be an integer >= 1, got {rounds!r}")
    per_layer = isinstance(keep_ratio, dict)
    targets = keep_ratio if per_layer else {"*": keep_ratio}
    if not targets:
        raise ValueError("rounds_to: keep_ratio is an empty dict; give a number in (0, 1] or "
                         "{layer name: ratio} with an optional '*' default")
    for name, value in targets.items():
        problem = check_keep_ratio(value)
        if problem:
            where = f"keep_ratio[{name!r}]" if per_layer else "keep_ratio"
            raise ValueError(f"rounds_to: {where}: {problem}")
    steps = geometric_keep_ratios(targets, rounds)
    return [{"keep_ratio": step if per_layer else step["*"]} for step in steps]
