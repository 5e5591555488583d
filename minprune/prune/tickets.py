"""Winning tickets: iterative magnitude pruning whose survivors go back to earlier values.

Han et al. 2015, Sec. 3.3, retrain the survivors from their *trained* values and say that
re-initialised survivors retrain worse. Frankle & Carbin 2019 ("The Lottery Ticket Hypothesis",
ICLR; the four steps of its introduction, LeNet-300-100 in its Sec. 2) ran the same iterative
magnitude pruning on the same network but reset the survivors to their *original initial*
values after each round, masks kept:

    1. initialise the network, keep its weights (the snapshot at iteration k = 0);
    2. train it;
    3. prune a fraction of the surviving weights of each layer by magnitude (theirs: 20% of each
       hidden layer, 10% of the output layer, per round);
    4. reset the survivors to the snapshot, the pruned weights staying 0; repeat from 2.

Frankle, Dziugaite, Roy & Carbin 2020 ("Linear Mode Connectivity and the Lottery Ticket
Hypothesis", ICML) take the snapshot at an early iteration k > 0 instead ("rewinding"). Their
control, random re-initialisation of the ticket's mask, is `reinitialize`.

Here: `Snapshot` (a `fit` hook) keeps the weights at iteration k; `prune_survivors` prunes a
fraction of each layer's survivors (`keep_ratio_prune` underneath); `rewind` puts the snapshot
back under the masks; `imp` runs the rounds with ``reset="rewind"`` (the tickets) or
``reset="keep"`` (Han et al.'s retraining from trained values, the same loop as
`minprune.prune.loop.prune_retrain` without dropout or freezing); `BestValidation` (a hook)
finds the iteration of best validation error, their early-stopping criterion (their Figs. 3-4).

Departures, each said where it happens: SGD with momentum instead of their Adam (minprune has
no Adam); a rewound run restarts the optimiser (zero velocity) and its learning-rate schedule
from iteration 0 and trains as long as the first run did (Frankle et al. 2020 continue from k and
train T - k iterations); biases are rewound too (they are never pruned).
"""

from __future__ import annotations

import numpy as np

from minprune.nn.module import copy_model
from minprune.prune.criteria import keep_ratio_prune
from minprune.prune.figures import PaperFigure
from minprune.prune.masks import (
    density,
    layer_density,
    layers_by_weight_name,
    resolve_per_layer,
    set_mask,
)
from minprune.training.fit import evaluate, fit
from minprune.training.hooks import FitHook

__all__ = ["compare_resets", "CONDITIONS", "Snapshot", "BestValidation", "parameters_of",
           "prune_survivors", "remaining", "rewind", "reinitialize",
           "train_tracked", "imp", "RESETS", "plot_tickets"]

RESETS = ("rewind", "keep")


def parameters_of(model) -> dict:
    """Copies of every parameter's values, ``{"fc1.weight": array, "fc1.bias": array, ...}``."""
    return {name: np.array(parameter.data, copy=True)
            for name, parameter in model.named_parameters()}


class Snapshot(FitHook):
    """The weights of ``model`` at iteration ``iteration`` of the `fit` it is a hook of.

    ``iteration=0`` takes them now, before any step (Frankle & Carbin's original
    initialisation); ``iteration=k`` after the k-th step (Frankle et al. 2020's rewinding point).
    """

    def __init__(self, model, iteration: int = 0):
        if isinstance(iteration, bool) or not isinstance(iteration, int | np.integer) \
                or iteration < 0:
            raise ValueError(f"Snapshot: iteration must be an integer >= 0 (0: the "
                             f"initialisation), got {iteration!r}")
        self.iteration = int(iteration)
        self._weights = parameters_of(model) if iteration == 0 else None

    def after_step(self, iteration: int, model) -> None:
        if iteration == self.iteration:
            self._weights = parameters_of(model)

    @property
    def weights(self) -> dict:
        """``{name: array}`` as they were at ``iteration``; RuntimeError before it was reached."""
        if self._weights is None:
            raise RuntimeError(f"Snapshot: iteration {self.iteration} was never reached; train "
                               f"for at least {self.iteration} steps with this hook")
        return self._weights


