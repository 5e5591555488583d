"""Tests for minprune.data.ImageFolder and the Prefetcher behind it.

Each test writes its own tiny image folder to tmp_path with Pillow: 3 classes x 4 noisy images of
random sizes, JPEG and PNG, colour and grey. Images are resized to 20 x 20 and cropped to 16 x 16,
so a test decodes a few hundred pixels, not ImageNet's 256 x 256.
"""

import gc
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minprune
from minprune import nn
from minprune.data import (
    IMAGENET_MEAN_RGB,
    DatasetError,
    ImageFolder,
    Prefetcher,
    batch_count,
    batches,
)
from minprune.data.prefetch import THREAD_NAME_PREFIX
from minprune.training.fit import evaluate, fit
from minprune.training.optim import SGD

RESIZE, CROP = 20, 16
CLASSES = ["ant", "bee", "cat"]
# (file name, Pillow mode) per class: JPEG and PNG, an upper-case extension, a grey image.
FILES = [("a.jpg", "RGB"), ("b.png", "RGB"), ("c.JPEG", "RGB"), ("d.png", "L")]


def write_image_folder(root: Path, seed: int = 0) -> Path:
    """CLASSES x FILES of random noise and sizes, plus files and folders ImageFolder skips."""
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for file_name, mode in FILES:
            height, width = rng.integers(12, 40, size=2)
            shape = (height, width, 3) if mode == "RGB" else (height, width)
            pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / name / file_name)
        (root / name / "notes.txt").write_text("not an image")
    (root / ".thumbnails").mkdir()  # hidden: not a class
    return root


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


def folder(root: Path, train: bool, **options) -> ImageFolder:
    return ImageFolder(root, train=train, resize=RESIZE, crop=CROP, **options)


def resized(path: Path, mean=IMAGENET_MEAN_RGB) -> np.ndarray:
    """The whole resized image as 3 x RESIZE x RESIZE float32 less the mean: what crops cut."""
    with Image.open(path) as image:
        image = image.convert("RGB").resize((RESIZE, RESIZE), Image.Resampling.BILINEAR)
    pixels = np.asarray(image).transpose(2, 0, 1).astype(np.float32)
    return pixels - np.array(mean, np.float32)[:, None, None]


def all_batches(data, batch_size=5, **options) -> tuple[np.ndarray, np.ndarray]:
    got = list(batches(data, batch_size, **options))
    return np.concatenate([x for x, _ in got]), np.concatenate([y for _, y in got])


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)]


def wait_for_no_prefetch_threads() -> None:
    deadline = time.monotonic() + 5
    while prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert prefetch_threads() == []


# ---------------------------------------------------------------------------------------------
# The folder: classes, labels, samples
# ---------------------------------------------------------------------------------------------


def test_classes_labels_and_samples_follow_sorted_names(folder_root: Path) -> None:
    data = folder(folder_root, train=False)
    assert data.classes == CLASSES
    assert data.class_to_idx == {"ant": 0, "bee": 1, "cat": 2}
    assert len(data) == 12
    expected = [(folder_root / c, i) for i, c in enumerate(CLASSES) for _ in FILES]
    assert [(path.parent, label) for path, label in data.samples] == expected
    assert [path.name for path, _ in data.samples[:4]] == ["a.jpg", "b.png", "c.JPEG", "d.png"]
    assert data.labels.dtype == np.int64 and not data.labels.flags.writeable
    np.testing.assert_array_equal(data.labels, np.repeat([0, 1, 2], 4))
    assert "12 images, 3 classes, train=False, resize=20, crop=16" in repr(data)


def test_default_sizes_and_mean_are_caffes_alexnet(folder_root: Path) -> None:
    data = ImageFolder(folder_root, train=True)
    assert (data.resize, data.crop, data.prefetch) == (256, 227, 2)
    np.testing.assert_array_equal(data.mean, [123, 117, 104])  # Caffe's BGR 104, 117, 123


# ---------------------------------------------------------------------------------------------
# Preprocessing: centre crops for testing, random crops and flips for training, the mean
# ---------------------------------------------------------------------------------------------


def test_testing_batches_are_centre_crops_less_the_mean(folder_root: Path) -> None:
    data = folder(folder_root, train=False)
    got = list(batches(data, 5, shuffle=False))
    assert [x.shape for x, _ in got] == [(5, 3, CROP, CROP)] * 2 + [(2, 3, CROP, CROP)]
    assert all(x.dtype == np.float32 and y.dtype == np.int64 for x, y in got)
    images = np.concatenate([x for x, _ in got])
    np.testing.assert_array_equal(np.concatenate([y for _, y in got]), data.labels)
    centre = (RESIZE - CROP) // 2
    for image, (path, _) in zip(images, data.samples, strict=True):
        np.testing.assert_array_equal(
            image, resized(path)[:, centre : centre + CROP, centre : centre + CROP]
        )
    again, _ = all_batches(data, shuffle=False)
    np.testing.assert_array_equal(again, images)  # no randomness, no flips


