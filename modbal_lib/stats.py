"""How the kit summarises runs over seeds and judges a difference — the one place that does it.

- A quantity over seeds is its mean and **sample** standard deviation (ddof = 1) with the number of
  seeds n, always quoted together: ``85.8 ± 0.9 (n=5)``.
- Two methods are compared **paired**, seed by seed (same seed: same initialisation, data order and
  impairments; only the method differs): the differences d_s = a_s − b_s, their mean and its 95 %
  t-interval (``scipy.stats``), written ``+2.1 [0.4, 3.8]``.
- ONE verdict rule, used by every chapter, the bench and the report: **differs** when the interval
  excludes 0, **within seed noise** when it contains 0, **too few seeds** when n < 3 (an interval from
  two seeds is too wide, and too unstable, to be worth reading).

Also here, because every table of results goes through them: ``markdown_table`` and the Table-1 layout
of BalGrad (Full / each modality missing or noisy / Avg / DeltaGap), ``table1``. Chapter 0 explains
the rule; chapters 4–7 and ``results/REPORT.md`` use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats as scipy_stats

from modbal_lib.evaluate import ImpairmentTable
from modbal_lib.metrics import higher_is_better

CONFIDENCE = 0.95
MIN_SEEDS = 3  # fewer paired seeds than this: "too few seeds", whatever the interval
DIFFERS, WITHIN_NOISE, TOO_FEW = "differs", "within seed noise", "too few seeds"
VERDICTS = (DIFFERS, WITHIN_NOISE, TOO_FEW)
SD_NOTE = "mean ± sample SD over n seeds"
DIFFERENCE_NOTE = (f"paired difference seed by seed, mean [{CONFIDENCE:.0%} t-interval]; {DIFFERS!r} when the "
                   f"interval excludes 0, {WITHIN_NOISE!r} when it does not, {TOO_FEW!r} below {MIN_SEEDS} seeds")


class Summary(NamedTuple):
    """A quantity over seeds: mean, sample SD (0 for one seed, where it is undefined) and n."""

    mean: float
    sd: float
    n: int

    def text(self, digits: int = 1) -> str:
        """"85.8 ± 0.9 (n=5)"."""
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} (n={self.n})"


class Difference(NamedTuple):
    """A paired difference a − b over n seeds: mean, its 95 % interval [low, high], the verdict."""

    mean: float
    low: float
    high: float
    n: int
    verdict: str

    def text(self, digits: int = 1, verdict: bool = True) -> str:
        """"+2.1 [0.4, 3.8] (n=5), differs"."""
        interval = f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}] (n={self.n})"
        return f"{interval}, {self.verdict}" if verdict else interval

    @property
    def differs(self) -> bool:
        return self.verdict == DIFFERS


def _finite_array(values: Iterable[float], what: str) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        raise ValueError(f"{what}: no values")
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: non-finite values {array.tolist()}")
    return array


def summarize(values: Iterable, pick: Callable | None = None) -> Summary:
    """Mean, sample standard deviation (ddof = 1) and number of the ``values`` (one per seed); with
    ``pick``, of ``pick(v)`` for each — e.g. ``summarize(runs, lambda run: run.table.missing_delta_gap)``."""
    array = _finite_array(values if pick is None else map(pick, values), "summarize")
    sd = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return Summary(float(array.mean()), sd, int(array.size))


def verdict(low: float, high: float, n: int) -> str:
    """The kit's one rule: "too few seeds" below ``MIN_SEEDS``, else "differs" when [low, high] excludes 0."""
    if n < MIN_SEEDS:
        return TOO_FEW
    return DIFFERS if low > 0 or high < 0 else WITHIN_NOISE


