"""Execute every chapter with papermill, then render the executed notebooks as the book's website.

``python -m modbal_lib book`` (the README's *book* command) writes ``_build/executed/NN_slug.ipynb``
and the website ``_build/html/`` (Sphinx + myst-nb + sphinx-book-theme, built by ``modbal_lib.site``
from the executed notebooks, which it does not execute again). A chapter is re-executed only when its
source, the library, the mode (fast/full), ``OUTPUT_VARIABLES`` or the published claims ledger changed.

Every cell runs under a timeout (``CELL_TIMEOUT``), so a hung cell is an error, not a silent wait: a
chapter that fails (a cell raises, runs past the timeout, or kills its kernel) stops the build with a
``ChapterError`` naming the chapter and the cell, leaves no executed notebook behind for that run and
loses its fingerprint, so the next build runs it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from modbal_lib import claims, site
from modbal_lib.utils import atomic_path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Chapter:
    path: Path  # chapters/NN_slug.ipynb
    title: str

    @property
    def slug(self) -> str:
        return self.path.stem


def chapter_title(notebook_path: Path) -> str:
    """The text of the first Markdown heading of a notebook (its file name if it has none)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return notebook_path.stem


def find_chapters(chapters_dir: Path = ROOT / "chapters") -> list[Chapter]:
    """The numbered chapters (``NN_slug.ipynb``) in reading order."""
    paths = sorted(p for p in chapters_dir.glob("[0-9][0-9]_*.ipynb"))
    return [Chapter(path=p, title=chapter_title(p)) for p in paths]


OUTPUT_VARIABLES = ("MODBAL_DATASET", "MODBAL_DEVICE")  # environment variables that change what a chapter shows
LEDGER = claims.LEDGER  # the published claims ledger (results/claims.json) the chapters' boxes and chapter 8 read
SITE_CODE = ROOT / "modbal_lib" / "site"  # the website's configuration and builder (modbal_lib.site)


def fingerprint(chapter: Chapter, fast: bool) -> str:
    """Hash of what decides a chapter's output: its source, the library's code (except the website's,
    ``SITE_CODE``, which decides how pages look, not what a chapter computes), the mode,
    ``OUTPUT_VARIABLES`` and the published claims ledger (``LEDGER``, when there is one)."""
    digest = hashlib.sha256()
    digest.update(chapter.path.read_bytes())
    for source in sorted((ROOT / "modbal_lib").rglob("*.py")):
        if source.is_relative_to(SITE_CODE):
            continue
        digest.update(source.relative_to(ROOT).as_posix().encode())
        digest.update(source.read_bytes())
    digest.update(b"fast" if fast else b"full")
    if LEDGER.is_file():
        digest.update(LEDGER.read_bytes())
    for name in OUTPUT_VARIABLES:
        digest.update(f"{name}={os.environ.get(name, '')}".encode())
    return digest.hexdigest()


CELL_TIMEOUT = {"full": 1200, "fast": 300}  # seconds one cell may run (papermill's execution_timeout)
PAPERMILL_CELL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}  # cells papermill adds to a run


class ChapterError(RuntimeError):
    """A chapter failed to execute; the message names the chapter file, the cell and what happened."""


def execute(chapter: Chapter, out_dir: Path, fast: bool, cell_timeout: int | None = None) -> float:
    """Run one chapter with papermill into ``out_dir``; returns the seconds it took.

    Each cell may run ``cell_timeout`` seconds (default ``CELL_TIMEOUT`` of the mode). The executed
    notebook appears only when every cell succeeded; otherwise ``ChapterError`` is raised."""
    timeout = cell_timeout or CELL_TIMEOUT["fast" if fast else "full"]
    start = time.perf_counter()
    with atomic_path(out_dir / chapter.path.name) as partial:  # papermill saves as it goes: only a success is renamed
        try:
            papermill.execute_notebook(
                str(chapter.path),
                str(partial),
                parameters={"FAST": fast},
                kernel_name="python3",
                cwd=str(chapter.path.parent),
                progress_bar=False,
                execution_timeout=timeout,
            )
        except papermill.PapermillExecutionError as error:
            what = " ".join(f"raised {error.ename}: {error.evalue}".split())  # one line
            raise ChapterError(failure_message(chapter, partial, what)) from None
        except CellTimeoutError:
            raise ChapterError(failure_message(
                chapter, partial, f"was still running after the cell timeout of {timeout} s (a hang, or a slower "
                "machine: python -m modbal_lib book --cell-timeout SECONDS)")) from None
        except DeadKernelError:
            raise ChapterError(failure_message(chapter, partial, "killed its kernel (out of memory?)")) from None
    return time.perf_counter() - start


