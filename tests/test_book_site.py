"""The book's website (``modbal_lib.site``: Sphinx + myst-nb + sphinx-book-theme from the executed chapters).

Without a browser: the kit's citations become real ones (and an unknown one is refused), a chapter's
notebook is prepared for the site (note under the title, live panels replaced, papermill's parameters
dropped), a tiny three-chapter book built by the book command has its pages, contents, figures,
citations, bibliography, MathJax files and no script or style from another host in its HTML; a broken
link fails the build and leaves the previous site as it was; missing inputs are refused before any work.

In headless Chromium (Selenium), the site served on 127.0.0.1 with every other host unresolvable: every
page of the sidebar loads, its images are decoded, its maths is typeset by the site's own MathJax (no
raw ``\\(``, ``$$`` or ``\\frac`` left in the text outside code), no request leaves localhost, every
local link answers and every same-page anchor exists; the search box finds "DeltaGap" in chapter 1; a
screenshot of each page is saved under ``<build>/screenshots/``. On the tiny book always, and on the real
book (``make book``: ``_build/html``; ``make test``: ``_build/fast/html``) when it has been built.
"""

import contextlib
import functools
import http.server
import json
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import nbformat
import pytest
from PIL import Image, ImageStat

from modbal_lib import references, site
from modbal_lib.book import build, find_chapters

ROOT = Path(__file__).resolve().parents[1]
KEYS = references.labels(references.load())

FIGURE = """\
import matplotlib.pyplot as plt
figure, axis = plt.subplots(figsize=(4, 2.5))
axis.plot([0, 1, 2, 3], [{0}, 1, 0, 2], marker="o")
axis.set_title("figure {0}")
plt.show()
"""
PRINTED_MARKDOWN = """\
from IPython.display import Markdown, display
display(Markdown("| setting | DeltaGap |\\n|---|---|\\n| $\\\\alpha = 1$ | as in [Yao and Mihalcea, 2022] |"))
"""
LAB = "import ipywidgets\nipywidgets.IntSlider(value=3, description='knob')"


