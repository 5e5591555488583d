"""The command line: ``minprune train`` end to end on tiny data, errors, and real MNIST (slow)."""

import json

import pytest
from fake_mnist import write_fake_mnist

from minprune.checkpoint import load_checkpoint
from minprune.cli import main


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    write_fake_mnist(folder, n_train=96, n_test=40)
    monkeypatch.setenv("MINPRUNE_DATA", str(folder))
    return folder


def test_train_writes_checkpoint_and_summary_then_resumes(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "lenet-300-100", "--out", str(out), "--no-progress",
            "--batch-size", "32"]
    assert main(args + ["--epochs", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["iterations"] == 3
    assert 0.0 <= summary["test_error"] <= 1.0
    assert summary["command"].startswith("minprune train --model lenet-300-100")
    assert "test error" in capsys.readouterr().out

    assert main(args + ["--epochs", "2"]) == 0  # resumes from epoch 1
    assert "resumed from" in capsys.readouterr().out
    _, _, meta = load_checkpoint(out / "checkpoint.npz")
    assert meta["epoch"] == 2 and meta["iteration"] == 6


def test_train_refuses_to_resume_a_different_configuration(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--out", str(out), "--epochs", "1", "--no-progress", "--batch-size", "48"]
    assert main(base + ["--model", "lenet-300-100"]) == 0
    assert main(base + ["--model", "lenet-300-100", "--lr", "0.1"]) == 2
    assert "different configuration" in capsys.readouterr().err


def test_missing_data_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINPRUNE_DATA", str(tmp_path / "nowhere"))
    code = main(["train", "--model", "lenet5", "--epochs", "1", "--out", str(tmp_path / "r")])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


@pytest.mark.slow
def test_lenet_300_100_learns_real_mnist(mnist_dir, tmp_path, monkeypatch):
    """One epoch on real MNIST already gets under 8% test error (a trained net: under 2%)."""
    monkeypatch.setenv("MINPRUNE_DATA", str(mnist_dir))
    out = tmp_path / "real"
    assert main(["train", "--model", "lenet-300-100", "--epochs", "1", "--out", str(out),
                 "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_error"] < 0.08
