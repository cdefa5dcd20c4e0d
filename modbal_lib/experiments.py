"""Run methods over seeds on one dataset and keep everything a chapter wants to show.

``compare(dataset, methods, seeds)`` trains each method for each seed on the training split and
scores it on the test split under the impairment protocol; it returns, per method, one ``Run``
per seed with the trained model, the per-iteration history and the protocol table. The bench
command and the chapters both use it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from modbal_lib.evaluate import ImpairmentTable, evaluate
from modbal_lib.features import FeatureSet, load_features
from modbal_lib.report import mean_std
from modbal_lib.train import TrainResult, train
from modbal_lib.utils import progress


@dataclass
class Run:
    method: str
    seed: int
    result: TrainResult
    table: ImpairmentTable


@dataclass
class Experiment:
    """The data of one comparison: how to get (impaired) features of each split."""

    dataset: str
    encoders: dict[str, str] | None = None
    normalize: dict[str, bool] | None = None
    dataset_options: dict | None = None

    def features(self, split: str, impairment=None) -> FeatureSet:
        return load_features(self.dataset, split, encoders=self.encoders, normalize=self.normalize,
                             impairment=impairment, **(self.dataset_options or {}))

    def test_source(self):
        """``impairment -> FeatureSet`` of the test split, for ``evaluate``."""
        return functools.partial(self.features, "test")


def compare(
    experiment: Experiment | str,
    methods: list[str],
    seeds: list[int],
    *,
    method_options: dict[str, dict] | None = None,
    ratios: tuple[float, ...] | None = None,
    **train_options,
) -> dict[str, list[Run]]:
    """Train and evaluate every method for every seed; returns {label: [Run per seed]}.

    An entry of ``methods`` is a method name (``"goal"``) or a labelled configuration
    (``"go_only=goal"``); ``method_options`` are keyed by label, e.g.
    ``{"go_only": {"adaptive_leveraging": False}}`` — that is how ablations are compared.
    """
    experiment = Experiment(experiment) if isinstance(experiment, str) else experiment
    method_options = method_options or {}
    train_set = experiment.features("train")
    evaluate_options = {} if ratios is None else {"ratios": ratios}
    runs: dict[str, list[Run]] = {}
    for entry, seed in progress([(m, s) for m in methods for s in seeds], desc=f"compare on {experiment.dataset}"):
        label, _, method = entry.partition("=")
        options = {**train_options, **method_options.get(label, {})}  # a label's options win
        result = train(train_set, method or label, seed=seed, show_progress=False, **options)
        table = evaluate(result.model, experiment.test_source(), seed=seed, **evaluate_options)
        runs.setdefault(label, []).append(Run(label, seed, result, table))
    return runs


def over_seeds(runs: list[Run], pick) -> tuple[float, float]:
    """Mean and std over seeds of ``pick(run)``, e.g. ``over_seeds(runs, lambda r: r.table.missing_delta_gap)``."""
    return mean_std(pick(run) for run in runs)


def history_mean(run: Run, key: str) -> float:
    """Mean over training of one recorded series (e.g. BalGrad's ``conflict`` -> the conflict fraction)."""
    return float(np.mean(run.result.history[key]))


def paired(runs: dict[str, list[Run]], label: str, reference: str, pick) -> tuple[float, float, str]:
    """Seed-by-seed differences ``pick(run of label) − pick(run of reference)`` (the runs of ``compare``,
    same seeds in the same order): their mean, std and a rough verdict, "beyond seed noise" when the
    mean exceeds two standard errors (std / sqrt(n − 1)), else "within seed noise". With two or three
    seeds read "beyond" as "worth a closer look" and "within" as "this run cannot tell"."""
    differences = [pick(a) - pick(b) for a, b in zip(runs[label], runs[reference], strict=True)]
    mean, std = mean_std(differences)
    beyond = len(differences) >= 2 and abs(mean) > 2 * std / math.sqrt(len(differences) - 1)
    return mean, std, "beyond seed noise" if beyond else "within seed noise"
