"""``minprune compare --fast`` on fake MNIST: every schedule runs, choices come from the
validation split, the test set is read only for the chosen points, and a second call resumes."""

import json

import pytest
from fake_mnist import write_fake_mnist

from minprune.commands.compare import SCHEDULES, compare
from minprune.training.fingerprint import RunMismatchError


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    write_fake_mnist(folder, n_train=7000, n_test=2000)
    return folder


def test_compare_fast_runs_every_schedule_and_resumes(fake_mnist, tmp_path):
    messages = []
    options = dict(results_dir=tmp_path / "results", work_dir=tmp_path / "work", fast=True,
                   data_dir=fake_mnist)
    summary = compare("lenet-300-100", log=messages.append, **options)
    runs = summary["runs"]
    for schedule in SCHEDULES:  # the search at 30x, then the ladder with the setting it chose
        mine = [r for r in runs if r["schedule"] == schedule]
        searched = [r for r in mine if r["target_compression"] == 30]
        assert {r["allocation"] for r in searched} == {0.0, 0.5}
        setting = summary["settings"][schedule]
        assert setting == {k: min(searched, key=lambda r: r["validation_error"])[k]
                           for k in ("lr", "allocation")}
        ladder = [r for r in mine if r["allocation"] == setting["allocation"]]
        assert sorted(r["target_compression"] for r in ladder) == [12, 30]
        assert len(mine) == 3
        for run in mine:  # every schedule lands on the size asked for (surgery holds it)
            assert abs(run["compression"] / run["target_compression"] - 1) < 1e-3
            assert "test_error" not in run  # decided on validation only
        best = summary["best"][schedule]
        within = [r for r in ladder if r["validation_error"] <= summary["error_limit"] + 1e-12]
        assert (best is None) == (not within)
        if best is not None:
            assert best["compression"] == max(r["compression"] for r in within)
            assert 0.0 <= best["test_error"] <= 1.0
        assert summary["at_target"][schedule]["target_compression"] == 30
    assert summary["error_limit"] == summary["baseline_validation_error"] + 0.001
    written = json.loads((tmp_path / "results" / "lenet-300-100-fast" / "schedules" /
                          "summary.json").read_text())
    assert written["runs"] == summary["runs"]
    assert (tmp_path / "results" / "lenet-300-100-fast" / "schedules" / "compare.png").exists()

    again = []
    compare("lenet-300-100", log=again.append, **options)
    assert not any(" validation error " in m and "s)" in m for m in again)  # every run reused
    assert any("chosen" in m for m in again)


def test_compare_refuses_runs_saved_from_another_baseline(fake_mnist, tmp_path):
    options = dict(results_dir=tmp_path / "results", work_dir=tmp_path / "work", fast=True,
                   data_dir=fake_mnist, schedules=("one-shot",), log=lambda message: None)
    compare("lenet-300-100", **options)
    (tmp_path / "work" / "baseline.npz").unlink()  # a new baseline: other starting weights
    (tmp_path / "work" / "baseline.npz.prev").unlink(missing_ok=True)
    other = tmp_path / "other-mnist"
    write_fake_mnist(other, n_train=7000, n_test=2000, seed=1)
    with pytest.raises(RunMismatchError, match="runs.json was written by a different run"):
        compare("lenet-300-100", **{**options, "data_dir": other})


def test_another_budget_searches_again_from_the_same_baseline_into_its_own_folder(fake_mnist,
                                                                                   tmp_path):
    options = dict(results_dir=tmp_path / "results", work_dir=tmp_path / "work", fast=True,
                   data_dir=fake_mnist, schedules=("one-shot",), log=lambda message: None)
    two = compare("lenet-300-100", **options)
    three = compare("lenet-300-100", budget=3, **options)
    assert three["comparison"]["budget"] == 3 and two["comparison"]["budget"] == 2
    assert three["baseline_validation_error"] == two["baseline_validation_error"]
    assert len(three["runs"]) == 3  # searched again, at 3 epochs
    folder = tmp_path / "results" / "lenet-300-100-fast"
    assert json.loads((folder / "schedules-3-epochs" / "summary.json").read_text())[
        "comparison"]["budget"] == 3
    assert json.loads((folder / "schedules" / "summary.json").read_text())[
        "comparison"]["budget"] == 2
    with pytest.raises(ValueError, match="budget must be an int of at least 2 epochs"):
        compare("lenet-300-100", budget=1, **options)


def test_compare_rejects_unknown_schedules(tmp_path):
    with pytest.raises(ValueError, match="unknown schedules"):
        compare("lenet-300-100", schedules=("magic",), results_dir=tmp_path)
