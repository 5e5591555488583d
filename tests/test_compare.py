"""``minprune compare --fast`` on fake MNIST: every schedule runs, choices come from the
validation split, the test set is read only for the chosen points, and a second call resumes."""

import json

import pytest
from fake_mnist import write_fake_mnist

from minprune.compare import SCHEDULES, compare
from minprune.fingerprint import RunMismatchError


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
    assert {(r["schedule"], r["factor"]) for r in summary["runs"]} == {
        (s, f) for s in SCHEDULES for f in (1.0, 0.3)}
    for run in summary["runs"]:
        assert "test_error" not in run  # decided on validation only
        assert run["compression"] > 10
    assert set(summary["best"]) == set(SCHEDULES)
    written = json.loads((tmp_path / "results" / "lenet-300-100-fast" / "schedules" /
                          "summary.json").read_text())
    assert written["runs"] == summary["runs"]
    assert (tmp_path / "results" / "lenet-300-100-fast" / "schedules" / "compare.png").exists()

    again = []
    compare("lenet-300-100", log=again.append, **options)
    assert not any(" x1.0: " in m or " x0.3: " in m for m in again)  # every run reused


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


def test_compare_rejects_unknown_schedules(tmp_path):
    with pytest.raises(ValueError, match="unknown schedules"):
        compare("lenet-300-100", schedules=("magic",), results_dir=tmp_path)
