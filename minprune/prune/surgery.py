"""Dynamic Network Surgery: pruning that training can undo (Guo, Yao & Chen 2016).

Guo, Yao and Chen, "Dynamic Network Surgery for Efficient DNNs", NIPS 2016 (arXiv:1608.04493),
Sec. 3. Training and pruning run together. Each layer keeps its dense weights W and a mask T; the
forward uses W * T, but the update applies the gradient of the loss with respect to W * T to
*every* weight, pruned ones included (Sec. 3.1: a straight-through gradient). Now and then the
mask is re-evaluated with two thresholds a_k < b_k per layer (the paper's function h_k):

    |w| <= a_k: pruned;   |w| > b_k: kept -- "spliced" back if it was pruned;   else: unchanged,

so a pruned weight that the gradient grows past b_k comes back. The thresholds follow the
authors' Caffe code (github.com/yiwenguo/Dynamic-Network-Surgery, ``CInnerProductLayer``):
t_k = mean|w| + c_k std|w| over the layer's surviving weights, taken once from the starting
(trained) weights and then kept fixed; a_k = 0.9 max(t_k, 0), b_k = 1.1 max(t_k, 0) (the paper
writes h_k with |w| < a_k and |w| >= b_k; the code's <= and >, used here, differ only on ties).
The mask is re-evaluated at iteration t with probability sigma(t) = (1 + gamma t)^(-power)
(Sec. 3.3; the repository's LeNet-5 example uses gamma 1e-4, power 1, c 4 for ip1), and no more
from ``stop_step`` on (the code's ``iter_stop``). The per-layer ``c`` sets the compression.

How minprune does it: `fit`'s loop, with the surgery as its step and a hook (`_Surgery`).
Between steps, ``layer.weight`` holds the dense W and ``layer.weight_mask``
the current T, so the forward, `evaluate` and `density` see the surgery's model as it is. For the
step itself (`_Surgery.step`) each layer gets the data W * T and an all-ones mask: the
forward is the same, autograd's gradient is then the gradient with respect to W * T, and
`minprune.training.optim.SGD` applies it -- with momentum and weight decay -- to every weight of W,
pruned ones too (as Caffe's solver does). W and T are put back before anything else runs. At the end
the final mask is applied (`set_mask`: pruned weights become zero), so the result is an ordinary
pruned model for the tables and the sparse export.

Where minprune departs from the paper and its code:

- Biases are not pruned (the code masks them too, with the weights' thresholds, and counts them
  in the statistics).
- ``keep_ratio`` may replace ``c``: the layer's a_k is then put where the first surgery keeps that
  fraction of the starting weights (for comparing schedules at equal sizes, `minprune compare`);
  the density then moves with pruning and splicing, as it does for a given c. With
  ``hold_size=True`` the size is held instead: each re-evaluation keeps exactly that fraction,
  the weights of largest |w| with the kept ones' magnitudes counted 1.1 / 0.9 times (the
  hysteresis of a_k and b_k): a pruned weight is spliced back only by outgrowing a kept one by
  that factor, which then goes (`hysteresis_top_k`).
- The mask may be re-evaluated only every ``every`` iterations (default 1, the paper's).
- Each layer's draw comes from a generator seeded by ``seed``, not C's ``rand()``.
- On the CPU only.
"""

from __future__ import annotations

import numpy as np

import minprune.autograd.functional as F
from minprune.data.entry import as_dataset
from minprune.prune.criteria import check_keep_ratio, largest
from minprune.prune.masks import (
    density,
    layer_density,
    layers_by_weight_name,
    resolve_per_layer,
    set_mask,
)
from minprune.training.fit import TrainingDiverged, fit, log_function
from minprune.training.hooks import FitHook
from minprune.training.phase import Phase

__all__ = ["surgery_thresholds", "surgery_mask", "hysteresis_top_k", "network_surgery"]


def _check_c(value):
    if not isinstance(value, int | float | np.number) or not np.isfinite(value):
        return f"c must be a finite number, got {value!r}"
    return None


def _lower_threshold(layer, c: float | None, keep_ratio: float | None) -> float:
    """a = 0.9 max(t, 0), t = mean|w| + c std|w| over the surviving weights; or, for a keep
    ratio, the largest magnitude that leaves ``keep_ratio`` of the layer above it."""
    if keep_ratio is not None:
        magnitudes = np.abs(layer.weight.data * layer.weight_mask).ravel()
        n_pruned = magnitudes.size - int(round(keep_ratio * magnitudes.size))
        return float(np.partition(magnitudes, n_pruned - 1)[n_pruned - 1]) if n_pruned else 0.0
    magnitudes = np.abs(layer.weight.data[layer.weight_mask != 0]).astype(np.float64)
    t = magnitudes.mean() + c * magnitudes.std() if magnitudes.size else 0.0
    return 0.9 * max(float(t), 0.0)


