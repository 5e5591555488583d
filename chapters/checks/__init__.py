"""The chapters' exercise checks, one module per chapter (``checks.ch02`` ...).

Each ``exercise_N`` function takes the student's answer (and what it needs from the chapter),
and raises ``NotImplementedError`` while the exercise cell is the untouched template, or
``AssertionError`` with a hint when the answer is wrong; ``tests/chapters`` feeds each check
plausible wrong answers and requires such a failure. The checks hold the reference answers, so
reading this folder is reading the solutions (``chapters/solutions/``).
"""

from __future__ import annotations

from pathlib import Path


def results_folder() -> Path:
    """The repository's ``results/`` (the committed records the chapters quote), found from the
    working directory upward, so that a chapter and its student copy in ``chapters/exercises/``
    both find it."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "results").is_dir() and (folder / "chapters").is_dir():
            return folder / "results"
    raise FileNotFoundError(f"no results/ folder beside a chapters/ folder above {here}")


def unanswered(value, exercise: str) -> None:
    """Raise the hint for an exercise cell left as its template (``None`` as the answer)."""
    if value is None:
        raise NotImplementedError(f"{exercise}: write your answer in the exercise cell above, "
                                  "run it, then run this check again")
