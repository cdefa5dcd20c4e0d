"""``python -m modbal_lib bench``: every method x seed on one dataset, scored by the impairment protocol.

Writes into ``DIR``: ``results.json`` (schema in the README; plus, per method, the per-seed
tables ``runs``, the median step time ``step_ms`` and the ``loss_curves`` of the figure);
``results.md`` and ``results.csv``, a table in BalGrad's Table 1 layout (rows Full / each modality
impaired / Avg / DeltaGap, for missing and noisy; one column per method; mean ± sample SD over seeds;
best and second best marked — best is the highest accuracy / F1 / AUROC, the lowest MAE, the
lowest DeltaGap), with a cost table in results.md; ``missing_ratio.png`` (BalGrad Fig. 4) and
``loss_curves.png`` (``modbal_lib.plots``). The cost table's step time is each method's median
training step and the ratio that over joint training's, measured in the same run after the training
runs by ``train.interleaved_step_seconds``: rounds of one epoch of every method in turn (joint first,
each method with the options it trained with), ``COST_STEPS`` steps per method in 3 to 12 rounds, so that a
drift in the machine's speed slows every method alike (``train_step_ms`` keeps the median step of the
training runs themselves). Step times are the trainer's (``train.StepClock``): on a CPU with one
thread the training thread's CPU time, which other jobs on a shared machine barely inflate; on CUDA,
CUDA-event times. ``preset`` (``modbal_lib.presets``) supplies a paper's training settings under the
explicitly given ones.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from pathlib import Path

import numpy as np

from modbal_lib import plots, presets, stats
from modbal_lib.evaluate import ImpairmentTable
from modbal_lib.experiments import Experiment, check_comparison, compare
from modbal_lib.metrics import higher_is_better
from modbal_lib.train import interleaved_step_seconds, pooled_median_step_seconds, train
from modbal_lib.utils import atomic_path

DEFAULT_EPOCHS = {"emoji": 40, "seesaw": 30}
COST_STEPS = 120  # timed steps per method wanted for the cost table (``interleaved_costs``) ...
COST_ROUNDS = (3, 12)  # ... in this many rounds at least and at most (a tiny dataset's epoch is one step)


def summary_entry(values: list[float]) -> dict:
    """{"mean", "sd", "n"} over seeds (``stats.summarize``: sample SD), as results.json stores them."""
    return stats.summarize(values)._asdict()


def summarise(tables: list[ImpairmentTable]) -> dict:
    """Mean ± sample SD over seeds of every entry of the protocol table."""
    dicts = [t.as_dict() for t in tables]
    summary = {"metric": dicts[0]["metric"], "full": summary_entry([d["full"] for d in dicts])}
    for kind in ("missing", "noisy"):
        summary[kind] = {key: summary_entry([d[kind][key] for d in dicts]) for key in dicts[0][kind]}
    summary["ratio_sweep"] = {
        m: {r: summary_entry([d["ratio_sweep"][m][r] for d in dicts]) for r in sweep}
        for m, sweep in dicts[0]["ratio_sweep"].items()
    }
    return summary


def method_tables(results: dict) -> dict[str, list[ImpairmentTable]]:
    """Each method's per-seed protocol tables, read back from results.json (the same objects a
    chapter's ``compare`` runs hold: ``ImpairmentTable.missing_delta_gap`` and friends work on both)."""
    return {method: [ImpairmentTable.from_dict(run) for run in entry["runs"]]
            for method, entry in results["methods"].items()}


