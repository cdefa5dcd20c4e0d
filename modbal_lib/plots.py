"""Figures of a bench run, drawn from its ``results.json`` alone (so they can be redrawn without training).

* ``missing_ratio_gap_figure`` — BalGrad's Fig. 4 as the paper draws it (Section 4.2): DeltaGap between
  the modalities when each in turn is missing for a share r of the test samples, r in the sweep
  (the paper's r ∈ {0.2, 0.4, 0.6, 0.8}), one line per method, mean ± sample SD over seeds as a band.
  DeltaGap is computed seed by seed (``ratio_delta_gap``, ``gap_ratio_curve``), then summarised.
* ``missing_ratio_figure`` — the kit's extra view of the same sweep: the score itself as one modality
  goes missing for a growing share r (r = 0 is Full, r = 1 the modality missing everywhere), one panel
  per impaired modality, one line per method, mean ± sample SD over seeds as a band. A method whose
  line falls steeply in one panel and stays flat in the other leans on the first modality.
* ``loss_curve_figure`` — each modality's own loss ``loss_uni_<m>`` during training (from the
  unimodal heads, or the modality's additive share of the fused logits), one panel per method: the
  dominant modality's loss drops first and the other's stalls — the imbalance the methods target.

Figures are ``matplotlib.figure.Figure`` objects (no pyplot state); ``save`` writes a PNG atomically.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from matplotlib.figure import Figure

from modbal_lib.metrics import delta_gap
from modbal_lib.stats import summarize
from modbal_lib.utils import atomic_path


def _style(number: int) -> dict:
    """Colour and line style of the ``number``-th line: ten colours, then dashed ones."""
    return {"color": f"C{number % 10}", "linestyle": "-" if number < 10 else "--"}


def ratio_curve(method_results: dict, modality: str) -> tuple[list[float], list[float], list[float]]:
    """(ratios, means, SDs) of one method with ``modality`` missing for a share r of the samples,
    from r = 0 (the Full score) through the sweep to r = 1 (the "missing" row of Table 1)."""
    sweep = sorted((float(r), entry) for r, entry in method_results["ratio_sweep"][modality].items())
    points = [(0.0, method_results["full"]), *sweep, (1.0, method_results["missing"][modality])]
    return [r for r, _ in points], [e["mean"] for _, e in points], [e["sd"] for _, e in points]


def ratio_delta_gap(sweep: dict, ratio: float) -> float:
    """DeltaGap at missing ratio ``ratio`` of one seed's sweep ``{modality: {ratio: score}}``
    (``ImpairmentTable.ratio_sweep``): ``metrics.delta_gap`` of the scores with each modality in turn missing
    for that share of the samples (the same samples for every modality: ``data.impair.chosen_indices``)."""
    return delta_gap(*(scores[ratio] for scores in sweep.values()))


def gap_ratio_curve(method_results: dict, modalities: list[str]) -> tuple[list[float], list[float], list[float]]:
    """(ratios, means, SDs) of one method's DeltaGap at each missing ratio r of the sweep (BalGrad Fig. 4).

    DeltaGap is taken seed by seed (``ratio_delta_gap`` of each per-seed table in ``method_results["runs"]``,
    over ``modalities``), then summarised over seeds by ``stats.summarize`` (mean, sample SD).
    """
    runs = method_results.get("runs")
    if not runs:
        raise ValueError("gap_ratio_curve: the method's results have no per-seed tables under 'runs'")
    if len(modalities) < 2:
        raise ValueError(f"gap_ratio_curve: DeltaGap needs at least 2 modalities, got {list(modalities)}")
    sweeps = []  # per seed: {modality: {ratio: score}}
    for number, run in enumerate(runs):
        sweep = run.get("ratio_sweep", {})
        missing = [m for m in modalities if m not in sweep]
        if missing:
            raise ValueError(f"gap_ratio_curve: run {number} has no ratio_sweep for {missing} (it has {sorted(sweep)})")
        sweeps.append({m: {float(r): float(v) for r, v in sweep[m].items()} for m in modalities})
    ratios = sorted(sweeps[0][modalities[0]])
    if not ratios:
        raise ValueError("gap_ratio_curve: the ratio sweep is empty (the runs were evaluated with ratios=())")
    for number, sweep in enumerate(sweeps):
        for m in modalities:
            if sorted(sweep[m]) != ratios:
                raise ValueError(f"gap_ratio_curve: run {number}, {m} missing: ratios {sorted(sweep[m])}, "
                                 f"expected {ratios} as in run 0")
    summaries = [summarize(ratio_delta_gap(sweep, r) for sweep in sweeps) for r in ratios]
    return ratios, [s.mean for s in summaries], [s.sd for s in summaries]


def _band(axis, x, means, sds, label, style) -> None:
    """A mean line with a shaded mean ± SD band."""
    axis.plot(x, means, label=label, **style)
    low = [m - s for m, s in zip(means, sds)]
    high = [m + s for m, s in zip(means, sds)]
    axis.fill_between(x, low, high, color=style["color"], alpha=0.15, linewidth=0)


def missing_ratio_figure(results: dict) -> Figure:
    """Score vs missing ratio r, one panel per impaired modality, one line per method (BalGrad Fig. 4)."""
    modalities, methods = results["modalities"], list(results["methods"])
    figure = Figure(figsize=(4.2 * len(modalities) + 2.2, 3.6), layout="constrained")
    axes = figure.subplots(1, len(modalities), sharey=True, squeeze=False)[0]
    for axis, modality in zip(axes, modalities):
        for number, method in enumerate(methods):
            _band(axis, *ratio_curve(results["methods"][method], modality), method, _style(number))
        axis.set_title(f"{modality} missing")
        axis.set_xlabel("missing ratio r")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(results["metric"])
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize="small")
    figure.suptitle(f"{results['dataset']}: score as one modality goes missing (mean ± sample SD, n = {len(results['seeds'])} seeds)")
    return figure


def missing_ratio_gap_figure(results: dict, methods: list[str] | None = None) -> Figure:
    """DeltaGap vs missing ratio r, one line per method (``methods``, default all), mean ± sample SD over
    seeds as a band: BalGrad's Fig. 4 as the paper plots it."""
    methods = list(results["methods"]) if methods is None else list(methods)
    unknown = [m for m in methods if m not in results["methods"]]
    if not methods:
        raise ValueError("missing_ratio_gap_figure: expected at least one method, got none")
    if unknown:
        raise ValueError(f"missing_ratio_gap_figure: methods {unknown} are not in the results "
                         f"(it has {list(results['methods'])})")
    curves = [gap_ratio_curve(results["methods"][m], results["modalities"]) for m in methods]
    figure = Figure(figsize=(8.0, 3.8), layout="constrained")
    axis = figure.subplots()
    for number, (method, curve) in enumerate(zip(methods, curves)):
        _band(axis, *curve, method, {**_style(number), "marker": "o", "markersize": 3})
    axis.set_xlabel("missing ratio r (each modality in turn missing for this share of the samples)")
    axis.set_ylabel(f"DeltaGap ({results['metric']} points)")
    axis.set_xticks(curves[0][0])
    axis.grid(alpha=0.3)
    figure.legend(*axis.get_legend_handles_labels(), loc="outside right center", fontsize="small")
    figure.suptitle(f"{results['dataset']}: DeltaGap vs missing ratio r, BalGrad Fig. 4 "
                    f"(mean ± sample SD, n = {len(results['seeds'])} seeds)")
    return figure


