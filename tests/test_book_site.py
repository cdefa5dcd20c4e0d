"""The HTML book is a static site: contents in order, figures embedded, chapters linked, no broken links.

The browser tests serve a built site on 127.0.0.1 and open every page in headless Chromium
(Selenium): each page loads, every image is decoded, every local link answers HTTP 200, the
Previous / Contents / Next links go where they should, and a screenshot of each page is saved
under ``_build/screenshots/{tiny_book,book}/``. One test builds a tiny three-chapter book (executed
with papermill, like the real one); another checks the real book when ``make book`` has built it.
"""

import contextlib
import functools
import http.server
import shutil
import threading
import urllib.request
from pathlib import Path

import nbformat
import pytest
from PIL import Image, ImageStat

from modbal_lib.book import broken_links, build, find_chapters, render_html

ROOT = Path(__file__).resolve().parents[1]
REAL_SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"  # kept after the run, to look at (and for CI to keep)

FIGURE = """\
import matplotlib.pyplot as plt
figure, axis = plt.subplots(figsize=(4, 2.5))
axis.plot([0, 1, 2, 3], [{0}, 1, 0, 2], marker="o")
axis.set_title("figure {0}")
plt.show()
"""


def tiny_chapter(title: str, figures: int) -> nbformat.NotebookNode:
    """A chapter in the book's conventions (title, parameters cell) drawing ``figures`` plots."""
    cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nSome text, and a [link to the top](#{title.replace(' ', '-')}); "
                                           "[the first chapter](00_start.ipynb#0.-Start-here) and "
                                           "[the report](../results/REPORT.md) as JupyterLab opens them."),
             nbformat.v4.new_code_cell("FAST = False", metadata={"tags": ["parameters"]})]
    cells += [nbformat.v4.new_code_cell(FIGURE.format(number)) for number in range(figures)]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


TINY_BOOK = {"00_start": ("0. Start here", 1), "01_plots": ("1. Two plots", 2), "02_words": ("2. Only words", 0)}


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory):
    """A three-chapter book executed and rendered by ``build`` (the book command's code path)."""
    root = tmp_path_factory.mktemp("book")
    (root / "chapters").mkdir()
    for slug, (title, figures) in TINY_BOOK.items():
        nbformat.write(tiny_chapter(title, figures), root / "chapters" / f"{slug}.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        # the tests run matplotlib headless (Agg); the chapters' kernels show figures inline
        patch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        report = build(fast=True, build_dir=root / "_build", chapters_dir=root / "chapters")
    assert [slug for slug, _ in report] == list(TINY_BOOK)
    return root / "_build"


def test_tiny_book_is_a_self_contained_site(tiny_book):
    site = tiny_book / "html"
    assert sorted(p.name for p in site.iterdir()) == ["00_start.html", "01_plots.html", "02_words.html",
                                                       "book.css", "index.html", "report.html"]
    index = (site / "index.html").read_text()
    positions = [index.index(f'<a href="{slug}.html">{title}</a>') for slug, (title, _) in TINY_BOOK.items()]
    assert positions == sorted(positions)
    for slug, (_, figures) in TINY_BOOK.items():
        page = (site / f"{slug}.html").read_text()
        assert page.count('src="data:image/png;base64,') == figures
        assert '<link rel="stylesheet" href="book.css">' in page
        assert page.count('rel="index" href="index.html"') == 2  # navigation above and below
        # links written for JupyterLab point at the site's pages
        assert 'href="00_start.html#0.-Start-here"' in page and 'href="report.html"' in page
        assert 'href="00_start.ipynb' not in page and "REPORT.md\"" not in page
    assert 'href="report.html"' in index
    plots = (site / "01_plots.html").read_text()
    assert 'rel="prev" href="00_start.html"' in plots and 'rel="next" href="02_words.html"' in plots
    assert broken_links(site) == []


def test_report_page_embeds_every_figure_and_refuses_a_missing_one(tmp_path):
    from modbal_lib.book import REPORT, report_page

    page = report_page()
    assert page.count('src="data:image/png;base64,') == REPORT.read_text().count("](") > 0
    separators = [line for line in REPORT.read_text().splitlines() if line.startswith("|---")]
    assert page.count("<table>") == len(separators) > 0 and 'href="index.html"' in page
    (tmp_path / "REPORT.md").write_text("# Report\n\n![curves](emoji/missing.png)\n")
    with pytest.raises(ValueError, match=r"REPORT.md: the figure 'emoji/missing.png' does not exist"):
        report_page(tmp_path / "REPORT.md")


def test_broken_links_names_each_missing_local_file(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "plot.png").write_bytes(b"png")
    (tmp_path / "other.html").write_text("<p>other</p>")
    (tmp_path / "page.html").write_text(
        '<a href="other.html#part">fine</a> <a href="#top">anchor</a> <a href="https://example.org/x">web</a>'
        '<img src="figures/plot.png"> <img src="data:image/png;base64,AAAA"> <a href="/other.html">root</a>'
        '<a href="missing.html">gone</a> <img src="figures/nope.png"> <a href="../outside.html">out</a>'
        '<script src="js/app%20v2.js"></script>'
    )
    assert broken_links(tmp_path) == [
        "page.html: 'missing.html' -> no such file",
        "page.html: 'figures/nope.png' -> no such file",
        "page.html: '../outside.html' points outside the site",
        "page.html: 'js/app%20v2.js' -> no such file",
    ]


def test_markdown_images_are_embedded_and_missing_ones_refused(tmp_path):
    chapters_dir, executed, site = tmp_path / "chapters", tmp_path / "executed", tmp_path / "html"
    chapters_dir.mkdir(), executed.mkdir()
    Image.new("RGB", (8, 8), "red").save(chapters_dir / "diagram.png")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 0. Diagram\n\n![a diagram](diagram.png)")])
    for folder in (chapters_dir, executed):
        nbformat.write(notebook, folder / "00_diagram.ipynb")
    render_html(find_chapters(chapters_dir), executed, site)
    page = (site / "00_diagram.html").read_text()
    assert 'src="data:image/png;base64,' in page and 'src="diagram.png"' not in page

    (chapters_dir / "diagram.png").unlink()
    with pytest.raises(ValueError, match=r"00_diagram.html: 'diagram.png' -> no such file"):
        render_html(find_chapters(chapters_dir), executed, site)


# --- in a real browser -----------------------------------------------------------------------


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) from a thread; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


LINKS_JS = """return Array.from(document.querySelectorAll('[href],[src]'))
    .map(e => new URL(e.getAttribute('href') ?? e.getAttribute('src'), document.baseURI).href)
    .filter(url => !url.startsWith('data:'));"""
IMAGES_JS = "return Array.from(document.images).map(img => [img.complete, img.naturalWidth, img.src.slice(0, 30)]);"


def check_links(driver, base: str, answered: dict[str, int]) -> None:
    """Every local href/src of the open page answers HTTP 200; same-page anchors name an element."""
    for url in driver.execute_script(LINKS_JS):
        if not url.startswith(base):
            continue  # another site (a CDN, a paper): not ours to check offline
        address, _, fragment = url.partition("#")
        if address not in answered:
            with urllib.request.urlopen(address, timeout=10) as response:
                answered[address] = response.status
        assert answered[address] == 200, f"{driver.current_url}: {url} answered {answered[address]}"
        if fragment and address == driver.current_url.partition("#")[0]:
            # as a browser resolves a fragment: the id as written first (nbconvert percent-encodes
            # some characters of heading ids, e.g. the backslash of $\rho$), then percent-decoded
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

    WebDriverWait(driver, 20).until(
        lambda d: d.current_url == url and d.execute_script("return document.readyState") == "complete")


def check_site(driver, site: Path, screenshots: Path) -> list[str]:
    """Open the index, follow it to the first chapter, then Next through every chapter and back to
    Contents, checking each page on the way; returns the slugs visited."""
    from selenium.webdriver.common.by import By

    answered: dict[str, int] = {}
    with serve(site) as base:
        driver.get(base + "index.html")
        contents = [(a.get_attribute("href"), a.text) for a in driver.find_elements(By.CSS_SELECTOR, "ul.modbal-contents a")]
        assert contents, "the index lists no chapters"
        check_links(driver, base, answered)
        screenshot(driver, screenshots / "index.png")
        driver.find_elements(By.CSS_SELECTOR, "ul.modbal-contents a")[0].click()
        for number, (url, title) in enumerate(contents):
            wait_for_page(driver, url)
            slug = url.rsplit("/", 1)[1].removesuffix(".html")
            assert driver.find_element(By.TAG_NAME, "h1").text.startswith(title)
            images = driver.execute_script(IMAGES_JS)
            assert all(complete and width > 0 for complete, width, _ in images), f"{slug}: undecoded images {images}"
            executed = site.parent / "executed" / f"{slug}.ipynb"
            assert len(images) >= figure_count(executed), f"{slug}: fewer images than the notebook's figures"
            check_links(driver, base, answered)
            nav = {rel: [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, f'nav a[rel="{rel}"]')]
                   for rel in ("prev", "index", "next")}
            assert nav["index"] == [base + "index.html"] * 2
            assert nav["prev"] == ([contents[number - 1][0]] * 2 if number > 0 else [])
            assert nav["next"] == ([contents[number + 1][0]] * 2 if number + 1 < len(contents) else [])
            screenshot(driver, screenshots / f"{slug}.png")
            if images:
                driver.execute_script("document.images[0].scrollIntoView({block: 'center'});")
                screenshot(driver, screenshots / f"{slug}-figure.png")
            if nav["next"]:
                driver.find_element(By.CSS_SELECTOR, 'nav.modbal-top a[rel="next"]').click()
        driver.find_element(By.CSS_SELECTOR, 'nav.modbal-top a[rel="index"]').click()
        wait_for_page(driver, base + "index.html")
    return [url.rsplit("/", 1)[1].removesuffix(".html") for url, _ in contents]


def figure_count(executed_notebook: Path) -> int:
    """PNG/JPEG figures among the outputs of an executed notebook."""
    notebook = nbformat.read(executed_notebook, as_version=4)
    return sum(any(kind in output.get("data", {}) for kind in ("image/png", "image/jpeg"))
               for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


def test_tiny_book_in_chromium(browser, tiny_book):
    screenshots = SCREENSHOTS / "tiny_book"
    shutil.rmtree(screenshots, ignore_errors=True)
    visited = check_site(browser, tiny_book / "html", screenshots)
    assert visited == list(TINY_BOOK)
    assert sorted(p.name for p in screenshots.iterdir()) == [
        "00_start-figure.png", "00_start.png", "01_plots-figure.png", "01_plots.png", "02_words.png", "index.png"]


@pytest.mark.skipif(not (REAL_SITE / "index.html").exists(), reason="no built book: run `make book` first")
def test_real_book_in_chromium(browser):
    shutil.rmtree(SCREENSHOTS / "book", ignore_errors=True)
    visited = check_site(browser, REAL_SITE, SCREENSHOTS / "book")
    built = {p.stem for p in (ROOT / "_build" / "executed").glob("*.ipynb")}
    assert visited == [c.slug for c in find_chapters() if c.slug in built]
