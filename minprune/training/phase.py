"""How to train one phase: the SGD settings, the learning-rate policy, epochs and batch size.

A ``Phase`` describes the initial (dense) training as well as each retraining after a prune. Its
defaults are Caffe's LeNet solver, the setting the paper starts from, and they live only here:
the command line and the recipes read them from ``Phase``.
"""

from __future__ import annotations

from dataclasses import dataclass

from minprune.training.optim import SGD
from minprune.training.schedules import LRPolicy

__all__ = ["Phase"]


@dataclass(frozen=True)
class Phase:
    """One phase of training, Caffe's LeNet solver by default (lr 0.01, momentum 0.9, weight
    decay 5e-4, ``inv`` policy with gamma 1e-4 and power 0.75, batch 64).

    ``weight_decay`` is L2 and ``l1`` is L1 (Sec. 3.1 compares them; either may be chosen per
    phase). ``gamma``, ``power`` and ``step_size`` are read by the policies that use them (see
    `minprune.training.schedules`).
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
        """The learning rate at each iteration of this phase."""
        return LRPolicy(self.lr_policy, self.lr, self.gamma, self.power, self.step_size)

    def optimizer(self, parameters) -> SGD:
        """SGD over ``parameters`` with this phase's settings."""
        return SGD(parameters, lr=self.lr, momentum=self.momentum,
                   weight_decay=self.weight_decay, l1=self.l1)
