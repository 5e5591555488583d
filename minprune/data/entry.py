"""`as_dataset`: the one door data comes in through, checked once, at the public entry.

Every public function that takes data -- `evaluate`, `fit`, `fit_phase`, `retrain`,
`iterative_prune`, `sensitivity_analysis`, `gradual_prune`, `network_surgery`, `layer_table` --
passes it through `as_dataset` first, so that an ``(images, labels)`` pair gives the same numbers
as the `Dataset` holding those arrays (``len`` of a tuple is 2, not the number of images), and so
that data which cannot be right is named before any training starts:

- images that are not numbers, or hold NaN or infinite values: refused (ValueError/TypeError);
- images that look like raw pixels -- an integer dtype, or floats in 0..255 (never negative, some
  above 10): a `DataWarning` that says to divide by 255 and cast to float32. Mean-subtracted
  images (Caffe's AlexNet input, roughly -120..150) are centred, so they are not warned about;
- labels that are not integers, or are negative: refused. Whether they stay below the model's
  number of outputs is checked by `check_labels_fit`, once the logits' width is known.

An `ImageFolder` passes through unchecked: it decodes its images batch by batch, from files it
has already checked, and its labels number its class folders. A `Dataset` is checked once: one
that passed (or was warned about) is remembered while it lives, so that `fit_phase` handing it
on to `fit`, and `fit` to `evaluate`, neither checks nor warns again. (A NaN written into it
later still shows: `fit` looks at the batch whose loss is NaN before blaming the learning rate.)
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from minprune.data.dataset import Dataset
from minprune.data.image_folder import ImageFolder

__all__ = ["DataWarning", "as_dataset", "check_labels_fit"]

RAW_PIXEL_MAX = 10.0  # non-negative float images above this look like unscaled 0..255 pixels

_CHECKED: weakref.WeakSet = weakref.WeakSet()  # Datasets already checked, while they live

_EXPECTED = "a Dataset, an ImageFolder or an (images, labels) pair of NumPy arrays"


class DataWarning(UserWarning):
    """The data can be trained on, but almost certainly not as the user meant (raw pixels)."""


def as_dataset(data, name: str, *, allow_none: bool = False):
    """``data`` as a `Dataset` (or the `ImageFolder` it is), checked; ``name`` says where it came
    in (``"fit: train_set"``) and heads every message.

    ``data`` is a `Dataset`, an `ImageFolder` or an ``(images, labels)`` pair of NumPy arrays of
    equal length; None is returned as None when ``allow_none`` (an optional test set). See the
    module docstring for what is refused and what is warned about."""
    if data is None:
        if allow_none:
            return None
        raise TypeError(f"{name} is None; expected {_EXPECTED}")
    if isinstance(data, ImageFolder):
        return data
    if isinstance(data, tuple | list) and not isinstance(data, Dataset):
        if len(data) != 2:
            raise TypeError(f"{name}: got a {type(data).__name__} of {len(data)} items; "
                            f"expected {_EXPECTED}")
        images, labels = data
        for part, value in (("images", images), ("labels", labels)):
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{name}: {part} must be a NumPy array, got "
                                f"{type(value).__name__}; convert it with np.asarray (a torch "
                                "tensor: .numpy())")
        try:
            data = Dataset(images, labels)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    if not isinstance(data, Dataset):
        raise TypeError(f"{name}: got {type(data).__name__}; expected {_EXPECTED}")
    if data not in _CHECKED:
        _check_images(data.images, name)
        _check_labels(data.labels, name)
        _CHECKED.add(data)
    return data


def _check_images(images: np.ndarray, name: str) -> None:
    kind = images.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name}: images have dtype {images.dtype}; expected float32 numbers "
                        "(scaled to about [0, 1])")
    if images.size == 0:
        return
    low, high = images.min(), images.max()  # NaN propagates, infinities are the extremes
    if kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
        bad = ~np.isfinite(images.reshape(len(images), -1))
        samples = np.flatnonzero(bad.any(axis=1))
        raise ValueError(
            f"{name}: the images hold {int(np.isnan(images).sum())} NaN and "
            f"{int(np.isinf(images).sum())} infinite values, in {len(samples)} samples (the first "
            f"is sample {samples[0]}); training on them gives a NaN loss. Fix or drop those "
            "samples")
    if kind in "biu":
        warnings.warn(
            f"{name}: images are {images.dtype} with values {low}..{high}; minprune's models "
            "expect float32 scaled to about [0, 1]: divide by 255 and cast to float32 "
            "(images.astype(np.float32) / 255)", DataWarning, stacklevel=3)
    elif low >= 0 and high > RAW_PIXEL_MAX:
        warnings.warn(
            f"{name}: images are {images.dtype} with values {float(low):.4g}..{float(high):.4g}, "
            "which look like raw 0..255 pixels; minprune's models (and their learning rates) "
            "expect about [0, 1]: divide by 255 (or standardise them)", DataWarning,
            stacklevel=3)


def _check_labels(labels: np.ndarray, name: str) -> None:
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels have dtype {labels.dtype}; expected integer class "
                        "indices 0, 1, 2, ... (labels.astype(np.int64))")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name}: label {labels.min()} is negative; expected class indices "
                         "0, 1, 2, ...")


def check_labels_fit(data, classes: int, name: str) -> None:
    """Refuse labels of ``data`` (a `Dataset`) that are not below ``classes``, the number of
    outputs of the model it feeds. An `ImageFolder` numbers its own classes: not checked."""
    if isinstance(data, Dataset) and len(data) and data.labels.max() >= classes:
        wrong = data.labels >= classes
        raise ValueError(
            f"{name}: label {data.labels.max()} is out of range for a model with {classes} "
            f"outputs ({int(wrong.sum())} samples have labels >= {classes}, the first is sample "
            f"{np.flatnonzero(wrong)[0]}); expected labels in [0, {classes})")