def surgery_thresholds(model, *, c=None, keep_ratio=None) -> dict:
    """``{name: [a, b]}`` for each prunable layer, b = a x 1.1 / 0.9 (the code's ratio), a from
    exactly one of:

    - ``c``: a = 0.9 max(t, 0) with t = mean|w| + c std|w| over the layer's surviving weights
      (the paper's code);
    - ``keep_ratio``: the a at which |w| > a keeps that fraction of the layer's weights now, so
      that the first surgery leaves the target (a minprune addition, to aim at a size).

    Either is a number or a per-layer dict with a ``'*'`` default."""
    if (c is None) == (keep_ratio is None):
        raise ValueError(f"give exactly one of c and keep_ratio, got c={c!r}, "
                         f"keep_ratio={keep_ratio!r}")
    layers = layers_by_weight_name(model)
    if c is not None:
        rates = resolve_per_layer(c, layers, "c", _check_c)
        ratios = dict.fromkeys(layers)
    else:
        ratios = resolve_per_layer(keep_ratio, layers, "keep_ratio", check_keep_ratio)
        rates = dict.fromkeys(layers)
    thresholds = {}
    for name, layer in layers.items():
        lower = _lower_threshold(layer, rates[name], ratios[name])
        thresholds[name] = [lower, lower * 1.1 / 0.9]
    return thresholds


def surgery_mask(weight, mask, lower: float, upper: float) -> np.ndarray:
    """The paper's h_k, with hysteresis: pruned where |w| <= ``lower``, kept where |w| >
    ``upper``, the old ``mask`` in between."""
    magnitude = np.abs(weight)
    return ((magnitude > upper) | ((mask != 0) & (magnitude > lower))).astype(np.float32)


def hysteresis_top_k(weight, mask, keep_ratio: float) -> np.ndarray:
    """The mask that keeps ``round(keep_ratio x size)`` weights of ``weight``: the largest |w|,
    where a weight kept in ``mask`` counts 1.1 / 0.9 times its magnitude (`surgery_mask`'s band
    between a and b, at a fixed size). Ties go to the lower flat index."""
    score = np.abs(np.asarray(weight, dtype=np.float32)).ravel()
    score[np.asarray(mask).ravel() != 0] *= np.float32(1.1 / 0.9)
    keep = int(round(keep_ratio * score.size))
    if keep == 0:
        return np.zeros(np.shape(weight), dtype=np.float32)
    return largest(score, keep).astype(np.float32).reshape(np.shape(weight))


class _Surgery(FitHook):
    """The surgery inside `fit`: its straight-through ``step``, the masks re-evaluated after
    every step, the densities added to every epoch's record, and its generator saved with each
    checkpoint."""

    def __init__(self, model, thresholds, held, gamma, power, every, stop_step, rng, log):
        self.model, self.layers = model, layers_by_weight_name(model)
        self.thresholds, self.held = thresholds, held
        self.gamma, self.power, self.every, self.stop_step = gamma, power, every, stop_step
        self.rng, self.log = rng, log

    def reevaluate_masks(self, step: int) -> None:
        """Re-evaluate each layer's mask with probability sigma(step) = (1 + gamma step)^-power."""
        if step % self.every or (self.stop_step is not None and step >= self.stop_step):
            return
        for name, layer in self.layers.items():
            if (1.0 + self.gamma * step) ** -self.power > self.rng.random():
                layer.weight_mask = (
                    hysteresis_top_k(layer.weight.data, layer.weight_mask, self.held[name])
                    if self.held else
                    surgery_mask(layer.weight.data, layer.weight_mask, *self.thresholds[name]))

    def step(self, model, optimizer, images, labels):
        """One SGD step in which the gradient with respect to W * T reaches every weight of W;
        return the loss and the logits."""
        layers = self.layers
        dense = {name: layer.weight.data for name, layer in layers.items()}
        masks = {name: layer.weight_mask for name, layer in layers.items()}
        try:
            for name, layer in layers.items():
                layer.weight.data = dense[name] * masks[name]
                layer.weight_mask = np.ones_like(masks[name])
            optimizer.zero_grad()
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            if not np.isfinite(float(loss.item())):
                raise TrainingDiverged(f"surgery: loss is {float(loss.item())}")
            loss.backward()
            for name, layer in layers.items():
                layer.weight.data = dense[name]
            optimizer.step()  # the masks are all ones here: pruned weights move too
        finally:
            for name, layer in layers.items():
                layer.weight.data = dense[name]
                layer.weight_mask = masks[name]
        return float(loss.item()), logits.data

    def after_step(self, iteration: int, model) -> None:
        self.reevaluate_masks(iteration)

    def end_epoch(self, record: dict) -> None:
        record["density"] = density(self.model)
        record["layer_density"] = {n: layer_density(layer) for n, layer in self.layers.items()}
        record["thresholds"] = self.thresholds
        self.log(f"surgery epoch {record['epoch']}: density {record['density']:.2%}")

    def state(self) -> dict:
        return {"surgery_rng": self.rng.bit_generator.state}

    def load_state(self, meta: dict) -> None:
        self.rng.bit_generator.state = meta["surgery_rng"]