def tiny_chapter(number: int, title: str, figures: int, text: str = "", code: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    """A chapter in the book's conventions: title and text (maths, a citation, links as JupyterLab opens
    them), a ``parameters`` cell, ``figures`` plots with a numbered caption under each, then ``code``."""
    cells = [nbformat.v4.new_markdown_cell(
        f"# {title}\n\nMaths inline $\\frac{{a}}{{b}}$ and displayed\n\n$$\\Delta = |S_a - S_b|.$$\n\n"
        f"As [Kim et al., 2025] define it; [the first chapter](00_start.ipynb), [the report](../results/REPORT.md). "
        f"{text}"),
        nbformat.v4.new_code_cell("FAST = False", metadata={"tags": ["parameters"]})]
    for figure in range(figures):
        cells += [nbformat.v4.new_code_cell(FIGURE.format(figure)),
                  nbformat.v4.new_markdown_cell(f"**Figure {number}.{figure + 1}.** The plot of figure {figure}.")]
    cells += [nbformat.v4.new_code_cell(source) for source in code]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


TINY_BOOK = {
    "00_start": tiny_chapter(0, "0. Start here", 1),
    "01_plots": tiny_chapter(1, "1. Two plots and a lab", 2, "The gap is called DeltaGap here.", (PRINTED_MARKDOWN, LAB)),
    "02_words": tiny_chapter(2, "2. Only words", 0, "Two works at once [Guo et al., 2024; Anonymous, 2025]."),
}


def report_only(folder: Path) -> Path:
    """``folder`` with the kit's benchmark report and its figures, and no claims ledger (whose rows link
    chapters a tiny book does not have)."""
    for path in [ROOT / "results" / "REPORT.md", *(ROOT / "results").rglob("*.png")]:
        copy = folder / path.relative_to(ROOT / "results")
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
    return folder


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory):
    """A three-chapter book executed (papermill) and rendered by ``build``, the book command's code path;
    built twice, and the second build executes nothing."""
    root = tmp_path_factory.mktemp("book")
    (root / "chapters").mkdir()
    for slug, notebook in TINY_BOOK.items():
        nbformat.write(notebook, root / "chapters" / f"{slug}.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        # the tests run matplotlib headless (Agg); the chapters' kernels show figures inline
        patch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        patch.setattr(site, "RESULTS", report_only(root / "results"))
        first = build(fast=True, build_dir=root / "_build", chapters_dir=root / "chapters")
        second = build(fast=True, build_dir=root / "_build", chapters_dir=root / "chapters")
    assert [slug for slug, _ in first] == [*TINY_BOOK, "website"]
    assert all(status.startswith("executed in") for _, status in first[:-1])
    assert [status for _, status in second[:-1]] == ["unchanged"] * len(TINY_BOOK)
    return root / "_build"


# --- the kit's citations on the site ------------------------------------------------------------------


def test_cite_makes_each_kit_citation_a_myst_citation_outside_code():
    text = ("BalGrad [Kim et al., 2025] and [Guo et al., 2024; Anonymous, 2025]; a list [1, 2], a link "
            "[Kim et al., 2025](https://arxiv.org), code `[Kim et al., 2025]`, and\n\n```\n[Kim et al., 2025]\n```\n"
            "### BalGrad [Kim et al., 2025]\n")
    assert site.cite(text, KEYS, "here") == (
        "BalGrad {cite:p}`kim2025balgrad` and {cite:p}`guo2024cggm,anonymous2025goal`; a list [1, 2], a link "
        "[Kim et al., 2025](https://arxiv.org), code `[Kim et al., 2025]`, and\n\n```\n[Kim et al., 2025]\n```\n"
        "### BalGrad [Kim et al., 2025]\n")  # a heading keeps its text: the page's contents column shows it


def test_cite_refuses_a_label_the_bibliography_lacks():
    with pytest.raises(site.SiteError, match=r"04_x.ipynb, cell 3: cites \[Nobody et al., 2031\], which is not in the bib"):
        site.cite("as shown [Kim et al., 2025; Nobody et al., 2031]", KEYS, "04_x.ipynb, cell 3")


def executed(*cells) -> nbformat.NotebookNode:
    """A notebook with outputs, as papermill leaves one (widget state in its metadata)."""
    notebook = nbformat.v4.new_notebook(cells=list(cells))
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"a": {}}}}
    return notebook


