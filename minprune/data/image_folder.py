"""ImageNet-style image folders (ROOT/CLASS_NAME/IMAGE.jpg), decoded with Pillow batch by batch.

Han et al. (2015), Section 4.2, prune AlexNet on ImageNet ILSVRC-2012 (1.2 million training and
50,000 validation images), starting from Caffe's reference AlexNet. Those images cannot be held in
memory the way `mnist()` holds MNIST, so an `ImageFolder` keeps only the list of files and decodes
each batch when it is needed, a few batches ahead in background threads (`Prefetcher`). It speaks
torchvision's vocabulary: class folders sorted by name give labels 0, 1, 2, ..., `classes`,
`class_to_idx`, `samples`. `minprune.data.batches`, and so `fit` and `evaluate`, accept it in
place of a `Dataset`.

Preprocessing is that of Caffe's AlexNet (the data layer of models/bvlc_alexnet), which follows
Krizhevsky et al. (2012), Sections 2 and 4.1:

1. Resize every image to 256 x 256, ignoring its aspect ratio, as Caffe's `convert_imageset
   --resize_height=256 --resize_width=256` does. (Krizhevsky et al. resize the short side to 256
   and keep the central 256 x 256; torchvision resizes the short side and keeps the aspect ratio.
   minprune follows Caffe because the paper used Caffe.)
2. Training: a random 227 x 227 crop and, with probability 1/2, a horizontal flip. Testing: the
   central 227 x 227 crop. (Krizhevsky et al. write 224; Caffe crops 227, which makes conv1's
   arithmetic come out even.)
3. Subtract a mean per channel. Pixels stay in 0..255 less the mean, as in Caffe; they are not
   scaled to [0, 1] as MNIST is.

Where minprune departs from Caffe: the mean is one value per channel (Caffe's reference model
subtracts a 256 x 256 mean image); channels stay in RGB order (Caffe's are BGR, which matters only
when loading weights trained in Caffe: reverse conv1's input channels); resizing uses Pillow's
bilinear filter, which smooths when it shrinks where OpenCV's does not, so pixels differ slightly;
there is no PCA colour augmentation (Krizhevsky et al., Section 4.1) and no ten-crop testing.
"""

import copy
import hashlib
import math
import operator
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from minprune.data.dataset import DatasetError
from minprune.data.generator import checked_generator
from minprune.data.prefetch import Prefetcher

__all__ = ["IMAGENET_MEAN_RGB", "IMAGE_EXTENSIONS", "ImageFolder"]

# The mean_value of Caffe's reference AlexNet and CaffeNet, 104, 117, 123 in Caffe's BGR order,
# here in RGB order.
IMAGENET_MEAN_RGB = (123.0, 117.0, 104.0)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # compared in lower case


