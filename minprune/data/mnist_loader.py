"""Find, download, check and decode the four MNIST files into train and test `Dataset`s.

Han et al. (2015), Section 4.1, train LeNet-300-100 and LeNet-5 on MNIST: 60,000 training and
10,000 test images of handwritten digits, 28 x 28 grey pixels. minprune reads the four gzip IDX
files exactly as their publishers distribute them (see `minprune.data.idx` for the format).
"""

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from minprune.data.dataset import Dataset, DatasetError
from minprune.data.download import fetch
from minprune.data.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx_gz

__all__ = ["MNIST_FILES", "MNIST_MIRRORS", "default_cache_folder", "mnist"]

# File name -> MD5 of the .gz file as published (the same checksums torchvision uses).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# Tried in this order, like torchvision: LeCun's own site is often slow or refuses downloads.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
DATA_VARIABLE = "MINPRUNE_DATA"
IMAGE_SIDE = 28
NUM_CLASSES = 10


def default_cache_folder() -> Path:
    """`$XDG_CACHE_HOME/minprune/mnist`, or `~/.cache/minprune/mnist` when that is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "minprune" / "mnist"


def mnist(
    root: str | os.PathLike | None = None,
    download: bool = True,
    *,
    mirrors: Sequence[str] = MNIST_MIRRORS,
) -> tuple[Dataset, Dataset]:
    """Load MNIST as `(train, test)`: 60,000 and 10,000 samples.

    Images are float32, shape N x 1 x 28 x 28, scaled from bytes 0..255 to [0, 1] by dividing by
    255; labels are int64 in 0..9. Both arrays are read-only: copy them to change them.

    The folder holding the four files is, first match wins:

    1. `root`, when given. Missing files are downloaded into it if `download` is true.
    2. `$MINPRUNE_DATA`, when set and not empty. This folder is only read, never written or
       downloaded into: if a file is missing, `DatasetError` says so. A typo in the variable
       should fail loudly rather than silently fetch MNIST into some other place.
    3. `default_cache_folder()` (`~/.cache/minprune/mnist`). Missing files are downloaded into
       it if `download` is true.

    Downloads try `mirrors` in order and keep a file only once its MD5 matches `MNIST_FILES`
    (see `minprune.data.download.fetch`). Files already on disk are not MD5-checked, only
    parsed strictly: IDX magic, dimensions, payload length, 28 x 28 images, labels in 0..9 and
    as many labels as images. Anything wrong raises `DatasetError` naming the file and saying
    what to do about it.

    The decoded arrays of the last folder loaded stay in memory (about 220 MB, keyed by the
    files' sizes, modification times and inodes), so later calls return the same arrays at no
    cost; a changed file is read again.
    """
    folder, downloadable = _choose_folder(root)
    missing = [name for name in MNIST_FILES if not (folder / name).is_file()]
    if missing and not downloadable:
        raise DatasetError(
            f"{folder} (from {DATA_VARIABLE}) lacks {', '.join(missing)}. minprune never "
            f"downloads into {DATA_VARIABLE}: copy the files there, or unset {DATA_VARIABLE} to "
            f"download them into {default_cache_folder()}. {_offline_advice(mirrors)}"
        )
    if missing and not download:
        raise DatasetError(
            f"{folder} lacks {', '.join(missing)} and download=False. Call mnist() with "
            f"download=True, or copy the files there. {_offline_advice(mirrors)}"
        )
    for name in missing:
        try:
            fetch(name, folder, MNIST_FILES[name], mirrors)
        except DatasetError as error:
            raise DatasetError(f"{error}\n{_offline_advice(mirrors)}") from None
    file_identity = tuple(_identity(folder / name) for name in MNIST_FILES)
    return _decode_folder(folder.resolve(), downloadable, tuple(mirrors), file_identity)


def _choose_folder(root: str | os.PathLike | None) -> tuple[Path, bool]:
    """The folder to read, and whether minprune may download into it (see `mnist`)."""
    if root is not None:
        return Path(root).expanduser(), True
    from_environment = os.environ.get(DATA_VARIABLE, "")
    if from_environment:
        folder = Path(from_environment).expanduser()
        if not folder.is_dir():
            raise DatasetError(
                f"{DATA_VARIABLE}={from_environment} is not a folder. Point it at the folder that "
                f"holds the four MNIST files ({', '.join(MNIST_FILES)}), or unset it to download "
                f"them into {default_cache_folder()}."
            )
        return folder, False
    return default_cache_folder(), True


def _offline_advice(mirrors: Sequence[str]) -> str:
    """What to do on a machine that cannot download."""
    source = mirrors[0] if mirrors else MNIST_MIRRORS[0]
    return (
        f"On a machine without internet, copy the four files {', '.join(MNIST_FILES)} "
        f"(from {source} on a machine with internet) into a folder and set "
        f"{DATA_VARIABLE}=/path/to/that/folder, or pass mnist(root=that_folder)."
    )


def _identity(path: Path) -> tuple[int, int, int]:
    status = path.stat()
    return status.st_size, status.st_mtime_ns, status.st_ino


@functools.lru_cache(maxsize=1)
def _decode_folder(
    folder: Path, downloadable: bool, mirrors: tuple[str, ...], file_identity: tuple
) -> tuple[Dataset, Dataset]:
    """Decode both splits. `file_identity` is unused here; it is part of the cache key."""
    return (
        _decode_split(folder, "train", downloadable, mirrors),
        _decode_split(folder, "t10k", downloadable, mirrors),
    )


def _decode_split(
    folder: Path, prefix: str, downloadable: bool, mirrors: tuple[str, ...]
) -> Dataset:
    """Read, check and convert one split (`prefix` "train" or "t10k") to float32 and int64."""
    images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"

    def fail(path: Path, problem: str) -> NoReturn:
        md5 = MNIST_FILES[path.name]
        if downloadable:
            remedy = f"Delete it and call mnist() again to download a fresh copy (MD5 {md5})."
        else:
            remedy = (
                f"Replace it with the original from {mirrors[0] if mirrors else MNIST_MIRRORS[0]} "
                f"(MD5 {md5}), or unset {DATA_VARIABLE} to download into {default_cache_folder()}."
            )
        raise DatasetError(f"{problem.rstrip('.')}. {remedy}") from None

    try:
        pixels = read_idx_gz(images_path, IDX_IMAGES_MAGIC)
    except DatasetError as error:
        fail(images_path, str(error))
    if pixels.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        fail(
            images_path,
            f"{images_path}: images are {pixels.shape[1]} x {pixels.shape[2]} pixels, "
            f"expected {IMAGE_SIDE} x {IMAGE_SIDE}.",
        )
    try:
        labels = read_idx_gz(labels_path, IDX_LABELS_MAGIC)
    except DatasetError as error:
        fail(labels_path, str(error))
    out_of_range = np.flatnonzero(labels >= NUM_CLASSES)
    if out_of_range.size:
        index = int(out_of_range[0])
        fail(
            labels_path,
            f"{labels_path}: label {labels[index]} at index {index} is outside "
            f"0..{NUM_CLASSES - 1} ({out_of_range.size} such labels).",
        )
    if len(pixels) != len(labels):
        fail(
            labels_path,
            f"{images_path} holds {len(pixels)} images but {labels_path} holds {len(labels)} "
            "labels; they must match one to one.",
        )

    images = np.empty((len(pixels), 1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    np.divide(pixels.reshape(images.shape), np.float32(255), out=images, dtype=np.float32)
    labels = labels.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return Dataset(images, labels)