def test_chapter_notebook_as_the_site_shows_it():
    widget = nbformat.v4.new_output("display_data", data={site.WIDGET_VIEW: {"model_id": "a"}, "text/plain": "IntSlider(3)"})
    printed = nbformat.v4.new_output("display_data", data={"text/markdown": "see [Kim et al., 2025]"})
    original = executed(
        nbformat.v4.new_code_cell("FAST = True", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_markdown_cell("# 3. Title\n\nIntro [Kim et al., 2025]."),
        nbformat.v4.new_code_cell("lab()", outputs=[printed, widget]))
    before = nbformat.writes(original)
    page = site.chapter_notebook(original, "03_x.ipynb", KEYS, fast=True)
    assert nbformat.writes(original) == before  # the executed notebook is not changed
    assert "widgets" not in page.metadata and len(page.cells) == 2
    title, note = page.cells[0].source.split("\n\n", 2)[:2]
    assert title == "# 3. Title" and note.startswith(":::{note}") and "fast mode" in note
    assert "[download the notebook](path:03_x.ipynb)" in note and "live panels" in note
    assert page.cells[0].source.endswith("Intro {cite:p}`kim2025balgrad`.")
    assert [output.data for output in page.cells[1].outputs] == [
        {"text/markdown": "see {cite:p}`kim2025balgrad`"}, {"text/markdown": site.LIVE_PANEL_NOTE}]

    plain = site.chapter_notebook(executed(nbformat.v4.new_code_cell("x = 1")), "04_y.ipynb", KEYS, fast=False)
    assert plain.cells[0].source.startswith(":::{note}") and "full mode" in plain.cells[0].source
    assert "live panels" not in plain.cells[0].source


# --- the tiny book's site, read as files -----------------------------------------------------------------


def test_tiny_book_site_has_every_page_in_one_table_of_contents(tiny_book):
    html = tiny_book / "html"
    pages = ["index.html", "search.html", "bibliography.html", "results/REPORT.html",
             *(f"chapters/{slug}.html" for slug in TINY_BOOK)]
    assert all((html / page).is_file() for page in pages)
    assert (html / "searchindex.js").is_file() and (html / "_static" / "mathjax" / "MathJax.js").is_file()
    index = (html / "index.html").read_text()
    titles = [notebook.cells[0].source.splitlines()[0][2:] for notebook in TINY_BOOK.values()]
    entries = re.findall(r'<li class="toctree-l1"><a class="reference internal" href="([^"]+)">([^<]+)</a>', index)
    chapters_first = [(f"chapters/{slug}.html", title) for slug, title in zip(TINY_BOOK, titles)]
    assert entries[:len(TINY_BOOK)] == chapters_first  # the book's order, titled by each chapter's heading
    assert [href for href, _ in entries[len(TINY_BOOK):len(TINY_BOOK) + 1]] == ["results/REPORT.html"]
    assert "bibliography.html" in [href for href, _ in entries]
    # no published ledger: no page, and the front page says how to get one
    assert "results/CLAIMS.html" not in [href for href, _ in entries] and "The claims ledger is not here yet" in index


def test_tiny_book_chapter_pages(tiny_book):
    html = tiny_book / "html"
    for slug, notebook in TINY_BOOK.items():
        page = (html / "chapters" / f"{slug}.html").read_text()
        figures = sum("plt.show()" in cell.source for cell in notebook.cells)
        assert len(re.findall(r'<img [^>]*src="\.\./_images/[^"]+\.png"', page)) == figures
        assert page.count("<strong>Figure ") == figures  # the captions stay under their figures
        # citations link the bibliography page; the links written for JupyterLab point at pages
        assert '<a class="reference internal" href="../bibliography.html#' in page
        first = 'href="#"' if slug == "00_start" else 'href="00_start.html"'  # a link to itself is to its top
        assert first in page and 'href="../results/REPORT.html"' in page
        download = re.search(rf'<a class="reference download internal" download="" href="(\.\./_downloads/[^"]+/{slug}\.ipynb)"', page)
        assert download and (html / "chapters" / download.group(1)).is_file()
        assert '<span class="math notranslate nohighlight">\\(\\frac{a}{b}\\)</span>' in page
        assert 'src="../_static/mathjax/MathJax.js' in page
        assert not re.search(r'(src|href)="(https?:)?//[^"]*\.(js|css)', page)  # no script or style from another host
        assert "injected-parameters" not in page
    lab = (html / "chapters" / "01_plots.html").read_text()
    assert "need JupyterLab" in lab and "a live panel stands here" in lab
    assert "widget-state+json" not in lab and "require" not in lab
    assert lab.count('href="../bibliography.html#') == 2  # the chapter's own text and what it printed
    # two works in one bracket, in the bibliography's order
    assert re.search(r"\[<a [^>]+>Anonymous, 2025</a>; <a [^>]+>Guo et al., 2024</a>\]",
                     (html / "chapters" / "02_words.html").read_text())


def test_tiny_book_bibliography_and_report(tiny_book):
    html = tiny_book / "html"
    bibliography = (html / "bibliography.html").read_text()
    labels = re.findall(r'<span class="label"><span class="fn-bracket">\[</span>([^<]+)<', bibliography)
    assert labels == sorted(KEYS, key=str.casefold)  # every entry, under its label, in the order chapter 0 lists them
    report = (html / "results" / "REPORT.html").read_text()
    markdown = (ROOT / "results" / "REPORT.md").read_text()
    assert len(re.findall(r'<img [^>]*src="\.\./_images/', report)) == markdown.count("![") > 0
    assert report.count("<table") == sum(line.startswith("|---") for line in markdown.splitlines()) > 0


def test_a_broken_link_fails_the_site_and_leaves_the_previous_one(tmp_path):
    chapters_dir, executed_dir, html = tmp_path / "chapters", tmp_path / "executed", tmp_path / "html"
    chapters_dir.mkdir(), executed_dir.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 0. Words\n\n[next](01_missing.ipynb)")])
    for folder in (chapters_dir, executed_dir):
        nbformat.write(notebook, folder / "00_words.ipynb")
    html.mkdir()
    (html / "old.html").write_text("a site from before")
    with pytest.raises(site.SiteError, match=r"(?s)was not built.*00_words.ipynb.*01_missing.ipynb"):
        site.render(find_chapters(chapters_dir), executed_dir, html, results=report_only(tmp_path / "results"))
    assert [p.name for p in html.iterdir()] == ["old.html"]  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chapters", "executed", "html", "results", "site"]  # no partial site
    assert not (tmp_path / "site" / "doctrees").exists()  # the next build reads every page again


def test_missing_inputs_are_refused_before_anything_is_written(tmp_path):
    chapters_dir = tmp_path / "chapters"
    chapters_dir.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 0. Words")]), chapters_dir / "00_words.ipynb")
    with pytest.raises(site.SiteError, match=r"needs files that do not exist: \S+/executed/00_words.ipynb \(chapter "
                                             r"00_words not executed\); \S+/results/REPORT.md \(the benchmark report"):
        site.write_source(find_chapters(chapters_dir), tmp_path / "executed", tmp_path / "source", results=tmp_path / "results")
    assert not (tmp_path / "source").exists()


def test_the_book_command_stops_on_a_site_error_with_its_message(tmp_path, monkeypatch, capsys):
    from modbal_lib import book, cli

    def broken(**options):
        raise site.SiteError("the website in html was not built (sphinx-build -W, status 1):\n00_x.ipynb:3: WARNING: ...")

    monkeypatch.setattr(book, "build", broken)
    assert cli.main(["book", "--fast", "--build-dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: the website in html was not built") and "00_x.ipynb:3: WARNING" in error


def test_claims_page_from_the_published_ledger(tmp_path):
    from modbal_lib import claims

    claim = claims.CLAIMS[0]
    ledger = tmp_path / "claims.json"
    ledger.write_text(json.dumps({"seeds": [0, 1, 2], "epochs": {"emoji": 40}, "fast": False, "findings": {
        claim.key: {"measured": "+1.0 [+0.5, +1.5] (n=3)", "verdict": claims.VERDICTS[0], "detail": ""}}}))
    page = site.claims_page(ledger)
    assert page.startswith("# What holds up") and "+1.0 [+0.5, +1.5] (n=3)" in page
    assert "(seeds [0, 1, 2]; epochs: emoji 40;" in page
    assert f"(../chapters/{claim.chapter})" in page  # from results/ to the chapter's page


# --- in a real browser -----------------------------------------------------------------------


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) from a thread; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # the browser left a page before a file of it arrived (a broken pipe): not the site's error

    server = Server(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


LINKS_JS = """return Array.from(document.querySelectorAll('[href],[src]'))
    .map(e => new URL(e.getAttribute('href') ?? e.getAttribute('src'), document.baseURI).href)
    .filter(url => !url.startsWith('data:') && !url.startsWith('javascript:'));"""
IMAGES_JS = "return Array.from(document.images).map(img => [img.complete, img.naturalWidth, img.src.slice(-60)]);"
CAPTIONS_JS = """return Array.from(document.querySelectorAll('article strong'))
    .filter(e => /^Figure \\d+\\.\\d+\\.$/.test(e.textContent.trim()) && e.getClientRects().length)
    .map(e => e.textContent.trim());"""  # the numbered captions a reader sees
TYPESET_JS = """const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.Hub) { done('no MathJax on the page'); }
else { MathJax.Hub.Queue(() => done(null)); }"""
# after typesetting: the maths Sphinx marked, how many of them MathJax drew (its TeX source kept in a script, its
# output next to it), MathJax's errors, and TeX left in the rendered text outside code
MATHS_JS = """const raw = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const parent = walker.currentNode.parentElement;
  if (!parent || parent.closest('pre, code, script, style, textarea') || !parent.getClientRects().length) continue;
  const text = walker.currentNode.textContent;
  if (/\\\\\\(|\\\\\\[|\\$\\$|\\\\frac/.test(text)) raw.push(text.trim().slice(0, 100));
}
const marked = Array.from(document.querySelectorAll('.math.notranslate'));
return {marked: marked.length,
        drawn: marked.filter(e => e.querySelector('script[type^="math/tex"]') && e.querySelector('.MathJax, .MathJax_MathML')).length,
        errors: document.querySelectorAll('.MathJax_Error, merror, .noError').length, raw: raw};"""


def requests_made(driver) -> list[str]:
    """The URLs the browser requested since the last call (Chromium's performance log, ``conftest.browser``)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def assert_stayed_local(driver, base: str, where: str) -> None:
    """No request since the last look went anywhere but the site at ``base`` (the browser's own chrome://
    pages are not the network)."""
    elsewhere = [url for url in requests_made(driver)
                 if url.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp") and not url.startswith(base)]
    assert elsewhere == [], f"{where} requested other hosts: {elsewhere}"


def check_links(driver, base: str, answered: dict[str, int]) -> None:
    """Every local href/src of the open page answers HTTP 200; same-page anchors name an element."""
    for url in driver.execute_script(LINKS_JS):
        if not url.startswith(base):
            continue  # another site (a paper's page): a link, not a request; not ours to check offline
        address, _, fragment = url.partition("#")
        if address not in answered:
            with urllib.request.urlopen(address, timeout=10) as response:
                answered[address] = response.status
        assert answered[address] == 200, f"{driver.current_url}: {url} answered {answered[address]}"
        if fragment and address == driver.current_url.partition("#")[0]:
            found = driver.execute_script(
                "return [arguments[0], decodeURIComponent(arguments[0])].some(name =>"
                " document.getElementById(name) !== null || document.getElementsByName(name).length > 0);", fragment)
            assert found, f"{driver.current_url}: no element for the anchor #{fragment}"


def screenshot(driver, path: Path) -> None:
    """Save what the browser shows, and make sure it is a real picture, not a blank page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path))
    with Image.open(path) as picture:
        assert picture.size[0] >= 800
        low, high = ImageStat.Stat(picture.convert("L")).extrema[0]
        assert high - low > 100, f"{path} is blank"


