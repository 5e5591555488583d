"""MNIST and image folders for minprune: load them, check them, and cut them into seeded
mini-batches.

    from minprune.data import ImageFolder, batches, mnist
    train, test = mnist()                         # float32 N x 1 x 28 x 28 in [0, 1], int64 labels
    rng = np.random.default_rng(0)
    for images, labels in batches(train, 100, rng=rng):
        ...

    train = ImageFolder("ilsvrc12/train", train=True)  # decoded batch by batch, 227 x 227 crops
    for images, labels in batches(train, 256, rng=rng):  # float32 N x 3 x 227 x 227, int64
        ...

Modules, in the order data flows through them:

    dataset.py       Dataset (images + labels), DatasetError, subset, validation_split
    idx.py           the IDX file format, strictly checked
    download.py      fetch: mirrors in turn, MD5-verified, atomic
    mnist_loader.py  mnist(): where the files live ($MINPRUNE_DATA, cache, download), decoding
    prefetch.py      Prefetcher: the next few batches decoded in background threads
    generator.py     checked_generator: the one check on a caller's np.random.Generator
    image_folder.py  ImageFolder: ROOT/CLASS/IMAGE.jpg, Caffe's AlexNet crops, flips and mean
    entry.py         as_dataset: a Dataset or an (images, labels) pair, checked at every entry
    batching.py      batches: seeded shuffling mini-batches, of a Dataset or an ImageFolder
"""

from minprune.data.batching import batch_count, batches
from minprune.data.dataset import Dataset, DatasetError, subset, validation_split
from minprune.data.entry import DataWarning, as_dataset
from minprune.data.image_folder import IMAGE_EXTENSIONS, IMAGENET_MEAN_RGB, ImageFolder
from minprune.data.mnist_loader import MNIST_FILES, MNIST_MIRRORS, default_cache_folder, mnist
from minprune.data.prefetch import Prefetcher

__all__ = [
    "IMAGENET_MEAN_RGB",
    "IMAGE_EXTENSIONS",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "DataWarning",
    "Dataset",
    "DatasetError",
    "ImageFolder",
    "Prefetcher",
    "as_dataset",
    "batch_count",
    "batches",
    "default_cache_folder",
    "mnist",
    "subset",
    "validation_split",
]