def csv_table(results: dict) -> str:
    """Table 1 as CSV: a row per Table 1 row; per method its mean, sample SD, n and rank (1 = best)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    summaries = stats.table1_summaries(method_tables(results))
    methods = list(summaries)
    writer.writerow([results["metric"]] + [f"{m} {column}" for m in methods for column in ("mean", "sd", "n", "rank")])
    for index, (row, _) in enumerate(summaries[methods[0]]):
        cells = {m: summaries[m][index][1] for m in methods}
        lower = row.endswith("DeltaGap") or not higher_is_better(results["metric"])
        rank = stats.ranks({m: cell.mean for m, cell in cells.items()}, lower)
        writer.writerow([row] + [value for m in methods
                                 for value in (f"{cells[m].mean:.4f}", f"{cells[m].sd:.4f}", cells[m].n, rank[m])])
    return buffer.getvalue()


def cost_table(results: dict) -> str:
    """Per method: median training-step time (ms), its ratio to joint training's in the same run, peak memory; then
    how the step times were measured (``interleaved_costs``)."""
    memory = "peak GPU memory (MB)" if results["device"].startswith("cuda") else "peak RSS growth (MB)"
    lines = [f"| method | step time (ms) | step time / joint | {memory} |", "|---|---|---|---|"]
    for method, entry in results["methods"].items():
        lines.append(f"| {method} | {entry['step_ms']:.2f} | {entry['step_time_ratio']:.2f} | {entry['peak_memory_mb']:.1f} |")
    cost = results.get("cost")
    how = (f"\nStep times: median of {cost['steps_per_method']} steps per method, timed in turn after the training runs "
           f"({cost['rounds']} rounds of one epoch of every method, joint first).\n" if cost else
           "\nStep times: median step of the training runs (the run is not complete).\n")
    return "\n".join(lines) + "\n" + how


def loss_curves(method_runs: list, points: int = 60) -> dict[str, dict[str, list[float]]]:
    """Each modality's own loss ``loss_uni_<m>`` over training, for the figure: every seed's series
    averaged over ``points`` equal runs of iterations (a running mean that also thins it), then
    mean ± sample SD over seeds per point; x in epochs (the middle of each run of iterations)."""
    history = method_runs[0].result.history
    iterations = len(history["loss"])
    per_epoch = iterations / method_runs[0].result.config["epochs"]
    chunks = np.array_split(np.arange(iterations), min(points, iterations))
    epochs = [float((chunk[0] + chunk[-1] + 1) / 2 / per_epoch) for chunk in chunks]
    curves = {}
    for key in (k for k in history if k.startswith("loss_uni_")):
        seeds = np.array([[np.mean(np.asarray(run.result.history[key])[chunk]) for chunk in chunks] for run in method_runs])
        points = [stats.summarize(column) for column in seeds.T]
        curves[key.removeprefix("loss_uni_")] = {"epoch": epochs, "mean": [p.mean for p in points],
                                                 "sd": [p.sd for p in points]}
    return curves


def results_markdown(results: dict) -> str:
    """results.md: Table 1 (``stats.table1``), then the cost table."""
    return stats.table1(method_tables(results)) + "\n" + cost_table(results)


def method_entry(method_runs: list, joint_step: float) -> dict:
    """One method's part of results.json: the summary over seeds, the cost, the per-seed tables, the curves."""
    step = pooled_median_step_seconds([r.result for r in method_runs])
    return {
        **summarise([r.table for r in method_runs]),
        "step_time_ratio": step / joint_step,
        "step_ms": step * 1000,
        "peak_memory_mb": float(max(r.result.peak_memory_mb for r in method_runs)),
        "runs": [r.table.as_dict() for r in method_runs],
        "loss_curves": loss_curves(method_runs),
    }


