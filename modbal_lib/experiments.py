"""Run methods over seeds on one dataset and keep everything a chapter wants to show.

``compare(dataset, methods, seeds)`` trains each method for each seed on the training split and
scores it on the test split under the impairment protocol; it returns, per method, one ``Run``
per seed with the trained model, the per-iteration history and the protocol table. The bench
command and the chapters both use it.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
import typing
from dataclasses import dataclass

import numpy as np
import torch

from modbal_lib.evaluate import ImpairmentTable, evaluate, predict_score
from modbal_lib.features import FeatureSet, load_features
from modbal_lib.metrics import higher_is_better, primary_metric
from modbal_lib.methods import make, option_hints, method_class
from modbal_lib.methods.plus_go import split_go
from modbal_lib import train as training
from modbal_lib.train import TrainResult, train
from modbal_lib.utils import parse_bool, progress, select_device


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


TRAIN_OPTIONS_NOT_SETTABLE = ("features", "method", "seed", "show_progress")  # compare sets these


def train_option_hints() -> dict[str, object]:
    """The options of ``train`` a comparison may set (epochs, lr, optimizer, ...) and their type hints."""
    hints = typing.get_type_hints(training.train)  # the module's function, also where a test wraps ``train``
    return {name: hints.get(name, object) for name, parameter in inspect.signature(training.train).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in TRAIN_OPTIONS_NOT_SETTABLE}


def _alternatives(hint) -> tuple:
    """``float | None`` -> (float, NoneType); ``float`` -> (float,)."""
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _describe(hint) -> str:
    names = {bool: "a boolean (true/false)", int: "an integer", float: "a finite number", str: "a string",
             type(None): "none"}
    return " or ".join(names.get(kind, getattr(kind, "__name__", str(kind))) for kind in _alternatives(hint))


def parse_option(text: str, hint, what: str):
    """A command-line value as the type ``hint`` asks for: booleans by ``utils.parse_bool``'s words, integers,
    finite numbers, strings, ``none`` where None is allowed. Anything else is an error naming ``what``."""
    kinds = _alternatives(hint)
    if type(None) in kinds and text.strip().lower() == "none":
        return None
    for kind in kinds:
        try:
            if kind is bool:
                return parse_bool(text, what)
            if kind in (int, float):
                value = kind(text)
                if math.isfinite(value):
                    return value
            if kind is str:
                return text
        except ValueError:
            continue
    raise ValueError(f"{what}={text!r}: expected {_describe(hint)}")


def _value_fits(value, hint) -> bool:
    for kind in _alternatives(hint):
        if kind is bool and isinstance(value, bool):
            return True
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return True
        if kind in (str, type(None)) and isinstance(value, kind):
            return True
        if kind not in (bool, int, float, str, type(None)):
            return True  # dicts, devices: left to the code that uses them
    return False


def check_comparison(methods: list[str], method_options: dict[str, dict] | None = None,
                     train_options: dict | None = None, modalities: tuple[str, ...] | None = None) -> None:
    """Refuse a comparison that cannot run, before anything is trained: an unknown method, a label used
    twice, options for a label that is not compared, an option a method (or ``train``) does not take, a
    value of the wrong type, a value the method itself refuses, a unimodal model of a modality the data
    does not have (when ``modalities`` is given). Each error is one line naming the label and the option."""
    method_options, train_options = method_options or {}, train_options or {}
    if not methods:
        raise ValueError("methods: expected at least one method")
    labels: dict[str, str] = {}
    for entry in methods:
        label, _, method = entry.partition("=")
        if not label:
            raise ValueError(f"methods: {entry!r} has no label; expected METHOD or LABEL=METHOD")
        if label in labels:
            raise ValueError(f"methods: the label {label!r} appears twice; give variants their own LABEL=METHOD")
        method_class(method or label)
        labels[label] = method or label
    unknown = sorted(set(method_options) - set(labels))
    if unknown:
        raise ValueError(f"options for {', '.join(map(repr, unknown))}, which is not among the methods "
                         f"{', '.join(labels)}; expected LABEL.KEY=VALUE with a compared LABEL")
    train_hints = train_option_hints()
    for key, value in train_options.items():
        if key not in train_hints:
            raise ValueError(f"unknown training option {key!r}; expected one of {', '.join(train_hints)}")
        if not _value_fits(value, train_hints[key]):
            raise ValueError(f"{key}={value!r}: expected {_describe(train_hints[key])}")
    for label, method in labels.items():
        hints = option_hints(method)
        options = method_options.get(label, {})
        for key, value in options.items():
            hint = hints.get(key, train_hints.get(key))
            if hint is None:
                raise ValueError(f"{label}.{key}: {method} has no option {key!r}; its options: "
                                 f"{', '.join(hints) or 'none'} (and the training options {', '.join(train_hints)})")
            if not _value_fits(value, hint):
                raise ValueError(f"{label}.{key}={value!r}: expected {_describe(hint)}")
        try:
            built = make(method, **{k: v for k, v in options.items() if k in hints})
        except (TypeError, ValueError) as error:
            raise ValueError(f"{label}: {error}") from None
        missing = [m for m in built.modalities or () if modalities is not None and m not in modalities]
        if missing:
            raise ValueError(f"{label}: the data has no modality {missing[0]!r}; its modalities: {', '.join(modalities)}")
    if int(train_options.get("epochs", 1)) < 1:
        raise ValueError(f"epochs={train_options['epochs']}: expected at least 1")
    if train_options.get("device") is not None:
        select_device(train_options["device"])


def holdout_split(features: FeatureSet, share: float = 0.2, seed: int = 0) -> tuple[FeatureSet, FeatureSet]:
    """A seeded (fit, hold-out) split of a feature set."""
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))
    cut = int(round(len(features) * (1 - share)))
    return features.take(order[:cut]), features.take(order[cut:])


MSLR_CANDIDATES = (0.25, 0.5, 1.0, 2.0, 4.0)  # scales of the base learning rate


def mslr_lr_scales(features: FeatureSet, lr: float, epochs: int = 3, seed: int = 0, **train_options) -> dict[str, float]:
    """MSLR's learning rates ("Keep": each modality's rate from its best unimodal run): per modality, the
    scale in ``MSLR_CANDIDATES`` whose unimodal model scores best on a seeded 20 % hold-out of ``features``."""
    fit, holdout = holdout_split(features, seed=seed)
    metric = primary_metric(features.task, len(features.class_names))
    sign = 1.0 if higher_is_better(metric) else -1.0
    best = {}
    for m in features.modalities:
        scores = {}
        for scale in MSLR_CANDIDATES:
            result = train(fit, f"unimodal_{m}", epochs=epochs, lr=lr * scale, seed=seed, record=False,
                           show_progress=False, **train_options)
            scores[scale] = sign * predict_score(result.model, holdout)[metric]
        best[m] = max(scores, key=scores.get)
    return best


def prepared_options(method: str, options: dict, features: FeatureSet) -> dict:
    """``options`` plus what the experiment layer works out before a method trains: MSLR's ``lr_scales``
    when none are given (searched once on ``features`` with the run's lr, width, fusion and device)."""
    if split_go(method)[0] != "mslr" or options.get("lr_scales") is not None:  # "mslr+go" searches too
        return options
    search = {key: options[key] for key in ("hidden", "fusion", "device") if key in options}
    scales = mslr_lr_scales(features, options.get("lr", 1e-3), epochs=options.get("search_epochs", 3), **search)
    return {**options, "lr_scales": scales}


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
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    train_set = experiment.features("train")
    check_comparison(methods, method_options, train_options, train_set.modalities)
    evaluate_options = {} if ratios is None else {"ratios": ratios}
    runs: dict[str, list[Run]] = {}
    prepared: dict[str, dict] = {}
    for entry, seed in progress([(m, s) for m in methods for s in seeds], desc=f"compare on {experiment.dataset}"):
        label, _, method = entry.partition("=")
        if label not in prepared:  # a label's options win over the shared ones
            options = {**train_options, **method_options.get(label, {})}
            prepared[label] = prepared_options(method or label, options, train_set)
        result = train(train_set, method or label, seed=seed, show_progress=False, **prepared[label])
        table = evaluate(result.model, experiment.test_source(), seed=seed, **evaluate_options)
        runs.setdefault(label, []).append(Run(label, seed, result, table))
    return runs


def history_mean(run: Run, key: str) -> float:
    """Mean over training of one recorded series (e.g. BalGrad's ``conflict`` -> the conflict fraction)."""
    return float(np.mean(run.result.history[key]))


def run_tables(runs: dict[str, list[Run]], names: dict[str, str] | None = None) -> dict[str, list[ImpairmentTable]]:
    """``compare``'s runs as ``{label: [ImpairmentTable per seed]}``, the input of ``stats.table1``
    (``names`` renames labels for display; ``bench.method_tables`` does the same for results.json)."""
    names = names or {}
    return {names.get(label, label): [run.table for run in label_runs] for label, label_runs in runs.items()}
