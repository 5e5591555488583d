"""Settings the package reads from the environment, documented in one place.

``MINPRUNE_FAST``: "1", "true" or "yes" (any case) runs ``minprune reproduce`` and the chapters in
a minutes-long fast mode (few epochs, a data subset; not the paper's numbers); unset, "" or "0"
runs the full recipes. Any other value is an error rather than a guess.
"""

from __future__ import annotations

import os

__all__ = ["fast_mode", "FAST_VARIABLE"]

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
