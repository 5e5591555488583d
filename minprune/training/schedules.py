"""Learning-rate policies, named as in Caffe's solver.

- ``fixed``: lr = base_lr
- ``step``:  lr = base_lr * gamma ^ floor(iteration / step_size)
- ``inv``:   lr = base_lr * (1 + gamma * iteration) ^ (-power)

A policy has no default gamma, power or step size: the ones it uses must be given (the defaults
of a training run are `minprune.training.phase.Phase`'s).
"""

from dataclasses import dataclass

__all__ = ["LRPolicy", "make_policy"]

# What each policy reads besides base_lr.
_NEEDS = {"fixed": (), "step": ("gamma", "step_size"), "inv": ("gamma", "power")}


@dataclass(frozen=True)
class LRPolicy:
    """The learning rate as a function of the iteration, for one of Caffe's policies."""

    name: str
    base_lr: float
    gamma: float | None = None
    power: float | None = None
    step_size: int | None = None

    def __post_init__(self):
        if self.name not in _NEEDS:
            raise ValueError(f"lr policy must be 'fixed', 'step' or 'inv', got {self.name!r}")
        if self.base_lr <= 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr}")
        missing = [option for option in _NEEDS[self.name] if getattr(self, option) is None]
        if missing:
            raise ValueError(f"the {self.name} policy needs {' and '.join(missing)}")
        if self.name == "step" and self.step_size < 1:
            raise ValueError(f"step policy needs step_size >= 1, got {self.step_size}")

    def __call__(self, iteration: int) -> float:
        """The learning rate at ``iteration`` (0-based)."""
        if self.name == "fixed":
            return self.base_lr
        if self.name == "step":
            return self.base_lr * self.gamma ** (iteration // self.step_size)
        return self.base_lr * (1.0 + self.gamma * iteration) ** (-self.power)


def make_policy(name: str, base_lr: float, **options) -> LRPolicy:
    """Build a policy from its Caffe name; ``options`` are gamma, power, step_size."""
    return LRPolicy(name=name, base_lr=base_lr, **options)
