"""The book's bibliography, ``chapters/references.bib``, and its one form of citation.

A chapter cites a work as ``[label]``: ``[Kim et al., 2025]`` (three or more authors),
``[Yao and Mihalcea, 2022]`` (two), ``[Anonymous, 2025]`` (one). ``citation_label`` makes the label
from a BibTeX entry (first author's surname with its particles, "van der Maaten"; the ``year`` field
as written, so two works that would share a label are told apart in the .bib with ``2020a``/``2020b``),
``find_citations`` finds the labels cited in a text, and ``bibliography_markdown`` formats the whole
bibliography with pybtex's ``unsrt`` style and its Markdown backend, one entry per line, each after
its ``[label]``, sorted by label. Chapter 0 prints it; ``tests/test_references.py`` checks that every
label the chapters cite is in the .bib and every entry is cited.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from pybtex.database import BibliographyData, Entry, parse_file
from pybtex.exceptions import PybtexError
from pybtex.plugin import find_plugin
from pybtex.richtext import Text

BIB = Path(__file__).resolve().parents[1] / "chapters" / "references.bib"
STYLE = "unsrt"  # pybtex's formatting style; the entries are then sorted by label

# one label: a name part without brackets, commas or semicolons that starts with a letter, then ", YYYY"
# (an optional letter tells apart two works of one label); several labels in one bracket are "; "-separated
_LABEL = r"[^\W\d_][^\[\]\n,;]*, \d{4}[a-z]?"
_CITATION = re.compile(rf"\[({_LABEL}(?:; {_LABEL})*)\]")


@functools.cache
def _backend(name: str):
    """pybtex's output backend ``name`` (looked up once: each lookup scans the installed entry points)."""
    return find_plugin("pybtex.backends", name)()


def _plain(latex: str) -> str:
    """BibTeX text as plain Unicode: braces dropped, accents such as {\\'e} resolved."""
    return Text.from_latex(latex).render(_backend("text"))


def citation_label(entry: Entry) -> str:
    """The in-text label of ``entry`` (without brackets): "Kim et al., 2025", "Yao and Mihalcea, 2022",
    "Anonymous, 2025". Raises ValueError naming the entry when it has no author or no year."""
    authors = entry.persons.get("author", [])
    year = entry.fields.get("year", "").strip()
    if not authors or not year:
        missing = " and ".join(name for name, value in (("author", authors), ("year", year)) if not value)
        raise ValueError(f"references: entry {entry.key!r} has no {missing}; a citation label needs both")
    surnames = [_plain(" ".join(person.prelast_names + person.last_names)) for person in authors[:2]]
    if len(authors) == 1:
        names = surnames[0]
    elif len(authors) == 2 and str(authors[1]) != "others":
        names = f"{surnames[0]} and {surnames[1]}"
    else:
        names = f"{surnames[0]} et al."
    return f"{names}, {_plain(year)}"


def labels(data: BibliographyData, source: str | os.PathLike = "the bibliography") -> dict[str, str]:
    """{label: entry key} of every entry; raises ValueError when two entries give the same label."""
    found: dict[str, str] = {}
    for key, entry in data.entries.items():
        label = citation_label(entry)
        if label in found:
            raise ValueError(f"references: entries {found[label]!r} and {key!r} of {source} both give the label "
                             f"[{label}]; tell them apart with year = {{YYYYa}} / {{YYYYb}}")
        found[label] = key
    return found


def load(path: str | os.PathLike = BIB) -> BibliographyData:
    """The entries of the .bib at ``path`` (default: the book's), checked: the file exists, parses, holds
    at least one entry, and every entry has a unique label. Errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"references: no bibliography file at {path} (expected a BibTeX .bib file)")
    try:
        data = parse_file(str(path), bib_format="bibtex")
    except PybtexError as error:
        raise ValueError(f"references: cannot parse {path} as BibTeX: {error}") from error
    if not data.entries:
        raise ValueError(f"references: {path} holds no BibTeX entries")
    labels(data, path)
    return data


def find_citations(text: str) -> list[str]:
    """The labels cited in ``text`` as ``[Surname et al., 2025]``, ``[A and B, 2022]``, ``[Surname, 2025]``
    (or several in one bracket, "; "-separated), in order of appearance, repeats kept."""
    return [label for match in _CITATION.finditer(text) for label in match.group(1).split("; ")]


def bibliography_markdown(path: str | os.PathLike = BIB) -> str:
    """The bibliography as Markdown: one list item per entry, ``- [label] formatted entry``, sorted by
    label; each entry formatted by pybtex's unsrt style and rendered by its Markdown backend."""
    data = load(path)
    style = find_plugin("pybtex.style.formatting", STYLE)()
    backend = _backend("markdown")
    try:
        formatted = list(style.format_entries(data.entries.values()))
    except PybtexError as error:
        raise ValueError(f"references: cannot format {path}: {error}") from error
    lines = [(citation_label(data.entries[item.key]), " ".join(item.text.render(backend).split("\n")))
             for item in formatted]
    return "\n".join(f"- [{label}] {text}" for label, text in sorted(lines, key=lambda line: line[0].casefold()))