def paired_difference(a: Sequence, b: Sequence, pick: Callable | None = None) -> Difference:
    """a − b seed by seed (``a[s]`` and ``b[s]`` from the same seed): mean, 95 % t-interval, verdict.
    With ``pick``, of ``pick(a[s]) − pick(b[s])``: ``paired_difference(runs["balgrad"], runs["joint"], gap)``.

    The interval is ``scipy.stats.ttest_rel(a, b).confidence_interval``; with identical differences
    on every seed it is the single point (no spread), with one seed it is undefined and shown as the
    point as well (the verdict is then "too few seeds" anyway).
    """
    if pick is not None:
        a, b = [pick(x) for x in a], [pick(x) for x in b]
    a, b = _finite_array(a, "paired_difference a"), _finite_array(b, "paired_difference b")
    if a.shape != b.shape:
        raise ValueError(f"paired_difference: {a.size} values against {b.size}; pair them seed by seed")
    differences = a - b
    mean = float(differences.mean())
    if differences.size < 2 or np.ptp(differences) <= 1e-12 * max(1.0, abs(mean)):
        low = high = mean
    else:
        interval = scipy_stats.ttest_rel(a, b).confidence_interval(CONFIDENCE)
        low, high = float(interval.low), float(interval.high)
    return Difference(mean, low, high, int(differences.size), verdict(low, high, differences.size))



def against(values: Sequence[float], value: float = 0.0) -> Difference:
    """Per-seed ``values`` against a fixed ``value`` (0, a theoretical slope, chance, a paper's ratio):
    ``paired_difference(values, [value] * n)``, so the same interval and verdict."""
    values = list(values)
    return paired_difference(values, [value] * len(values))

def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (a "|" inside a cell is escaped); every row must have as many cells as ``header``."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"markdown_table: row {list(row)} has {len(row)} cells, the header has {len(header)}")

    def line(cells) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header)] + [line(row) for row in rows]) + "\n"


def ranks(means: dict[str, float], lower_is_better: bool) -> dict[str, int]:
    """Each column's rank on one row (1 = best; ties share a rank)."""
    sign = 1 if lower_is_better else -1
    keys = {label: sign * mean for label, mean in means.items()}
    return {label: 1 + sum(other < key for other in keys.values()) for label, key in keys.items()}


def table1_summaries(columns: dict[str, list[ImpairmentTable]]) -> dict[str, list[tuple[str, Summary]]]:
    """Per column (a method), per Table-1 row, the ``Summary`` over its runs (one ImpairmentTable per seed)."""
    summaries = {}
    for label, tables in columns.items():
        per_row: dict[str, list[float]] = {}
        for table in tables:
            for row, value in table.rows():
                per_row.setdefault(row, []).append(value)
        summaries[label] = [(row, summarize(values)) for row, values in per_row.items()]
    return summaries


def table1(columns: dict[str, list[ImpairmentTable]], digits: int = 2, marks: bool = True) -> str:
    """BalGrad's Table 1 layout: a row per Full / missing m / Avg / DeltaGap / noisy ...; a column per
    method; each cell mean ± sample SD over its seeds; with ``marks``, the best **bold** and the second
    _italic_ (highest accuracy / F1 / AUROC, lowest MAE, always the lowest DeltaGap). A footnote says n."""
    if not columns:
        raise ValueError("table1: no columns")
    summaries = table1_summaries(columns)
    metric = next(iter(columns.values()))[0].metric
    labels = list(columns)
    row_names = [row for row, _ in summaries[labels[0]]]
    rows = []
    for index, row in enumerate(row_names):
        cells = {label: summaries[label][index][1] for label in labels}
        lower = row.endswith("DeltaGap") or not higher_is_better(metric)
        rank = ranks({label: cell.mean for label, cell in cells.items()}, lower) if marks else {}
        texts = []
        for label in labels:
            text = f"{cells[label].mean:.{digits}f} ± {cells[label].sd:.{digits}f}"
            texts.append(f"**{text}**" if rank.get(label) == 1 else f"_{text}_" if rank.get(label) == 2 else text)
        rows.append([row] + texts)
    seeds = sorted({len(tables) for tables in columns.values()})
    note = f"Cells: {SD_NOTE}, n = {', '.join(map(str, seeds))}" + ("; best **bold**, second _italic_" if marks else "")
    return markdown_table([metric] + labels, rows) + f"\n{note}.\n"
