"""The book as a website: Sphinx + myst-nb + sphinx-book-theme, built from the executed chapters.

``render(chapters, executed_dir, html_dir)`` writes a Sphinx source folder next to ``html_dir``
(``<build>/site/source``; ``write_source``) and runs ``sphinx-build -W`` on it with the configuration of
this folder (``conf.py``: myst-nb that does not execute, the theme, MathJax served by the site, the
citation style). The source folder holds:

- ``index.md``: the front page and the one table of contents (the chapters in ``chapters``' order, each
  titled by its first heading, then the benchmark report, the claims ledger and the bibliography);
- ``chapters/NN_slug.ipynb``: each executed notebook as ``chapter_notebook`` prepares it (the kit's
  ``[Kim et al., 2025]`` citations made real ones, a note on how to run it, the live panels of the what-if
  labs replaced by a line saying they need JupyterLab, papermill's injected parameters dropped);
- ``results/REPORT.md`` (and its figures) and ``results/CLAIMS.md`` (generated from ``results/claims.json``
  by ``modbal_lib.claims``; absent while there is no published ledger), so that the chapters' links to
  ``../results/REPORT.md`` work on the site as they do in JupyterLab;
- ``bibliography.md`` and ``references.bib`` (``chapters/references.bib``).

Files are rewritten only when their content changed, so Sphinx reads again only the pages that changed.
A site with a warning (a broken link or citation, a missing figure) is refused: ``SiteError`` with
Sphinx's messages; no half-built site is left behind, and the previous one stays.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from modbal_lib import claims, references

CONF_DIR = Path(__file__).resolve().parent  # conf.py
ROOT = CONF_DIR.parents[1]
RESULTS = ROOT / "results"
BOOK_TITLE = "modbal — dominant modality bias"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # a live widget's output: only a kernel can draw it
PAPERMILL_PARAMETERS = "injected-parameters"  # the tag of the cell papermill adds with the run's parameters
LIVE_PANEL_NOTE = ("*In JupyterLab a live panel stands here: its controls need a running kernel, which a web page "
                   "does not have. What it draws with its defaults is shown above.*")


class SiteError(RuntimeError):
    """The website cannot be built; the message says what is wrong and where."""


# where a bracket stays as written: fenced code blocks, headings (a citation there would show its key in the
# page's contents column), inline code spans
_KEPT = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1|^#{1,6} [^\n]*|(`+)[^`].*?\2", re.M | re.S)
_BRACKET = re.compile(r"\[([^\[\]\n]+)\](?!\()")  # [text], not a Markdown link's [text](target)


def cite(markdown: str, keys: dict[str, str], where: str) -> str:
    """``markdown`` with each citation in the kit's form, ``[Kim et al., 2025]`` or ``[A, 2020; B, 2021]``,
    made a MyST citation of its BibTeX keys (``{cite:p}`kim2025balgrad```), outside code and headings. ``keys``:
    {label: key} (``references.labels``). A citation of a label the bibliography lacks raises
    ``SiteError`` naming ``where`` and the label."""

    def citation(match: re.Match) -> str:
        labels = references.find_citations(match.group(0))
        if "; ".join(labels) != match.group(1):
            return match.group(0)  # a bracket that is not (only) a citation
        unknown = [label for label in labels if label not in keys]
        if unknown:
            raise SiteError(f"{where}: cites {', '.join(f'[{label}]' for label in unknown)}, which is not in the "
                            "bibliography (an entry's label is modbal_lib.references.citation_label's)")
        return "{cite:p}`" + ",".join(keys[label] for label in labels) + "`"

    pieces, start = [], 0
    for kept in _KEPT.finditer(markdown):
        pieces += [_BRACKET.sub(citation, markdown[start:kept.start()]), kept.group(0)]
        start = kept.end()
    return "".join(pieces + [_BRACKET.sub(citation, markdown[start:])])


def run_note(name: str, fast: bool, lab: bool) -> str:
    """The note under a chapter's title: what the page is, how to run the chapter, and (``lab``) that its
    live panels (the what-if labs, widgets) need JupyterLab."""
    mode = ("fast mode: fewer seeds and epochs than `make book` runs" if fast else "full mode, as `make book` runs it")
    note = (f":::{{note}}\nThis page is the chapter executed by the book command ({mode}). To run it and change it, "
            f"open it in JupyterLab: [download the notebook](path:{name}) (with the outputs shown here), or "
            f"open `chapters/{name}` of the kit with `jupyter lab chapters/`.")
    if lab:
        note += (" Its **live panels** (sliders, menus, **Run**) need JupyterLab and a running kernel; this page "
                 "shows what they draw with their defaults.")
    return note + "\n:::"


def chapter_notebook(executed: nbformat.NotebookNode, name: str, keys: dict[str, str], fast: bool) -> nbformat.NotebookNode:
    """An executed chapter as the site shows it (``executed`` is not changed): citations made real
    (``cite``, in Markdown cells and in Markdown a cell printed), ``run_note`` under the title, each live
    widget (a what-if lab's panel) replaced by ``LIVE_PANEL_NOTE`` (a page has no kernel to run it, and
    ipywidgets' page scripts would come from a CDN), the widget state and papermill's injected-parameters
    cell dropped."""
    notebook = copy.deepcopy(executed)
    notebook.metadata.pop("widgets", None)
    notebook.cells = [cell for cell in notebook.cells if PAPERMILL_PARAMETERS not in cell.metadata.get("tags", ())]
    lab = False
    for number, cell in enumerate(notebook.cells):
        where = f"{name}, cell {number}"
        if cell.cell_type == "markdown":
            cell.source = cite(cell.source, keys, where)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                lab = True
                output.data = {"text/markdown": LIVE_PANEL_NOTE}
                output.metadata = {}
            elif "text/markdown" in data:
                data["text/markdown"] = cite(data["text/markdown"], keys, f"{where} (output)")
    note = run_note(name, fast, lab)
    first = next((cell for cell in notebook.cells if cell.cell_type == "markdown"), None)
    title = re.search(r"^# .*$", first.source, re.M) if first is not None else None
    if title:
        first.source = f"{first.source[:title.end()]}\n\n{note}\n{first.source[title.end():]}"
    else:
        notebook.cells.insert(0, nbformat.v4.new_markdown_cell(note))
    return notebook


def claims_page(ledger: Path) -> str:
    """The claims ledger page from the published ``results/claims.json``, its chapter links pointing at the
    chapters' pages."""
    rows, sizes = claims.read(ledger)
    epochs = sizes["epochs"]
    epochs = ", ".join(f"{dataset} {n}" for dataset, n in epochs.items()) if isinstance(epochs, dict) else epochs
    size = f"seeds {sizes['seeds']}; epochs: {epochs}" + ("; reduced size" if sizes.get("fast") else "")
    return ("# What holds up: the claims ledger\n\n"
            f"Every testable claim of the three papers, as `python -m modbal_lib claims` tested it ({size}; "
            f"`results/claims.json`). Chapter 8 explains how to read it.\n\n"
            "## The claims, paper by paper\n\n"  # ledger_markdown's headings are level 3
            + claims.ledger_markdown(rows, link_prefix="../chapters/"))


def index_page(chapters, has_claims: bool) -> str:
    """The front page: what the site is, and the one table of contents (chapters in reading order)."""
    chapter_entries = "\n".join(f"chapters/{chapter.slug}" for chapter in chapters)
    results = ["results/REPORT"] + (["results/CLAIMS"] if has_claims else []) + ["bibliography"]
    missing = ("" if has_claims else "\nThe claims ledger is not here yet: `make report` publishes it "
               "(`results/claims.json`), and the next book build adds its page.\n")
    return f"""# {BOOK_TITLE}

An executable textbook on why a multimodal model leans on its easiest modality, and on three recent
methods that counter it by editing gradients (BalGrad, CGGM, GOAL). Every page is a chapter as the book
command executed it, with its figures and numbers; the sidebar lists the chapters, the search box finds a
word in all of them. Each chapter page says how to open it in JupyterLab, where its code runs and its
what-if labs are live.
{missing}
```{{toctree}}
:caption: Chapters
:maxdepth: 1

{chapter_entries}
```

```{{toctree}}
:caption: Results and references
:maxdepth: 1

{chr(10).join(results)}
```
"""


BIBLIOGRAPHY_PAGE = """# Bibliography

Every work the chapters cite, under the label they cite it by.

```{bibliography}
:all:
```
"""


def _write(path: Path, content: str | bytes, written: set[Path]) -> None:
    """Write ``content`` to ``path`` unless it already holds it (Sphinx rereads a page whose file changed)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    written.add(path)
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_source(chapters, executed_dir: Path, source_dir: Path, fast: bool = False,
                 bibliography: Path = references.BIB, results: Path = RESULTS) -> list[str]:
    """Write the Sphinx source folder (see the module's docstring); returns notes on pages left out.
    Missing inputs (an executed notebook, the report, the bibliography) are refused before anything is written."""
    report = results / "REPORT.md"
    missing = [f"{executed_dir / chapter.path.name} (chapter {chapter.slug} not executed)" for chapter in chapters
               if not (executed_dir / chapter.path.name).is_file()]
    missing += [] if report.is_file() else [f"{report} (the benchmark report: `make report` writes it)"]
    if missing:
        raise SiteError("the website needs files that do not exist: " + "; ".join(missing))
    bib_keys = references.labels(references.load(bibliography), bibliography)
    written: set[Path] = set()
    for chapter in chapters:
        executed = nbformat.read(executed_dir / chapter.path.name, as_version=4)
        notebook = chapter_notebook(executed, chapter.path.name, bib_keys, fast)
        _write(source_dir / "chapters" / chapter.path.name, nbformat.writes(notebook), written)
    _write(source_dir / "results" / "REPORT.md", cite(report.read_text(encoding="utf-8"), bib_keys, report.name), written)
    for figure in sorted(results.rglob("*.png")):
        _write(source_dir / "results" / figure.relative_to(results), figure.read_bytes(), written)
    notes = []
    ledger = results / "claims.json"
    if ledger.is_file():
        _write(source_dir / "results" / "CLAIMS.md", cite(claims_page(ledger), bib_keys, ledger.name), written)
    else:
        notes.append(f"no claims ledger page: {ledger} does not exist yet (`make report` writes it)")
    _write(source_dir / "bibliography.md", BIBLIOGRAPHY_PAGE, written)
    _write(source_dir / "references.bib", bibliography.read_bytes(), written)
    _write(source_dir / "index.md", index_page(chapters, ledger.is_file()), written)
    for stale in [path for path in source_dir.rglob("*") if path.is_file() and path not in written]:
        stale.unlink()  # a page that is no longer part of the book
    return notes


def render(chapters, executed_dir: Path, html_dir: Path, fast: bool = False,
           bibliography: Path = references.BIB, results: Path | None = None) -> Path:
    """Build the website ``html_dir`` from the executed notebooks in ``executed_dir`` and the report and
    ledger in ``results`` (default ``RESULTS``, read when called); returns its ``index.html``. Sphinx's source, its saved state and myst-nb's files live in ``html_dir/../site``; the
    site is built afresh there and replaces ``html_dir`` only when complete, so it holds no page of an older
    book. When the build has a warning: ``SiteError`` (with Sphinx's messages), and the old site stays."""
    work = html_dir.parent / "site"
    source, doctrees = work / "source", work / "doctrees"
    partial = work / "html"  # myst-nb writes next to the output folder (jupyter_execute/): keep that in work
    results = RESULTS if results is None else results
    for note in write_source(chapters, executed_dir, source, fast, bibliography, results):
        print(f"note: {note}", flush=True)
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-c", str(CONF_DIR),
               "-d", str(doctrees), str(source), str(partial)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        # and a rerun must not pass because Sphinx remembers a page with a warning as read: forget its state
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(doctrees, ignore_errors=True)
        messages = "\n".join((done.stderr or done.stdout).strip().splitlines()[-30:])  # Sphinx's warnings
        raise SiteError(f"the website {html_dir} was not built (sphinx-build -W, status {done.returncode}):\n{messages}")
    shutil.rmtree(html_dir, ignore_errors=True)
    partial.rename(html_dir)
    return html_dir / "index.html"
