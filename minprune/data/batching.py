"""Seeded, shuffling mini-batches: the only randomness in the data pipeline.

The caller owns the `np.random.Generator`. Each call to `batches` draws one permutation from it,
at call time (not lazily at the first batch), so a training loop that checkpoints
`rng.bit_generator.state` at the start of an epoch can resume bit-identically:

    rng.bit_generator.state = saved_state           # as it was before this epoch's batches()
    epoch = batches(train, 100, rng=rng)
    for images, labels in itertools.islice(epoch, batches_already_done, None):
        ...

An `ImageFolder` is batched the same way: `batches` draws the order, then hands it to the folder,
which draws its crops and flips from the same `rng` and decodes the batches in the background.
"""

import operator
from collections.abc import Iterator

import numpy as np

from minprune.data.dataset import Dataset
from minprune.data.generator import checked_generator
from minprune.data.image_folder import ImageFolder

__all__ = ["batch_count", "batches", "evaluation_batch_size"]

EVALUATION_BATCH_SIZE = 1000


def evaluation_batch_size(dataset) -> int:
    """How many images evaluation pushes through at once: the dataset's own
    ``evaluation_batch_size`` (an image folder's), else 1,000."""
    return getattr(dataset, "evaluation_batch_size", EVALUATION_BATCH_SIZE)


def batch_count(num_samples: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches `batches` yields for `num_samples` samples (for progress bars)."""
    batch_size = _checked_batch_size(batch_size)
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    return num_samples // batch_size if drop_last else -(-num_samples // batch_size)


def batches(
    data: Dataset | ImageFolder | tuple[np.ndarray, np.ndarray],
    batch_size: int,
    *,
    shuffle: bool = True,
    rng: np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield `(images, labels)` batches that cover every sample of `data` exactly once.

    `data` is a `Dataset` or an `(images, labels)` pair of arrays of equal length. With
    `shuffle=True` (the default) the order is `rng.permutation(len(data))`, drawn once, right
    now; `rng` is then required, so every run says where its randomness comes from. With
    `shuffle=False` the order is 0, 1, 2, ... and `rng` is neither needed nor advanced.

    Every batch holds `batch_size` samples except perhaps the last, which is smaller unless
    `drop_last=True` drops it. Batches are fresh copies (the caller may modify them) with the
    dtypes of `data`.

    An `ImageFolder` yields float32 images decoded from its files, as the folder's docstring
    says; when it is a training folder, `rng` is required even with `shuffle=False`, for its
    random crops and flips, which are drawn right after the permutation.
    """
    if not isinstance(data, Dataset | ImageFolder):
        if not isinstance(data, tuple) or len(data) != 2:
            raise TypeError(
                "data must be a Dataset or an (images, labels) tuple, or an ImageFolder, "
                f"got {type(data).__name__}"
            )
        data = Dataset(*data)
    batch_size = _checked_batch_size(batch_size)
    if shuffle:
        rng = checked_generator(rng, "shuffle=True", ", so the order is reproducible")
        order = rng.permutation(len(data))
    else:
        order = np.arange(len(data))
    stop = batch_count(len(data), batch_size, drop_last) * batch_size
    if isinstance(data, ImageFolder):
        return data.decoded_batches(order[:stop], batch_size, rng)
    return _yield_batches(data, order[:stop], batch_size)


def _yield_batches(
    data: Dataset, order: np.ndarray, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        yield data.images[chosen], data.labels[chosen]


def _checked_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool):
        raise TypeError(f"batch_size must be a positive integer, got {batch_size!r}")
    try:
        batch_size = operator.index(batch_size)
    except TypeError:
        raise TypeError(f"batch_size must be a positive integer, got {batch_size!r}") from None
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    return batch_size
