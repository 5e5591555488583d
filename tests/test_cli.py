"""The command line: ``minprune train`` end to end on tiny data, errors, and real MNIST (slow)."""

import importlib.metadata
import json

import pytest
from fake_mnist import write_fake_mnist

import minprune.commands.reproduce as reproduce
from minprune.base.paper import RETRAIN_LR_FACTOR
from minprune.commands.cli import _policy_settings, build_parser, main
from minprune.training.checkpoint import load_checkpoint
from minprune.training.phase import Phase


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


def test_a_step_policy_without_its_gamma_and_step_size_names_the_flags(tmp_path, capsys):
    code = main(["train", "--model", "lenet-300-100", "--epochs", "1", "--out", str(tmp_path),
                 "--lr-policy", "step"])
    assert code == 2
    assert "--lr-policy step needs --gamma and --step-size" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.npz").exists()


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


def test_prune_and_sensitivity_commands(tiny_mnist, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "lenet-300-100", "--epochs", "1", "--out", str(run),
                 "--no-progress", "--batch-size", "32"]) == 0
    pruned = tmp_path / "pruned"
    assert main(["prune", "--model", "lenet-300-100", "--checkpoint", str(run / "checkpoint.npz"),
                 "--keep-ratio", "fc1.weight=0.1,*=0.5", "--rounds", "2", "--retrain-epochs",
                 "1", "--out", str(pruned), "--no-progress"]) == 0
    summary = json.loads((pruned / "summary.json").read_text())
    kept = {row["layer"]: row["weights_kept"] for row in summary["layer_table"]}
    assert kept["fc1"] == pytest.approx(0.1, abs=0.001)
    assert kept["fc2"] == pytest.approx(0.5, abs=0.001)
    assert "Weights%" in capsys.readouterr().out

    sens = tmp_path / "sens"
    assert main(["sensitivity", "--model", "lenet-300-100", "--checkpoint",
                 str(run / "checkpoint.npz"), "--keep-ratios", "1,0.1", "--out", str(sens)]) == 0
    rows = json.loads((sens / "sensitivity.json").read_text())["rows"]
    assert len(rows) == 6 and (sens / "sensitivity.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--quality", "0"], "quality for 'fc1.weight': quality must be a number > 0"),
        (["--quality", "fc9.weight=1,*=1"], "'fc9.weight' names no prunable layer"),
        (["--keep-ratio", "1.5"], "keep ratio must be in"),
    ],
)
def test_prune_rejects_bad_settings_before_touching_anything(tiny_mnist, tmp_path, capsys,
                                                            args, message):
    run = tmp_path / "run"
    assert main(["train", "--model", "lenet-300-100", "--epochs", "1", "--out", str(run),
                 "--no-progress", "--batch-size", "48"]) == 0
    before = (run / "checkpoint.npz").read_bytes()
    code = main(["prune", "--model", "lenet-300-100", "--checkpoint", str(run / "checkpoint.npz"),
                 "--out", str(tmp_path / "p"), *args])
    assert code == 2 and message in capsys.readouterr().err
    assert (run / "checkpoint.npz").read_bytes() == before
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_reproduce_fast_runs_every_stage_and_resumes(mnist_dir, tmp_path, monkeypatch):
    """The whole pipeline on a subset (--fast); a second run reuses every saved stage."""
    monkeypatch.setenv("MINPRUNE_DATA", str(mnist_dir))
    args = ["reproduce", "lenet-300-100", "--fast", "--no-progress",
            "--results", str(tmp_path / "results"), "--work", str(tmp_path / "work")]
    assert main(args) == 0
    out = tmp_path / "results" / "lenet-300-100-fast"
    summary = json.loads((out / "summary.json").read_text())
    for figure in ("sensitivity", "histogram", "fc1_mask", "compression", "tradeoff"):
        assert (out / f"{figure}.png").stat().st_size > 1000, figure
    assert summary["paper_point"]["compression"] == pytest.approx(12, rel=0.05)
    assert len(summary["tradeoff"]["curves"]) == 5
    first = summary["paper_point"]
    assert main(args) == 0  # everything is reused: same numbers, far less time
    again = json.loads((out / "summary.json").read_text())
    assert again["paper_point"] == first
    assert again["seconds"]["paper"] < summary["seconds"]["paper"]


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"minprune {importlib.metadata.version('minprune')}"


def test_training_defaults_are_phases():
    train = build_parser().parse_args(["train", "--model", "lenet5", "--epochs", "1", "--out",
                                       "x"])
    _policy_settings(train)  # --gamma and --step-size: Caffe's inv defaults unless step needs them
    defaults = Phase()
    for option in ("lr", "momentum", "weight_decay", "l1", "lr_policy", "gamma", "power",
                   "step_size", "batch_size"):
        assert getattr(train, option) == getattr(defaults, option), option
    prune = build_parser().parse_args(["prune", "--model", "lenet5", "--checkpoint", "c",
                                       "--out", "x", "--quality", "1"])
    assert prune.retrain_lr == defaults.lr * RETRAIN_LR_FACTOR == 0.001


def test_reproduce_takes_the_fast_mode_from_the_flag_or_the_environment(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(reproduce, "reproduce", lambda name, **options: seen.append(options))
    for argv in (["reproduce", "lenet5"], ["reproduce", "lenet5", "--fast"]):
        args = build_parser().parse_args(argv)
        args.argv = argv
        reproduce.main_command(args)
    assert [options["fast"] for options in seen] == [None, True]  # None: MINPRUNE_FAST decides
    monkeypatch.undo()
    monkeypatch.setenv("MINPRUNE_FAST", "maybe")
    with pytest.raises(ValueError, match="MINPRUNE_FAST='maybe'"):
        reproduce.reproduce("lenet5", results_dir=tmp_path)


def test_reproduce_on_cuda_without_cupy_says_what_is_missing(tmp_path, capsys):
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("CuPy is installed here")
    assert main(["reproduce", "lenet5", "--fast", "--device", "cuda", "--results",
                 str(tmp_path)]) == 2
    assert "needs CuPy: pip install 'minprune[cuda]'" in capsys.readouterr().err


def test_compare_passes_budget_and_schedules_through(monkeypatch):
    import minprune.commands.compare as compare_module

    seen = {}
    monkeypatch.setattr(compare_module, "compare",
                        lambda name, **options: seen.update(name=name, **options))
    assert main(["compare", "lenet5", "--budget", "12", "--schedules", "gradual,surgery",
                 "--fast"]) == 0
    assert seen["name"] == "lenet5" and seen["budget"] == 12 and seen["fast"] is True
    assert seen["schedules"] == ("gradual", "surgery")
    assert seen["command"] == ("minprune compare lenet5 --budget 12 --schedules gradual,surgery "
                               "--fast")
    assert build_parser().parse_args(["compare", "lenet-300-100"]).budget is None
