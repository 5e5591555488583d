"""Tests for minprune.data: IDX parsing, the MNIST loader, downloads, batches and subsets.

Unit tests build tiny IDX files in tmp_path and serve "downloads" from file:// URLs or a local
HTTP server on 127.0.0.1; nothing here touches the internet. The tests at the bottom read real
MNIST and skip unless $MINPRUNE_DATA points at it.
"""

import hashlib
import http.server
import itertools
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fake_mnist import idx_bytes, write_fake_mnist, write_gz
from hypothesis import given
from hypothesis import strategies as st

from minprune.data import (
    MNIST_FILES,
    Dataset,
    DatasetError,
    batch_count,
    batches,
    default_cache_folder,
    mnist,
    subset,
)
from minprune.data.download import fetch
from minprune.data.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parse_idx, read_idx_gz

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = MNIST_FILES
NOWHERE = "http://127.0.0.1:9/"  # the discard port: nothing listens, so a download here fails


def assert_clean_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> str:
    """The message holds every fragment, and no gzip/numpy traceback is chained onto it."""
    message = str(excinfo.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__context__ is None or excinfo.value.__suppress_context__
    return message


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    folder = tmp_path / "fake-mnist"
    write_fake_mnist(folder)
    return folder


@pytest.fixture(autouse=True)
def no_environment_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Unit tests start with no $MINPRUNE_DATA and a private cache folder.

    `mnist_dir` (conftest.py) is session-scoped, so it has read $MINPRUNE_DATA before this runs.
    """
    monkeypatch.delenv("MINPRUNE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


# ---------------------------------------------------------------------------------------------
# IDX format
# ---------------------------------------------------------------------------------------------


def test_parse_idx_reads_shape_and_values() -> None:
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    parsed = parse_idx(idx_bytes(IDX_IMAGES_MAGIC, (2, 3, 4), pixels.tobytes()), IDX_IMAGES_MAGIC)
    assert parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, pixels)
    labels = parse_idx(idx_bytes(IDX_LABELS_MAGIC, (3,), bytes([7, 0, 9])), IDX_LABELS_MAGIC)
    np.testing.assert_array_equal(labels, [7, 0, 9])


def test_parse_idx_accepts_zero_samples() -> None:
    assert parse_idx(idx_bytes(IDX_LABELS_MAGIC, (0,), b""), IDX_LABELS_MAGIC).shape == (0,)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (idx_bytes(IDX_LABELS_MAGIC, (3,), b"\x01\x02\x03"), "magic number is 0x00000801"),
        (idx_bytes(0x00000D03, (1, 1, 1), b"\x00"), "magic number is 0x00000d03"),
        (idx_bytes(IDX_IMAGES_MAGIC, (2,), b""), "header is truncated"),
        (idx_bytes(IDX_IMAGES_MAGIC, (2, 2, 2), b"\x00" * 7), "payload is truncated"),
        (idx_bytes(IDX_IMAGES_MAGIC, (2, 2, 2), b"\x00" * 9), "extra bytes"),
    ],
)
def test_parse_idx_rejects_malformed_data(data: bytes, fragment: str) -> None:
    with pytest.raises(DatasetError) as excinfo:
        parse_idx(data, IDX_IMAGES_MAGIC, name="some-file")
    assert_clean_error(excinfo, "some-file", fragment)


def test_read_idx_gz_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.gz"
    with pytest.raises(DatasetError) as excinfo:
        read_idx_gz(missing, IDX_LABELS_MAGIC)
    assert_clean_error(excinfo, str(missing), "not found")

    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(idx_bytes(IDX_LABELS_MAGIC, (1,), b"\x01"))
    with pytest.raises(DatasetError) as excinfo:
        read_idx_gz(not_gzip, IDX_LABELS_MAGIC)
    assert_clean_error(excinfo, str(not_gzip), "gzip")


# ---------------------------------------------------------------------------------------------
# mnist(): good files
# ---------------------------------------------------------------------------------------------


def test_mnist_loads_dtypes_shapes_and_scaling(tmp_path: Path) -> None:
    arrays = write_fake_mnist(tmp_path / "m", n_train=7, n_test=3)
    train, test = mnist(tmp_path / "m", download=False)
    for dataset, prefix, n in ((train, "train", 7), (test, "t10k", 3)):
        pixels, labels = arrays[prefix]
        assert len(dataset) == n
        assert dataset.images.dtype == np.float32 and dataset.images.shape == (n, 1, 28, 28)
        assert dataset.labels.dtype == np.int64 and dataset.labels.shape == (n,)
        np.testing.assert_array_equal(dataset.images[:, 0], pixels.astype(np.float32) / 255)
        np.testing.assert_array_equal(dataset.labels, labels)
        assert dataset.images.min() == 0.0 and dataset.images.max() == 1.0
        assert not dataset.images.flags.writeable and not dataset.labels.flags.writeable


def test_mnist_reads_minprune_data(monkeypatch: pytest.MonkeyPatch, fake_mnist: Path) -> None:
    monkeypatch.setenv("MINPRUNE_DATA", str(fake_mnist))
    train, test = mnist()
    assert (len(train), len(test)) == (7, 3)


def test_root_argument_wins_over_minprune_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_mnist: Path
) -> None:
    monkeypatch.setenv("MINPRUNE_DATA", str(fake_mnist))
    write_fake_mnist(tmp_path / "other", n_train=5, n_test=2)
    train, test = mnist(tmp_path / "other")
    assert (len(train), len(test)) == (5, 2)


def test_mnist_reads_the_default_cache_folder(tmp_path: Path) -> None:
    assert default_cache_folder() == tmp_path / "xdg-cache" / "minprune" / "mnist"
    write_fake_mnist(default_cache_folder())
    train, _ = mnist(mirrors=[NOWHERE])  # nothing missing, so nothing is downloaded
    assert len(train) == 7


def test_second_load_is_served_from_memory_until_a_file_changes(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path / "m", n_train=7)
    first, _ = mnist(tmp_path / "m")
    again, _ = mnist(tmp_path / "m")
    assert again is first
    write_fake_mnist(tmp_path / "m", n_train=4)
    changed, _ = mnist(tmp_path / "m")
    assert len(changed) == 4


# ---------------------------------------------------------------------------------------------
# mnist(): missing, truncated and corrupt files
# ---------------------------------------------------------------------------------------------


def test_missing_file_without_download(fake_mnist: Path) -> None:
    (fake_mnist / TEST_LABELS).unlink()
    with pytest.raises(DatasetError) as excinfo:
        mnist(fake_mnist, download=False)
    assert_clean_error(excinfo, str(fake_mnist), TEST_LABELS, "download=False", "MINPRUNE_DATA")


def test_minprune_data_with_missing_file_never_downloads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_mnist: Path
) -> None:
    # A mirror that would serve the file if asked: the loader must not ask.
    mirror = tmp_path / "mirror"
    write_fake_mnist(mirror)
    (fake_mnist / TRAIN_IMAGES).unlink()
    monkeypatch.setenv("MINPRUNE_DATA", str(fake_mnist))
    with pytest.raises(DatasetError) as excinfo:
        mnist(mirrors=[mirror.as_uri()])
    assert_clean_error(excinfo, str(fake_mnist), TRAIN_IMAGES, "MINPRUNE_DATA", "never downloads")
    assert not (fake_mnist / TRAIN_IMAGES).exists()
    assert not default_cache_folder().exists()


def test_minprune_data_that_is_not_a_folder(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MINPRUNE_DATA", str(tmp_path / "typo"))
    with pytest.raises(DatasetError) as excinfo:
        mnist()
    assert_clean_error(excinfo, "typo", "is not a folder", TRAIN_IMAGES)


def test_truncated_gzip(fake_mnist: Path) -> None:
    path = fake_mnist / TRAIN_IMAGES
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError) as excinfo:
        mnist(fake_mnist)
    assert_clean_error(excinfo, str(path), "truncated or corrupt gzip", "Delete it")


def test_corrupt_gzip_in_minprune_data_says_replace_it(
    monkeypatch: pytest.MonkeyPatch, fake_mnist: Path
) -> None:
    path = fake_mnist / TEST_IMAGES
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte of the deflate stream
    path.write_bytes(bytes(data))
    monkeypatch.setenv("MINPRUNE_DATA", str(fake_mnist))
    with pytest.raises(DatasetError) as excinfo:
        mnist()
    assert_clean_error(excinfo, str(path), "gzip", MNIST_FILES[TEST_IMAGES], "MINPRUNE_DATA")


def test_wrong_magic(fake_mnist: Path) -> None:
    path = write_gz(fake_mnist / TRAIN_LABELS, idx_bytes(IDX_IMAGES_MAGIC, (1, 1, 7), b"\0" * 7))
    with pytest.raises(DatasetError) as excinfo:
        mnist(fake_mnist)
    assert_clean_error(excinfo, str(path), "magic number is 0x00000803, expected 0x00000801")


def test_payload_shorter_than_header_says(fake_mnist: Path) -> None:
    pixels = b"\x00" * (3 * 28 * 28 - 1)
    path = write_gz(fake_mnist / TEST_IMAGES, idx_bytes(IDX_IMAGES_MAGIC, (3, 28, 28), pixels))
    with pytest.raises(DatasetError) as excinfo:
        mnist(fake_mnist)
    assert_clean_error(excinfo, str(path), "payload is truncated", "3 x 28 x 28 = 2352")


def test_images_must_be_28_by_28(fake_mnist: Path) -> None:
    path = write_gz(fake_mnist / TEST_IMAGES, idx_bytes(IDX_IMAGES_MAGIC, (3, 2, 2), b"\0" * 12))
    with pytest.raises(DatasetError) as excinfo:
        mnist(fake_mnist)
    assert_clean_error(excinfo, str(path), "2 x 2 pixels, expected 28 x 28")


def test_label_out_of_range(fake_mnist: Path) -> None:
    labels = bytes([1, 2, 3, 4, 10, 5, 255])
    path = write_gz(fake_mnist / TRAIN_LABELS, idx_bytes(IDX_LABELS_MAGIC, (7,), labels))
    with pytest.raises(DatasetError) as excinfo:
        mnist(fake_mnist)
    assert_clean_error(excinfo, str(path), "label 10 at index 4 is outside 0..9", "2 such")


def test_image_and_label_counts_must_agree(fake_mnist: Path) -> None:
    path = write_gz(fake_mnist / TEST_LABELS, idx_bytes(IDX_LABELS_MAGIC, (2,), b"\x01\x02"))
    with pytest.raises(DatasetError) as excinfo:
        mnist(fake_mnist)
    assert_clean_error(excinfo, str(path), TEST_IMAGES, "3 images", "2 labels")


# ---------------------------------------------------------------------------------------------
# Downloads (file:// mirrors and a local HTTP server; never the internet)
# ---------------------------------------------------------------------------------------------


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def http_mirror():
    """A local HTTP server; set `routes[path] = (status, body, declared_length)` to serve."""
    routes: dict[str, tuple[int, bytes, int]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server requires)
            status, body, declared_length = routes.get(self.path, (404, b"", 0))
            self.send_response(status)
            self.send_header("Content-Length", str(declared_length))
            self.end_headers()
            self.wfile.write(body)  # shorter than declared_length: a cut-short transfer

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", routes
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetch_from_file_url_writes_the_verified_file(tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "thing.gz").write_bytes(b"payload")
    result = fetch(
        "thing.gz",
        tmp_path / "new" / "folder",
        md5_of(b"payload"),
        [(tmp_path / "mirror").as_uri()],
    )
    assert result == tmp_path / "new" / "folder" / "thing.gz"
    assert result.read_bytes() == b"payload"
    assert sorted(p.name for p in result.parent.iterdir()) == ["thing.gz"]  # no temp file left


def test_fetch_falls_back_to_the_next_mirror(tmp_path: Path, http_mirror) -> None:
    url, routes = http_mirror
    routes["/second/thing.gz"] = (200, b"payload", 7)
    fetch("thing.gz", tmp_path, md5_of(b"payload"), [url + "first", url + "second"])
    assert (tmp_path / "thing.gz").read_bytes() == b"payload"


def test_fetch_wrong_md5_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "thing.gz").write_bytes(b"tampered")
    target = tmp_path / "target"
    with pytest.raises(DatasetError) as excinfo:
        fetch("thing.gz", target, md5_of(b"payload"), [(tmp_path / "mirror").as_uri()])
    assert_clean_error(excinfo, "thing.gz", f"expected {md5_of(b'payload')}", md5_of(b"tampered"))
    assert list(target.iterdir()) == []


def test_fetch_cut_short_transfer_leaves_nothing_behind(tmp_path: Path, http_mirror) -> None:
    url, routes = http_mirror
    routes["/thing.gz"] = (200, b"first half", 100)
    with pytest.raises(DatasetError) as excinfo:
        fetch("thing.gz", tmp_path, md5_of(b"x" * 100), [url, NOWHERE])
    message = assert_clean_error(excinfo, "thing.gz", url + "thing.gz", NOWHERE + "thing.gz")
    assert "transfer cut short: received 10 of 100 bytes" in message
    assert list(tmp_path.iterdir()) == []


def test_fetch_interrupted_mid_stream_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Interrupted:
        headers: dict[str, str] = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc_info) -> None:
            pass

        def read(self, size: int) -> bytes:
            raise KeyboardInterrupt

    monkeypatch.setattr(urllib.request, "urlopen", lambda *args, **kwargs: Interrupted())
    with pytest.raises(KeyboardInterrupt):
        fetch("thing.gz", tmp_path, md5_of(b""), ["https://example.invalid/"])
    assert list(tmp_path.iterdir()) == []


def test_mnist_download_with_wrong_md5_names_the_file(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    write_fake_mnist(mirror)  # well-formed files, but not the real MNIST: every MD5 differs
    root = tmp_path / "root"
    with pytest.raises(DatasetError) as excinfo:
        mnist(root, mirrors=[mirror.as_uri()])
    assert_clean_error(excinfo, TRAIN_IMAGES, MNIST_FILES[TRAIN_IMAGES], "MINPRUNE_DATA")
    assert list(root.iterdir()) == []


def test_mnist_downloads_only_what_is_missing(tmp_path: Path, fake_mnist: Path) -> None:
    # Every file present: the unreachable mirror is never contacted.
    train, _ = mnist(fake_mnist, mirrors=[NOWHERE])
    assert len(train) == 7


def test_mnist_download_from_mirrors(tmp_path: Path, mnist_dir: Path) -> None:
    """The whole download path with real bytes: a dead mirror, then a file:// copy of MNIST."""
    train, test = mnist(mirrors=[NOWHERE, mnist_dir.as_uri()])
    assert (len(train), len(test)) == (60000, 10000)
    cache = default_cache_folder()
    assert sorted(p.name for p in cache.iterdir()) == sorted(MNIST_FILES)
    for name, md5 in MNIST_FILES.items():
        assert md5_of((cache / name).read_bytes()) == md5


# ---------------------------------------------------------------------------------------------
# Dataset and subset
# ---------------------------------------------------------------------------------------------


def test_dataset_validates_and_describes_itself() -> None:
    dataset = Dataset(np.zeros((4, 1, 28, 28), np.float32), np.arange(4))
    assert len(dataset) == 4
    assert "4 samples" in repr(dataset)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        Dataset(np.zeros((4, 2)), np.arange(3))
    with pytest.raises(ValueError, match="labels must be 1-D"):
        Dataset(np.zeros((4, 2)), np.zeros((4, 1)))
    with pytest.raises(TypeError, match="labels must be a numpy array"):
        Dataset(np.zeros((4, 2)), [0, 1, 2, 3])


def test_subset_takes_the_first_n_or_a_seeded_draw() -> None:
    dataset = Dataset(np.arange(10.0)[:, None], np.arange(10))
    np.testing.assert_array_equal(subset(dataset, 3).labels, [0, 1, 2])
    drawn = subset(dataset, 4, rng=np.random.default_rng(1))
    assert len(np.unique(drawn.labels)) == 4 and np.all(np.diff(drawn.labels) > 0)
    np.testing.assert_array_equal(drawn.images[:, 0], drawn.labels)
    again = subset(dataset, 4, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again.labels, drawn.labels)
    assert len(subset(dataset, 0)) == 0 and len(subset(dataset, 10)) == 10
    with pytest.raises(ValueError, match=r"0\.\.10"):
        subset(dataset, 11)
    with pytest.raises(TypeError):
        subset(dataset, 2.0)


# ---------------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------------


def numbered(n: int) -> Dataset:
    """Sample i has image [i, i] and label i, so a batch shows which samples it holds."""
    return Dataset(np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1), np.arange(n))


