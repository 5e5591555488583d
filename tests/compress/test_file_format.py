"""The compressed file (Deep Compression Fig. 1's output): exact round trips that the sparse
engine runs, and the same integrity rules as `minprune.sparse`'s files -- checksummed, atomic,
every hostile field named, fuzzed."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minprune as mp
from minprune.base.files import read_npz, write_npz
from minprune.compress.file_format import CompressedFileError, read_compressed, save_compressed
from minprune.compress.huffman import entropy_bits
from minprune.compress.weight_sharing import share_weights


def _pruned(name="lenet-300-100", keep=0.08, seed=0):
    mp.manual_seed(seed)
    model = mp.models.build(name)
    rng = np.random.default_rng(seed)
    for layer in mp.prune.layers_by_weight_name(model).values():
        layer.bias.data[...] = rng.standard_normal(layer.bias.data.shape)
    mp.prune.keep_ratio_prune(model, {"*": keep})
    return model


def _saved(tmp_path, name="lenet-300-100", bits=3, **options):
    model = _pruned(name)
    codebooks = share_weights(model, bits)
    path = tmp_path / "model.mpz"
    parts = save_compressed(path, model, codebooks, input_shape=(1, 28, 28), **options)
    return model, codebooks, path, parts


@pytest.mark.parametrize("name, bits", [("lenet-300-100", 1), ("lenet-300-100", 5),
                                        ("lenet5", {"conv1.weight": 8, "*": 3})])
def test_every_layer_round_trips_exactly(tmp_path, name, bits):
    model, _, path, parts = _saved(tmp_path, name, bits)
    loaded = read_compressed(path)
    assert loaded.input_shape == (1, 28, 28)
    assert parts["file"] == path.stat().st_size == loaded.part_bytes["file"]
    state, again = model.state_dict(), loaded.model.state_dict()
    assert state.keys() == again.keys()
    for key in state:
        np.testing.assert_array_equal(again[key], state[key], err_msg=key)


def test_the_sparse_engine_runs_the_file(tmp_path):
    model, _, path, _ = _saved(tmp_path, "lenet5", 4)
    loaded = read_compressed(path)
    network = mp.inference.compile_model(loaded.model, input_shape=loaded.input_shape)
    images = np.random.default_rng(1).random((8, 1, 28, 28), dtype=np.float32)
    model.eval()
    with mp.no_grad():
        expected = model(images).data
    np.testing.assert_allclose(np.asarray(network(images)), expected, rtol=1e-4, atol=1e-4)


def test_code_lengths_meet_the_entropy_bound_on_every_layer(tmp_path):
    _, codebooks, _, parts = _saved(tmp_path, "lenet5", 4)
    for name, entry in parts["layers"].items():
        counts = np.bincount(codebooks[name].assignments, minlength=16)
        average = entry["weight_stream_bits"] / entry["entries"]
        assert entropy_bits(counts) - 1e-9 <= average < entropy_bits(counts) + 1, name


def test_the_file_is_smaller_than_the_weights_it_holds(tmp_path):
    model, _, _, parts = _saved(tmp_path, "lenet-300-100", 3)
    dense = 4 * sum(p.data.size for p in model.parameters())
    assert dense / parts["file"] > 40  # 8% kept at 3 bits: about 50x
    assert set(parts["fc1.weight"]) == {"codebook", "weight_table", "index_table",
                                        "weight_stream", "index_stream"}


def test_an_unshared_layer_is_stored_as_float32_with_its_mask(tmp_path):
    model = _pruned()
    layers = mp.prune.layers_by_weight_name(model)
    codebooks = share_weights(model, {"fc1.weight": 2})
    save_compressed(tmp_path / "m.mpz", model, {"fc1.weight": codebooks["fc1.weight"]})
    loaded = read_compressed(tmp_path / "m.mpz").model
    np.testing.assert_array_equal(loaded.fc2.weight_mask, layers["fc2.weight"].weight_mask)
    np.testing.assert_array_equal(loaded.fc2.weight.data, layers["fc2.weight"].weight.data)


def test_weights_changed_after_sharing_are_refused(tmp_path):
    model = _pruned()
    codebooks = share_weights(model, 2)
    model.fc1.weight.data *= 1.01
    with pytest.raises(ValueError, match="fc1.weight's weights are not its codebook's"):
        save_compressed(tmp_path / "m.mpz", model, codebooks)
    assert not (tmp_path / "m.mpz").exists()


def _members(path):
    arrays = read_npz(path)
    return json.loads(arrays["meta"].tobytes()), arrays["payload"]


def _rewrite(path, meta=None, payload=None, extra=None):
    old_meta, old_payload = _members(path)
    arrays = {"meta": np.frombuffer(json.dumps(meta or old_meta).encode(), np.uint8),
              "payload": old_payload if payload is None else payload, **(extra or {})}
    write_npz(path, arrays)


def _set(meta, index, key, value):
    meta["arrays"][index][key] = value
    return meta


HOSTILE_META = [
    (lambda m: {**m, "version": 2}, r"meta.format: expected minprune.compressed version 1"),
    (lambda m: {k: v for k, v in m.items() if k != "arrays"}, "meta: expected an object"),
    (lambda m: _set(m, 0, "bits", 9), r"meta.arrays\[0\] \(fc1.weight\).bits: expected an int "
                                      r"in 1..8, got 9"),
    (lambda m: _set(m, 0, "index_bits", True), r"\(fc1.weight\).index_bits"),
    (lambda m: _set(m, 0, "entries", -1), r"\(fc1.weight\).entries: expected a count"),
    (lambda m: _set(m, 0, "entries", 10**12), r"\(fc1.weight\).entries: expected a count"),
    (lambda m: _set(m, 0, "kind", "int8"), r"meta.arrays\[0\].kind: expected 'shared'"),
    (lambda m: _set(m, 0, "shape", [300, 785]), r"meta.arrays\[0\] \(fc1.weight\): the layers "
                                                r"give \(300, 784\)"),
    (lambda m: _set(m, 1, "kind", "shared"), r"\(fc1.bias\): only weights are shared"),
    (lambda m: {**m, "arrays": m["arrays"][1:]}, "meta.arrays: lists"),
    (lambda m: _set(m, 0, "weight_stream_bits", m["arrays"][0]["weight_stream_bits"] + 8),
     r"\(fc1.weight\) weight_stream: .*(no codeword|left|ends)|payload"),
    (lambda m: {**m, "architecture": {**m["architecture"], "input_shape": [0]}},
     "input_shape: expected null or 1 to 4 positive ints"),
    (lambda m: {**m, "architecture": {**m["architecture"], "layers": [
        {"name": "fc1", "type": "Linear", "in_features": 10**6, "out_features": 10**6,
         "bias": True}]}}, "meta.arrays|refusing to allocate"),
]


@pytest.mark.parametrize("change, message", HOSTILE_META)
def test_hostile_metadata_is_refused_naming_the_file_and_the_field(tmp_path, change, message):
    _, _, path, _ = _saved(tmp_path)
    meta, _ = _members(path)
    _rewrite(path, meta=change(meta))
    with pytest.raises(CompressedFileError, match=message) as caught:
        read_compressed(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("change, message", [
    (lambda p: p[:-1], "needs 40 bytes|left over"),
    (lambda p: np.concatenate([p, np.zeros(1, np.uint8)]), "1 bytes left over"),
    (lambda p: p.astype(np.int16), "payload: expected 1-D uint8"),
])
def test_a_hostile_payload_is_refused(tmp_path, change, message):
    _, _, path, _ = _saved(tmp_path)
    _, payload = _members(path)
    _rewrite(path, payload=change(payload))
    with pytest.raises(CompressedFileError, match=message):
        read_compressed(path)


def test_a_nan_centroid_or_bias_is_refused(tmp_path):
    _, _, path, _ = _saved(tmp_path)
    _, payload = _members(path)
    payload = payload.copy()
    payload[:4] = np.frombuffer(np.float32(np.nan).tobytes(), np.uint8)  # fc1's first centroid
    _rewrite(path, payload=payload)
    with pytest.raises(CompressedFileError, match=r"\(fc1.weight\) codebook: NaN"):
        read_compressed(path)


def test_an_extra_member_or_a_flipped_bit_is_refused(tmp_path):
    _, _, path, _ = _saved(tmp_path)
    _rewrite(path, extra={"more": np.zeros(1, np.uint8)})
    with pytest.raises(CompressedFileError, match="expected members meta and payload"):
        read_compressed(path)
    _, _, path, _ = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CompressedFileError, match="checksum mismatch|cannot be read"):
        read_compressed(path)


@st.composite
def _hostile(draw, meta, payload):
    """A file rewritten with a matching checksum: payload bytes changed, cut or extended, or one
    header field replaced by any JSON value."""
    kind = draw(st.sampled_from(["payload", "cut", "meta"]))
    if kind == "payload":
        payload = payload.copy()
        for _ in range(draw(st.integers(1, 4))):
            payload[draw(st.integers(0, payload.size - 1))] = draw(st.integers(0, 255))
        return meta, payload
    if kind == "cut":
        return meta, payload[:draw(st.integers(0, payload.size))]
    meta = json.loads(json.dumps(meta))
    entry = meta["arrays"][draw(st.integers(0, len(meta["arrays"]) - 1))]
    key = draw(st.sampled_from(sorted(entry)))
    entry[key] = draw(st.none() | st.booleans() | st.integers(-2, 2**40) | st.text(max_size=4)
                      | st.lists(st.integers(0, 1000), max_size=3))
    return meta, payload


def test_fuzzed_files_are_refused_or_load_a_well_formed_model(tmp_path):
    _, _, path, _ = _saved(tmp_path, "lenet-300-100", 2)
    meta, payload = _members(path)
    tally = {"refused": 0, "loaded": 0}

    @settings(max_examples=150, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(_hostile(meta, payload))
    def case(drawn):
        _rewrite(path, meta=drawn[0], payload=drawn[1])
        try:
            loaded = read_compressed(path)
        except CompressedFileError:
            tally["refused"] += 1
            return
        tally["loaded"] += 1
        for key, array in loaded.model.state_dict().items():
            assert np.isfinite(array).all(), key
            if key.endswith("weight_mask"):
                assert np.isin(array, (0, 1)).all(), key

    case()
    assert tally["refused"] > 50
