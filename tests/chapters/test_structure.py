"""Every chapter's exercises follow tools/chapters.py's structure: no answer in the chapter, a
template and a check per exercise, the solutions beside it in chapters/solutions/."""

from pathlib import Path

import nbformat
import pytest

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
CHAPTER_FILES = sorted(CHAPTERS.glob("*.ipynb"))


@pytest.mark.parametrize("chapter", CHAPTER_FILES, ids=lambda path: path.stem)
def test_exercise_structure_is_sound(tool, chapter):
    assert tool.problems(chapter) == []


@pytest.mark.parametrize("chapter", CHAPTER_FILES, ids=lambda path: path.stem)
def test_exercise_and_check_cells_store_no_output(chapter):
    """A stored output under a check would show the answer's verdict (or the answer)."""
    notebook = nbformat.read(chapter, as_version=4)
    shown = [index for index, cell in enumerate(notebook.cells)
             if {"exercise", "check"} & set(cell.metadata.get("tags", [])) and cell.get("outputs")]
    assert shown == []


def test_solved_chapter_puts_each_answer_after_its_exercise(tool, tmp_path):
    chapter = tmp_path / "01_demo.ipynb"
    (tmp_path / "solutions").mkdir()
    heading = nbformat.v4.new_markdown_cell("### Exercise 1: the answer")
    template = nbformat.v4.new_code_cell("answer = None", metadata={"tags": ["exercise"]})
    check = nbformat.v4.new_code_cell("check(answer)", metadata={"tags": ["check"]})
    nbformat.write(nbformat.v4.new_notebook(cells=[heading, template, check]), chapter)
    answer = nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"]})
    nbformat.write(nbformat.v4.new_notebook(cells=[heading, answer]),
                   tmp_path / "solutions" / chapter.name)
    assert tool.problems(chapter) == []
    sources = [cell.source for cell in tool.solved(chapter).cells]
    assert sources == [heading.source, "answer = None", "answer = 42", "check(answer)"]
    assert all(cell.outputs == [] for cell in tool.student_copy(chapter).cells
               if cell.cell_type == "code")


def test_an_answer_left_in_a_chapter_is_a_problem(tool, tmp_path):
    chapter = tmp_path / "01_demo.ipynb"
    cells = [nbformat.v4.new_markdown_cell("### Exercise 1: x"),
             nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"]})]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), chapter)
    assert any("solution" in problem for problem in tool.problems(chapter))


def test_the_student_copies_are_written_with_the_checks_beside_them(tool, tmp_path):
    assert tool.main(["exercises", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "checks" / "__init__.py").exists()
    for chapter in CHAPTER_FILES:
        copy = nbformat.read(tmp_path / chapter.name, as_version=4)
        assert all(cell.outputs == [] for cell in copy.cells if cell.cell_type == "code")
