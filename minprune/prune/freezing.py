"""Retrain one part of a network with the other part fixed (Sec. 3.3).

For deep networks the paper retrains the FC layers with the conv layers frozen, and vice versa,
against vanishing gradients. The LeNets retrain everything.
"""

from __future__ import annotations

import contextlib

from minprune.nn.layers import Conv2d, Linear

__all__ = ["frozen", "check_freeze", "FREEZE_CHOICES"]

FREEZE_CHOICES = (None, "conv", "fc")


def check_freeze(part) -> None:
    """ValueError unless ``part`` is one of :data:`FREEZE_CHOICES`."""
    if part not in FREEZE_CHOICES:
        raise ValueError(f"freeze must be one of {FREEZE_CHOICES}, got {part!r}")


@contextlib.contextmanager
def frozen(model, part: str | None):
    """Within the block, the ``part`` ("conv" or "fc") layers' parameters get no gradient;
    ``None`` freezes nothing."""
    check_freeze(part)
    kind = {"conv": Conv2d, "fc": Linear}.get(part)
    changed = []
    if kind is not None:
        for module in model.modules():
            if isinstance(module, kind):
                for parameter in module._parameters.values():
                    if parameter.requires_grad:
                        parameter.requires_grad = False
                        changed.append(parameter)
    try:
        yield
    finally:
        for parameter in changed:
            parameter.requires_grad = True
