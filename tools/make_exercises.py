"""Write student copies of the chapter notebooks: every code cell tagged ``solution`` is replaced
by a stub that raises ``NotImplementedError``, and all outputs are cleared, so the check cell after
each exercise fails until the student's answer is right.

    python tools/make_exercises.py                   # chapters/*.ipynb -> chapters/exercises/
    python tools/make_exercises.py NOTEBOOK... --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
STUB = (
    "# Exercise: write your answer here, then run the check cell below.\n"
    'raise NotImplementedError("exercise: replace this cell with your answer")\n'
)


def student_copy(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """(a copy of ``notebook`` with solutions stubbed and outputs cleared, solutions removed)."""
    copy = nbformat.from_dict(notebook)
    removed = 0
    for cell in copy.cells:
        if cell.cell_type != "code":
            continue
        if "solution" in cell.get("metadata", {}).get("tags", []):
            cell.source = STUB
            removed += 1
        cell.outputs = []
        cell.execution_count = None
    return copy, removed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((ROOT / "chapters").glob("*.ipynb")))
    parser.add_argument("--out", type=Path, default=ROOT / "chapters" / "exercises")
    args = parser.parse_args(argv)
    if not args.notebooks:
        print("no chapter notebooks to copy")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.notebooks:
        copy, removed = student_copy(nbformat.read(path, as_version=4))
        nbformat.write(copy, args.out / path.name)
        print(f"{args.out / path.name}: {removed} exercise(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
