"""Kill points: where the fault-injection tests stop a run with SIGKILL, to prove nothing is lost.

``MINPRUNE_KILL_AT=NAME:N`` makes the process kill itself (SIGKILL, no clean-up, like a power cut
or ``kill -9``) the N-th time it passes ``kill_point(NAME)``. Unset, a kill point costs one
comparison. The named points:

- ``iteration``: after a training step, before the next batch;
- ``epoch``: after an epoch's checkpoint is written;

  (these two are not written into the training loop: `minprune.training.hooks.process_hooks`
  installs them as a hook of every ``fit`` when the variable asks for one of them)
- ``partial-write``: an .npz half-written to its temporary name (after one of its arrays);
- ``file-write``: a file written and synced to its temporary name, not yet renamed over the old;
- ``stage``: between two stages of ``minprune reproduce``.

``tests/reliability/test_fault_injection.py`` drives them; nothing else should set the variable.
"""

from __future__ import annotations

import os
import signal

__all__ = ["kill_point", "kill_requested", "KILL_VARIABLE", "KILL_POINTS"]

KILL_VARIABLE = "MINPRUNE_KILL_AT"
KILL_POINTS = ("iteration", "epoch", "partial-write", "file-write", "stage")


def _parse(value: str) -> tuple[str, int] | None:
    if not value:
        return None
    name, _, count = value.partition(":")
    if name not in KILL_POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"{KILL_VARIABLE}={value!r}: expected NAME:N with NAME one of {list(KILL_POINTS)} "
            "and N >= 1"
        )
    return name, int(count)


_target = _parse(os.environ.get(KILL_VARIABLE, ""))
_passed = dict.fromkeys(KILL_POINTS, 0)


def kill_requested(*names: str) -> bool:
    """Whether ``MINPRUNE_KILL_AT`` asks to be killed at one of the points ``names``."""
    return _target is not None and _target[0] in names


def kill_point(name: str) -> None:
    """Count a pass through the kill point ``name``; SIGKILL this process if it is the one asked
    for in ``MINPRUNE_KILL_AT``."""
    if _target is None or _target[0] != name:
        return
    _passed[name] += 1
    if _passed[name] == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