def test_batches_are_deterministic_under_a_seed() -> None:
    data = numbered(50)
    first = [labels for _, labels in batches(data, 8, rng=np.random.default_rng(3))]
    second = [labels for _, labels in batches(data, 8, rng=np.random.default_rng(3))]
    other = [labels for _, labels in batches(data, 8, rng=np.random.default_rng(4))]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(np.concatenate(first), np.concatenate(other))
    assert not np.array_equal(np.concatenate(first), np.arange(50))  # it did shuffle


@given(
    n=st.integers(0, 60),
    batch_size=st.integers(1, 70),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_batches_cover_every_sample_once(n, batch_size, drop_last, shuffle, seed) -> None:
    data = numbered(n)
    rng = np.random.default_rng(seed)
    got = list(batches(data, batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last))
    assert len(got) == batch_count(n, batch_size, drop_last)
    sizes = [len(labels) for _, labels in got]
    labels = np.concatenate([labels for _, labels in got]) if got else np.array([], np.int64)
    for images, batch_labels in got:
        np.testing.assert_array_equal(images[:, 0], batch_labels)  # images stay with labels
        assert images.dtype == np.float32 and batch_labels.dtype == data.labels.dtype
    if drop_last:
        assert all(size == batch_size for size in sizes)
        assert len(labels) == n - n % batch_size
        assert len(np.unique(labels)) == len(labels)  # no sample twice
    else:
        assert all(size == batch_size for size in sizes[:-1])
        np.testing.assert_array_equal(np.sort(labels), np.arange(n))
    if not shuffle:
        np.testing.assert_array_equal(labels, np.arange(len(labels)))


def test_drop_last_drops_only_the_short_batch() -> None:
    sizes = [len(y) for _, y in batches(numbered(10), 4, rng=np.random.default_rng(0))]
    assert sizes == [4, 4, 2]
    dropped = [
        len(y) for _, y in batches(numbered(10), 4, rng=np.random.default_rng(0), drop_last=True)
    ]
    assert dropped == [4, 4]
    assert list(batches(numbered(3), 4, shuffle=False, drop_last=True)) == []


def test_resuming_from_a_saved_rng_state_is_bit_identical() -> None:
    data = numbered(37)
    rng = np.random.default_rng(7)
    saved = rng.bit_generator.state
    epoch = list(batches(data, 5, rng=rng))
    after_epoch = rng.bit_generator.state

    rng.bit_generator.state = saved
    resumed = list(itertools.islice(batches(data, 5, rng=rng), 3, None))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(epoch[3:], resumed, strict=True))
    assert rng.bit_generator.state == after_epoch