class BestValidation(FitHook):
    """Validation error every ``every`` steps; keeps the lowest (the first, on ties), its
    iteration and the weights there: Frankle & Carbin's early-stopping iteration (theirs is the
    iteration of minimum validation *loss*; here the error, on which minprune decides
    everything)."""

    def __init__(self, validation, every: int = 100):
        if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
            raise ValueError(f"BestValidation: every must be an integer >= 1, got {every!r}")
        self.validation, self.every = validation, int(every)
        self.curve: list[tuple[int, float]] = []
        self.best_error, self.best_iteration, self.best_weights = np.inf, None, None

    def after_step(self, iteration: int, model) -> None:
        if iteration % self.every:
            return
        error = evaluate(model, self.validation)["error"]
        self.curve.append((iteration, error))
        if error < self.best_error:
            self.best_error, self.best_iteration = error, iteration
            self.best_weights = parameters_of(model)


def train_tracked(model, train_set, validation, phase, *, every: int = 100, seed=0,
                  hooks=(), log=None) -> BestValidation:
    """Train ``model`` for one `Phase` (masks hold, as in `fit_phase`) with a `BestValidation`
    hook, and the extra ``hooks`` (e.g. a `Snapshot`); return the `BestValidation`. The model
    ends with its *last* weights (those are the ones pruned next)."""
    tracker = BestValidation(validation, every)
    optimizer = phase.optimizer([p for p in model.parameters() if p.requires_grad])
    optimizer.apply_masks()
    fit(model, optimizer, train_set, None, epochs=phase.epochs, batch_size=phase.batch_size,
        lr_policy=phase.policy(), seed=seed, progress=False, log=log, hooks=[tracker, *hooks])
    return tracker


def _check_rate(value):
    if not isinstance(value, int | float | np.number) or not 0 <= value < 1:
        return f"the fraction of survivors to prune must be in [0, 1), got {value!r}"
    return None


def prune_survivors(model, rates) -> dict:
    """Prune the fraction ``rates`` (one number, or ``{name: rate, "*": default}``) of each
    layer's *surviving* weights, smallest magnitudes first (step 3 above). Frankle & Carbin's
    LeNet rate: ``{"fc3.weight": 0.1, "*": 0.2}``. Return ``{name: density}`` afterwards."""
    layers = layers_by_weight_name(model)
    rates = resolve_per_layer(rates, layers, "prune_survivors: rates", _check_rate)
    keep_ratio_prune(model, {name: layer_density(layer) * (1.0 - rates[name])
                             for name, layer in layers.items()})
    return {name: layer_density(layer) for name, layer in layers.items()}


def remaining(sizes: dict, rates, rounds: int) -> list[float]:
    """The fraction of all weights left after 0, 1, ..., ``rounds`` rounds of `prune_survivors`
    on layers of ``sizes`` (``{name: weight count}``), before rounding to whole weights."""
    rates = resolve_per_layer(rates, sizes, "remaining: rates", _check_rate)
    total = sum(sizes.values())
    return [sum(size * (1 - rates[name]) ** r for name, size in sizes.items()) / total
            for r in range(rounds + 1)]


def rewind(model, weights: dict) -> None:
    """Set every parameter to ``weights[name]`` (a `Snapshot`'s), then zero what the masks prune:
    the survivors get their snapshot values, pruned weights stay 0, masks are untouched."""
    parameters = _check_snapshot(model, weights, "rewind")
    for name, parameter in parameters.items():
        parameter.data[...] = weights[name]
        if parameter.mask is not None:
            parameter.data *= parameter.mask


def _check_snapshot(model, weights, where: str) -> dict:
    """The model's parameters by name, once ``weights`` is known to hold each of them in its
    shape (ValueError naming the first that does not)."""
    if not isinstance(weights, dict):
        raise TypeError(f"{where}: weights must be a dict {{name: array}} (a Snapshot's "
                        f".weights), got {type(weights).__name__}")
    parameters = dict(model.named_parameters())
    missing = [name for name in parameters if name not in weights]
    if missing:
        raise ValueError(f"{where}: the snapshot has no {missing[0]!r}; expected the parameters "
                         f"{list(parameters)} (a Snapshot of this model)")
    for name, parameter in parameters.items():
        if np.shape(weights[name]) != parameter.data.shape:
            raise ValueError(f"{where}: snapshot {name!r} has shape {np.shape(weights[name])}, "
                             f"the model's has {parameter.data.shape}")
    return parameters


