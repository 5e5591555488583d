"""Hand-made IDX files for tests: tiny, well-formed MNIST look-alikes."""

import gzip
from pathlib import Path

import numpy as np

from minprune.data.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC


def idx_bytes(magic: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file: magic, one big-endian uint32 per dimension, then `payload` as given."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape)
    return header + payload


def write_gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


def write_fake_mnist(folder: Path, n_train: int = 7, n_test: int = 3, seed: int = 0) -> dict:
    """Write four small, well-formed MNIST-named files; return the arrays they hold."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        pixels = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        pixels[0, 0, 0], pixels[0, 0, 1] = 0, 255  # make sure both extremes occur
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_gz(
            folder / f"{prefix}-images-idx3-ubyte.gz",
            idx_bytes(IDX_IMAGES_MAGIC, pixels.shape, pixels.tobytes()),
        )
        write_gz(
            folder / f"{prefix}-labels-idx1-ubyte.gz",
            idx_bytes(IDX_LABELS_MAGIC, labels.shape, labels.tobytes()),
        )
        arrays[prefix] = (pixels, labels)
    return arrays
