"""`make exercises`: solutions are stubbed, everything else is kept, outputs are cleared."""

import importlib.util
from pathlib import Path

import nbformat

TOOL = Path(__file__).resolve().parents[1] / "tools" / "make_exercises.py"
spec = importlib.util.spec_from_file_location("make_exercises", TOOL)
make_exercises = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_exercises)


def _notebook():
    solution = nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"]})
    solution.outputs = [nbformat.v4.new_output("stream", text="42")]
    solution.execution_count = 1
    check = nbformat.v4.new_code_cell("assert answer == 42, 'the answer is 42'")
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter"),
                                           solution, check])


def test_solutions_are_stubbed_and_outputs_cleared(tmp_path):
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(_notebook(), path)
    assert make_exercises.main([str(path), "--out", str(tmp_path / "exercises")]) == 0
    copy = nbformat.read(tmp_path / "exercises" / "01_demo.ipynb", as_version=4)
    markdown, solution, check = copy.cells
    assert markdown.source == "# A chapter" and check.source.startswith("assert answer == 42")
    assert "NotImplementedError" in solution.source and "42" not in solution.source
    assert all(cell.outputs == [] and cell.execution_count is None
               for cell in copy.cells if cell.cell_type == "code")
    original = nbformat.read(path, as_version=4)
    assert original.cells[1].source == "answer = 42"  # the chapter itself is untouched
