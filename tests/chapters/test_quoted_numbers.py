"""A number the prose quotes comes from the chapter's own outputs: every percentage written with
decimals in a markdown cell (``1.57%``, ``0.82x`` is not checked) appears in some stored output of
the same chapter, so prose cannot drift from the run that the chapter shows."""

import re
from pathlib import Path

import nbformat
import pytest

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
CHAPTER_FILES = sorted(CHAPTERS.glob("*.ipynb"))
QUOTED = re.compile(r"(?<![\w.])(\d+\.\d+)\s?%")


def _outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                parts.append(output["text"])
            for kind in ("text/plain", "text/markdown", "text/html"):
                if kind in output.get("data", {}):
                    parts.append(output["data"][kind])
    return re.sub(r"\s+%", "%", "".join(parts))


@pytest.mark.parametrize("chapter", CHAPTER_FILES, ids=lambda path: path.stem)
def test_every_quoted_percentage_appears_in_an_output(chapter):
    notebook = nbformat.read(chapter, as_version=4)
    shown = _outputs_text(notebook)
    missing = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            missing += [f"cell {index}: {number}%" for number in QUOTED.findall(cell.source)
                        if f"{number}%" not in shown]
    assert missing == [], f"{chapter.name}: quoted but in no output: {missing}"
