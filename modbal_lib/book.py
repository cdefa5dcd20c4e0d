"""Execute every chapter with papermill and render the results as a small static HTML book.

``python -m modbal_lib book`` (the README's *book* command) writes
``_build/executed/NN_slug.ipynb`` and the static site ``_build/html/``: ``index.html`` (the
chapters' titles in reading order), one page per chapter with its figures embedded and
Previous / Contents / Next links, the benchmark report ``results/REPORT.md`` as ``report.html``,
and the shared ``book.css``. A chapter's links to another chapter's notebook (``04_balgrad.ipynb``)
and to the report (``../results/REPORT.md``) are pointed at their pages. ``broken_links`` checks
that every local link of the site resolves (the build refuses a site that has one). A chapter is
re-executed only when its source, the library, the mode (fast/full) or ``OUTPUT_VARIABLES`` changed.

Every cell runs under a timeout (``CELL_TIMEOUT``), so a hung cell is an error, not a silent wait: a
chapter that fails (a cell raises, runs past the timeout, or kills its kernel) stops the build with a
``ChapterError`` naming the chapter and the cell, leaves no executed notebook behind for that run and
loses its fingerprint, so the next build runs it again.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import time
import urllib.parse
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import jupytext
import mistune
import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter

from modbal_lib.utils import atomic_path

ROOT = Path(__file__).resolve().parents[1]
BOOK_TITLE = "modbal — dominant modality bias"
STYLESHEET = "book.css"
REPORT = ROOT / "results" / "REPORT.md"  # the committed benchmark report, a page of the site
REPORT_PAGE = "report.html"
BOOK_CSS = """\
/* modbal book: page width, navigation bar, contents page (chapter pages keep nbconvert's lab styles) */
body.jp-Notebook { max-width: 72em; margin: 0 auto; }
.modbal-nav {
  display: flex; justify-content: space-between; align-items: baseline; gap: 1em;
  padding: 0.6em 1em; font: 15px/1.4 system-ui, sans-serif;
}
.modbal-nav.modbal-top { border-bottom: 1px solid #ddd; }
.modbal-nav.modbal-bottom { border-top: 1px solid #ddd; margin-top: 2em; }
.modbal-nav > * { flex: 1; }
.modbal-nav .modbal-contents-link { text-align: center; }
.modbal-nav .modbal-next { text-align: right; }
.modbal-nav a { color: #1a5fb4; text-decoration: none; }
.modbal-nav a:hover { text-decoration: underline; }
body.modbal-index { font: 16px/1.5 system-ui, sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; color: #222; }
.modbal-index ul { list-style: none; padding: 0; }
.modbal-index li { padding: 0.45em 0; border-bottom: 1px solid #eee; }
.modbal-index a { color: #1a5fb4; text-decoration: none; font-size: 1.1em; }
.modbal-index a:hover { text-decoration: underline; }
"""


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
LEDGER = ROOT / "results" / "claims.json"  # the published claims ledger chapter 8 shows in full mode


def fingerprint(chapter: Chapter, fast: bool) -> str:
    """Hash of what decides a chapter's output: its source, the library's code, the mode,
    ``OUTPUT_VARIABLES`` and the published claims ledger (``LEDGER``, when there is one)."""
    digest = hashlib.sha256()
    digest.update(chapter.path.read_bytes())
    for source in sorted((ROOT / "modbal_lib").rglob("*.py")):
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


def _page_link(chapter: Chapter, rel: str, text: str) -> str:
    return f'<a rel="{rel}" href="{chapter.slug}.html">{text}</a>'


def _nav(chapters: list[Chapter], index: int, position: str) -> str:
    """Previous / Contents / Next bar of chapter ``index`` (``position``: "top" or "bottom")."""
    previous = _page_link(chapters[index - 1], "prev", f"&larr; {html.escape(chapters[index - 1].title)}") if index > 0 else ""
    following = (_page_link(chapters[index + 1], "next", f"{html.escape(chapters[index + 1].title)} &rarr;")
                 if index + 1 < len(chapters) else "")
    return (f'<nav class="modbal-nav modbal-{position}"><span class="modbal-prev">{previous}</span>'
            '<span class="modbal-contents-link"><a rel="index" href="index.html">Contents</a></span>'
            f'<span class="modbal-next">{following}</span></nav>')


def _write_page(path: Path, text: str) -> None:
    """Write a file of the site atomically, readable by a web server running as another user."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)


def chapter_page(chapter: Chapter, notebook, chapters: list[Chapter], exporter) -> str:
    """One executed chapter as HTML: nbconvert's lab page (figures embedded as data URIs), the shared
    stylesheet, and the navigation bar above and below the content."""
    number = chapters.index(chapter)
    # Markdown images are read relative to the chapter's own folder, as JupyterLab shows them.
    metadata = {"name": chapter.title, "path": str(chapter.path.parent)}
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": metadata})
    page = site_links(body, chapters)
    page = page.replace("</head>", f'<link rel="stylesheet" href="{STYLESHEET}">\n</head>', 1)
    page = re.sub(r"(<body[^>]*>)", lambda match: match.group(1) + _nav(chapters, number, "top"), page, count=1)
    return page.replace("</body>", _nav(chapters, number, "bottom") + "</body>", 1)


def site_links(page: str, chapters: list[Chapter]) -> str:
    """Point links written for JupyterLab at the site's pages: ``NN_slug.ipynb`` (a chapter) ->
    ``NN_slug.html`` and ``../results/REPORT.md`` -> ``report.html``, keeping any ``#anchor``."""
    pages = {chapter.path.name: f"{chapter.slug}.html" for chapter in chapters}
    pages["../results/REPORT.md"] = REPORT_PAGE

    def rewrite(match: re.Match) -> str:
        target, anchor = match.group(1), match.group(2) or ""
        return f'href="{pages.get(target, target)}{anchor}"'

    return re.sub(r'href="([^"#]*)(#[^"]*)?"', rewrite, page)


def report_page(report: Path = REPORT) -> str:
    """The benchmark report as a page of the site: its Markdown rendered, its figures embedded as data URIs."""
    def embed(match: re.Match) -> str:
        image = report.parent / match.group(2)
        if not image.is_file():
            raise ValueError(f"{report}: the figure {match.group(2)!r} does not exist ({image})")
        encoded = base64.b64encode(image.read_bytes()).decode()
        return f"![{match.group(1)}](data:image/png;base64,{encoded})"

    body = mistune.html(re.sub(r"!\[([^\]]*)\]\(([^)]+\.png)\)", embed, report.read_text(encoding="utf-8")))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Benchmark report — {html.escape(BOOK_TITLE)}</title><link rel=\"stylesheet\" href=\"{STYLESHEET}\"></head>\n"
            f"<body class=\"modbal-report\"><nav class=\"modbal-nav\"><a rel=\"index\" href=\"index.html\">Contents</a></nav>\n"
            f"{body}</body></html>\n")


def index_page(chapters: list[Chapter]) -> str:
    """The contents page: every chapter's title, in reading order, linking its page."""
    items = "\n".join(f'<li><a href="{c.slug}.html">{html.escape(c.title)}</a></li>' for c in chapters)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(BOOK_TITLE)}</title><link rel=\"stylesheet\" href=\"{STYLESHEET}\"></head>\n"
        f"<body class=\"modbal-index\"><h1>{html.escape(BOOK_TITLE)}</h1>\n"
        "<p>An executed notebook textbook. Chapters in reading order:</p>\n"
        f"<ul class=\"modbal-contents\">\n{items}\n</ul>\n"
        f"<p>The benchmark report, every method on the embedded datasets with 5 seeds: <a href=\"{REPORT_PAGE}\">"
        "results/REPORT.md</a>.</p>\n</body></html>\n"
    )


def render_html(chapters: list[Chapter], executed_dir: Path, html_dir: Path) -> Path:
    """Render executed notebooks to linked HTML pages, plus ``index.html`` and the stylesheet.

    Figures (image outputs, and images a Markdown cell refers to) are embedded in the pages as
    data URIs, so the folder is a self-contained static site. Returns the index page; raises
    ``ValueError`` naming every link that points to a file the site does not hold.
    """
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    for chapter in chapters:
        notebook = nbformat.read(executed_dir / chapter.path.name, as_version=4)
        page = chapter_page(chapter, notebook, chapters, exporter)
        _write_page(html_dir / f"{chapter.slug}.html", page)
    _write_page(html_dir / STYLESHEET, BOOK_CSS)
    _write_page(html_dir / REPORT_PAGE, report_page())
    index = html_dir / "index.html"
    _write_page(index, index_page(chapters))
    problems = broken_links(html_dir)
    if problems:
        raise ValueError(f"the book in {html_dir} has broken links:\n" + "\n".join(problems))
    return index


class _LinkCollector(HTMLParser):
    """Every ``href`` and ``src`` value of an HTML page."""

    def __init__(self):
        super().__init__()
        self.references: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.references += [value for name, value in attrs if name in ("href", "src") and value]


def local_target(html_dir: Path, page: Path, reference: str) -> Path | None:
    """The file a link of ``page`` points to, or None when it points elsewhere (another site,
    a ``data:`` URI, an anchor on the same page). Paths starting with "/" are site-relative."""
    parts = urllib.parse.urlsplit(reference)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    base = html_dir if parts.path.startswith("/") else page.parent
    return (base / urllib.parse.unquote(parts.path.lstrip("/"))).resolve()


def broken_links(html_dir: Path) -> list[str]:
    """Every href/src of the site's pages that should be a local file but is not one inside the site."""
    html_dir = Path(html_dir).resolve()
    problems = []
    for page in sorted(html_dir.rglob("*.html")):
        collector = _LinkCollector()
        collector.feed(page.read_text(encoding="utf-8"))
        for reference in collector.references:
            target = local_target(html_dir, page, reference)
            if target is None:
                continue
            if not target.is_relative_to(html_dir):
                problems.append(f"{page.name}: {reference!r} points outside the site")
            elif not target.is_file():
                problems.append(f"{page.name}: {reference!r} -> no such file")
    return problems


def build(fast: bool = False, build_dir: Path = ROOT / "_build", chapters_dir: Path = ROOT / "chapters",
          cell_timeout: int | None = None) -> list[tuple[str, str]]:
    """Execute every changed chapter, render HTML; returns [(chapter, "executed in N s" | "unchanged")].
    Stops at the first chapter that fails (``ChapterError``); the chapters before it keep their results."""
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
    render_html(chapters, executed_dir, build_dir / "html")
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
