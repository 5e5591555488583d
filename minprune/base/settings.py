"""Settings the package reads from the environment, documented in one place.

``MINPRUNE_FAST``: "1", "true" or "yes" (any case) runs ``minprune reproduce`` and the chapters in
a minutes-long fast mode (few epochs, a data subset; not the paper's numbers); unset, "" or "0"
runs the full recipes. Any other value is an error rather than a guess.

``MINPRUNE_BACKEND``: "fast" (default: the Numba kernels on the CPU) or "plain" (every op, the
optimiser's update and the sparse engine written as a few lines of NumPy: the code a reader
reads). Both give the same results to float32 tolerance (``make test-plain`` runs the whole fast
suite under "plain"). `set_backend` and `use_backend` choose in code.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

__all__ = ["fast_mode", "FAST_VARIABLE", "BACKENDS", "BACKEND_VARIABLE", "backend",
           "set_backend", "use_backend"]

FAST_VARIABLE = "MINPRUNE_FAST"
_ON = ("1", "true", "yes")
_OFF = ("", "0")


def fast_mode() -> bool:
    """Whether ``MINPRUNE_FAST`` asks for the fast mode (see the module docstring)."""
    value = os.environ.get(FAST_VARIABLE, "")
    if value.strip().lower() in _ON:
        return True
    if value.strip() in _OFF:
        return False
    raise ValueError(
        f"{FAST_VARIABLE}={value!r}: expected one of {list(_ON)} (fast mode) or unset, '' or '0'"
    )


BACKEND_VARIABLE = "MINPRUNE_BACKEND"
BACKENDS = ("fast", "plain")


def _checked_backend(name, where: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{where}: backend must be one of {list(BACKENDS)}, got {name!r}")
    return name


_chosen = [_checked_backend(os.environ.get(BACKEND_VARIABLE, "") or "fast", BACKEND_VARIABLE)]


def backend() -> str:
    """The backend the ops run on now: "fast" (Numba) or "plain" (NumPy)."""
    return _chosen[0]


def set_backend(name: str) -> None:
    """Run every op from now on with backend ``name`` ("fast" or "plain")."""
    _chosen[0] = _checked_backend(name, "set_backend")


@contextmanager
def use_backend(name: str):
    """Run the block with backend ``name``, then go back to the one before."""
    before = backend()
    set_backend(name)
    try:
        yield
    finally:
        _chosen[0] = before
