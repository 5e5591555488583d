"""The chapters run top to bottom in fast mode (``make test-notebooks``): solved, every check
passes; as a student's copy, every other cell still runs and every check fails with its hint."""

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.chapters
CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
CHAPTER_FILES = sorted(CHAPTERS.glob("*.ipynb"))


@pytest.fixture(autouse=True)
def fast_mode(monkeypatch):
    monkeypatch.setenv("MINPRUNE_FAST", os.environ.get("MINPRUNE_FAST", "1"))


@pytest.mark.parametrize("chapter", CHAPTER_FILES, ids=lambda path: path.stem)
def test_solved_chapter_runs_and_every_check_passes(tool, chapter):
    tool.execute(tool.solved(chapter))  # raises CellExecutionError at the first failing cell


def _error(cell):
    return next((output for output in cell.get("outputs", [])
                 if output.output_type == "error"), None)


@pytest.mark.parametrize("chapter", CHAPTER_FILES, ids=lambda path: path.stem)
def test_student_copy_fails_only_its_checks_and_each_with_a_hint(tool, chapter):
    run = tool.execute(tool.student_copy(chapter), allow_errors=True)
    for index, cell in enumerate(run.cells):
        if cell.cell_type != "code":
            continue
        error = _error(cell)
        where = f"{chapter.name} cell {index}"
        if "check" in cell.metadata.get("tags", []):
            assert error is not None, f"{where}: the check passes on the untouched template"
            assert error.ename in ("AssertionError", "NotImplementedError"), (
                f"{where}: the check fails with {error.ename}: {error.evalue}, not with a hint")
            assert len(error.evalue) >= 20, f"{where}: the hint is too short: {error.evalue!r}"
        else:
            assert error is None, (f"{where} fails in the student's copy with "
                                   f"{error.ename}: {error.evalue}")