def test_the_permutation_is_drawn_when_batches_is_called() -> None:
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    batches(numbered(5), 2, rng=rng)  # not iterated
    assert rng.bit_generator.state != before
    unshuffled_rng = np.random.default_rng(0)
    list(batches(numbered(5), 2, shuffle=False, rng=unshuffled_rng))
    assert unshuffled_rng.bit_generator.state == before


def test_batches_are_writable_copies_of_read_only_data() -> None:
    images = np.zeros((6, 2), np.float32)
    images.flags.writeable = False
    for shuffle in (True, False):
        batch, _ = next(
            batches((images, np.arange(6)), 4, shuffle=shuffle, rng=np.random.default_rng(0))
        )
        batch += 1
    assert images.sum() == 0


@pytest.mark.parametrize("batch_size", [0, -3])
def test_batch_size_must_be_positive(batch_size: int) -> None:
    with pytest.raises(
        ValueError, match=f"batch_size must be a positive integer, got {batch_size}"
    ):
        batches(numbered(4), batch_size, shuffle=False)


@pytest.mark.parametrize("batch_size", [2.5, True, "8", None])
def test_batch_size_must_be_an_integer(batch_size) -> None:
    with pytest.raises(TypeError, match="batch_size must be a positive integer"):
        batches(numbered(4), batch_size, shuffle=False)


