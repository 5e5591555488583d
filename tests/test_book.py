"""The built book in a real browser (``make test-book``, after ``make book``): on every chapter
and solutions page, headless Chromium finds no raw TeX left, every image loaded, no code block
cut at the column's edge -- and on a chapter page, no line of that chapter's solutions.

Needs Debian's ``chromium`` (``.ci/run`` installs it when missing) and the built ``site/``; skips
with the reason otherwise. The network is closed to the browser, so anything the book would
fetch from a CDN fails here."""

import functools
import html
import json
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.book
ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

# Runs in each page once everything has loaded; writes what it found into the DOM as JSON.
PROBE = """<script>
window.addEventListener("load", () => {
  const tex = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("pre, code, script, style, math, textarea")) continue;
    const text = node.textContent;
    if (/\\$[^$\\s][^$]*\\$|\\\\(frac|sqrt|sum|mathrm|text|cdot|times|le|ge|approx)\\b/.test(text))
      tex.push(text.trim().slice(0, 100));
  }
  const images = [...document.images].map(
      image => ({src: image.src.slice(0, 80), loaded: image.complete && image.naturalWidth > 0}));
  const cut = [...document.querySelectorAll("pre")].filter(pre => {
    const overflow = getComputedStyle(pre).overflowX;
    return pre.scrollWidth > pre.clientWidth + 1 && !["auto", "scroll"].includes(overflow);
  }).map(pre => pre.textContent.slice(0, 80));
  const report = document.createElement("pre");
  report.id = "book-probe";
  const math = document.querySelectorAll("math").length;
  report.textContent = JSON.stringify({tex, images, cut, math, text: document.body.innerText});
  document.body.appendChild(report);
});
</script>"""


class _Handler(SimpleHTTPRequestHandler):
    """Serves site/, with the probe added to every HTML page."""

    def do_GET(self):  # noqa: N802 (the http.server name)
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix != ".html" or not path.exists():
            return super().do_GET()
        body = path.read_text().replace("</body>", PROBE + "</body>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    if BROWSER is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium)")
    if not (SITE / "index.html").exists():
        pytest.skip("the book is not built: run `make book` first")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=SITE))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@functools.cache
def _probe(server: str, page: str) -> dict:
    run = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         "--window-size=1280,30000", "--virtual-time-budget=20000",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", f"{server}/{page}/"],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="book-probe">(.*?)</pre>', run.stdout, re.DOTALL)
    assert found, f"{page}: the page did not finish loading in Chromium\n{run.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def _chapters() -> list[Path]:
    return sorted((ROOT / "chapters").glob("*.ipynb"))


def _tex_in(notebook_path: Path) -> bool:
    notebook = nbformat.read(notebook_path, as_version=4)
    return any("$" in cell.source for cell in notebook.cells if cell.cell_type == "markdown")


PAGES = [(f"chapters/{path.stem}", path) for path in _chapters()] + [
    (f"solutions/{path.stem}", path)
    for path in sorted((ROOT / "chapters" / "solutions").glob("*.ipynb"))]


@pytest.mark.parametrize("page, source", PAGES, ids=[page for page, _ in PAGES])
def test_page_renders_its_math_and_images_and_shows_all_its_code(server, page, source):
    seen = _probe(server, page)
    assert seen["tex"] == [], f"{page}: raw TeX on the page: {seen['tex'][:5]}"
    if _tex_in(source):
        assert seen["math"] > 0, f"{page}: the notebook has math but the page shows none"
    missing = [image["src"] for image in seen["images"] if not image["loaded"]]
    assert missing == [], f"{page}: images that did not load: {missing}"
    assert seen["cut"] == [], f"{page}: code cut at the column's edge: {seen['cut'][:3]}"


def _answer_lines(chapter: Path) -> list[str]:
    """Lines of the chapter's solutions that are not also in the chapter (a template's
    ``def`` line is in both) and long enough to be distinctive."""
    solutions = ROOT / "chapters" / "solutions" / chapter.name
    if not solutions.exists():
        return []
    ours = {line.strip() for cell in nbformat.read(chapter, as_version=4).cells
            for line in cell.source.splitlines()}
    return [line.strip() for cell in nbformat.read(solutions, as_version=4).cells
            if "solution" in cell.metadata.get("tags", [])
            for line in cell.source.splitlines()
            if len(line.strip()) >= 24 and line.strip() not in ours
            and not line.strip().startswith("#")]


@pytest.mark.parametrize("chapter", _chapters(), ids=lambda path: path.stem)
def test_chapter_page_shows_no_solution(server, chapter):
    text = _probe(server, f"chapters/{chapter.stem}")["text"]
    shown = [line for line in _answer_lines(chapter) if line in text]
    assert shown == [], f"{chapter.name}: solution lines visible on its page: {shown[:3]}"
