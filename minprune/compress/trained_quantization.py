"""Trained quantization: retraining the shared values (Han, Mao & Dally 2016, Sec. 3,
"Feed-forward and Back-propagation", Eq. 3).

After weight sharing (`minprune.compress.weight_sharing`) every surviving weight of a layer is
one of its 2**bits centroids. Retraining keeps each weight's cluster fixed and moves the
centroids: "During update, all the gradients are grouped by the color and summed together,
multiplied by the learning rate and subtracted from the shared centroids from last iteration"
(their Fig. 3). With L the loss, W_ij a weight, I_ij its cluster and C_k a centroid (Eq. 3)::

    dL/dC_k = sum_ij  dL/dW_ij * 1(I_ij = k)

The gradient dL/dW_ij is the one minprune's autograd already gives the layer's weight (masked:
pruned weights get 0 and belong to no cluster), so `CentroidSGD` only has to sum it per cluster
(``np.bincount``), step the centroids with momentum, and write them back into the weights. Biases
are not shared (the paper quantizes weights only) and take minprune's ordinary masked SGD step.

Weight decay: the loss `fit` minimises carries L2 on the weights, so its gradient adds
``weight_decay * W_ij`` to every weight's gradient before the sum -- i.e. ``weight_decay *
count_k * C_k`` for centroid k. Momentum (0.9, as in the rest of minprune) is minprune's; the
paper gives no optimiser settings for this retraining.

`retrain_quantized` runs it through `minprune.training.fit.fit` (same loop, checkpoints and
resume); the CPU only -- the centroids live in NumPy.
"""

from __future__ import annotations

import numpy as np

from minprune.prune.masks import layers_by_weight_name
from minprune.training.fit import fit
from minprune.training.optim import SGD
from minprune.training.phase import Phase

__all__ = ["CentroidSGD", "centroid_gradients", "retrain_quantized"]


def centroid_gradients(weight_gradient, survivors, assignments, clusters: int) -> np.ndarray:
    """Eq. 3: the gradient of each centroid, the sum of its weights' gradients (float64)."""
    flat = np.asarray(weight_gradient).reshape(-1)[survivors]
    return np.bincount(assignments, weights=flat.astype(np.float64), minlength=clusters)


class CentroidSGD:
    """SGD that moves each shared layer's centroids by Eq. 3 and every other parameter as
    `minprune.training.optim.SGD` does. Has what `fit` reads of an optimiser: ``lr`` (set each
    iteration), ``momentum``, ``weight_decay``, ``l1``, ``parameters``, ``zero_grad``, ``step``,
    ``state_dict`` and ``load_state_dict``."""

    def __init__(self, model, codebooks: dict, lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0):
        layers = layers_by_weight_name(model)
        unknown = sorted(set(codebooks) - set(layers))
        if unknown:
            raise ValueError(f"CentroidSGD: codebooks {unknown} name no layer of the model")
        self.shared = []  # (name, weight parameter, survivor positions, codebook)
        for name, codebook in codebooks.items():
            weight = layers[name].weight
            survivors = np.flatnonzero(layers[name].weight_mask.reshape(-1))
            if survivors.size != codebook.assignments.size:
                raise ValueError(f"CentroidSGD: {name} keeps {survivors.size} weights, its "
                                 f"codebook assigns {codebook.assignments.size}")
            self.shared.append((name, weight, survivors, codebook))
        shared_ids = {id(weight) for _, weight, _, _ in self.shared}
        others = [p for p in model.parameters() if p.requires_grad and id(p) not in shared_ids]
        self._others = SGD(others, lr, momentum, weight_decay) if others else None
        self.parameters = [*(weight for _, weight, _, _ in self.shared), *others]
        self.lr, self.momentum, self.weight_decay, self.l1 = lr, momentum, weight_decay, 0.0
        self.velocities = [np.zeros(codebook.centroids.size) for *_, codebook in self.shared]

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    def step(self) -> None:
        for (_, weight, survivors, codebook), velocity in zip(self.shared, self.velocities,
                                                              strict=True):
            if weight.grad is None:
                continue
            gradient = centroid_gradients(weight.grad, survivors, codebook.assignments,
                                          codebook.centroids.size)
            if self.weight_decay:
                counts = np.bincount(codebook.assignments, minlength=codebook.centroids.size)
                gradient += self.weight_decay * counts * codebook.centroids
            velocity *= self.momentum
            velocity += gradient
            codebook.centroids -= (self.lr * velocity).astype(np.float32)
            np.put(weight.data, survivors, codebook.values())
        if self._others is not None:
            self._others.lr = self.lr
            self._others.step()

    def state_dict(self) -> dict:
        state = {f"centroids.{name}": codebook.centroids.copy()
                 for name, _, _, codebook in self.shared}
        state |= {f"centroid_velocity.{name}": velocity.copy()
                  for (name, *_), velocity in zip(self.shared, self.velocities, strict=True)}
        if self._others is not None:
            state |= {f"others.{key}": value for key, value in self._others.state_dict().items()}
        state["lr"] = np.float64(self.lr)
        return state

    def load_state_dict(self, state: dict) -> None:
        for (name, weight, survivors, codebook), velocity in zip(self.shared, self.velocities,
                                                                 strict=True):
            for key, target in ((f"centroids.{name}", codebook.centroids),
                                (f"centroid_velocity.{name}", velocity)):
                if key not in state or np.shape(state[key]) != target.shape:
                    raise ValueError(f"CentroidSGD.load_state_dict: {key!r} missing or of "
                                     f"shape {np.shape(state.get(key))}, expected "
                                     f"{target.shape}")
                target[...] = state[key]
            np.put(weight.data, survivors, codebook.values())
        if self._others is not None:
            self._others.load_state_dict({key[len("others."):]: value
                                          for key, value in state.items()
                                          if key.startswith("others.")})
        self.lr = float(state["lr"])


def retrain_quantized(model, codebooks: dict, train_set, test_set, phase: Phase, *, seed=0,
                      checkpoint=None, progress=None, log=print) -> list[dict]:
    """Retrain the centroids of ``codebooks`` (and the biases) for ``phase`` with `CentroidSGD`;
    return `fit`'s records. ``checkpoint`` saves and resumes (the codebooks' bits go into the
    run's fingerprint, the centroids into the optimiser's state)."""
    if not isinstance(phase, Phase):
        raise TypeError(f"retrain_quantized: phase must be a Phase, got {type(phase).__name__}")
    optimizer = CentroidSGD(model, codebooks, phase.lr, phase.momentum, phase.weight_decay)
    fingerprint = {"trained_quantization": {name: codebook.bits
                                            for name, codebook in codebooks.items()}}
    return fit(model, optimizer, train_set, test_set, epochs=phase.epochs,
               batch_size=phase.batch_size, lr_policy=phase.policy(), seed=seed,
               checkpoint=checkpoint, progress=progress, log=log, fingerprint=fingerprint)
