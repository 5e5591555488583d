"""How to train one phase: the SGD settings, the learning-rate policy, epochs and batch size.

A ``Phase`` describes the initial (dense) training as well as each retraining after a prune. Its
defaults are Caffe's LeNet solver, the setting the paper starts from, and they live only here:
the command line and the recipes read them from ``Phase``. A phase is checked when it is built,
each bad field named, so a mistake stops before any training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

from minprune.training.optim import SGD
from minprune.training.schedules import LRPolicy

__all__ = ["Phase"]

# Caffe's LeNet solver: the ``inv`` policy's settings, and the values a phase records for the
# settings its policy does not read (so that a phase's description, and the fingerprint of a
# saved run, are what they were before these became optional).
_LENET_SOLVER = {"gamma": 1e-4, "power": 0.75, "step_size": 1}
# The settings a user must give when they name a policy: ``step`` has no sane default (how far
# and how often the rate drops depends on the run's length). ``inv`` takes the LeNet solver's.
_REQUIRED = {"fixed": (), "step": ("gamma", "step_size"), "inv": ()}
_EXAMPLE = {"gamma": "gamma=0.1", "step_size": "step_size=<iterations between drops>"}


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Phase:
    """One phase of training, Caffe's LeNet solver by default (lr 0.01, momentum 0.9, weight
    decay 5e-4, ``inv`` policy with gamma 1e-4 and power 0.75, batch 64).

    ``weight_decay`` is L2 and ``l1`` is L1 (Sec. 3.1 compares them; either may be chosen per
    phase). ``gamma``, ``power`` and ``step_size`` are read by the policies that use them (see
    `minprune.training.schedules`): ``lr_policy="step"`` needs ``gamma`` and ``step_size`` given
    (e.g. ``Phase(lr_policy="step", gamma=0.1, step_size=3 * iterations_per_epoch)``);
    ``"inv"`` takes the LeNet solver's gamma 1e-4 and power 0.75 unless given. Settings a policy
    does not read hold the LeNet solver's values.

    Refused (ValueError naming the field): lr not a finite number > 0, momentum outside [0, 1),
    a negative or non-finite weight_decay or l1, epochs < 0, batch_size < 1, and a policy whose
    rate falls below a millionth of ``lr`` within the phase (`LRPolicy.check_iterations`; here
    with ``epochs`` iterations, the fewest the phase can run; `minprune.training.fit.fit` checks
    again with the exact count once the data is known).
    """

    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    l1: float = 0.0
    lr_policy: str = "inv"
    gamma: float | None = None
    power: float | None = None
    step_size: int | None = None
    batch_size: int = 64

    def __post_init__(self):
        self._check_fields()
        missing = [name for name in _REQUIRED[self.lr_policy] if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"Phase: lr_policy={self.lr_policy!r} needs {' and '.join(missing)}, e.g. "
                f"Phase(lr_policy={self.lr_policy!r}, "
                f"{', '.join(_EXAMPLE[name] for name in missing)}); Phase has no defaults for "
                f"them (its gamma 1e-4 is the inv policy's, and with step_size 1 a step policy "
                f"drops the rate to 1e-30 in 8 iterations)")
        for name, value in _LENET_SOLVER.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        try:
            policy = self.policy()
        except ValueError as error:
            raise ValueError(f"Phase: {error}") from None
        if self.epochs > 0:
            try:
                policy.check_iterations(self.epochs, f"at least one per epoch, {self.epochs} "
                                                     "epochs")
            except ValueError as error:
                raise ValueError(f"Phase: {error}") from None

    def _check_fields(self) -> None:
        """ValueError naming the first field that is out of range."""
        if not _number(self.lr) or self.lr <= 0:
            raise ValueError(f"Phase: lr must be a finite number > 0 (the base learning rate, "
                             f"e.g. 0.01), got {self.lr!r}")
        if not _number(self.momentum) or not 0 <= self.momentum < 1:
            raise ValueError(f"Phase: momentum must be in [0, 1) (0.9 is Caffe's), got "
                             f"{self.momentum!r}")
        for name in ("weight_decay", "l1"):
            value = getattr(self, name)
            if not _number(value) or value < 0:
                raise ValueError(f"Phase: {name} must be a finite number >= 0 (0 turns it "
                                 f"off), got {value!r}")
        if not _integer(self.epochs) or self.epochs < 0:
            raise ValueError(f"Phase: epochs must be an integer >= 0, got {self.epochs!r}")
        if not _integer(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"Phase: batch_size must be an integer >= 1, got "
                             f"{self.batch_size!r}")
        if self.lr_policy not in _REQUIRED:
            raise ValueError(f"Phase: lr_policy must be 'fixed', 'step' or 'inv', got "
                             f"{self.lr_policy!r}")

    def policy(self) -> LRPolicy:
        """The learning rate at each iteration of this phase."""
        return LRPolicy(self.lr_policy, self.lr, self.gamma, self.power, self.step_size)

    def optimizer(self, parameters) -> SGD:
        """SGD over ``parameters`` with this phase's settings."""
        return SGD(parameters, lr=self.lr, momentum=self.momentum,
                   weight_decay=self.weight_decay, l1=self.l1)
