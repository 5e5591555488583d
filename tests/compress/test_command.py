"""``minprune compress`` end to end in fast mode on a made-up MNIST: every record written, the
file read back into the sparse engine, and a second run resuming from the saved stages with the
same result."""

import json

import numpy as np
from fake_mnist import write_fake_mnist

from minprune.commands.cli import main
from minprune.compress.file_format import read_compressed


def test_compress_writes_its_records_and_resumes(tmp_path, monkeypatch):
    data = tmp_path / "mnist"
    write_fake_mnist(data, n_train=6_000, n_test=2_000)
    monkeypatch.setenv("MINPRUNE_DATA", str(data))
    argv = ["compress", "lenet-300-100", "--fast", "--results", str(tmp_path / "results"),
            "--work", str(tmp_path / "work"), "--no-progress"]
    assert main(argv) == 0
    out = tmp_path / "results" / "lenet-300-100-fast" / "compress"
    assert {p.name for p in out.iterdir()} == {"summary.json", "table.txt", "bits.png",
                                               "tradeoff.png", "lenet-300-100.mpz"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["file_bytes"] == (out / "lenet-300-100.mpz").stat().st_size
    assert summary["compression"] == summary["dense_bytes"] / summary["file_bytes"]
    assert set(summary["bits"]) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    assert list(summary["stages"]) == ["dense", "pruning", "pruning + quantization",
                                       "pruning + quantization + Huffman"]
    assert "Compress rate (P+Q+H)" in (out / "table.txt").read_text()
    model = read_compressed(out / "lenet-300-100.mpz").model
    first = (out / "lenet-300-100.mpz").read_bytes()

    assert main(argv) == 0  # resumes: the same stages from their checkpoints, the same file
    assert (out / "lenet-300-100.mpz").read_bytes() == first
    again = read_compressed(out / "lenet-300-100.mpz").model
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value)


def test_compress_starts_from_a_pruned_checkpoint(tmp_path, monkeypatch):
    import minprune as mp
    from minprune.training.checkpoint import save_checkpoint

    data = tmp_path / "mnist"
    write_fake_mnist(data, n_train=6_000, n_test=2_000)
    monkeypatch.setenv("MINPRUNE_DATA", str(data))
    model = mp.models.lenet_300_100()
    mp.prune.keep_ratio_prune(model, mp.paper.PAPER_KEEP_RATIOS["lenet-300-100"])
    save_checkpoint(tmp_path / "pruned.npz", model.state_dict())
    assert main(["compress", "lenet-300-100", "--fast", "--checkpoint",
                 str(tmp_path / "pruned.npz"), "--results", str(tmp_path / "results"),
                 "--work", str(tmp_path / "work"), "--tolerance", "0.01", "--no-progress"]) == 0
    out = tmp_path / "results" / "lenet-300-100-fast" / "compress-tolerance-0.01"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["start"]["source"].startswith(f"checkpoint {tmp_path / 'pruned.npz'}")
    assert summary["tolerance"] == 0.01
    assert list(summary["tradeoff"]) == ["pruning + quantization"]  # no dense model to compare
    loaded = read_compressed(out / "lenet-300-100.mpz").model
    np.testing.assert_array_equal(loaded.fc1.weight_mask, model.fc1.weight_mask)


def test_an_unknown_model_is_refused(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["compress", "alexnet"])
    assert "invalid choice: 'alexnet'" in capsys.readouterr().err
