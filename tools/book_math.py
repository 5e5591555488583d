"""The book's math, rendered when the book is built: every ``$...$`` and ``$$...$$`` in the markdown
cells of the notebooks copied into ``docs/`` becomes MathML (latex2mathml), which browsers draw
natively -- no MathJax, no CDN, at build or at read time.

    python tools/book_math.py docs/chapters/*.ipynb docs/solutions/*.ipynb   # in place

Code spans and fenced code are left alone, and so is a ``$`` escaped as ``\\$``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from latex2mathml.converter import convert

CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)
BLOCK = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
INLINE = re.compile(r"(?<![\\$\w])\$(?=\S)((?:[^$\n]|\n(?!\n))+?)(?<=\S)\$(?![\w$])")


def render_math(markdown: str) -> str:
    """``markdown`` with its TeX replaced by MathML; code left as it is."""
    parts = CODE.split(markdown)
    for index in range(0, len(parts), 2):  # the even parts are outside code
        text = BLOCK.sub(lambda m: convert(m.group(1).strip(), display="block"), parts[index])
        parts[index] = INLINE.sub(lambda m: convert(" ".join(m.group(1).split())), text)
    return "".join(parts)


def render_notebook(path: Path) -> int:
    """Render the math of every markdown cell of the notebook at ``path`` in place; return how
    many cells changed."""
    notebook = nbformat.read(path, as_version=4)
    changed = 0
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            rendered = render_math(cell.source)
            changed += rendered != cell.source
            cell.source = rendered
    nbformat.write(notebook, path)
    return changed


def main(argv=None) -> int:
    paths = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    for path in paths:
        render_notebook(path)
    print(f"book math: {len(paths)} notebooks rendered to MathML")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
