"""``python -m modbal_lib bench``: every method x seed on one dataset, scored by the impairment protocol.

Writes ``DIR/results.json`` (schema in the README) and ``DIR/results.md``, a table in BalGrad's
Table 1 layout (rows Full / each modality impaired / Avg / DeltaGap, for missing and noisy; one
column per method; mean ± std over seeds). The step-time ratio is each method's median training
step over joint training's, measured in the same run (joint is trained once for timing if it is
not among the methods). ``preset`` (``modbal_lib.presets``) supplies a paper's training settings
under the explicitly given ones.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from modbal_lib import presets, report
from modbal_lib.evaluate import ImpairmentTable
from modbal_lib.experiments import Experiment, compare
from modbal_lib.train import train
from modbal_lib.utils import atomic_path

DEFAULT_EPOCHS = {"emoji": 40, "seesaw": 30}


def mean_std(values: list[float]) -> dict[str, float]:
    """{"mean", "std"} over seeds (population std), as results.json stores them."""
    return dict(zip(("mean", "std"), report.mean_std(values)))


def summarise(tables: list[ImpairmentTable]) -> dict:
    """Mean ± std over seeds of every entry of the protocol table."""
    dicts = [t.as_dict() for t in tables]
    summary = {"metric": dicts[0]["metric"], "full": mean_std([d["full"] for d in dicts])}
    for kind in ("missing", "noisy"):
        summary[kind] = {key: mean_std([d[kind][key] for d in dicts]) for key in dicts[0][kind]}
    summary["ratio_sweep"] = {
        m: {r: mean_std([d["ratio_sweep"][m][r] for d in dicts]) for r in sweep}
        for m, sweep in dicts[0]["ratio_sweep"].items()
    }
    return summary


def markdown_table(results: dict) -> str:
    """BalGrad Table 1 layout: one column per method, mean ± std over seeds."""
    methods = list(results["methods"])
    modalities = results["modalities"]
    header = f"| {results['metric']} | " + " | ".join(methods) + " |"
    lines = [header, "|---" * (len(methods) + 1) + "|"]

    def cell(entry):
        return f"{entry['mean']:.2f} ± {entry['std']:.2f}"

    def row(label, pick):
        lines.append(f"| {label} | " + " | ".join(cell(pick(results["methods"][m])) for m in methods) + " |")

    row("Full", lambda r: r["full"])
    for kind in ("missing", "noisy"):
        for modality in modalities:
            row(f"{kind} {modality}", lambda r, k=kind, mod=modality: r[k][mod])
        row(f"{kind} Avg", lambda r, k=kind: r[k]["avg"])
        row(f"{kind} DeltaGap", lambda r, k=kind: r[k]["delta_gap"])
    lines.append("| step time / joint | " + " | ".join(f"{results['methods'][m]['step_time_ratio']:.2f}" for m in methods) + " |")
    return "\n".join(lines) + "\n"


def run(
    dataset: str,
    methods: list[str],
    seeds: list[int],
    out_dir: str | Path,
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
    """Train and evaluate every method for every seed; write results.json and results.md; return the results."""
    started = time.perf_counter()
    if preset is not None:
        explicit = {**train_options, **({"epochs": epochs} if epochs is not None else {})}
        train_options, method_options = presets.apply(preset, methods, explicit, method_options)
        epochs = train_options.pop("epochs", None)
    epochs = epochs or DEFAULT_EPOCHS.get(dataset, 20)
    if fast:
        epochs = max(2, epochs // 4)
    experiment = Experiment(dataset, encoders, normalize, dataset_options)
    train_set = experiment.features("train")
    # The first training in a process runs much slower (thread pools and allocator warming up);
    # a short untimed run keeps that out of the step-time ratios.
    train(train_set, "joint", epochs=1, seed=seeds[0], record=False, show_progress=False, **train_options)
    timing_reference = None if "joint" in methods else train(train_set, "joint", epochs=epochs, seed=seeds[0],
                                                               show_progress=False, **train_options)
    runs = compare(experiment, methods, seeds, method_options=method_options, epochs=epochs, **train_options)
    reference = runs["joint"] if timing_reference is None else None
    joint_step = np.median([t for r in reference for t in r.result.step_seconds] if reference
                           else timing_reference.step_seconds)
    first = next(iter(runs.values()))[0]
    results = {
        "dataset": dataset,
        "modalities": list(train_set.modalities),
        "metric": first.table.metric,
        "seeds": list(seeds),
        "epochs": epochs,
        "fast": fast,
        "preset": preset,
        "device": first.result.config["device"],
        "machine": platform.platform(),
        "methods": {},
    }
    for method, method_runs in runs.items():
        steps = [t for r in method_runs for t in r.result.step_seconds]
        results["methods"][method] = {
            **summarise([r.table for r in method_runs]),
            "step_time_ratio": float(np.median(steps) / joint_step),
            "peak_memory_mb": float(max(r.result.peak_memory_mb for r in method_runs)),
            "runs": [r.table.as_dict() for r in method_runs],
        }
    results["wall_seconds"] = time.perf_counter() - started
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=1))
    with atomic_path(out_dir / "results.md") as tmp:
        tmp.write_text(markdown_table(results))
    return results