def reinitialize(model, seed: int) -> None:
    """Control (4): draw a fresh initialisation (the layers' Xavier filler,
    `minprune.nn.layers.xavier_uniform`, biases 0) from its own generator seeded by ``seed``, and
    keep the masks -- Frankle & Carbin's "randomly reinitialized" ticket, and the
    re-initialised survivors of Han et al.'s Sec. 3.3."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"reinitialize: seed must be an integer >= 0, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    for layer in layers_by_weight_name(model).values():
        shape = layer.weight.data.shape
        bound = np.sqrt(3.0 / int(np.prod(shape[1:])))  # `xavier_uniform`'s, fan_in = inputs
        layer.weight.data[...] = rng.uniform(-bound, bound, size=shape) * layer.weight_mask
        if layer.bias is not None:
            layer.bias.data[...] = 0.0


def imp(model, train, rates, rounds: int, *, reset: str, weights: dict | None = None,
        log=print) -> list[dict]:
    """Iterative magnitude pruning of a *trained* ``model``: ``rounds`` times, prune the fraction
    ``rates`` of each layer's survivors (`prune_survivors`), reset, and call ``train(model,
    round)`` (round from 1). Return one record per round: its densities and what ``train``
    returned.

    ``reset="rewind"``: survivors back to ``weights`` (a `Snapshot`'s; iteration 0 is Frankle &
    Carbin, k > 0 is Frankle et al. 2020). ``reset="keep"``: survivors keep their trained values
    (Han et al. Sec. 3.3; then ``train`` should retrain at the lower rate, 1/10 for LeNet).
    """
    if reset not in RESETS:
        raise ValueError(f"imp: reset must be one of {RESETS}, got {reset!r}")
    if reset == "rewind" and weights is None:
        raise ValueError("imp: reset='rewind' needs weights= (a Snapshot's .weights, taken "
                         "while the dense model trained)")
    if isinstance(rounds, bool) or not isinstance(rounds, int | np.integer) or rounds < 1:
        raise ValueError(f"imp: rounds must be an integer >= 1, got {rounds!r}")
    layers = layers_by_weight_name(model)
    resolve_per_layer(rates, layers, "imp: rates", _check_rate)  # checked before round 1
    if weights is not None:
        _check_snapshot(model, weights, "imp")  # before anything is pruned
    records = []
    for index in range(1, rounds + 1):
        layer_densities = prune_survivors(model, rates)
        if reset == "rewind":
            rewind(model, weights)
        left = density(model)
        if log:
            log(f"imp round {index}/{rounds} ({reset}): {left:.2%} of the weights left")
        records.append({"round": index, "density": left, "layer_density": layer_densities,
                        "trained": train(model, index)})
    return records


# The four lines of the experiment (their Figs. 3-4 and the paper's Sec. 3.3), in drawing order.
CONDITIONS = ("fine-tune", "rewind to 0", "rewind to k", "random re-init")


def _point(model, tracker: BestValidation, test_set) -> dict:
    """One point of a line, taken right after its training (the masks are this round's): the
    test error of the weights at the best validation error (the test set read once for it), that
    iteration, and the validation curve. The density is the evaluated model's own."""
    best = copy_model(model)
    rewind(best, tracker.best_weights)
    return {"density": density(best), "early_stop_iteration": tracker.best_iteration,
            "validation_error": tracker.best_error,
            "test_error": evaluate(best, test_set)["error"], "curve": tracker.curve}


def compare_resets(model, train_set, validation, test_set, *, phase, finetune_phase, rates,
                   rounds: int, k: int, every: int = 100, seed: int = 0, log=print) -> dict:
    """The experiment: train the untrained ``model`` (snapshots at iterations 0 and ``k``), then
    ``rounds`` rounds of `imp` three ways -- fine-tune (``reset="keep"``, ``finetune_phase``),
    rewind to 0 and rewind to k (``phase``) -- and each mask of the rewind-to-0 line trained
    from a fresh initialisation (`reinitialize`, ``phase``). Every training is measured with
    `BestValidation` on ``validation``; ``test_set`` is read once per point, at the best
    validation weights. Return ``{condition: [point per density, the dense one first]}``.
    """
    at_zero, at_k = Snapshot(model, 0), Snapshot(model, k)
    dense = train_tracked(model, train_set, validation, phase, every=every, seed=seed,
                          hooks=[at_k])
    first = _point(model, dense, test_set)
    lines = {name: [first] for name in CONDITIONS}
    if log:
        log(f"dense: test error {first['test_error']:.2%} at iteration "
            f"{first['early_stop_iteration']}")
    tickets = []  # the masks of the rewind-to-0 line, for the random re-initialisations
    for name, reset, weights, how in (("rewind to 0", "rewind", at_zero.weights, phase),
                                      ("rewind to k", "rewind", at_k.weights, phase),
                                      ("fine-tune", "keep", None, finetune_phase)):
        chain = copy_model(model)

        def train(chain, index, name=name, how=how):
            tracker = train_tracked(chain, train_set, validation, how, every=every, seed=seed)
            if name == "rewind to 0":
                tickets.append({key: layer.weight_mask.copy() for key, layer
                                in layers_by_weight_name(chain).items()})
            point = _point(chain, tracker, test_set)  # now, under this round's masks
            _log_point(log, name, point)
            return point

        for record in imp(chain, train, rates, rounds, reset=reset, weights=weights, log=log):
            lines[name].append(record["trained"])
    for index, masks in enumerate(tickets):
        control = copy_model(model)
        for key, layer in layers_by_weight_name(control).items():
            set_mask(layer, masks[key])
        reinitialize(control, seed + 1 + index)
        tracker = train_tracked(control, train_set, validation, phase, every=every, seed=seed)
        lines["random re-init"].append(_point(control, tracker, test_set))
        _log_point(log, "random re-init", lines["random re-init"][-1])
    return lines


STYLES = {"fine-tune": ("tab:green", "v"), "rewind to 0": ("tab:red", "o"),
          "rewind to k": ("tab:purple", "s"), "random re-init": ("tab:gray", "x")}


def plot_tickets(lines: dict, path=None, caption: str = "") -> PaperFigure:
    """Frankle & Carbin's Figs. 3-4 from ``compare_resets``'s lines: test error at the
    early-stopping iteration (left) and that iteration (right) against the weights left (log
    axis, falling to the right, as theirs). Written to ``path`` (PNG) when given."""
    figure = PaperFigure(figsize=(10, 4))
    error_axes, iteration_axes = figure.subplots(1, 2)
    for name, points in lines.items():
        color, marker = STYLES.get(name, (None, "."))
        left = [100 * point["density"] for point in points]
        error_axes.plot(left, [100 * p["test_error"] for p in points], marker=marker,
                        color=color, label=name)
        iteration_axes.plot(left, [p["early_stop_iteration"] for p in points], marker=marker,
                            color=color, label=name)
    for axes, label in ((error_axes, "test error at early stop (%)"),
                        (iteration_axes, "early-stop iteration (best validation)")):
        axes.set_xscale("log")
        ticks = [100 * point["density"] for point in next(iter(lines.values()))]
        axes.set_xticks(ticks, [f"{tick:.3g}" for tick in ticks])
        axes.minorticks_off()
        axes.invert_xaxis()
        axes.set_xlabel("weights remaining (%)")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
    error_axes.legend()
    figure.suptitle("Winning tickets on LeNet-300-100: four ways to restart the survivors")
    figure.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=8, style="italic")
    figure.tight_layout(rect=(0, 0.06, 1, 0.95))
    if path is not None:
        figure.savefig(path, format="png", dpi=110)
    return figure


def _log_point(log, name: str, point: dict) -> None:
    if log:
        log(f"{name}: {point['density']:.2%} left, test error {point['test_error']:.2%} at "
            f"iteration {point['early_stop_iteration']}")