def network_surgery(model, train_set, eval_set, phase: Phase, *, keep_ratio=None, c=None,
                    gamma=1e-4, power=1.0, every: int = 1, stop_step: int | None = None,
                    hold_size: bool = False, seed=0, checkpoint=None, on_step=None,
                    progress=None, log=print) -> list[dict]:
    """Prune ``model`` (trained, usually dense) by dynamic network surgery for one phase; return
    one record per epoch. See the module docstring for the method.

    Exactly one of ``keep_ratio`` and ``c`` (each a number or a per-layer dict with a ``'*'``
    default) sets each layer's thresholds, once, from the starting weights (`surgery_thresholds`):
    ``c`` as in the paper, ``keep_ratio`` to start from that density (it then moves as weights
    are pruned and spliced; ``hold_size=True`` keeps it there, `hysteresis_top_k`). Masks are
    re-evaluated at step 0 and after every ``every``-th step,
    each layer's with probability (1 + ``gamma`` t)^-``power``, while t < ``stop_step`` (None:
    throughout). ``checkpoint`` (a path) saves the model (dense weights and masks), optimiser,
    random states and records after every epoch and resumes from it; one written by another run
    is refused (`RunMismatchError`). ``on_step(iteration, model)`` is called after every step and
    mask update (to watch the run). Records: epoch, iteration, lr, train loss and error,
    ``test_error`` on ``eval_set``, seconds, ``density``, ``layer_density`` and the
    ``thresholds`` [a, b] per layer.

    ``train_set`` and ``eval_set`` (None: no ``test_error``) are each a `Dataset`, an
    `ImageFolder` or an ``(images, labels)`` pair; ``progress`` (None: bars only when stderr is
    a terminal) and ``log`` (None: quiet) as in `fit`.
    """
    train_set = as_dataset(train_set, "network_surgery: train_set")
    eval_set = as_dataset(eval_set, "network_surgery: eval_set", allow_none=True)
    log = log_function(log)
    for name, value, least in (("every", every, 1), ("stop_step", stop_step, 0)):
        if value is not None and (not isinstance(value, int) or value < least):
            raise ValueError(f"network_surgery: {name} must be an int >= {least}, "
                             f"got {value!r}")
    for name, value in (("gamma", gamma), ("power", power)):
        if not isinstance(value, int | float | np.number) or not np.isfinite(value) or value < 0:
            raise ValueError(f"network_surgery: {name} must be a finite number >= 0, "
                             f"got {value!r}")
    if hold_size and keep_ratio is None:
        raise ValueError("network_surgery: hold_size=True needs keep_ratio (the size to hold), "
                         f"got c={c!r}")
    layers = layers_by_weight_name(model)
    thresholds = surgery_thresholds(model, c=c, keep_ratio=keep_ratio)
    held = (resolve_per_layer(keep_ratio, layers, "keep_ratio", check_keep_ratio)
            if hold_size else None)
    optimizer = phase.optimizer([p for p in model.parameters() if p.requires_grad])
    optimizer.apply_masks()
    settings = {"c": c, "keep_ratio": keep_ratio, "thresholds": thresholds, "gamma": gamma,
                "power": power, "every": every, "stop_step": stop_step, "hold_size": hold_size}
    shuffle_seed, surgery_seed = np.random.SeedSequence(seed).spawn(2)
    surgery = _Surgery(model, thresholds, held, gamma, power, every, stop_step,
                       np.random.default_rng(surgery_seed), log)
    surgery.reevaluate_masks(0)  # a resumed run loads its masks and generator over these
    history = fit(model, optimizer, train_set, eval_set, epochs=phase.epochs,
                  batch_size=phase.batch_size, lr_policy=phase.policy(), seed=shuffle_seed,
                  checkpoint=checkpoint, progress=progress, log=log, on_step=on_step,
                  fingerprint={"surgery": settings}, step=surgery.step, hooks=[surgery])
    for layer in layers.values():
        set_mask(layer, layer.weight_mask)  # the pruned weights become zero
    return history
