# modbal — the two commands of the README:
#   make book   install, then execute every chapter (full mode) into _build/executed and render _build/html
#   make test   install (+ test extra), then unit tests, notebook checks and nbval of every chapter (fast mode)
# Both reuse .venv and only re-do what changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# On the kit's development machines a CPU build of torch 2.13.0 lies on disk; elsewhere pip picks
# the ordinary wheel for your platform (CUDA where available). Override with `make TORCH=...`.
TORCH  ?= $(if $(wildcard /opt/wheels/torch-2.13.0*),torch==2.13.0,torch)

.PHONY: book test install install-test assignments clean

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
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

book: install
	$(BIN)/python -m modbal_lib book

test: install-test
	MODBAL_FAST=1 $(BIN)/python -m pytest tests
	MODBAL_FAST=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider chapters/*.ipynb

clean:
	rm -rf _build
