"""The chapters, their solutions and their student copies: run, re-execute and copy them.

A chapter (``chapters/NN_name.ipynb``) holds no answers. Each exercise is three cells:

* the prompt (markdown, ``### Exercise N: title``);
* the **exercise** cell (tag ``exercise``): the template a student fills in; it defines the names
  the check needs (a function that raises ``NotImplementedError``, or ``None``), so that an
  untouched template fails its check with a hint, never with a ``NameError``;
* the **check** cell (tag ``check``): calls ``checks.chNN.exercise_N(...)``, which raises
  ``AssertionError`` or ``NotImplementedError`` with what to do.

The answers live in ``chapters/solutions/NN_name.ipynb``: one code cell tagged ``solution`` per
exercise, in order, after the same ``### Exercise N`` heading. The *solved* chapter is the
chapter with each solution inserted after its exercise cell: it is what CI executes and what
``execute`` runs to refresh the chapter's stored outputs (the outputs of exercise and check cells
are not stored, so the chapter never shows an answer or its verdict). No cell after an exercise
may use its answer: a student's copy runs every other cell whatever they wrote.

    python tools/chapters.py execute chapters/02_magnitude_threshold.ipynb   # refresh outputs
    python tools/chapters.py exercises        # student copies -> chapters/exercises/ (+ checks/)
    python tools/chapters.py validate         # the structure above, for every chapter
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
SOLUTIONS = CHAPTERS / "solutions"
HEADING = re.compile(r"^#{2,4} Exercise (\d+)\b", re.MULTILINE)


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def solutions_path(chapter: Path) -> Path:
    return chapter.parent / "solutions" / chapter.name


def _heading_before(cells, index: int) -> str | None:
    """The ``Exercise N`` number of the last exercise heading above cell ``index``."""
    for cell in reversed(cells[:index]):
        if cell.cell_type == "markdown":
            found = HEADING.findall(cell.source)
            if found:
                return found[-1]
    return None


def problems(chapter: Path) -> list[str]:
    """What is wrong with the chapter's exercise structure (empty when it is sound)."""
    notebook = nbformat.read(chapter, as_version=4)
    cells = notebook.cells
    found = []
    exercises = [i for i, cell in enumerate(cells) if "exercise" in tags(cell)]
    checks = [i for i, cell in enumerate(cells) if "check" in tags(cell)]
    if any("solution" in tags(cell) for cell in cells):
        found.append(f"{chapter.name}: a cell tagged 'solution' (answers belong in solutions/)")
    for index in exercises:
        later_checks = [i for i in checks if i > index]
        number = _heading_before(cells, index)
        if number is None:
            found.append(f"{chapter.name} cell {index}: an exercise cell with no "
                         "'### Exercise N' heading above it")
        if not later_checks or _heading_before(cells, later_checks[0]) != number:
            found.append(f"{chapter.name} cell {index}: exercise {number} has no check cell "
                         "after it")
    if exercises:
        solutions_file = solutions_path(chapter)
        if not solutions_file.exists():
            return found + [f"{chapter.name}: no solutions notebook {solutions_file}"]
        solved = nbformat.read(solutions_file, as_version=4).cells
        answers = [i for i, cell in enumerate(solved) if "solution" in tags(cell)]
        ours = [_heading_before(cells, i) for i in exercises]
        theirs = [_heading_before(solved, i) for i in answers]
        if ours != theirs:
            found.append(f"{chapter.name}: exercises {ours} but solutions for {theirs} in "
                         f"{solutions_file.relative_to(ROOT)}")
    return found


def solved(chapter: Path):
    """The chapter with each solution cell inserted after its exercise cell."""
    notebook = nbformat.read(chapter, as_version=4)
    solutions_file = solutions_path(chapter)
    answers = []
    if solutions_file.exists():
        answers = [cell for cell in nbformat.read(solutions_file, as_version=4).cells
                   if "solution" in tags(cell)]
    cells, pending = [], list(answers)
    for cell in notebook.cells:
        cells.append(cell)
        if "exercise" in tags(cell):
            if not pending:
                raise ValueError(f"{chapter.name}: more exercise cells than solutions in "
                                 f"{solutions_file}")
            cells.append(copy.deepcopy(pending.pop(0)))
    if pending:
        raise ValueError(f"{chapter.name}: {len(pending)} solution(s) with no exercise cell")
    notebook.cells = cells
    return notebook


def student_copy(chapter: Path):
    """The chapter as a student starts it: no answers (there are none in it), no outputs."""
    notebook = nbformat.read(chapter, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def execute(notebook, timeout: int = 1800, allow_errors: bool = False):
    """Run ``notebook`` in a fresh kernel with the chapters folder as its working directory
    (where the chapters find ``checks`` and ``../results``); return it with its outputs."""
    from nbclient import NotebookClient

    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            allow_errors=allow_errors,
                            resources={"metadata": {"path": str(CHAPTERS)}})
    client.execute()
    return notebook


def store_outputs(chapter: Path, run) -> None:
    """Write the outputs of a solved run into the chapter, cell by cell; exercise and check
    cells keep none (their outputs would show the answer's verdict)."""
    notebook = nbformat.read(chapter, as_version=4)
    ran = [cell for cell in run.cells if "solution" not in tags(cell)]
    assert len(ran) == len(notebook.cells), "the solved run and the chapter differ in cells"
    for cell, result in zip(notebook.cells, ran, strict=True):
        if cell.cell_type != "code":
            continue
        if "exercise" in tags(cell) or "check" in tags(cell):
            cell.outputs, cell.execution_count = [], None
        else:
            cell.outputs, cell.execution_count = result.outputs, result.execution_count
            cell.metadata.pop("execution", None)
    nbformat.write(notebook, chapter)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute", help="run solved chapters, store their outputs")
    run.add_argument("chapters", nargs="+", type=Path)
    copies = commands.add_parser("exercises", help="write student copies")
    copies.add_argument("chapters", nargs="*", type=Path)
    copies.add_argument("--out", type=Path, default=CHAPTERS / "exercises")
    check = commands.add_parser("validate", help="check every chapter's exercise structure")
    check.add_argument("chapters", nargs="*", type=Path)
    args = parser.parse_args(argv)
    chapters = [path.resolve() for path in args.chapters] or sorted(CHAPTERS.glob("*.ipynb"))

    if args.command == "validate":
        found = [problem for chapter in chapters for problem in problems(chapter)]
        print("\n".join(found) or f"{len(chapters)} chapters: exercise structure sound")
        return 1 if found else 0
    if args.command == "exercises":
        args.out.mkdir(parents=True, exist_ok=True)
        for chapter in chapters:
            nbformat.write(student_copy(chapter), args.out / chapter.name)
            count = sum("exercise" in tags(c) for c in nbformat.read(chapter, 4).cells)
            print(f"{args.out / chapter.name}: {count} exercise(s)")
        shutil.copytree(CHAPTERS / "checks", args.out / "checks", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        return 0
    for chapter in chapters:
        found = problems(chapter)
        if found:
            print("\n".join(found), file=sys.stderr)
            return 1
        started = time.perf_counter()
        store_outputs(chapter, execute(solved(chapter)))
        print(f"{chapter.relative_to(ROOT)}: executed in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