def failure_message(chapter: Chapter, partial: Path, what: str) -> str:
    """``what`` happened in ``chapter``, at the cell it happened in: the last cell that started in the
    partly executed notebook ``partial``, numbered as in the chapter's own notebook, with its first line."""
    cells = []
    if partial.exists() and partial.stat().st_size:
        cells = [cell for cell in nbformat.read(partial, as_version=4).cells
                 if not PAPERMILL_CELL_TAGS & set(cell.metadata.get("tags", ()))]
    started = [index for index, cell in enumerate(cells) if cell.metadata.get("papermill", {}).get("start_time")]
    if not started:
        return f"{chapter.path.name}: {what}"
    lines = cells[started[-1]].source.strip().splitlines()
    return f"{chapter.path.name}, cell {started[-1]} ({lines[0] if lines else 'empty'!r}): {what}"


def build(fast: bool = False, build_dir: Path = ROOT / "_build", chapters_dir: Path = ROOT / "chapters",
          cell_timeout: int | None = None) -> list[tuple[str, str]]:
    """Execute every changed chapter, then build the website ``build_dir/html`` from the executed
    notebooks (``site.render``); returns [(chapter, "executed in N s" | "unchanged"), ..., ("website",
    "built in N s")]. Stops at the first chapter that fails (``ChapterError``; the chapters before it keep
    their results) and when the website has a warning (``site.SiteError``)."""
    executed_dir = build_dir / "executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    stamps_path = executed_dir / "fingerprints.json"
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
    chapters = find_chapters(chapters_dir)
    report = []
    for chapter in chapters:
        stamp = fingerprint(chapter, fast)
        if stamps.get(chapter.slug) == stamp and (executed_dir / chapter.path.name).exists():
            report.append((chapter.slug, "unchanged"))
            continue
        print(f"executing {chapter.path.name} ({'fast' if fast else 'full'} mode) ...", flush=True)
        stamps.pop(chapter.slug, None)  # a chapter that fails has no stamp: the next build runs it again
        stamps_path.write_text(json.dumps(stamps, indent=1))
        seconds = execute(chapter, executed_dir, fast, cell_timeout)
        stamps[chapter.slug] = stamp
        stamps_path.write_text(json.dumps(stamps, indent=1))
        report.append((chapter.slug, f"executed in {seconds:.0f} s"))
    start = time.perf_counter()
    site.render(chapters, executed_dir, build_dir / "html", fast=fast)
    report.append(("website", f"built in {time.perf_counter() - start:.0f} s"))
    return report


def notebook_problems(notebook_path: Path) -> list[str]:
    """What makes a committed notebook unclean: outputs, execution counts, widget state."""
    notebook = nbformat.read(notebook_path, as_version=4)
    problems = []
    if "widgets" in notebook.metadata:
        problems.append(f"{notebook_path}: notebook metadata holds widget state ('widgets')")
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{notebook_path}: cell {number} has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"{notebook_path}: cell {number} has an execution count")
        if "widgets" in cell.metadata:
            problems.append(f"{notebook_path}: cell {number} holds widget state")
    return problems


def pair_problems(source_path: Path) -> list[str]:
    """Differences between a chapter's py:percent source and its paired ``.ipynb`` (cell types, sources, tags)."""
    notebook_path = source_path.with_suffix(".ipynb")
    if not notebook_path.exists():
        return [f"{source_path}: no paired notebook {notebook_path.name} (run `jupytext --sync {source_path}`)"]

    def cells(path):
        return [
            (cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ())))
            for cell in jupytext.read(path).cells
        ]

    source_cells, notebook_cells = cells(source_path), cells(notebook_path)
    if source_cells == notebook_cells:
        return []
    for number, (left, right) in enumerate(zip(source_cells, notebook_cells)):
        if left != right:
            return [f"{source_path} and {notebook_path.name} differ at cell {number} (run `jupytext --sync {source_path}`)"]
    return [f"{source_path} has {len(source_cells)} cells, {notebook_path.name} has {len(notebook_cells)}"]
