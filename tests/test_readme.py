"""The README's "Using it" example runs as printed, with one epoch per training phase."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _using_it_example() -> str:
    section = README.read_text().split("## Using it", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_example_has_at_most_two_import_lines():
    imports = [line for line in _using_it_example().splitlines()
               if line.startswith(("import ", "from "))]
    assert 1 <= len(imports) <= 2, imports


def test_the_example_runs(mnist_dir, monkeypatch, capsys):
    monkeypatch.setenv("MINPRUNE_DATA", str(mnist_dir))
    code = re.sub(r"epochs=\d+", "epochs=1", _using_it_example())
    assert code.count("epochs=1") == 2  # both phases were shortened
    exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"density \d+\.\d%, error \d+\.\d\d%", printed)
    assert "SparseNetwork(backend='cpu'" in printed
