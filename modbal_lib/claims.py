"""The "the paper reports / we measured" box every chapter shows: a paper's claim, its numbers with
their citation, and this kit's measurement (made by ``modbal_lib.stats``) side by side."""

from __future__ import annotations


def paper_vs_measured(claim: str, paper: str, measured: str, verdict: str = "") -> str:
    """Markdown for the box that puts the paper's claim next to what this kit measured.

    Display it in a notebook with ``IPython.display.Markdown(paper_vs_measured(...))``.
    """
    lines = [
        f"> **Claim.** {claim}",
        ">",
        f"> **The paper reports:** {paper}",
        ">",
        f"> **We measured:** {measured}",
    ]
    if verdict:
        lines += [">", f"> **Reading:** {verdict}"]
    return "\n".join(lines)
