"""A learnable toy problem shaped like MNIST, for fast training tests."""

import numpy as np

from minprune.data import Dataset


def blobs(n=256, seed=0):
    """Class k lights up row 2k + 4 of a noisy 28 x 28 image."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.random((n, 1, 28, 28), dtype=np.float32) * 0.3
    images[np.arange(n), 0, labels * 2 + 4, :] += 1.0
    return Dataset(images, labels.astype(np.int64))