def test_batches_argument_errors() -> None:
    with pytest.raises(ValueError, match="needs rng=np.random.default_rng"):
        batches(numbered(4), 2)
    with pytest.raises(TypeError, match="numpy Generator"):
        batches(numbered(4), 2, rng=0)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        batches((np.zeros((4, 2)), np.arange(3)), 2, shuffle=False)
    with pytest.raises(TypeError, match="Dataset or an"):
        batches([np.zeros((4, 2)), np.arange(4)], 2, shuffle=False)
    assert batch_count(np.int64(10), np.int64(3)) == 4


# ---------------------------------------------------------------------------------------------
# Real MNIST (skipped unless $MINPRUNE_DATA points at the four files)
# ---------------------------------------------------------------------------------------------

TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_files_have_the_published_md5s(mnist_dir: Path) -> None:
    for name, md5 in MNIST_FILES.items():
        assert md5_of((mnist_dir / name).read_bytes()) == md5, name


def test_real_mnist(monkeypatch: pytest.MonkeyPatch, mnist_dir: Path) -> None:
    monkeypatch.setenv("MINPRUNE_DATA", str(mnist_dir))
    train, test = mnist()
    assert (len(train), len(test)) == (60000, 10000)
    for dataset, counts in ((train, TRAIN_LABEL_COUNTS), (test, TEST_LABEL_COUNTS)):
        assert dataset.images.shape == (len(dataset), 1, 28, 28)
        assert dataset.images.dtype == np.float32 and dataset.labels.dtype == np.int64
        assert dataset.images.min() == 0.0 and dataset.images.max() == 1.0
        assert np.bincount(dataset.labels, minlength=10).tolist() == counts
    np.testing.assert_array_equal(train.labels[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    epoch = list(batches(train, 1000, rng=np.random.default_rng(0)))
    assert len(epoch) == 60 and epoch[0][0].shape == (1000, 1, 28, 28)
    labels = np.concatenate([labels for _, labels in epoch])
    assert np.bincount(labels, minlength=10).tolist() == TRAIN_LABEL_COUNTS


def test_every_drawing_reader_checks_its_generator_the_same_way() -> None:
    from minprune.data.generator import checked_generator

    rng = np.random.default_rng(0)
    assert checked_generator(rng, "x", "") is rng
    with pytest.raises(ValueError, match="crops needs rng=np.random.default_rng\\(seed\\); hint"):
        checked_generator(None, "crops", "; hint")
    with pytest.raises(TypeError, match="numpy Generator .* got RandomState"):
        checked_generator(np.random.RandomState(0), "crops", "")


def test_as_dataset_turns_a_pair_into_a_dataset_and_passes_a_dataset_through() -> None:
    from minprune.data.entry import as_dataset

    images, labels = np.zeros((4, 2), np.float32), np.arange(4)
    converted = as_dataset((images, labels), "fit: train_set")
    assert isinstance(converted, Dataset) and len(converted) == 4
    assert converted.images is images and converted.labels is labels
    assert as_dataset(converted, "fit: train_set") is converted
    assert as_dataset(None, "fit: test_set", allow_none=True) is None
    with pytest.raises(TypeError, match="fit: test_set is None; expected a Dataset"):
        as_dataset(None, "fit: test_set")
    with pytest.raises(TypeError, match="fit: train_set: images have dtype <U1; expected float32"):
        as_dataset((np.array(["a", "b"]), np.arange(2)), "fit: train_set")
    with pytest.raises(ValueError, match=r"the images hold 0 NaN and 1 infinite values, in 1 "
                                         "samples \\(the first is sample 2\\)"):
        as_dataset((np.array([[0.0], [1.0], [np.inf]]), np.arange(3)), "fit: train_set")