def test_the_mean_is_subtracted_per_channel(folder_root: Path) -> None:
    plain, _ = all_batches(folder(folder_root, train=False, mean=(0, 0, 0)), shuffle=False)
    less, _ = all_batches(folder(folder_root, train=False, mean=(10, 20.5, 30)), shuffle=False)
    assert plain.min() >= 0 and plain.max() <= 255
    np.testing.assert_array_equal(plain - less, np.broadcast_to([[[10]], [[20.5]], [[30]]],
                                                                plain.shape))


def test_training_batches_are_random_crops_some_flipped(folder_root: Path) -> None:
    data = folder(folder_root, train=True)
    rng = np.random.default_rng(0)
    corners, flips = set(), set()
    for _ in range(3):
        for images, labels in batches(data, 5, rng=rng):
            for image, label in zip(images, labels, strict=True):
                # Which image is it? The shuffle hides it; find the crop that matches exactly.
                matches = [
                    (top, left, flip)
                    for path, sample_label in data.samples if sample_label == label
                    for whole in [resized(path)]
                    for top in range(RESIZE - CROP + 1)
                    for left in range(RESIZE - CROP + 1)
                    for flip in (False, True)
                    if np.array_equal(
                        image,
                        whole[:, top : top + CROP, left : left + CROP][:, :, ::-1]
                        if flip else whole[:, top : top + CROP, left : left + CROP],
                    )
                ]
                assert len(matches) == 1, "every training image is one crop, maybe flipped"
                corners.add(matches[0][:2])
                flips.add(matches[0][2])
    assert flips == {False, True}
    assert len(corners) > 5  # 36 images over 25 possible corners


def test_a_seed_fixes_order_crops_and_flips(folder_root: Path) -> None:
    data = folder(folder_root, train=True)
    first = all_batches(data, rng=np.random.default_rng(3))
    second = all_batches(data, rng=np.random.default_rng(3))
    other = all_batches(data, rng=np.random.default_rng(4))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])

    # Crops and flips are drawn when batches() is called, so a saved state replays the epoch.
    rng = np.random.default_rng(5)
    saved = rng.bit_generator.state
    epoch = batches(data, 5, rng=rng)
    after = rng.bit_generator.state
    assert after != saved
    rng.bit_generator.state = saved
    replay = all_batches(data, rng=rng)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in epoch]), replay[0])
    assert rng.bit_generator.state == after


