"""The README's examples run as printed: "Using it" with one epoch per training phase, "Your own
model and data" whole (it takes seconds)."""

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


def _section(title: str) -> str:
    return README.read_text().split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_each_step_line_names_files_that_exist():
    steps = [line for line in _section("What is where").splitlines() if line.startswith("- [step]")]
    assert len(steps) == 5, steps
    for line in steps:
        paths = re.findall(r"`(minprune/[\w/]+\.py)`", line)
        assert paths, line
        for path in paths:
            assert (README.parent / path).is_file(), f"README names {path}, which does not exist"


def test_the_folder_tree_lists_every_folder_of_the_package():
    tree = re.search(r"```\nminprune/\n(.*?)```", _section("What is where"), re.S).group(1)
    listed = {line.split()[0].rstrip("/") for line in tree.splitlines() if line[2:3] != " "}
    package = README.parent / "minprune"
    folders = {str(path.parent.relative_to(package)) for path in package.rglob("*.py")}
    folders -= {".", "autograd/ops"}  # the root holds __init__ and __main__; ops/ is autograd's
    assert listed == folders
    for folder in listed:
        assert (package / folder).is_dir(), folder


def test_your_own_model_and_data_runs_as_printed(tmp_path, monkeypatch, capsys):
    section = README.read_text().split("## Your own model and data", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)  # it writes my_model.npz
    exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "my_model.npz").exists()
    density, error = re.search(r"density (\d+\.\d)%, error (\d+\.\d\d)%",
                               capsys.readouterr().out).groups()
    assert float(density) == 10.0 and float(error) < 30.0  # learnt, at a tenth of the weights
