"""What `fit` calls besides its own loop: hooks, and the kill points installed through them.

A hook is an object with these methods (`FitHook` does nothing in each; override what you need):

- ``after_step(iteration, model)``: after every step, ``iteration`` counting steps from 1;
- ``end_epoch(record)``: an epoch's training is done; it may add entries to the epoch's record
  (before the test error is measured);
- ``after_checkpoint(path)``: the epoch's checkpoint has been written;
- ``state()`` and ``load_state(meta)``: what the hook must save for a resumed run to be
  bit-identical (a dict stored in the checkpoint's meta), and reading it back.

Kill points (`minprune.base.faults`) are hooks too: when ``MINPRUNE_KILL_AT`` names one of
training's points, :func:`process_hooks` gives every `fit` of the process the hook that passes
them. The variable belongs to the whole process, so that is where the hook's lifetime ends; no
list of hooks is kept anywhere.
"""

from __future__ import annotations

from minprune.base import faults

__all__ = ["FitHook", "OnStep", "KillPoints", "process_hooks"]


class FitHook:
    """A hook that does nothing; subclass it and override the methods you need."""

    def after_step(self, iteration: int, model) -> None:
        pass

    def end_epoch(self, record: dict) -> None:
        pass

    def after_checkpoint(self, path) -> None:
        pass

    def state(self) -> dict:
        return {}

    def load_state(self, meta: dict) -> None:
        pass


class OnStep(FitHook):
    """`fit`'s ``on_step(iteration, model)`` function as a hook."""

    def __init__(self, on_step):
        self.on_step = on_step

    def after_step(self, iteration: int, model) -> None:
        self.on_step(iteration, model)


class KillPoints(FitHook):
    """Training's kill points: ``iteration`` after every step, ``epoch`` after every checkpoint."""

    def after_step(self, iteration: int, model) -> None:
        faults.kill_point("iteration")

    def after_checkpoint(self, path) -> None:
        faults.kill_point("epoch")


def process_hooks() -> list:
    """The hooks every `fit` of this process runs: the kill points when ``MINPRUNE_KILL_AT``
    asks for one of training's (`minprune.base.faults.kill_requested`), else none."""
    return [KillPoints()] if faults.kill_requested("iteration", "epoch") else []