def wait_for_page(driver, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: d.current_url == url and d.execute_script("return document.readyState") == "complete")


def captions(executed_notebook: Path) -> list[str]:
    """The numbered figure captions (``**Figure N.k.**``) of a notebook's Markdown cells, in order."""
    notebook = nbformat.read(executed_notebook, as_version=4)
    return [label for cell in notebook.cells if cell.cell_type == "markdown"
            for label in re.findall(r"\*\*(Figure \d+\.\d+\.)\*\*", cell.source)]


def figure_count(executed_notebook: Path) -> int:
    """PNG/JPEG figures among the outputs of an executed notebook."""
    notebook = nbformat.read(executed_notebook, as_version=4)
    return sum(any(kind in output.get("data", {}) for kind in ("image/png", "image/jpeg"))
               for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


def check_page(driver, base: str, answered: dict[str, int]) -> dict:
    """The open page: images decoded, maths typeset by the site's MathJax, links resolve, no request left
    localhost. Returns what MATHS_JS found."""
    page = driver.current_url
    images = driver.execute_script(IMAGES_JS)
    assert all(complete and width > 0 for complete, width, _ in images), f"{page}: undecoded images {images}"
    driver.set_script_timeout(60)
    assert driver.execute_async_script(TYPESET_JS) is None, f"{page}: MathJax did not load"
    maths = driver.execute_script(MATHS_JS)
    assert maths["drawn"] == maths["marked"] and maths["errors"] == 0 and maths["raw"] == [], f"{page}: {maths}"
    check_links(driver, base, answered)
    assert_stayed_local(driver, base, page)
    return {"images": len(images), "captions": driver.execute_script(CAPTIONS_JS), **maths}


def search(driver, base: str, word: str) -> list[str]:
    """Type ``word`` into the search box and press Enter; returns the result pages' URLs."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, "button.search-button-field").click()
    box = WebDriverWait(driver, 10).until(
        lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "input[name='q']") if e.is_displayed()), None))
    box.send_keys(word, Keys.ENTER)
    wait_for_page(driver, base + f"search.html?q={word}")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results .search-summary"))
    return [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")]


def check_site(driver, site_dir: Path) -> dict[str, dict]:
    """Open the front page, then every page of the sidebar in its order, checking each (``check_page``)
    and saving its screenshot under ``<build>/screenshots/``; then search for "DeltaGap". Returns what
    was found on each page, by its path in the site."""
    from selenium.webdriver.common.by import By

    screenshots = site_dir.parent / "screenshots"
    shutil.rmtree(screenshots, ignore_errors=True)
    answered: dict[str, int] = {}
    found = {}
    requests_made(driver)  # forget what the browser requested before (another site, on another port)
    with serve(site_dir) as base:
        driver.get(base + "index.html")
        wait_for_page(driver, base + "index.html")
        found["index.html"] = check_page(driver, base, answered)
        sidebar = [(a.get_attribute("href").partition("#")[0], a.text.strip()) for a in
                   driver.find_elements(By.CSS_SELECTOR, "nav.bd-docs-nav a.reference.internal")]
        sidebar = [(url, title) for url, title in sidebar if url != base + "index.html"]  # the front page, done
        for url, title in sidebar:
            driver.get(url)
            wait_for_page(driver, url)
            path = url.removeprefix(base)
            heading = driver.find_element(By.CSS_SELECTOR, "article h1").text
            assert heading.startswith(title), f"{path}: titled {heading!r}, not {title!r} as in the sidebar"
            found[path] = check_page(driver, base, answered) | {"title": title}
            screenshot(driver, screenshots / (Path(path).stem + ".png"))
        driver.get(base + "index.html")
        wait_for_page(driver, base + "index.html")
        found["search DeltaGap"] = search(driver, base, "DeltaGap")
        assert_stayed_local(driver, base, "the search")
    return found


def chapter_pages(found: dict) -> dict[str, dict]:
    return {Path(path).stem: page for path, page in found.items() if path.startswith("chapters/")}


def test_tiny_book_in_chromium(browser, tiny_book):
    found = check_site(browser, tiny_book / "html")
    chapters = chapter_pages(found)
    assert list(chapters) == list(TINY_BOOK)
    assert [page["title"] for page in chapters.values()] == [c.title for c in find_chapters(tiny_book.parent / "chapters")]
    for slug, page in chapters.items():
        assert page["images"] >= figure_count(tiny_book / "executed" / f"{slug}.ipynb")
        assert page["captions"] == captions(tiny_book / "executed" / f"{slug}.ipynb") == [
            f"Figure {slug[1]}.{k + 1}." for k in range(page["images"])]
        assert page["marked"] >= 2 and page["drawn"] == page["marked"]
    assert "results/REPORT.html" in found and "bibliography.html" in found
    found_in = [url.rsplit("/", 2)[-2] + "/" + url.rsplit("/", 1)[-1] for url in found["search DeltaGap"]]
    assert sorted(found_in) == ["chapters/01_plots.html", "results/REPORT.html"]  # the pages that say it
    assert sorted(p.name for p in (tiny_book / "screenshots").iterdir()) == sorted(
        Path(path).stem + ".png" for path in found if path.endswith(".html") and path != "index.html")


REAL_BUILDS = {"make book": ROOT / "_build", "make test (fast)": ROOT / "_build" / "fast"}


@pytest.mark.parametrize("build_dir", REAL_BUILDS.values(), ids=REAL_BUILDS.keys())
def test_real_book_in_chromium(browser, build_dir):
    if not (build_dir / "html" / "searchindex.js").is_file():
        pytest.skip(f"no book website in {build_dir / 'html'}: run the book command first")
    found = check_site(browser, build_dir / "html")
    built = sorted(p.stem for p in (build_dir / "executed").glob("[0-9][0-9]_*.ipynb"))
    chapters = chapter_pages(found)
    assert list(chapters) == [c.slug for c in find_chapters() if c.slug in built]
    for slug, page in chapters.items():
        assert page["images"] >= figure_count(build_dir / "executed" / f"{slug}.ipynb"), slug
        assert page["captions"] == captions(build_dir / "executed" / f"{slug}.ipynb"), slug
        assert page["drawn"] > 0, f"{slug}: no typeset maths"
    assert any("/chapters/01_dominant_modality_bias.html" in url for url in found["search DeltaGap"])
