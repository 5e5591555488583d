"""Learning-rate policies, named as in Caffe's solver.

- ``fixed``: lr = base_lr
- ``step``:  lr = base_lr * gamma ^ floor(iteration / step_size)
- ``inv``:   lr = base_lr * (1 + gamma * iteration) ^ (-power)

A policy has no default gamma, power or step size: the ones it uses must be given (the defaults
of a training run are `minprune.training.phase.Phase`'s, and ``Phase`` supplies only ``inv``'s).

A schedule can collapse: ``step`` with gamma 1e-4 and step size 1 is at 1e-30 of its start after
8 iterations, and training stops there without a word. `LRPolicy.collapse_iteration` is the
first iteration whose rate is below ``COLLAPSE_FRACTION`` (one millionth) of ``base_lr``: at a
millionth of a rate such as 0.01, an update lr x g with a gradient g below about 0.05 moves a
float32 weight of size 0.01 by less than half its rounding step (float32 keeps about 7 digits),
so the weights stop moving. Whether that happens within a run depends on how many iterations the
run has, which a policy does not know; `LRPolicy.check_iterations` refuses a policy that
collapses within a given count. `Phase` calls it with its epochs (a lower bound: an epoch is at
least one iteration) and `minprune.training.fit.fit` with the exact count (epochs x batches).
"""

import math
from dataclasses import dataclass
from numbers import Integral, Real

__all__ = ["COLLAPSE_FRACTION", "LRPolicy", "make_policy"]

# What each policy reads besides base_lr.
_NEEDS = {"fixed": (), "step": ("gamma", "step_size"), "inv": ("gamma", "power")}

# Below this fraction of base_lr a rate has collapsed (the module docstring says why).
COLLAPSE_FRACTION = 1e-6


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


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
        if not _is_real(self.base_lr) or self.base_lr <= 0:
            raise ValueError(f"base_lr must be a finite number > 0, got {self.base_lr!r}")
        missing = [option for option in _NEEDS[self.name] if getattr(self, option) is None]
        if missing:
            raise ValueError(f"the {self.name} policy needs {' and '.join(missing)}")
        if self.name == "step":
            if not isinstance(self.step_size, Integral) or self.step_size < 1:
                raise ValueError(f"step policy needs an integer step_size >= 1 (iterations "
                                 f"between drops), got {self.step_size!r}")
            if not _is_real(self.gamma) or self.gamma <= 0:
                raise ValueError(f"step policy needs gamma > 0 (the factor of each drop, e.g. "
                                 f"0.1), got {self.gamma!r}")
        if self.name == "inv":
            for option in ("gamma", "power"):
                if not _is_real(getattr(self, option)) or getattr(self, option) < 0:
                    raise ValueError(f"inv policy needs a finite {option} >= 0, got "
                                     f"{getattr(self, option)!r}")

    def __call__(self, iteration: int) -> float:
        """The learning rate at ``iteration`` (0-based)."""
        return self.base_lr * self._fraction(iteration)

    def _fraction(self, iteration: int) -> float:
        """The rate at ``iteration`` as a fraction of ``base_lr``: the one formula that training
        (`__call__`) and the collapse check (`collapse_iteration`) both read."""
        if self.name == "step":
            return self.gamma ** (iteration // self.step_size)
        if self.name == "inv":
            return (1.0 + self.gamma * iteration) ** (-self.power)
        return 1.0

    def collapse_iteration(self) -> int | None:
        """The first iteration whose rate is below ``COLLAPSE_FRACTION`` of ``base_lr``, or None
        when the rate never gets there (``fixed``; ``step`` with gamma >= 1; ``inv`` with gamma or
        power 0)."""
        if self.name == "step" and self.gamma < 1:
            # gamma ** drops < fraction; the estimate from logarithms, then made exact.
            drops = max(0, math.floor(math.log(COLLAPSE_FRACTION) / math.log(self.gamma)))
            while self.gamma ** drops >= COLLAPSE_FRACTION:
                drops += 1
            while drops > 0 and self.gamma ** (drops - 1) < COLLAPSE_FRACTION:
                drops -= 1
            return drops * self.step_size
        if self.name == "inv" and self.gamma > 0 and self.power > 0:
            # (1 + gamma i) ** -power < fraction  <=>  i > (fraction ** (-1/power) - 1) / gamma
            exponent = -math.log(COLLAPSE_FRACTION) / self.power
            if exponent - math.log(self.gamma) > math.log(1e18):
                return None  # beyond any run
            bound = (math.exp(exponent) - 1.0) / self.gamma
            iteration = max(0, math.floor(bound))
            while self._fraction(iteration) >= COLLAPSE_FRACTION:
                iteration += 1
            while iteration > 0 and self._fraction(iteration - 1) < COLLAPSE_FRACTION:
                iteration -= 1
            return iteration
        return None

    def check_iterations(self, iterations: int, counted: str = "") -> None:
        """Refuse (ValueError) a policy whose rate collapses (`collapse_iteration`) before the
        last of ``iterations`` iterations; ``counted`` says where the count comes from."""
        collapse = self.collapse_iteration()
        if collapse is None or collapse >= iterations:
            return
        counted = f" ({counted})" if counted else ""
        if self.name == "step":
            drops = collapse // self.step_size
            advice = (f"raise step_size to at least {math.ceil(iterations / drops)} or raise "
                      f"gamma, or use lr_policy='fixed'")
            settings = f"gamma {self.gamma}, step_size {self.step_size}"
        else:
            advice = "lower gamma or power, or use lr_policy='fixed'"
            settings = f"gamma {self.gamma}, power {self.power}"
        raise ValueError(
            f"the {self.name} learning-rate policy ({settings}) takes the rate below "
            f"{COLLAPSE_FRACTION:g} of its start {self.base_lr:g} at iteration {collapse}, "
            f"within the {iterations} iterations it runs{counted}, so training would stop "
            f"there; {advice}")


def make_policy(name: str, base_lr: float, **options) -> LRPolicy:
    """Build a policy from its Caffe name; ``options`` are gamma, power, step_size."""
    return LRPolicy(name=name, base_lr=base_lr, **options)