def loss_curve_figure(results: dict) -> Figure:
    """Each modality's own loss over training, one panel per method (mean ± sample SD over seeds)."""
    methods, modalities = list(results["methods"]), results["modalities"]
    columns = min(4, len(methods))
    rows = math.ceil(len(methods) / columns)
    figure = Figure(figsize=(3.4 * columns + 1.6, 2.8 * rows + 0.6), layout="constrained")
    axes = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
    for axis, method in zip(axes, methods):
        curves = results["methods"][method]["loss_curves"]
        for number, modality in enumerate(modalities):
            if modality in curves:
                curve = curves[modality]
                _band(axis, curve["epoch"], curve["mean"], curve["sd"], modality, _style(number))
        axis.set_title(method, fontsize="medium")
        axis.grid(alpha=0.3)
    for axis in axes[len(methods):]:
        axis.set_visible(False)
    for axis in axes[len(methods) - columns : len(methods)]:  # the lowest panel of each column
        axis.set_xlabel("epoch")
        axis.xaxis.set_tick_params(labelbottom=True)
    for axis in axes[::columns]:
        axis.set_ylabel("loss_uni_<m>")
    handles = [axis.get_legend_handles_labels() for axis in axes[: len(methods)]]
    handles, labels = max(handles, key=lambda pair: len(pair[1]))  # a panel showing every modality
    figure.legend(handles, labels, loc="outside right upper", title="modality")
    figure.suptitle(f"{results['dataset']}: each modality's own training loss (mean ± sample SD, n = {len(results['seeds'])} seeds)")
    return figure


