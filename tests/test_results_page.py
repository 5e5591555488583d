"""The book's Results page (tools/results_page.py): it renders from the committed results/, and
every number it prints is a rounding of the value at the key it names in the record it names."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
TEMPLATE = ROOT / "docs" / "results_template.md"
TOOL = ROOT / "tools" / "results_page.py"
spec = importlib.util.spec_from_file_location("results_page", TOOL)
results_page = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_page)


def _value_at(file: str, pointer: str):
    """Read the record afresh and walk the JSON pointer, independently of the tool's lookup."""
    value = json.loads((RESULTS / file).read_text())
    for step in pointer.split("/")[1:]:
        value = value[int(step)] if isinstance(value, list) else value[step]
    return value


def _printed_number(text: str) -> tuple[float, float]:
    """The number a formatted text shows, and half a unit of its last printed digit."""
    match = re.fullmatch(r"(-?[\d,]+)(?:\.(\d+))?(%?)", text)
    assert match, f"not a formatted number: {text!r}"
    whole, decimals, percent = match.groups()
    number = float(whole.replace(",", "") + ("." + decimals if decimals else ""))
    half_unit = 0.5 * 10.0 ** -len(decimals or "")
    scale = 0.01 if percent else 1.0
    return number * scale, half_unit * scale


@pytest.fixture(scope="module")
def rendered():
    return results_page.render(TEMPLATE.read_text(), RESULTS)


def test_the_page_renders_from_the_committed_records(rendered):
    page, quotes = rendered
    assert "{{" not in page and "}}" not in page
    assert page.lstrip().startswith("<!--") and "\n# Results\n" in page
    assert len(quotes) > 100, len(quotes)
    assert {quote.file for quote in quotes} >= {
        "lenet-300-100/summary.json", "lenet5/summary.json", "bench_lenet.json"}


def test_each_number_printed_is_in_the_record_it_names(rendered):
    page, quotes = rendered
    for quote in quotes:
        value = _value_at(quote.file, quote.pointer)
        where = f"{quote.file} {quote.pointer}: printed {quote.printed!r}, record holds {value!r}"
        assert quote.printed in page, where
        if quote.spec == "":
            assert quote.printed == value, where
            continue
        shown, half_unit = _printed_number(quote.printed)
        assert abs(shown - value * quote.factor) <= half_unit * (1 + 1e-9), where


def test_the_headline_numbers_come_from_their_records(rendered):
    page, _ = rendered
    assert "**12.0x fewer parameters (22.2K) at 1.54% test error**" in page
    assert "**12.0x fewer parameters (35.9K) at 0.80% test error**" in page
    assert "| LeNet-300-100 | **1.44%** | 1.64% | 40 |" in page
    assert "**not met**" in page and "is not met" in page  # the honest statements stay


def test_the_committed_page_is_what_the_records_give(tmp_path):
    out = tmp_path / "results.md"
    results_page.main(["--out", str(out)])
    committed = ROOT / "docs" / "results.md"
    assert committed.read_text() == out.read_text(), (
        "docs/results.md is stale: run `python tools/results_page.py` and commit it")


def test_the_tool_writes_the_page(tmp_path, capsys):
    out = tmp_path / "results.md"
    results_page.main(["--out", str(out)])
    assert out.read_text().count("# Results") >= 1
    assert "numbers from" in capsys.readouterr().out


def test_a_missing_key_names_the_record_and_the_key():
    with pytest.raises(KeyError, match=r"lenet5/summary.json /paper_point/no_such_key"):
        results_page.render("{{ lenet5/summary.json : /paper_point/no_such_key : .2% }}", RESULTS)
    with pytest.raises(FileNotFoundError, match="no_such.json"):
        results_page.render("{{ no_such.json : /x : .2% }}", RESULTS)
    with pytest.raises(ValueError, match="expected a number"):
        results_page.render("{{ lenet5/summary.json : /command : .2% }}", RESULTS)
    with pytest.raises(ValueError, match="3 fields|FILE : POINTER"):
        results_page.render("{{ lenet5/summary.json }}", RESULTS)
