"""MNIST for minprune: load it, check it, and cut it into seeded mini-batches.

    from minprune.data import batches, mnist
    train, test = mnist()                         # float32 N x 1 x 28 x 28 in [0, 1], int64 labels
    rng = np.random.default_rng(0)
    for images, labels in batches(train, 100, rng=rng):
        ...

Modules, in the order data flows through them:

    dataset.py       Dataset (images + labels), DatasetError, subset
    idx.py           the IDX file format, strictly checked
    download.py      fetch: mirrors in turn, MD5-verified, atomic
    mnist_loader.py  mnist(): where the files live ($MINPRUNE_DATA, cache, download), decoding
    batching.py      batches: seeded shuffling mini-batches
"""

from minprune.data.batching import batch_count, batches
from minprune.data.dataset import Dataset, DatasetError, subset
from minprune.data.mnist_loader import MNIST_FILES, MNIST_MIRRORS, default_cache_folder, mnist

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "Dataset",
    "DatasetError",
    "batch_count",
    "batches",
    "default_cache_folder",
    "mnist",
    "subset",
]
