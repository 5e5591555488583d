"""The `Dataset` container, the `DatasetError` it and the loaders raise, and `subset`.

This is the first stop on minprune's data flow (data -> model -> training -> pruning -> ...).
A `Dataset` is nothing more than two aligned NumPy arrays: `images` (N x ...) and `labels` (N,).
It does no I/O; `minprune.data.mnist_loader` fills it and `minprune.data.batching` slices it.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "DatasetError", "subset", "validation_split"]


class DatasetError(ValueError):
    """A dataset file is missing, truncated, corrupt or not what it claims to be.

    The message always names the file (or folder), says what is wrong, and says what to do.
    """


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and their labels, aligned along the first axis.

    `minprune.data.mnist()` returns images as float32 N x 1 x 28 x 28 in [0, 1] and labels as
    int64 in 0..9, both read-only. The container itself accepts any two arrays of equal length,
    so tests can build small ones by hand.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        for name, value in (("images", self.images), ("labels", self.labels)):
            if not isinstance(value, np.ndarray):
                raise TypeError(f"Dataset.{name} must be a numpy array, got {type(value).__name__}")
        if self.images.ndim < 1:
            raise ValueError("Dataset.images must have a first (sample) axis, got a 0-d array")
        if self.labels.ndim != 1:
            raise ValueError(
                f"Dataset.labels must be 1-D (one label per sample), got shape {self.labels.shape}"
            )
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"Dataset has {len(self.images)} images but {len(self.labels)} labels; "
                "expected one label per image"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"Dataset({len(self)} samples, images {self.images.dtype} {self.images.shape}, "
            f"labels {self.labels.dtype} {self.labels.shape})"
        )


def subset(dataset: Dataset, n: int, rng: np.random.Generator | None = None) -> Dataset:
    """The first `n` samples of `dataset`, or `n` distinct samples drawn with `rng`, for quick runs.

    Without `rng` the result is a view of the first `n` samples (MNIST's first samples are roughly
    balanced across digits). With `rng` it is `n` samples drawn without replacement, kept in their
    original order; the draw advances `rng` exactly once.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"subset size n must be an integer, got {n!r}")
    if rng is None and hasattr(dataset, "first"):  # an image folder: its first n files
        return dataset.first(int(n))
    if not 0 <= n <= len(dataset):
        raise ValueError(f"subset size n must be in 0..{len(dataset)} (the dataset size), got {n}")
    if rng is None:
        return Dataset(dataset.images[:n], dataset.labels[:n])
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    chosen = np.sort(rng.choice(len(dataset), size=n, replace=False))
    return Dataset(dataset.images[chosen], dataset.labels[chosen])


def validation_split(dataset: Dataset, size: int = 5000) -> tuple[Dataset, Dataset]:
    """``(train, validation)``: the last ``size`` samples of ``dataset`` held out (views, no copy).

    Hyperparameters and "best point" choices are made on the validation part, never on the test
    set, which is read once for the number reported (e.g. MNIST's last 5,000 training images,
    as `minprune compare` does)."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise TypeError(f"validation_split: size must be an integer, got {size!r}")
    if not 0 < size < len(dataset):
        raise ValueError(f"validation_split: size must be in 1..{len(dataset) - 1} (the dataset "
                         f"has {len(dataset)} samples), got {size}")
    cut = len(dataset) - size
    return (Dataset(dataset.images[:cut], dataset.labels[:cut]),
            Dataset(dataset.images[cut:], dataset.labels[cut:]))
