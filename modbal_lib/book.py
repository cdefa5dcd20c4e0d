"""Execute every chapter with papermill and render the results as a small static HTML book.

``python -m modbal_lib book`` (the README's *book* command) writes
``_build/executed/NN_slug.ipynb`` and ``_build/html/{index,NN_slug}.html``. A chapter is
re-executed only when its source, the library, or the mode (fast/full) changed.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

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


def fingerprint(chapter: Chapter, fast: bool) -> str:
    """Hash of what decides a chapter's output: its source, the library's code, and the mode."""
    digest = hashlib.sha256()
    digest.update(chapter.path.read_bytes())
    for source in sorted((ROOT / "modbal_lib").rglob("*.py")):
        digest.update(source.relative_to(ROOT).as_posix().encode())
        digest.update(source.read_bytes())
    digest.update(b"fast" if fast else b"full")
    return digest.hexdigest()


def execute(chapter: Chapter, out_dir: Path, fast: bool) -> float:
    """Run one chapter with papermill into ``out_dir``; returns the seconds it took."""
    import papermill

    start = time.perf_counter()
    papermill.execute_notebook(
        str(chapter.path),
        str(out_dir / chapter.path.name),
        parameters={"FAST": fast},
        kernel_name="python3",
        cwd=str(chapter.path.parent),
        progress_bar=False,
    )
    return time.perf_counter() - start


def _nav(chapters: list[Chapter], index: int) -> str:
    links = ['<a href="index.html">Contents</a>']
    if index > 0:
        previous = chapters[index - 1]
        links.insert(0, f'<a href="{previous.slug}.html">&larr; {html.escape(previous.title)}</a>')
    if index + 1 < len(chapters):
        following = chapters[index + 1]
        links.append(f'<a href="{following.slug}.html">{html.escape(following.title)} &rarr;</a>')
    return '<nav class="modbal-nav" style="padding:0.6em 1em;border-bottom:1px solid #ddd;font-family:sans-serif">' + " | ".join(links) + "</nav>"


def render_html(chapters: list[Chapter], executed_dir: Path, html_dir: Path) -> Path:
    """Render executed notebooks to HTML pages with navigation, plus ``index.html``; returns the index."""
    from nbconvert import HTMLExporter

    html_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    for number, chapter in enumerate(chapters):
        notebook = nbformat.read(executed_dir / chapter.path.name, as_version=4)
        body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": chapter.title}})
        nav = _nav(chapters, number)
        page = re.sub(r"(<body[^>]*>)", lambda match: match.group(1) + nav, body, count=1)
        page = page.replace("</body>", nav + "</body>", 1)
        (html_dir / f"{chapter.slug}.html").write_text(page, encoding="utf-8")
    items = "\n".join(
        f'<li><a href="{c.slug}.html">{html.escape(c.title)}</a></li>' for c in chapters
    )
    index = html_dir / "index.html"
    index.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>modbal — dominant modality bias</title></head>"
        "<body style='font-family:sans-serif;max-width:50em;margin:2em auto'>"
        "<h1>modbal — dominant modality bias</h1>"
        "<p>An executed notebook textbook. Chapters in reading order:</p>"
        f"<ol>{items}</ol></body></html>",
        encoding="utf-8",
    )
    return index


def build(fast: bool = False, build_dir: Path = ROOT / "_build", chapters_dir: Path = ROOT / "chapters") -> list[tuple[str, str]]:
    """Execute every changed chapter, render HTML; returns [(chapter, "executed in N s" | "unchanged")]."""
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
        seconds = execute(chapter, executed_dir, fast)
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
    import jupytext

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