def _pillow():
    """Pillow's `Image` module, imported only when an image folder is used."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            'minprune.data.ImageFolder decodes images with Pillow, which is not installed: '
            'pip install "minprune[images]"'
        ) from None
    return Image


class ImageFolder:
    """The images under `root`, one folder per class, preprocessed as Caffe's AlexNet does.

    `root` holds one folder per class (folders whose names start with "." are skipped), and each
    class folder holds that class's images directly: .jpg, .jpeg or .png files, any letter case;
    other files are ignored. Labels number the class folders in sorted order. `train=True` gives
    random crops and flips, `train=False` centre crops (see the module docstring). `resize` and
    `crop` are the side lengths, 256 and 227 for AlexNet; `mean` is subtracted per channel (RGB).
    `prefetch` is how many batches are decoded ahead in background threads (0: none), one
    thread per batch, so it is also how many cores decode: for ImageNet, set it near the number
    of cores. Each batch held costs N x 3 x crop x crop x 4 bytes (158 MB for 256 x 227 x 227).

    Batches, from `minprune.data.batches(folder, batch_size, rng=rng)`, are float32 arrays
    N x 3 x crop x crop and int64 labels. A training folder draws its crops and flips from that
    `rng`, right after the shuffling permutation, so a seed fixes the whole epoch.

    Attributes: `root`, `train`, `classes` (folder names, sorted), `class_to_idx` (name ->
    label), `samples` (list of `(path, label)`, by class then file name), `labels` (int64 array,
    read-only), `resize`, `crop`, `mean` (float32, shape 3), `prefetch`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        train: bool,
        resize: int = 256,
        crop: int = 227,
        mean: Sequence[float] = IMAGENET_MEAN_RGB,
        prefetch: int = 2,
        evaluation_batch_size: int = 32,
    ) -> None:
        self._image_module = _pillow()  # fail here, not later in a worker thread
        if not isinstance(train, bool):
            raise TypeError(f"ImageFolder: train must be True or False, got {train!r}")
        self.train = train
        self.resize = _positive_int("resize", resize)
        self.crop = _positive_int("crop", crop)
        if self.crop > self.resize:
            raise ValueError(
                f"ImageFolder: crop ({self.crop}) must be at most resize ({self.resize}), "
                "since crops are cut from the resized image"
            )
        self.mean = _checked_mean(mean)
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(
                f"ImageFolder: prefetch must be an integer >= 0 (batches decoded ahead), "
                f"got {prefetch!r}"
            )
        self.prefetch = prefetch
        # What `evaluate` and the layer tables batch by: a 227 x 227 batch of 1,000 (MNIST's
        # default) would take 4 GB of im2col columns in AlexNet's conv1.
        self.evaluation_batch_size = _positive_int("evaluation_batch_size",
                                                   evaluation_batch_size)
        self.root = Path(root).expanduser()
        self.classes, self.samples = _scan(self.root)
        self.class_to_idx = {name: label for label, name in enumerate(self.classes)}
        self.labels = np.array([label for _, label in self.samples], dtype=np.int64)
        self.labels.flags.writeable = False

    def __len__(self) -> int:
        return len(self.samples)

    def first(self, n: int) -> "ImageFolder":
        """The same folder limited to its first ``n`` images (`minprune.data.subset`)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(self):
            raise ValueError(f"ImageFolder.first: n must be in 0..{len(self)}, got {n!r}")
        head = copy.copy(self)
        head.samples = self.samples[:n]
        head.labels = self.labels[:n]
        return head

    def fingerprint(self) -> str:
        """SHA-256 of what this folder yields: each file's path (relative to the root), size,
        modification time and label, and the transform settings. Resumed runs compare it
        (`minprune.training.fingerprint`) instead of hashing every decoded image."""
        digest = hashlib.sha256(repr((self.train, self.resize, self.crop,
                                      tuple(self.mean.tolist()))).encode())
        for path, label in self.samples:
            status = Path(path).stat()
            relative = Path(path).relative_to(self.root)
            digest.update(f"{relative}\0{status.st_size}\0{status.st_mtime_ns}\0{label}\n"
                          .encode())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return (
            f"ImageFolder({str(self.root)!r}, {len(self)} images, {len(self.classes)} classes, "
            f"train={self.train}, resize={self.resize}, crop={self.crop}, "
            f"prefetch={self.prefetch})"
        )

    def decoded_batches(
        self, order: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> Prefetcher:
        """The batches of samples `order`, `batch_size` at a time, decoded in the background.

        Called by `minprune.data.batches`, which checks `batch_size`, draws `order` and drops
        the short batch; use that. A training folder draws one crop position and one flip for
        every sample of `order` from `rng` now, before the first batch is decoded.
        """
        order = np.asarray(order, dtype=np.int64)
        if self.train:
            rng = checked_generator(rng, "a training ImageFolder, drawing random crops and flips,",
                                    "; for centre crops, use ImageFolder(root, train=False)")
            corners = rng.integers(0, self.resize - self.crop + 1, size=(len(order), 2))
            flips = rng.random(len(order)) < 0.5
        else:
            centre = (self.resize - self.crop) // 2  # Caffe's TEST-phase offset
            corners = np.full((len(order), 2), centre)
            flips = np.zeros(len(order), dtype=bool)
        chunks = [
            (order[start : start + batch_size], corners[start : start + batch_size],
             flips[start : start + batch_size])
            for start in range(0, len(order), batch_size)
        ]
        return Prefetcher(self._decode_batch, chunks, self.prefetch)

    def _decode_batch(self, chunk) -> tuple[np.ndarray, np.ndarray]:
        """Decode one batch: `chunk` is (sample indices, (top, left) of each crop, flips)."""
        indices, corners, flips = chunk
        images = np.empty((len(indices), 3, self.crop, self.crop), dtype=np.float32)
        for row, (index, (top, left), flip) in enumerate(zip(indices, corners, flips, strict=True)):
            pixels = self._resized(self.samples[index][0])[top : top + self.crop,
                                                          left : left + self.crop]
            if flip:
                pixels = pixels[:, ::-1]
            # H x W x RGB bytes -> 3 x H x W floats, less the mean of each channel.
            np.subtract(pixels.transpose(2, 0, 1), self.mean[:, None, None], out=images[row])
        return images, self.labels[indices]

    def _resized(self, path: Path) -> np.ndarray:
        """The image at `path` in RGB (grey, CMYK and palette images converted), resized to
        resize x resize, as uint8 H x W x 3."""
        image_module = self._image_module
        try:
            with image_module.open(path) as image:
                image = image.convert("RGB").resize(
                    (self.resize, self.resize), image_module.Resampling.BILINEAR
                )
        except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as error:
            raise DatasetError(
                f"{path}: cannot decode the image ({error}). Replace the file, or move it out "
                f"of {self.root}."
            ) from None
        return np.asarray(image)


def _scan(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """The sorted class folder names, and every (image path, label), by class then file name."""
    if not root.is_dir():
        raise DatasetError(
            f"{root}: not a folder. An ImageFolder root holds one folder per class: "
            "ROOT/CLASS_NAME/IMAGE.jpg"
        )
    classes = sorted(
        entry.name
        for entry in os.scandir(root)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    if not classes:
        raise DatasetError(
            f"{root}: no class folders. An ImageFolder root holds one folder per class: "
            "ROOT/CLASS_NAME/IMAGE.jpg"
        )
    samples = []
    for label, name in enumerate(classes):
        images = sorted(
            entry.name
            for entry in os.scandir(root / name)
            if entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS)
        )
        if not images:
            raise DatasetError(
                f"{root / name}: class folder {name!r} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)} files directly inside it). Add its images, "
                "or remove the folder"
            )
        samples += [(root / name / image, label) for image in images]
    return classes, samples


def _positive_int(name: str, value) -> int:
    checked = None
    if not isinstance(value, bool):
        try:
            checked = operator.index(value)
        except TypeError:
            pass
    if checked is None or checked <= 0:
        raise ValueError(f"ImageFolder: {name} must be a positive integer (pixels), got {value!r}")
    return checked


def _checked_mean(mean) -> np.ndarray:
    try:
        values = np.array(mean, dtype=np.float32)
    except (TypeError, ValueError):
        values = None
    if values is None or values.shape != (3,) or not all(map(math.isfinite, values)):
        raise ValueError(
            f"ImageFolder: mean must be 3 finite numbers, one per RGB channel, got {mean!r}"
        )
    values.flags.writeable = False
    return values