def save(figure: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``figure`` as a PNG at ``path`` (atomically); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi)
    return path


def gradient_arrows(axis, arrows, *, title: str, xlim, ylim, legend_loc: str = "best"):
    """2-D gradients as arrows from the origin (chapters 4 and 6: projection and orthogonalization).

    ``arrows``: (vector, color, linestyle, label) tuples; each label gets a legend entry.
    """
    for vector, color, style, label in arrows:
        axis.annotate("", xy=vector.tolist(), xytext=(0, 0),
                      arrowprops=dict(arrowstyle="->", color=color, linestyle=style, linewidth=2))
        axis.plot([], [], color=color, linestyle=style, label=label)
    axis.set(xlim=xlim, ylim=ylim, aspect="equal", title=title)
    axis.axhline(0, color="gray", linewidth=0.5)
    axis.axvline(0, color="gray", linewidth=0.5)
    axis.legend(fontsize=8, loc=legend_loc)
    return axis


def verdict_figure(counts: dict[str, dict[str, int]], colors: dict[str, str] | None = None) -> Figure:
    """Stacked bars: per paper, how many of its claims got each verdict (chapter 8; ``counts``: paper ->
    verdict -> number, e.g. ``{p: claims.verdict_counts(rows of p)}``)."""
    if not counts:
        raise ValueError("verdict_figure: no papers to draw")
    figure = Figure(figsize=(8.0, 2.8), layout="constrained")
    axis = figure.subplots()
    papers = list(counts)
    bottoms = [0] * len(papers)
    for verdict in counts[papers[0]]:
        heights = [counts[paper][verdict] for paper in papers]
        axis.barh(papers, heights, left=bottoms, label=verdict, color=(colors or {}).get(verdict))
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    axis.set(xlabel="claims", title="The papers' claims by verdict on this kit's data")
    axis.invert_yaxis()
    figure.legend(loc="outside right center", fontsize=8)
    return figure


def grouped_bars_figure(panels: dict[str, dict[str, dict[str, list[float]]]], *, title: str,
                        xlabel: str = "") -> Figure:
    """Grouped bars with the single seeds as dots, one panel per quantity (chapter 4: BalGrad's Figs. 8 and 9).

    ``panels``: panel title (a quantity, e.g. "missing ΔGap") -> group (a position on the x axis, e.g. a fusion)
    -> series (a bar of the group, e.g. a method) -> its per-seed values. Each bar is the mean over seeds, its
    error bar the sample SD (``stats.summarize``); every group of every panel must have the same series. Group
    names longer than 20 characters wrap onto more lines.
    """
    if not panels:
        raise ValueError("grouped_bars_figure: no panels to draw")
    first_panel = next(iter(panels.values()))
    if not first_panel:
        raise ValueError(f"grouped_bars_figure: panel {next(iter(panels))!r} has no groups")
    series = list(next(iter(first_panel.values())))
    for panel, groups in panels.items():
        if not groups:
            raise ValueError(f"grouped_bars_figure: panel {panel!r} has no groups")
        for group, values in groups.items():
            if list(values) != series:
                raise ValueError(f"grouped_bars_figure: panel {panel!r}, group {group!r} has series {list(values)}, "
                                 f"expected {series} as in the first group")
    width = 0.8 / len(series)
    figure = Figure(figsize=(4.0 * len(panels) + 1.8, 3.4), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (panel, groups) in zip(axes, panels.items()):
        for number, name in enumerate(series):
            x = [k + (number - (len(series) - 1) / 2) * width for k in range(len(groups))]
            summaries = [summarize(values[name]) for values in groups.values()]
            axis.bar(x, [s.mean for s in summaries], width, yerr=[s.sd for s in summaries], capsize=3,
                     color=_style(number)["color"], alpha=0.7, label=name)
            for position, values in zip(x, groups.values()):
                axis.plot([position] * len(values[name]), values[name], "k.", markersize=4)
        labels = [textwrap.fill(group, 20, break_on_hyphens=False) for group in groups]  # long names wrap
        axis.set_xticks(range(len(groups)), labels)
        axis.set(title=panel, xlabel=xlabel)
        axis.grid(axis="y", alpha=0.3)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize="small")
    figure.suptitle(title)
    return figure