def test_training_without_shuffling_still_needs_an_rng(folder_root: Path) -> None:
    data = folder(folder_root, train=True)
    with pytest.raises(ValueError, match="random crops and flips.*default_rng.*train=False"):
        batches(data, 4, shuffle=False)
    with pytest.raises(TypeError, match="numpy Generator"):
        batches(data, 4, shuffle=False, rng=0)
    _, labels = all_batches(data, shuffle=False, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(labels, data.labels)


def test_drop_last_and_batch_count_hold_for_folders(folder_root: Path) -> None:
    data = folder(folder_root, train=False)
    sizes = [len(y) for _, y in batches(data, 5, shuffle=False, drop_last=True)]
    assert sizes == [5, 5] and batch_count(len(data), 5, drop_last=True) == 2


# ---------------------------------------------------------------------------------------------
# Prefetching
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("train", [False, True])
def test_prefetching_changes_nothing_but_when_batches_are_decoded(folder_root, train) -> None:
    results = [
        list(batches(folder(folder_root, train, prefetch=prefetch), 3,
                     rng=np.random.default_rng(1)))
        for prefetch in (0, 1, 4)
    ]
    for other in results[1:]:
        for (x0, y0), (x1, y1) in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(x0, x1)
            np.testing.assert_array_equal(y0, y1)
    wait_for_no_prefetch_threads()


def test_prefetcher_keeps_order_and_decodes_in_its_threads() -> None:
    threads = set()

    def load(chunk):
        threads.add(threading.current_thread().name)
        time.sleep(0.002 * (chunk % 3))  # finish out of order
        return chunk * 10

    assert list(Prefetcher(load, range(12), prefetch=3)) == [10 * i for i in range(12)]
    assert threads and all(name.startswith(THREAD_NAME_PREFIX) for name in threads)
    threads.clear()
    assert list(Prefetcher(load, range(5), prefetch=0)) == [0, 10, 20, 30, 40]
    assert threads == {threading.current_thread().name}
    wait_for_no_prefetch_threads()


def test_prefetcher_threads_stop_when_done_closed_or_dropped() -> None:
    exhausted = Prefetcher(lambda chunk: chunk, range(4), prefetch=2)
    assert list(exhausted) == [0, 1, 2, 3] and list(exhausted) == []
    wait_for_no_prefetch_threads()

    with Prefetcher(lambda chunk: chunk, range(100), prefetch=2) as stopped_early:
        assert next(stopped_early) == 0
        assert prefetch_threads()
    assert prefetch_threads() == []  # close() waits for its threads
    assert list(stopped_early) == []

    dropped = Prefetcher(lambda chunk: chunk, range(100), prefetch=2)
    next(dropped)
    del dropped
    gc.collect()
    wait_for_no_prefetch_threads()


def test_prefetcher_rejects_a_bad_prefetch() -> None:
    for prefetch in (-1, 1.5, True):
        with pytest.raises(ValueError, match="prefetch must be an integer >= 0"):
            Prefetcher(lambda chunk: chunk, [], prefetch=prefetch)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_an_undecodable_image_is_named_in_the_consumers_thread(
    folder_root: Path, prefetch: int, damage: str
) -> None:
    broken = folder_root / "bee" / "a.jpg"
    if damage == "garbage":
        broken.write_bytes(b"this is not a JPEG")
    else:
        broken.write_bytes(broken.read_bytes()[:200])
    data = folder(folder_root, train=False, prefetch=prefetch)
    epoch = batches(data, 2, shuffle=False)
    assert next(epoch)[1].tolist() == [0, 0]  # the batches before it are fine
    with pytest.raises(DatasetError, match=r"bee/a\.jpg: cannot decode the image") as excinfo:
        list(epoch)
    assert excinfo.value.__cause__ is None
    wait_for_no_prefetch_threads()


def test_folder_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing: not a folder"):
        ImageFolder(tmp_path / "missing", train=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no class folders.*ROOT/CLASS_NAME/IMAGE"):
        ImageFolder(tmp_path / "empty", train=True)
    root = write_image_folder(tmp_path / "images")
    (root / "dog").mkdir()
    (root / "dog" / "readme.txt").write_text("no pictures yet")
    with pytest.raises(DatasetError, match="dog: class folder 'dog' holds no images"):
        ImageFolder(root, train=True)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(crop=24), "crop \\(24\\) must be at most resize \\(20\\)"),
        (dict(resize=0), "resize must be a positive integer \\(pixels\\), got 0"),
        (dict(crop=2.5), "crop must be a positive integer \\(pixels\\), got 2.5"),
        (dict(mean=(1, 2)), "mean must be 3 finite numbers"),
        (dict(mean=(1, 2, float("nan"))), "mean must be 3 finite numbers"),
        (dict(prefetch=-1), "prefetch must be an integer >= 0"),
    ],
)
def test_bad_arguments_are_named(folder_root: Path, options: dict, message: str) -> None:
    settings = dict(resize=RESIZE, crop=CROP) | options
    with pytest.raises(ValueError, match=message):
        ImageFolder(folder_root, train=True, **settings)


def test_train_must_be_said(folder_root: Path) -> None:
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'train'"):
        ImageFolder(folder_root)
    with pytest.raises(TypeError, match="train must be True or False, got 'yes'"):
        ImageFolder(folder_root, train="yes")


def test_without_pillow_the_error_says_what_to_install(
    folder_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `from PIL import Image` fail
    with pytest.raises(ImportError, match='pip install "minprune\\[images\\]"'):
        ImageFolder(folder_root, train=True)


# ---------------------------------------------------------------------------------------------
# fit and evaluate take an ImageFolder as they take a Dataset
# ---------------------------------------------------------------------------------------------


def tiny_model(seed: int = 0):
    minprune.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * CROP * CROP, len(CLASSES)))
    return model, SGD(model.parameters(), lr=1e-6, momentum=0.9)


def test_fit_and_evaluate_read_an_image_folder_and_resume_bit_identically(
    folder_root: Path, tmp_path: Path
) -> None:
    train = folder(folder_root, train=True)
    test = folder(folder_root, train=False)
    options = dict(batch_size=4, seed=3, progress=False, log=lambda line: None)

    straight, optimizer = tiny_model()
    history = fit(straight, optimizer, train, test, epochs=2, **options)
    assert [record["epoch"] for record in history] == [1, 2]
    assert 0 <= evaluate(straight, test)["error"] <= 1

    first, optimizer = tiny_model()
    fit(first, optimizer, train, test, epochs=1, checkpoint=tmp_path / "ck.npz", **options)
    resumed, optimizer = tiny_model()  # a new process builds the same model and resumes
    fit(resumed, optimizer, train, test, epochs=2, checkpoint=tmp_path / "ck.npz", **options)
    for (name, a), (_, b) in zip(
        straight.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        np.testing.assert_array_equal(a, b, err_msg=name)
    wait_for_no_prefetch_threads()
