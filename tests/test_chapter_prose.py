"""The chapters' static text: no typed results, and the apparatus of a textbook in every chapter.

A number about this kit's runs is printed by code from the run; a static Markdown cell may hold a
decimal number or a percentage only inside a paper quotation, a blockquote whose first line starts
with ``> **Paper (`` (the one marker of the book, chapter 0 explains it). Every chapter opens with
what it teaches and the paper sections it follows, numbers its figure captions, closes with a
summary and exercises, and gives each exercise a hint and a worked solution that executes.
"""

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))

PAPER_QUOTE = "> **Paper ("
# a number right after one of these words names a place, not a result: "Section 3.2.1", "Figure 4.2"
PLACE_WORDS = (r"Figures?|Figs?\.|Tables?|Sections?|Secs?\.|§|Eqs?\.|Equations?|Algorithm|Appendix|arXiv:?"
               r"|[Cc]hapters?|[Ee]xercises?|[Ss]teps?")
PLACE = re.compile(rf"(?:{PLACE_WORDS})\s*[A-Z]?\d+(?:\.\d+)*")
CONFIDENCE_LEVEL = re.compile(r"95\s?(?:\\?%|per ?cent)")
CODE_SPAN = re.compile(r"`[^`\n]*`")
TYPED_NUMBER = re.compile(r"(?<![\w.])\d*\.\d+(?![\w])|\d+(?:\.\d+)?\s?(?:\\?%|per ?cent)")
FIGURE_CELL = re.compile(r"plt\.show\(\)|display\([\w.]*(?:plots\.|_figure\()|\b\w+_panel\(")
CAPTION = re.compile(r"\*\*Figure (\d+)\.(\d+)\.\*\*")


def without_paper_quotes(markdown: str) -> str:
    """The Markdown with every paper quotation block (consecutive '>' lines opened by the marker) removed."""
    kept, quoting = [], False
    for line in markdown.splitlines():
        if line.startswith(PAPER_QUOTE):
            quoting = True
        elif not line.startswith(">"):
            quoting = False
        if not quoting:
            kept.append(line)
    return "\n".join(kept)


def typed_numbers(markdown: str) -> list[str]:
    """Decimal numbers and percentages in static Markdown that no exemption covers."""
    text = without_paper_quotes(markdown)
    text = CODE_SPAN.sub(lambda m: "" if re.search(r"[A-Za-z=]", m.group()) else m.group(), text)
    text = CONFIDENCE_LEVEL.sub("", PLACE.sub("", text))
    return [m.group().strip() for m in TYPED_NUMBER.finditer(text)]


def cells(path: Path):
    return jupytext.read(path).cells


def markdown_cells(path: Path) -> list[str]:
    return [c.source for c in cells(path) if c.cell_type == "markdown"]


def chapter_number(path: Path) -> int:
    return int(path.name[:2])


# --- the checker itself -------------------------------------------------------------------------

def test_typed_numbers_finds_results_and_spares_places_settings_and_quotes():
    assert typed_numbers("Joint training reaches 85.3 on emoji, 12 % above chance.") == ["85.3", "12 %"]
    assert typed_numbers("the weights stay near 0.5") == ["0.5"]
    assert typed_numbers("Section 3.2.1, Figure 4.2, Eq. 6, Table 3, arXiv 2503.13834 and §7.1") == []
    assert typed_numbers("the 95 % interval; `clip_norm=0.8` and `gamma`; T = 1 and 20 epochs") == []
    assert typed_numbers("a bare `0.8` is still a number") == ["0.8"]
    quoted = ("> **Paper (BalGrad, Table 1, Food-101, missing):** ΔGap 50.53 (baseline),\n"
              "> 39.54 (BalGrad).\n\nWe measured 41.2.")
    assert typed_numbers(quoted) == ["41.2"]
    assert typed_numbers("> a plain blockquote with 0.3 is not a paper quote") == ["0.3"]


# --- the chapters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name[:2])
def test_no_typed_results_in_static_markdown(chapter):
    found = {i: typed_numbers(source) for i, source in enumerate(markdown_cells(chapter))}
    found = {i: numbers for i, numbers in found.items() if numbers}
    assert not found, (f"{chapter.name}: decimal numbers or percentages typed in static Markdown (cell index: numbers); "
                       f"print them from the run or quote them in a '{PAPER_QUOTE}' block: {found}")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name[:2])
def test_chapter_opens_with_what_it_teaches_and_its_paper_sections(chapter):
    opening = "\n".join(markdown_cells(chapter)[:3])
    assert "**You will learn:**" in opening and "**Paper sections:**" in opening


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name[:2])
def test_every_figure_has_a_numbered_caption_right_below(chapter):
    all_cells, number, expected = cells(chapter), chapter_number(chapter), 1
    for i, cell in enumerate(all_cells):
        if cell.cell_type != "code" or not FIGURE_CELL.search(cell.source):
            continue
        below = all_cells[i + 1] if i + 1 < len(all_cells) else None
        caption = CAPTION.match(below.source) if below is not None and below.cell_type == "markdown" else None
        assert caption, f"{chapter.name}: the figure cell {cell.source.splitlines()[0]!r} has no caption below it"
        assert (int(caption[1]), int(caption[2])) == (number, expected), f"{chapter.name}: caption {caption[0]}"
        assert len(below.source) > len(caption[0]) + 40, f"{chapter.name}: {caption[0]} should say what to see"
        expected += 1


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name[:2])
def test_summary_exercises_hints_and_worked_solutions(chapter):
    all_cells = cells(chapter)
    headings = [(i, c.source.splitlines()[0]) for i, c in enumerate(all_cells) if c.cell_type == "markdown"]
    summary = [i for i, line in headings if line.strip() == "## Summary"]
    exercises = [i for i, line in headings if line.strip() == "## Exercises"]
    assert len(summary) == 1 and len(exercises) == 1 and summary[0] < exercises[0], f"{chapter.name}"
    items = re.split(r"^\d+\. ", all_cells[exercises[0]].source, flags=re.M)[1:]
    assert items, f"{chapter.name}: the exercises are a numbered list"
    for k, item in enumerate(items, start=1):
        assert "<details><summary>Hint</summary>" in item and "</details>" in item, f"{chapter.name}: hint of {k}"
        solution = [i for i, line in headings if line.strip() == f"### Solution to exercise {k}"]
        assert len(solution) == 1 and solution[0] > exercises[0], f"{chapter.name}: no worked solution to {k}"
        code = all_cells[solution[0] + 1]
        assert code.cell_type == "code" and {"solution", "hide-input"} <= set(code.metadata.get("tags", [])), (
            f"{chapter.name}: solution {k} is followed by a code cell tagged 'solution' and 'hide-input'")
