"""minprune's global random generator: weight initialisation and dropout draw from it.

One ``numpy.random.Generator`` whose state can be read and restored, so that a checkpoint can carry
it and a resumed run draws exactly the numbers an uninterrupted run would have drawn.
"""

import numpy as np

__all__ = ["manual_seed", "generator", "get_rng_state", "set_rng_state"]

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator (like ``torch.manual_seed``) and return it."""
    global _generator
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The global generator."""
    return _generator


def get_rng_state() -> dict:
    """The global generator's state, a JSON-serialisable dict."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    _generator.bit_generator.state = state
