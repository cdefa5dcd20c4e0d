"""Formatting measured numbers for the chapters: mean ± std over seeds, and the
"the paper reports / we measured" box every chapter shows."""

from __future__ import annotations

import numpy as np


def mean_std(values) -> tuple[float, float]:
    """Mean and population standard deviation of a sequence of numbers."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        raise ValueError("mean_std: no values")
    return float(array.mean()), float(array.std())


def format_mean_std(values, digits: int = 1) -> str:
    """"61.3 ± 1.2 (3 seeds)" — how every chapter quotes a measured number."""
    values = list(values)
    mean, std = mean_std(values)
    seeds = "seed" if len(values) == 1 else "seeds"
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({len(values)} {seeds})"


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
