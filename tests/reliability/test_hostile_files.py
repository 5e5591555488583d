"""Bad files are refused with a ValueError naming the file and the field, before any allocation.

Hand-made cases for each reader (`load_sparse`, `load_checkpoint`, the IDX reader): enormous or
negative shapes, wrong dtypes, object arrays, disagreeing lengths, index overflow, NaN or inf
weights, truncation and flipped bits. Then Hypothesis fuzzes each reader -- damaged bytes and
hostile contents with valid checksums -- in a worker process with a memory cap, so a crash or a
runaway allocation fails a case instead of the test run: a few dozen cases per reader in the fast
suite, 1,000 per reader in the slow suite. The draws are derandomized, so a failure reproduces.
"""

import gzip
import json

import numpy as np
import pytest
from hostile import (
    IsolatedReaders,
    npz_arrays,
    npz_claiming,
    object_npz,
    rewrite_npz,
    valid_checkpoint,
    valid_idx,
    valid_sparse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minprune.data.dataset import DatasetError
from minprune.data.idx import IDX_IMAGES_MAGIC, read_idx_gz
from minprune.sparse.export import SparseFileError, load_sparse
from minprune.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

META = "__minprune_sparse__"


def _metadata(data: bytes) -> dict:
    return json.loads(npz_arrays(data)[META].tobytes())


def _with_metadata(folder, data: bytes, change) -> bytes:
    metadata = _metadata(data)
    change(metadata)
    raw = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    return rewrite_npz(folder, data, {META: raw})


# ---- load_sparse ----------------------------------------------------------------------------
def _sparse_cases(folder):
    data = valid_sparse(folder)
    arrays = npz_arrays(data)
    steps = arrays["fc1.weight::steps"]
    values = arrays["fc1.weight::values"]
    return {
        "enormous shape": (_with_metadata(folder, data, lambda m: m["sparse"]["fc1.weight"]
                                          .update(shape=[10**9, 10**9])), "more than a"),
        "negative shape": (_with_metadata(folder, data, lambda m: m["sparse"]["fc1.weight"]
                                          .update(shape=[-30, 600])), "shape: expected"),
        "shape of strings": (_with_metadata(folder, data, lambda m: m["sparse"]["fc1.weight"]
                                            .update(shape=["30", 600])), "shape: expected"),
        "object mask dtype": (_with_metadata(folder, data, lambda m: m["sparse"]["fc1.weight"]
                                             .update(mask_dtype="|O")), "mask_dtype"),
        "header claims more": (npz_claiming(arrays, "fc1.weight::values", (10**12,)),
                               "claims shape"),
        "object array": (object_npz(arrays, "fc1.bias"), "Python objects"),
        "values float64": (rewrite_npz(folder, data, {"fc1.weight::values":
                                                      values.astype(np.float64)}),
                           "values: expected 1-D float32"),
        "fewer values": (rewrite_npz(folder, data, {"fc1.weight::values": values[:-1]}),
                         "values: expected"),
        "column overflow": (rewrite_npz(folder, data, {"fc1.weight::steps":
                                                       np.full_like(steps, 255)}),
                            "columns"),
        "step_indptr int32": (rewrite_npz(folder, data, {"fc1.weight::step_indptr":
                                                         arrays["fc1.weight::step_indptr"]
                                                         .astype(np.int32)}),
                              "step_indptr: expected int64"),
        "NaN weight": (rewrite_npz(folder, data, {"fc1.weight::values":
                                                  np.where(np.arange(values.size) == 3, np.nan,
                                                           values).astype(np.float32)}),
                       "NaN or infinite weights"),
        "inf bias": (rewrite_npz(folder, data, {"fc2.bias": np.full(10, np.inf, np.float32)}),
                     "fc2.bias: NaN or infinite"),
        "unlisted array": (rewrite_npz(folder, data, {"extra": np.ones(2)}),
                           "'extra' is not listed"),
        "missing array": (rewrite_npz(folder, data, {"fc2.bias": None}), "missing"),
        "truncated": (data[: len(data) // 2], "cannot be read"),
        "flipped bit": (_flip(data, len(data) // 3), "(checksum mismatch|cannot be read)"),
        "not a zip": (b"hello", "cannot be read"),
    }


def _flip(data: bytes, position: int) -> bytes:
    damaged = bytearray(data)
    damaged[position] ^= 0x10
    return bytes(damaged)


@pytest.mark.parametrize("case", [
    "enormous shape", "negative shape", "shape of strings", "object mask dtype",
    "header claims more", "object array", "values float64", "fewer values", "column overflow",
    "step_indptr int32", "NaN weight", "inf bias", "unlisted array", "missing array",
    "truncated", "flipped bit", "not a zip"])
def test_load_sparse_names_the_file_and_the_field(tmp_path, case):
    data, message = _sparse_cases(tmp_path)[case]
    path = tmp_path / "hostile.npz"
    path.write_bytes(data)
    with pytest.raises(SparseFileError, match=message) as error:
        load_sparse(path)
    assert str(path) in str(error.value)


# ---- load_checkpoint ------------------------------------------------------------------------
def _checkpoint_cases(folder):
    data = valid_checkpoint(folder)
    arrays = npz_arrays(data)
    weight = arrays["model/fc1.weight"]
    return {
        "header claims more": (npz_claiming(arrays, "model/fc1.weight", (10**6, 10**6)),
                               "claims shape"),
        "negative header shape": (npz_claiming(arrays, "model/fc1.bias", (-1,)),
                                  "negative shape"),
        "header dtype disagrees": (npz_claiming(arrays, "model/fc1.bias", (30,), "<f8"),
                                   "claims shape"),
        "object array": (object_npz(arrays, "model/fc1.bias"), "Python objects"),
        "meta not JSON": (rewrite_npz(folder, data, {"meta": np.frombuffer(b"{oops",
                                                                          np.uint8)}),
                          "'meta' is not JSON"),
        "meta a list": (rewrite_npz(folder, data, {"meta": np.frombuffer(b"[1]", np.uint8)}),
                        "expected a JSON object"),
        "NaN weight": (rewrite_npz(folder, data, {"model/fc1.weight":
                                                  np.full_like(weight, np.nan)}),
                       "NaN or infinite values in \\['model/fc1.weight'\\]"),
        "unexpected entry": (rewrite_npz(folder, data, {"evil": np.ones(1)}),
                             "unexpected entries"),
        "no meta": (rewrite_npz(folder, data, {"meta": None}), "no 'meta' entry"),
        "truncated": (data[:100], "cannot be read"),
        "flipped bit": (_flip(data, len(data) // 2), "(checksum mismatch|cannot be read)"),
    }


@pytest.mark.parametrize("case", [
    "header claims more", "negative header shape", "header dtype disagrees", "object array",
    "meta not JSON", "meta a list", "NaN weight", "unexpected entry", "no meta", "truncated",
    "flipped bit"])
def test_load_checkpoint_names_the_file_and_the_field(tmp_path, case):
    data, message = _checkpoint_cases(tmp_path)[case]
    path = tmp_path / "hostile.npz"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=message) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)


def test_a_corrupt_checkpoint_leaves_the_previous_good_one(tmp_path):
    path = tmp_path / "ck.npz"
    for epoch in (1, 2):
        save_checkpoint(path, {"w": np.full(3, float(epoch), np.float32)}, epoch=epoch)
    path.write_bytes(_flip(path.read_bytes(), 200))
    with pytest.raises(CheckpointError, match="ck.npz.prev: rename it"):
        load_checkpoint(path)
    state, _, meta = load_checkpoint(tmp_path / "ck.npz.prev")
    assert meta["epoch"] == 1 and state["w"].tolist() == [1, 1, 1]


# ---- the IDX reader -------------------------------------------------------------------------
def _idx_cases():
    header = IDX_IMAGES_MAGIC.to_bytes(4, "big")
    dims = (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    pixels = bytes(5 * 28 * 28)
    enormous = header + (2**31).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    bomb = header + (1).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(50 << 20)
    return {
        "enormous shape": (gzip.compress(enormous + bytes(100)), "more than a"),
        "gzip bomb": (gzip.compress(bomb), "has extra bytes"),
        "short payload": (gzip.compress(header + dims + pixels[:-1]), "payload is truncated"),
        "wrong magic (float data)": (gzip.compress((0x0D03).to_bytes(4, "big") + dims + pixels),
                                     "magic number"),
        "truncated gzip": (valid_idx()[:60], "truncated or corrupt gzip"),
        "flipped bit": (_flip(valid_idx(), 40), "(corrupt gzip|magic|payload|header)"),
        "not gzip": (b"\x00" * 40, "corrupt gzip"),
    }


@pytest.mark.parametrize("case", ["enormous shape", "gzip bomb", "short payload",
                                  "wrong magic (float data)", "truncated gzip", "flipped bit",
                                  "not gzip"])
def test_idx_reader_names_the_file_and_what_is_wrong(tmp_path, case):
    data, message = _idx_cases()[case]
    path = tmp_path / "hostile-idx3-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=message) as error:
        read_idx_gz(path, IDX_IMAGES_MAGIC)
    assert str(path) in str(error.value)


# ---- fuzzing, each case read in a worker process --------------------------------------------
@st.composite
def damaged_bytes(draw, original: bytes):
    """``original`` truncated, with bits flipped, bytes overwritten or inserted."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at: at + len(chunk)] = chunk
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def _hostile_numbers():
    return st.one_of(st.integers(-2**63, 2**63 - 1), st.sampled_from([0, 1, -1, 2**31, 2**32]))


@st.composite
def hostile_npz(draw, folder, original: bytes):
    """A valid archive (matching checksum) with one array or the metadata made hostile."""
    arrays = npz_arrays(original)
    name = draw(st.sampled_from(sorted(arrays)))
    array = arrays[name]
    kind = draw(st.sampled_from(["dtype", "length", "value", "claimed shape", "json"]))
    if kind == "dtype":
        new = array.astype(draw(st.sampled_from(["<f8", "<i4", "<i8", "|u1", "<f2", "|b1"])))
    elif kind == "length":
        size = draw(st.integers(0, array.size + 8))
        new = np.resize(array.reshape(-1), size).astype(array.dtype)
    elif kind == "value":
        new = array.copy().reshape(-1)
        if new.size:
            at = draw(st.integers(0, new.size - 1))
            if new.dtype.kind == "f":
                new[at] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e38, -0.0]))
            else:
                info = np.iinfo(new.dtype)
                new[at] = draw(st.integers(int(info.min), int(info.max)))
        new = new.reshape(array.shape)
    elif kind == "claimed shape":
        shape = tuple(draw(st.lists(st.integers(-2, 2**40), min_size=0, max_size=3)))
        return npz_claiming(arrays, name, shape)
    else:
        text = json.dumps(draw(st.recursive(
            st.none() | st.booleans() | _hostile_numbers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                st.sampled_from(["format", "version", "keys", "sparse", "shape", "mask_dtype",
                                 "epoch", "fc1.weight"]), inner, max_size=4),
            max_leaves=12)))
        new = np.frombuffer(text.encode(), dtype=np.uint8)
        name = META if META in arrays else "meta"
    return rewrite_npz(folder, original, {name: new})


@st.composite
def hostile_idx(draw):
    """Gzipped IDX files with hostile headers and payloads of any length."""
    magic = draw(st.sampled_from([IDX_IMAGES_MAGIC, 0x0801, 0x0D03, 0x0804, 0]))
    dims = draw(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 40), min_size=0,
                         max_size=4))
    payload = bytes(draw(st.integers(0, 4000)))
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload
    return gzip.compress(raw, mtime=0)


def _fuzz(reader: str, original: bytes, strategy, examples: int):
    """Read ``examples`` drawn files in the worker; return the tallies. A damaged file must be
    rejected or, if it loads, load exactly what the original held (a harmless byte changed)."""
    isolated = IsolatedReaders()
    tally = {"tried": 0, "rejected": 0, "loaded": 0}
    expected = isolated.read(reader, original)
    assert expected[0] == "ok", expected
    try:
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(data=strategy)
        def case(data):
            damaged, must_equal_original = data
            outcome = isolated.read(reader, damaged)
            tally["tried"] += 1
            assert outcome[0] in ("ok", "rejected"), outcome
            if outcome[0] == "rejected":
                tally["rejected"] += 1
            else:
                tally["loaded"] += 1
                if must_equal_original:
                    assert outcome == expected, "a damaged file loaded other contents"

        case()
    finally:
        isolated.close()
    assert isolated.crashes == 0
    return tally


def _strategies(reader: str, folder):
    original = {"sparse": valid_sparse, "checkpoint": valid_checkpoint}.get(
        reader, lambda _: valid_idx())(folder)
    damaged = damaged_bytes(original).map(lambda data: (data, True))
    if reader == "idx":
        hostile = hostile_idx().map(lambda data: (data, False))
    else:
        hostile = hostile_npz(folder, original).map(lambda data: (data, False))
    return original, st.one_of(damaged, hostile)


def _report(reader, tally, capsys):
    with capsys.disabled():
        print(f"\nfuzzed {reader}: {tally['tried']} files, {tally['rejected']} rejected, "
              f"{tally['loaded']} loaded (harmless changes or valid contents), 0 crashes")


@pytest.mark.parametrize("reader", ["sparse", "checkpoint", "idx"])
def test_fuzzed_files_are_rejected_or_harmless(tmp_path, reader, capsys):
    original, strategy = _strategies(reader, tmp_path)
    tally = _fuzz(reader, original, strategy, examples=40)
    assert tally["tried"] >= 40
    _report(reader, tally, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["sparse", "checkpoint", "idx"])
def test_a_thousand_fuzzed_files_per_reader(tmp_path, reader, capsys):
    original, strategy = _strategies(reader, tmp_path)
    tally = _fuzz(reader, original, strategy, examples=1000)
    assert tally["tried"] >= 1000
    _report(reader, tally, capsys)