def run(
    dataset: str,
    methods: list[str],
    seeds: list[int],
    out_dir: str | Path | None,
    *,
    epochs: int | None = None,
    fast: bool = False,
    encoders: dict[str, str] | None = None,
    normalize: dict[str, bool] | None = None,
    dataset_options: dict | None = None,
    method_options: dict[str, dict] | None = None,
    preset: str | None = None,
    **train_options,
) -> dict:
    """Train and evaluate every method for every seed; return the results and, unless ``out_dir`` is
    None (a chapter that only shows them), write them into ``out_dir`` (``write``).

    Everything is checked before anything is trained (``experiments.check_comparison``: methods, their
    options and values, seeds, epochs). Joint training runs first (it is the step-time reference), then
    the methods in order; ``results.json`` is rewritten after each method (``"complete": false`` until the
    last), so an error in a later method never loses the finished ones.
    """
    started = time.perf_counter()
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs={epochs}: expected at least 1")
    if preset is not None:
        explicit = {**train_options, **({"epochs": epochs} if epochs is not None else {})}
        train_options, method_options = presets.apply(preset, methods, explicit, method_options)
        epochs = train_options.pop("epochs", None)
    epochs = epochs or DEFAULT_EPOCHS.get(dataset, 20)
    if fast:
        epochs = max(2, epochs // 4)
    check_comparison(methods, method_options, {**train_options, "epochs": epochs})
    experiment = Experiment(dataset, encoders, normalize, dataset_options)
    train_set = experiment.features("train")
    check_comparison(methods, method_options, train_options, train_set.modalities)
    # The first training in a process runs much slower (thread pools and allocator warming up);
    # a short untimed run keeps that out of the step-time ratios.
    train(train_set, "joint", epochs=1, seed=seeds[0], record=False, show_progress=False, **train_options)
    order = sorted(methods, key=lambda entry: entry != "joint")  # joint first: the others' step-time reference
    timing = {"joint": ("joint", dict(train_options))}  # label -> (method, options) for the cost table
    if "joint" in methods:
        joint_step = None
    else:
        reference = train(train_set, "joint", epochs=epochs, seed=seeds[0], show_progress=False, **train_options)
        joint_step = reference.median_step_seconds
    results = {"dataset": dataset, "modalities": list(train_set.modalities), "seeds": list(seeds), "epochs": epochs,
               "fast": fast, "preset": preset, "machine": platform.platform(), "complete": False, "methods": {}}
    for entry in order:
        label, _, method = entry.partition("=")
        options = {label: (method_options or {}).get(label, {})}
        method_runs = compare(experiment, [entry], seeds, method_options=options, epochs=epochs, **train_options)[label]
        if joint_step is None:
            joint_step = pooled_median_step_seconds([r.result for r in method_runs])
        results.setdefault("metric", method_runs[0].table.metric)
        results.setdefault("device", method_runs[0].result.config["device"])
        results["methods"][label] = method_entry(method_runs, joint_step)
        trained_with = {k: v for k, v in method_runs[0].result.config.items() if k not in ("method", "epochs", "seed")}
        timing[label] = (method or label, {**train_options, **trained_with})
        if out_dir is not None:
            write(results, out_dir)
    results["cost"] = interleaved_costs(train_set, timing, results["methods"], train_options.get("batch_size", 128))
    results["methods"] = {label: results["methods"][label] for label in (e.partition("=")[0] for e in methods)}
    results["complete"] = True
    results["wall_seconds"] = time.perf_counter() - started
    if out_dir is not None:
        write(results, out_dir)
    return results


def interleaved_costs(train_set, timing: dict[str, tuple[str, dict]], entries: dict, batch_size: int) -> dict:
    """The cost table's step times, measured in turn (``train.interleaved_step_seconds``, joint first) with
    each method's training options: sets ``step_ms`` and ``step_time_ratio`` of every entry, after moving
    the training runs' own median step to ``train_step_ms``; returns how it was measured."""
    per_epoch = -(-len(train_set.labels) // batch_size)
    rounds = min(max(COST_ROUNDS[0], -(-COST_STEPS // per_epoch)), COST_ROUNDS[1])
    timed = interleaved_step_seconds(train_set, timing, rounds)
    medians = {label: pooled_median_step_seconds(runs) for label, runs in timed.items()}
    for label, entry in entries.items():
        entry["train_step_ms"] = entry["step_ms"]
        entry["step_ms"] = medians[label] * 1000
        entry["step_time_ratio"] = medians[label] / medians["joint"]
    return {"measured": "in turn", "rounds": rounds, "steps_per_method": rounds * per_epoch}


def write(results: dict, out_dir: str | Path) -> None:
    """results.json, results.md (Table 1 and cost), results.csv, missing_ratio.png and loss_curves.png."""
    out_dir = Path(out_dir)
    for name, text in (("results.json", json.dumps(results, indent=1)), ("results.md", results_markdown(results)),
                       ("results.csv", csv_table(results))):
        with atomic_path(out_dir / name) as tmp:
            tmp.write_text(text)
    plots.save(plots.missing_ratio_figure(results), out_dir / "missing_ratio.png")
    plots.save(plots.loss_curve_figure(results), out_dir / "loss_curves.png")
