"""Kill ``minprune reproduce lenet-300-100 --fast`` with SIGKILL, resume, and get the same summary.

Each step of a chain starts a fresh process that resumes the run and is killed
(`minprune.base.faults`) at a chosen point: inside training, inside a checkpoint write (half-written
or written but not yet renamed), after an epoch's checkpoint, between stages. After every kill,
every file the run would read is checked (checksums, JSON); the last process runs to the end. Its
``summary.json`` must equal an uninterrupted run's, timings and the command line aside, with the
same thread settings.

The fast suite runs a short chain on fake MNIST; the slow suite (real MNIST) a chain of 25 kills.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fake_mnist import write_fake_mnist

from minprune.training.checkpoint import load_checkpoint

# One thread everywhere: the uninterrupted and the interrupted runs must sum in the same order.
THREADS = {"OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
TIMING_KEYS = {"seconds", "wall_seconds_this_run", "baseline_train_seconds", "retrain_seconds",
               "command"}

FAST_CHAIN = ["iteration:100", "partial-write:2", "file-write:2", "stage:3"]
SLOW_CHAIN = [
    "iteration:40", "iteration:150", "partial-write:1", "file-write:1", "epoch:1",
    "stage:1", "stage:2", "iteration:60", "partial-write:3", "file-write:2", "epoch:1",
    "stage:3", "iteration:94", "partial-write:4", "file-write:3", "stage:4", "epoch:2",
    "iteration:200", "partial-write:6", "file-write:4", "stage:5", "iteration:30",
    # Every resumed run passes these (the sparse export is written afresh each time):
    "stage:2", "partial-write:1", "file-write:1",
]


def _reproduce(data: Path, root: Path, kill_at: str | None, tradeoff: bool):
    env = {**os.environ, **THREADS, "MINPRUNE_DATA": str(data)}
    env.pop("MINPRUNE_KILL_AT", None)
    if kill_at:
        env["MINPRUNE_KILL_AT"] = kill_at
    command = [sys.executable, "-m", "minprune", "reproduce", "lenet-300-100", "--fast",
               "--no-progress", "--results", str(root / "results"), "--work", str(root / "work")]
    if not tradeoff:
        command.append("--no-tradeoff")
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _summary(root: Path) -> dict:
    path = root / "results" / "lenet-300-100-fast" / "summary.json"
    return _without_timings(json.loads(path.read_text()))


def _every_saved_file_is_whole(work: Path) -> int:
    """Every file a resume would read passes its checks; temporaries are never read. Returns how
    many files were checked."""
    checked = 0
    for path in sorted(work.rglob("*")):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue
        if path.suffix == ".npz" and path.name not in ("dense.npz",):
            if path.name == "pruned_sparse.npz":
                from minprune.sparse.export import load_sparse
                load_sparse(path)
            else:
                load_checkpoint(path)
            checked += 1
        elif path.suffix == ".json":
            json.loads(path.read_text())
            checked += 1
    return checked


def _kill_chain(data: Path, tmp_path: Path, chain: list[str], tradeoff: bool):
    reference = tmp_path / "uninterrupted"
    done = _reproduce(data, reference, None, tradeoff)
    assert done.returncode == 0, done.stderr[-2000:]

    interrupted = tmp_path / "interrupted"
    survived = []
    for kill_at in chain:
        result = _reproduce(data, interrupted, kill_at, tradeoff)
        assert result.returncode == -signal.SIGKILL, (
            f"{kill_at}: expected to be killed, got exit {result.returncode}: "
            f"{result.stderr[-2000:]}")
        _every_saved_file_is_whole(interrupted / "work")
        survived.append(kill_at)
    final = _reproduce(data, interrupted, None, tradeoff)
    assert final.returncode == 0, final.stderr[-2000:]
    assert not list((interrupted / "work").rglob("*.tmp")), "a killed write's temporary is left"
    assert _summary(interrupted) == _summary(reference)
    return survived


def test_killed_and_resumed_fast_run_equals_an_uninterrupted_one(tmp_path):
    data = tmp_path / "mnist"
    write_fake_mnist(data, n_train=6000, n_test=2000)
    survived = _kill_chain(data, tmp_path, FAST_CHAIN, tradeoff=False)
    assert len(survived) == len(FAST_CHAIN) >= 3


@pytest.mark.slow
def test_twenty_five_kills_on_real_mnist_lose_nothing(mnist_dir, tmp_path):
    survived = _kill_chain(mnist_dir, tmp_path, SLOW_CHAIN, tradeoff=True)
    assert len(survived) == len(SLOW_CHAIN) >= 20
