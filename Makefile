# modbal — the two commands of the README:
#   make book   install, then execute every chapter (full mode) into _build/executed and render _build/html
#   make test   install (+ test extra), then unit tests, notebook checks, nbval of every chapter (fast mode),
#               the book command in fast mode (_build/fast) and the browser check of that website
# Both reuse .venv and only re-do what changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# On the kit's development machines a CPU build of torch 2.13.0 lies on disk; elsewhere pip picks
# the ordinary wheel for your platform (CUDA where available). Override with `make TORCH=...`.
TORCH  ?= $(if $(wildcard /opt/wheels/torch-2.13.0*),torch==2.13.0,torch)

.PHONY: book test report install install-test assignments clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, so nothing that depends on it pulls another build
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[test,media]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

book: install
	$(BIN)/python -m modbal_lib book

# The emoji features are extracted once (about a minute on 2 cores) before the chapters run. The
# chapters run twice: under nbval (checks every cell), then through the book command's own path
# (papermill, fast mode, a timeout per cell) into _build/fast, which leaves `make book`'s _build alone;
# then headless Chromium checks that book's website (tests/test_book_site.py).
test: install-test
	MODBAL_FAST=1 $(BIN)/python -m pytest tests
	$(BIN)/python -m modbal_lib features --dataset emoji
	MODBAL_FAST=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider chapters/[0-9][0-9]_*.ipynb
	$(BIN)/python -m modbal_lib book --fast --build-dir _build/fast
	MODBAL_FAST=1 $(BIN)/python -m pytest -p no:cacheprovider tests/test_book_site.py -k "real_book and fast"

# the committed benchmark report results/REPORT.md (emoji and seesaw, 5 seeds, every method and baseline)
# and the claims ledger results/CLAIMS.md + claims.json (modbal_lib.claims)
report: install
	$(BIN)/python -m modbal_lib report --out results
	$(BIN)/python -m modbal_lib claims --out results

# student notebooks and autograders of chapters/assignments (Otter-Grader; grades the solutions first)
assignments: install-test
	$(BIN)/python -m modbal_lib assignments --out dist/assignments

clean:
	rm -rf _build
