"""Committed chapters: paired, clean (no outputs, no widget state), parameterised, with a tidy environment file."""

import re
import tomllib
from pathlib import Path

import nbformat
import pytest

from modbal_lib.book import chapter_title, find_chapters, notebook_problems, pair_problems

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for p in (ROOT / "chapters").rglob("*.py") if not p.name.startswith("_"))
NOTEBOOKS = sorted((ROOT / "chapters").rglob("*.ipynb"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_pairs_are_in_sync(source):
    assert pair_problems(source) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_are_clean(notebook):
    assert notebook_problems(notebook) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_a_fast_parameter(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    parameters = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1, "exactly one cell tagged 'parameters'"
    assert re.search(r"^FAST = .*fast_mode\(\)", parameters[0].source, re.M), "FAST defaults to MODBAL_FAST"


def test_problems_are_detected(tmp_path):
    clean = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    path = tmp_path / "clean.ipynb"
    nbformat.write(clean, path)
    assert notebook_problems(path) == []

    dirty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    dirty.cells[0].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    dirty.cells[0].execution_count = 1
    dirty.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    nbformat.write(dirty, tmp_path / "dirty.ipynb")
    problems = notebook_problems(tmp_path / "dirty.ipynb")
    assert any("outputs" in p for p in problems)
    assert any("execution count" in p for p in problems)
    assert any("widget" in p for p in problems)


def test_out_of_sync_pair_is_detected(tmp_path):
    source = tmp_path / "01_demo.py"
    source.write_text("# %% [markdown]\n# # Demo\n\n# %%\nx = 1\n")
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Demo"), nbformat.v4.new_code_cell("x = 2")]
    )
    nbformat.write(notebook, tmp_path / "01_demo.ipynb")
    assert "differ at cell 1" in pair_problems(source)[0]
    (tmp_path / "01_demo.ipynb").unlink()
    assert "no paired notebook" in pair_problems(source)[0]


def test_chapters_are_found_in_order_with_titles():
    chapters = find_chapters()
    names = [c.path.name for c in chapters]
    assert names == sorted(names) and names[0] == "00_how_to_use.ipynb"
    assert chapter_title(chapters[0].path) == "0. How to use this book"
    assert chapter_title(chapters[7].path) == "7. Head to head"


def test_fingerprint_changes_with_source_mode_and_output_variables(monkeypatch):
    from modbal_lib.book import fingerprint

    chapter = find_chapters()[0]
    monkeypatch.delenv("MODBAL_DATASET", raising=False)
    plain = fingerprint(chapter, fast=False)
    assert fingerprint(chapter, fast=False) == plain and fingerprint(chapter, fast=True) != plain
    monkeypatch.setenv("MODBAL_DATASET", "food101")  # chapter 7 then adds a real dataset: re-execute
    assert fingerprint(chapter, fast=False) != plain


def _requirement_names(requirements):
    return {re.split(r"[<>=~!\[ ;]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_environment_yml_names_the_same_packages_as_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = _requirement_names(pyproject["project"]["dependencies"])
    for extra in pyproject["project"]["optional-dependencies"].values():
        declared |= _requirement_names(extra)
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    listed = _requirement_names(re.findall(r"^\s+- (?!pip:?$)(\S+)", text, re.M))
    listed -= {"python", "pip"}
    # conda names torch "pytorch"
    listed = {"torch" if name == "pytorch" else name for name in listed}
    assert listed == declared


def test_fingerprint_changes_with_the_published_claims_ledger(tmp_path, monkeypatch):
    from modbal_lib import book

    chapter = find_chapters()[8]
    assert chapter.path.name == "08_what_holds_up.ipynb"  # full mode shows results/claims.json
    monkeypatch.setattr(book, "LEDGER", tmp_path / "claims.json")
    without = book.fingerprint(chapter, fast=False)
    (tmp_path / "claims.json").write_text('{"findings": {}}')
    first = book.fingerprint(chapter, fast=False)
    (tmp_path / "claims.json").write_text('{"findings": {"a": 1}}')
    assert len({without, first, book.fingerprint(chapter, fast=False)}) == 3
