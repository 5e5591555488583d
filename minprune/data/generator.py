"""The one check on the caller's random generator, for everything in `minprune.data` that draws.

The data pipeline never makes its own randomness: a caller who shuffles (`batches`) or crops and
flips (a training `ImageFolder`) passes an `np.random.Generator`, so every run says where its
randomness comes from and a checkpoint of ``rng.bit_generator.state`` replays it.
"""

import numpy as np

__all__ = ["checked_generator"]


def checked_generator(rng, needed_by: str, advice: str) -> np.random.Generator:
    """``rng`` when it is an `np.random.Generator`. None is a ValueError saying that
    ``needed_by`` needs one, followed by ``advice``; anything else is a TypeError."""
    if rng is None:
        raise ValueError(f"{needed_by} needs rng=np.random.default_rng(seed){advice}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng
