"""Sphinx configuration of the book's website (``modbal_lib.site.render`` runs ``sphinx-build -c`` on this folder).

The source folder it reads is written by ``modbal_lib.site.write_source``: the executed chapters
(``chapters/NN_slug.ipynb``, never executed again here), the benchmark report and the claims ledger
(``results/``), the bibliography page and ``references.bib``. Pages are rendered by myst-nb and laid out
by sphinx-book-theme; maths is typeset by the MathJax 2.7 files of the ``jupyter-server-mathjax`` wheel,
copied into the site, so the site works offline.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import jupyter_server_mathjax
import pybtex.plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting import BaseSortingStyle
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.label import LabelReferenceStyle

from modbal_lib.references import citation_label
from modbal_lib.site import BOOK_TITLE

project = BOOK_TITLE
author = "the modbal authors"
copyright = "the modbal authors (MIT licence)"
root_doc = "index"
exclude_patterns = ["**.ipynb_checkpoints"]
extensions = ["myst_nb", "sphinxcontrib.bibtex"]

# --- notebooks and Markdown (myst-nb, myst-parser) ----------------------------------------------------
nb_execution_mode = "off"  # the book command executed the chapters with papermill; never run them again
nb_render_markdown_format = "myst"  # Markdown a cell prints (tables, citations, $maths$) is MyST, as in the cells
nb_merge_streams = True  # one output block per cell for interleaved prints
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_update_mathjax = False  # its MathJax 3+ settings do not apply to the MathJax 2 served below

# --- maths, served by the site itself (no CDN) -------------------------------------------------------
MATHJAX_FILES = Path(jupyter_server_mathjax.__file__).parent / "static"  # MathJax 2.7
mathjax_path = "mathjax/MathJax.js"  # relative to _static/ (Sphinx refuses a query string on a local file)
mathjax2_config = {
    "config": ["TeX-AMS-MML_HTMLorMML-full.js"],
    # only the delimiters Sphinx writes around maths, \( \) and \[ \]: a "$" in prose or an output stays a dollar
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                "processEscapes": False, "processEnvironments": False},
    # the wheel holds the STIX web fonts only (as Jupyter's classic notebook configured them)
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web", "imageFont": None,
                 "linebreaks": {"automatic": True}},
    "messageStyle": "none",
}

# --- citations: the kit's own labels, [Kim et al., 2025], in the text and in the bibliography ------------


class KitLabels(BaseLabelStyle):
    """Each entry's label is the one the chapters cite it by (``modbal_lib.references.citation_label``)."""

    def format_labels(self, sorted_entries):
        return [citation_label(entry) for entry in sorted_entries]


class KitOrder(BaseSortingStyle):
    """Entries in the order of their labels, as chapter 0 lists them."""

    def sorting_key(self, entry):
        return citation_label(entry).casefold()


class KitStyle(UnsrtStyle):
    """pybtex's unsrt entries (as chapter 0 prints them), labelled and sorted by the kit's labels."""

    default_label_style = KitLabels
    default_sorting_style = KitOrder


@dataclass
class KitReferences(LabelReferenceStyle):
    """``{cite:p}`a,b``` reads [A et al., 2025; B and C, 2022], as the chapters write it."""

    bracket_parenthetical: BracketStyle = field(default_factory=lambda: BracketStyle(sep="; "))


pybtex.plugin.register_plugin("pybtex.style.formatting", "modbal", KitStyle, force=True)
register_plugin("sphinxcontrib.bibtex.style.referencing", "modbal", KitReferences, force=True)
bibtex_bibfiles = []  # set in setup(): the source folder's copy of chapters/references.bib
bibtex_default_style = "modbal"
bibtex_reference_style = "modbal"

# --- the page layout ------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = project
html_copy_source = False  # each chapter's note links its notebook (_downloads/); no second copy in _sources/
html_theme_options = {
    "home_page_in_toc": False,  # the book's title above the sidebar links the front page
    "show_navbar_depth": 1,
    "show_toc_level": 2,  # the "Contents" column of each page: its sections and subsections
    "use_download_button": True,  # the page as PDF (the browser's print)
    "use_fullscreen_button": False,
}

# Warnings are errors (sphinx-build -W). The allow-list is for a warning a package gives needlessly, each with
# its reason; the book builds without one today.
suppress_warnings: list[str] = []


def copy_mathjax(app):
    """MathJax's files into ``_static/mathjax`` of the site (once per build, before pages are written)."""
    shutil.copytree(MATHJAX_FILES, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))


def source_bibliography(app, config):
    """``references.bib`` of the source folder (sphinxcontrib-bibtex reads a relative path from this folder)."""
    config.bibtex_bibfiles = [str(Path(app.srcdir) / "references.bib")]


def setup(app):
    app.set_html_assets_policy("always")  # MathJax on every page: outputs and the report hold maths too
    app.connect("config-inited", source_bibliography)
    app.connect("builder-inited", copy_mathjax)
