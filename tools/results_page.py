"""Write the book's Results page, docs/results.md, from results/*.json and a hand-written template.

`make book` runs this before mkdocs. The template (docs/results_template.md) is the page's prose;
each number it quotes from a record is a placeholder that names the record, the key and the format:

    {{ lenet-300-100/summary.json : /paper_point/error_after : .2% }}   ->  1.54%
    {{ bench_lenet.json : /numba_threads=1,openblas_threads=1/lenet5/batch_1/speedup_median : .2f }}
                                                                        ->  2.10
    {{ lenet5/summary.json : /seconds/baseline : .0f }}                 ->  179
    {{ lenet-300-100/summary.json : /paper_point/parameters_after : 0.001*.1f }}  ->  22.2 (K)
    {{ bench_train.json : /-1/command }}                                ->  the string, as stored

The file is relative to results/; the key is a JSON pointer (RFC 6901) whose list indices may be
negative (-1: the last record); the format is Python's format spec, optionally after a factor
(`1000*.2f`: seconds printed as milliseconds). Numbers no record holds stay plain text in the
template. A placeholder that names a missing file or key is an error naming both, so the page
never prints a number its record does not hold (tests/test_results_page.py checks every one).

Usage: python tools/results_page.py [--results results] [--template T] [--out docs/results.md]
"""

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)


@dataclass(frozen=True)
class Quote:
    """One filled placeholder: which record and key, the factor, the format, what was printed."""

    file: str
    pointer: str
    factor: float
    spec: str
    printed: str


def lookup(record, pointer: str, where: str):
    """The value at a JSON pointer ("/a/0/b"; "-1" is a list's last item) in a loaded record."""
    if pointer and not pointer.startswith("/"):
        raise ValueError(f"{where}: pointer {pointer!r} should start with '/'")
    value = record
    for step in pointer.split("/")[1:] if pointer else []:
        key = step.replace("~1", "/").replace("~0", "~")
        if isinstance(value, list):
            try:
                value = value[int(key)]
            except (ValueError, IndexError):
                raise KeyError(f"{where}: no item {key!r} in a list of {len(value)}") from None
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            keys = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise KeyError(f"{where}: no key {key!r} at this level (found {keys})")
    return value


def fill(placeholder: str, results: Path, records: dict) -> Quote:
    """Resolve one `FILE : POINTER [: [FACTOR*]SPEC]` placeholder against results/'s records."""
    parts = [part.strip() for part in placeholder.split(" : ")]
    if len(parts) not in (2, 3):
        raise ValueError(f"placeholder {{{{{placeholder}}}}}: expected 'FILE : POINTER : SPEC' "
                         f"or 'FILE : POINTER', got {len(parts)} fields")
    file, pointer = parts[0], parts[1]
    if file not in records:
        path = results / file
        if not path.is_file():
            raise FileNotFoundError(f"placeholder {{{{{placeholder}}}}}: no record {path}")
        records[file] = json.loads(path.read_text())
    value = lookup(records[file], pointer, f"{file} {pointer}")
    if len(parts) == 2:
        if not isinstance(value, str):
            raise ValueError(f"{file} {pointer}: a number needs a format, got {value!r} bare")
        return Quote(file, pointer, 1.0, "", value)
    factor_text, _, spec = parts[2].rpartition("*")
    factor = float(factor_text) if factor_text else 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{file} {pointer}: expected a number for format {parts[2]!r}, "
                         f"got {value!r}")
    scaled = value * factor if factor_text else value  # an int stays an int for format 'd'
    return Quote(file, pointer, factor, spec, format(scaled, spec))


def render(template: str, results: Path) -> tuple[str, list[Quote]]:
    """The page: the template with every placeholder filled; and the quotes, in page order."""
    records: dict = {}
    quotes: list[Quote] = []

    def replace(match: re.Match) -> str:
        quotes.append(fill(match.group(1), results, records))
        return quotes[-1].printed

    page = PLACEHOLDER.sub(replace, template)
    return page, quotes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--template", type=Path, default=ROOT / "docs" / "results_template.md")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    args = parser.parse_args(argv)
    page, quotes = render(args.template.read_text(), args.results)
    note = ("<!-- Written by tools/results_page.py from docs/results_template.md and "
            "results/*.json; edit those, not this file. -->\n")
    args.out.write_text(note + page)
    print(f"{args.out}: {len(quotes)} numbers from {len({q.file for q in quotes})} records")


if __name__ == "__main__":
    main()
