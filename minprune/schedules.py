"""Learning-rate policies, named as in Caffe's solver.

- ``fixed``: lr = base_lr
- ``step``:  lr = base_lr * gamma ^ floor(iteration / step_size)
- ``inv``:   lr = base_lr * (1 + gamma * iteration) ^ (-power)
  (Caffe's LeNet solver: gamma = 1e-4, power = 0.75)
"""

from dataclasses import dataclass

__all__ = ["LRPolicy", "make_policy"]


@dataclass(frozen=True)
class LRPolicy:
    name: str = "fixed"
    base_lr: float = 0.01
    gamma: float = 1e-4
    power: float = 0.75
    step_size: int = 1

    def __post_init__(self):
        if self.name not in ("fixed", "step", "inv"):
            raise ValueError(f"lr policy must be 'fixed', 'step' or 'inv', got {self.name!r}")
        if self.base_lr <= 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr}")
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
