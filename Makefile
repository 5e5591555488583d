# minprune's two entry points: `make demo` (the main job) and `make test` (lint + the whole suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
RUNSTAMP := $(VENV)/.installed

.PHONY: demo test lint test-fast test-plain test-slow test-nojit test-cudasim test-notebooks exercises book test-book bench mutation clean

$(RUNSTAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(RUNSTAMP) $@

## The main job: reproduce the paper's LeNet-300-100 results (baseline, prune, retrain, tables, figures).
demo: $(RUNSTAMP)
	$(VENV)/bin/minprune reproduce lenet-300-100

## Lint, then the whole suite: fast tests, the kernels without JIT, the CUDA simulator, slow subset, notebooks.
test: $(STAMP) lint test-fast test-plain test-nojit test-cudasim test-slow test-notebooks book test-book

lint: $(STAMP)
	$(VENV)/bin/ruff check minprune tests benchmarks tools chapters

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not cuda and not chapters and not book"

# The fast suite once more on the plain backend (every op and update as NumPy expressions,
# minprune.autograd.plain); tests that call a Numba kernel directly still run it.
test-plain: $(STAMP)
	MINPRUNE_BACKEND=plain $(PY) -m pytest -q -m "not slow and not cuda and not chapters and not book"

# The Numba kernels once more as plain Python, so the kernel code itself is covered.
test-nojit: $(STAMP)
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q -m "not slow and not cuda" tests/kernels tests/sparse || [ $$? -eq 5 ]

# CUDA kernels under Numba's simulator (CI has no GPU); on a GPU machine run `pytest -m cuda`.
test-cudasim: $(STAMP)
	NUMBA_ENABLE_CUDASIM=1 $(PY) -m pytest -q -m cuda tests || [ $$? -eq 5 ]

# End-to-end runs on real MNIST (skipped unless MINPRUNE_DATA points at the IDX files).
test-slow: $(STAMP)
	$(PY) -m pytest -q -m "slow and not cuda" || [ $$? -eq 5 ]

# Chapters in fast mode: MINPRUNE_FAST is read by minprune.base.settings.fast_mode().
# Each chapter twice (tests/chapters/test_execution.py): with its solutions (chapters/solutions/),
# every check passes; as a student's copy, every other cell runs and each check fails with a hint.
test-notebooks: $(STAMP)
	MINPRUNE_FAST=1 $(PY) -m pytest -q -m chapters tests/chapters

## Student copies of the chapters (no answers, no outputs) in chapters/exercises/, with checks/.
exercises: $(STAMP)
	$(PY) tools/chapters.py exercises

## The book: README, the Results page (written from results/*.json by tools/results_page.py),
## the chapters (stored outputs, not re-executed) and the API reference, as
## static HTML in site/ (offline; --strict fails on a broken link or a missing page).
book: $(STAMP)
	rm -rf docs/index.md docs/chapters docs/solutions docs/results site
	mkdir -p docs/chapters docs/solutions docs/results
	sed 's#](docs/#](#g' README.md > docs/index.md
	$(PY) tools/results_page.py
	cp chapters/*.ipynb docs/chapters/
	cp chapters/solutions/*.ipynb docs/solutions/
	$(PY) tools/book_math.py docs/chapters/*.ipynb docs/solutions/*.ipynb
	cd results && find . -name '*.png' -exec cp --parents {} ../docs/results/ \;
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	@echo "book: open site/index.html"

# The built book in headless Chromium (tests/test_book.py): math drawn, images loaded, no code cut,
# no solution on a chapter page. Skips, saying why, without chromium or site/.
test-book: $(STAMP)
	$(PY) -m pytest -q -m book tests/test_book.py

## Mutation testing of the code that implements the paper (10-20 minutes, so not in `make test`):
## would the tests catch a wrong line? Writes results/mutation/ (score per module, survivors).
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,mutation]"
	$(PY) tools/mutation.py

bench: $(STAMP)
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache site docs/index.md docs/chapters docs/solutions docs/results
