"""Every speed threshold minprune tunes by measurement, in one place, each with the command that
measured it.

These numbers choose between code paths that give the same results (up to float32 summation
order); they only change how fast. They were measured on this project's machine (x86_64, 2
cores, no GPU) and are worth re-measuring on another: run the named command and move the number
to where the two paths cross. Nothing else in minprune hard-codes a speed threshold.
"""

from __future__ import annotations

__all__: list[str] = []
