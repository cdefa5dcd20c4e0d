"""The book's bibliography (chapters/references.bib) and its one citation form, [label]."""

import re
from pathlib import Path

import jupytext
import pytest
from pybtex.database import Entry, Person

from modbal_lib import references

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))

TWO = """@article{one2020x, author = {Yao, Yiqun and Mihalcea, Rada}, title = {A title}, journal = {J}, year = {2022}}
@misc{two2019y, author = {van der Maaten, Laurens and Hinton, Geoffrey and Roweis, Sam}, title = {B}, year = {2008}}
"""


def entry(authors: str, year: str = "2025") -> Entry:
    return Entry("misc", fields={"title": "T", "year": year},
                 persons={"author": [Person(name) for name in authors.split(" and ")]})


def static_markdown(path: Path) -> str:
    return "\n".join(cell.source for cell in jupytext.read(path).cells if cell.cell_type == "markdown")


def test_labels_of_the_books_entries():
    found = references.labels(references.load())
    assert found["Kim et al., 2025"] == "kim2025balgrad"
    assert found["Guo et al., 2024"] == "guo2024cggm"
    assert found["Anonymous, 2025"] == "anonymous2025goal"
    assert found["Yao and Mihalcea, 2022"] == "yao2022mslr"
    assert found["Peng et al., 2022"] == "peng2022ogmge"
    assert found["Wang et al., 2020"] == "wang2020gblending"
    assert found["Kingma and Ba, 2015"] == "kingma2015adam"


def test_citation_label_forms():
    assert references.citation_label(entry("Anonymous")) == "Anonymous, 2025"
    assert references.citation_label(entry("Yao, Yiqun and Mihalcea, Rada", "2022")) == "Yao and Mihalcea, 2022"
    assert references.citation_label(entry("Kim, MiHyeon and Lee, Eunju and Choi, Juhwan")) == "Kim et al., 2025"
    assert references.citation_label(entry("Baid, Ujjwal and others", "2021")) == "Baid et al., 2021"
    assert references.citation_label(entry("van der Maaten, Laurens", "2008")) == "van der Maaten, 2008"
    assert references.citation_label(entry("P{\\'o}czos, Barnab{\\'a}s", "2020a")) == "Póczos, 2020a"


def test_citation_label_needs_author_and_year():
    no_year = entry("Solo, Han", year="")
    no_year.key = "ny"
    with pytest.raises(ValueError, match="'ny' has no year"):
        references.citation_label(no_year)
    nobody = Entry("misc", fields={"title": "T", "year": "2020"})
    nobody.key = "nobody"
    with pytest.raises(ValueError, match="'nobody' has no author"):
        references.citation_label(nobody)


def test_bibliography_markdown_one_sorted_line_per_entry():
    text = references.bibliography_markdown()
    lines = text.splitlines()
    assert len(lines) == len(references.load().entries)
    assert all(line.startswith("- [") for line in lines)
    found = [re.match(r"- \[([^\]]+)\]", line)[1] for line in lines]
    assert found == sorted(found, key=str.casefold)
    balgrad = next(line for line in lines if line.startswith("- [Kim et al., 2025] "))
    # pybtex's unsrt style through its Markdown backend: authors in full, the arXiv id, Markdown escapes
    assert "MiHyeon Kim, Eunju Lee, Juhwan Choi, and YoungBin Kim" in balgrad
    assert "arXiv:2503\\.13834" in balgrad and "[https://arxiv\\.org/abs/2503\\.13834](" in balgrad
    cggm = next(line for line in lines if line.startswith("- [Guo et al., 2024] "))
    assert "*Advances in Neural Information Processing Systems \\(NeurIPS 2024\\)*" in cggm


def test_bibliography_of_a_small_file(tmp_path):
    bib = tmp_path / "small.bib"
    bib.write_text(TWO)
    lines = references.bibliography_markdown(bib).splitlines()
    assert [line.split("]")[0] + "]" for line in lines] == ["- [van der Maaten et al., 2008]",
                                                             "- [Yao and Mihalcea, 2022]"]
    assert lines[1] == "- [Yao and Mihalcea, 2022] Yiqun Yao and Rada Mihalcea\\. A title\\. *J*, 2022\\."


def test_missing_empty_and_broken_files_are_named(tmp_path):
    missing = tmp_path / "nowhere.bib"
    with pytest.raises(FileNotFoundError, match="nowhere.bib"):
        references.load(missing)
    empty = tmp_path / "empty.bib"
    empty.write_text("% nothing here\n")
    with pytest.raises(ValueError, match="empty.bib holds no BibTeX entries"):
        references.load(empty)
    broken = tmp_path / "broken.bib"
    broken.write_text("@article{x2020, author = {A, B}, title = {unterminated\n")
    with pytest.raises(ValueError, match="cannot parse .*broken.bib"):
        references.load(broken)
    duplicate = tmp_path / "duplicate.bib"
    duplicate.write_text(TWO + TWO.replace("one2020x", "three2022z").split("\n")[0] + "\n")
    with pytest.raises(ValueError, match=r"'one2020x' and 'three2022z' .*\[Yao and Mihalcea, 2022\]"):
        references.load(duplicate)
    no_year = tmp_path / "no_year.bib"
    no_year.write_text("@misc{ny, author = {Solo, Han}, title = {T}}\n")
    with pytest.raises(ValueError, match="'ny' has no year"):
        references.bibliography_markdown(no_year)


def test_find_citations():
    text = ("BalGrad [Kim et al., 2025] and MSLR [Yao and Mihalcea, 2022]; GOAL [Anonymous, 2025]; "
            "two at once [Peng et al., 2022; Li et al., 2023]; a particle [van der Maaten and Hinton, 2008]; "
            "a told-apart year [Wang et al., 2020b]; again [Kim et al., 2025]. Not citations: [1, 2020], "
            "a link [chapter 3](03_gradients_first_order.ipynb), a list [a, b].")
    assert references.find_citations(text) == [
        "Kim et al., 2025", "Yao and Mihalcea, 2022", "Anonymous, 2025", "Peng et al., 2022", "Li et al., 2023",
        "van der Maaten and Hinton, 2008", "Wang et al., 2020b", "Kim et al., 2025"]
    assert references.find_citations("no citation here") == []


def test_every_citation_in_the_chapters_resolves():
    known = references.labels(references.load())
    unresolved = {path.name: sorted({label for label in references.find_citations(static_markdown(path))
                                     if label not in known}) for path in CHAPTERS}
    assert {name: labels for name, labels in unresolved.items() if labels} == {}


def test_every_entry_is_cited_in_the_chapters_or_readme():
    text = "\n".join([static_markdown(path) for path in CHAPTERS] + [(ROOT / "README.md").read_text()])
    cited = set(references.find_citations(text))
    uncited = sorted(label for label in references.labels(references.load()) if label not in cited)
    assert uncited == []
