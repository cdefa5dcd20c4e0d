"""Chapter 1's measurements: which modality a trained model leans on, and how that changes with a setting.

A model is *biased towards* modality m (m *dominates*) when taking m away costs more than taking
any other modality away: under BalGrad's missing protocol (Section 4.1) its score with m missing
is the lowest. ``Dominance`` collects the protocol tables of one setting over seeds and says which
modality dominates on average and on each seed, and how large the gap is (DeltaGap, Table 1).

How "missing" is encoded is itself a setting: a blank raw input ("black" or "white" picture, the
empty text) goes through the frozen encoder, whereas a *zero feature vector* replaces the
encoder's output (``zero_vector_source``), as if the modality had been dropped after encoding.

How fast a modality is learned — the kit's one measure of "learning speed", used by chapters 1
and 2 — is ``halfway_iteration``: the iteration at which its loss has made half of its drop.
``modality_curves`` gathers each modality's recorded loss (or accuracy) over training for the runs of
one method: the unimodal heads' losses L_T^m for a model with heads f_m (what BalGrad's Fig. 2b plots,
Section 3.1) or, for a model without heads, the loss of each modality's share of the fused logits
(the kit's stand-in). ``first_vs_costliest`` puts BalGrad's Fig. 2 reading to each seed: is the modality
learned first the one whose absence costs most?

Which modality a joint model *under-learns* is read against the unimodal ceilings (chapter 2's
criterion): ``shortfall`` is how far the joint model left with only m falls below the model trained on
m alone, seed by seed, and ``leaned_on`` names the modality whose shortfall is the smaller one when the
two shortfalls differ by the kit's rule (``modbal_lib.stats``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from modbal_lib.data.impair import chosen_indices
from modbal_lib.evaluate import FeatureSource, ImpairmentTable, evaluate
from modbal_lib.experiments import Experiment, Run
from modbal_lib.features import FeatureSet, Impairment
from modbal_lib.metrics import higher_is_better
from modbal_lib.stats import Difference, against, paired_difference, summarize

MISSING_ENCODINGS = ("black", "white", "zero")


def costliest_modality(missing: dict[str, float], metric: str) -> str:
    """The modality whose absence hurts most: of {modality: score with it missing}, the lowest
    (the highest for MAE)."""
    pick = min if higher_is_better(metric) else max
    return pick(missing, key=missing.get)


def dominant_modality(table: ImpairmentTable) -> str:
    """The modality whose absence hurts one model most (``costliest_modality`` of its table)."""
    return costliest_modality(table.missing, table.metric)


def zero_vector_source(features_for: FeatureSource) -> FeatureSource:
    """A feature source on which "missing" means a zero feature vector instead of a blank raw input.

    For ``Impairment(m, "missing", ratio, seed)`` the rows of the same round(ratio N) samples that
    the raw-input impairment would pick get x_m = 0 after the encoder (and any normalisation);
    every other impairment is passed to ``features_for`` unchanged.
    """

    def source(impairment: Impairment | None) -> FeatureSet:
        if impairment is None or impairment.kind != "missing":
            return features_for(impairment)
        clean = features_for(None)
        rows = chosen_indices(len(clean), impairment.ratio, impairment.seed)
        zeroed = clean.features[impairment.modality].clone()
        zeroed[rows] = 0.0
        return replace(clean, features={**clean.features, impairment.modality: zeroed})

    return source


def rescore_missing(experiment: Experiment, runs: list[Run], encoding: str) -> list[ImpairmentTable]:
    """Full and missing-modality scores of each run's trained model, "missing" encoded as ``encoding``.

    ``encoding``: "black" or "white" (the blank picture fed to the image encoder; text becomes "")
    or "zero" (a zero feature vector, ``zero_vector_source``). Same models, only the test-time
    encoding of an absent modality changes. A modality missing from the whole test set does not
    depend on the impairment seed, so seed 0 serves every run (one feature extraction per blank).
    """
    if encoding not in MISSING_ENCODINGS:
        raise ValueError(f"rescore_missing: encoding must be one of {MISSING_ENCODINGS}, got {encoding!r}")
    source = experiment.test_source()
    if encoding == "zero":
        source = zero_vector_source(source)
    blank = "black" if encoding == "zero" else encoding
    return [evaluate(run.result.model, source, seed=0, noisy=False, ratios=(), blank=blank) for run in runs]


@dataclass
class Dominance:
    """The missing-modality protocol of one setting over seeds: one ``ImpairmentTable`` per seed."""

    setting: str
    tables: list[ImpairmentTable]

    def __post_init__(self) -> None:
        if not self.tables:
            raise ValueError(f"Dominance({self.setting!r}): no tables (one per seed expected)")

    @property
    def dominant_per_seed(self) -> list[str]:
        return [dominant_modality(table) for table in self.tables]

    @property
    def dominant(self) -> str:
        """The modality whose absence costs most on average over seeds (mean missing scores)."""
        mean_missing = {m: float(np.mean(self.missing(m))) for m in self.tables[0].missing}
        return dominant_modality(replace(self.tables[0], missing=mean_missing))

    @property
    def agreeing_seeds(self) -> int:
        """On how many seeds ``dominant`` is also that seed's dominant modality."""
        return self.dominant_per_seed.count(self.dominant)

    @property
    def full(self) -> list[float]:
        return [table.full for table in self.tables]

    def missing(self, modality: str) -> list[float]:
        """Score with ``modality`` missing, per seed."""
        return [table.missing[modality] for table in self.tables]

    @property
    def delta_gap(self) -> list[float]:
        """DeltaGap of the missing protocol, per seed."""
        return [table.missing_delta_gap for table in self.tables]


def halfway_iteration(curve, smooth: int = 10) -> int | None:
    """How fast a loss curve falls — the kit's one measure of a modality's learning speed: the first
    iteration at which the (running-mean smoothed) curve has made half of its drop.

    With s the curve smoothed over ``smooth`` iterations, the drop runs from s[0] to s[-1]; the
    answer is the first i with s[i] <= (s[0] + s[-1]) / 2, counted in iterations of the raw curve
    (the window's last iteration). For a curve e^{-i/τ} falling to ~0 it is about τ ln 2.
    ``None`` when the smoothed curve does not fall at all (nothing was learned). Chapters 1 and 2.
    """
    values = np.asarray(curve, dtype=float)
    if smooth < 1 or len(values) < smooth + 1:
        raise ValueError(f"halfway_iteration: need smooth >= 1 and more than {smooth} values, got {len(values)}")
    smoothed = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
    if not smoothed[-1] < smoothed[0]:
        return None
    half = (smoothed[0] + smoothed[-1]) / 2
    return int(np.argmax(smoothed <= half)) + smooth - 1


def learns_first(curves: dict[str, list[float]], smooth: int = 10) -> str | None:
    """The modality whose loss curve first makes half of its drop (``halfway_iteration``; None: none falls).

    ``curves``: modality -> its loss over training; ties go to the first modality given.
    """
    reached = {m: halfway_iteration(curve, smooth) for m, curve in curves.items()}
    reached = {m: iteration for m, iteration in reached.items() if iteration is not None}
    return min(reached, key=reached.get) if reached else None


# --- BalGrad's Fig. 2b: each modality's loss over training ------------------------------------------

HEADS, SHARES, SINGLE = "unimodal heads", "logit shares", "single modality"
CURVE_SOURCES = {
    HEADS: "the unimodal heads' losses, as BalGrad's Fig. 2b",
    SHARES: "the fused logits' per-modality shares, the kit's stand-in for a model without heads",
    SINGLE: "the unimodal model's own loss",
}
CURVE_QUANTITIES = ("loss", "acc")


def curve_source(run: Run) -> str:
    """Where a run's recorded ``loss_uni_<m>`` comes from: ``HEADS`` (its model has unimodal heads f_m),
    ``SHARES`` (no heads: each modality's additive share of the fused logits, ``LateFusion.probe_logits``)
    or ``SINGLE`` (a unimodal model: its own output)."""
    model = run.result.model
    if model.unimodal_heads is not None:
        return HEADS
    return SINGLE if len(model.modalities) == 1 else SHARES


@dataclass
class ModalityCurves:
    """Each modality's recorded loss (or accuracy) at every iteration, for the runs of one method (one per
    seed). ``curves[m]`` is an array [runs, iterations]; ``source`` says what was recorded (``curve_source``)."""

    method: str
    source: str
    quantity: str
    curves: dict[str, np.ndarray]
    iterations_per_epoch: int

    def band(self, modality: str, smooth: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(iteration, mean, sample SD over runs) of the curves smoothed by a running mean over ``smooth``
        iterations (``stats.summarize`` at each iteration; the iteration is the window's last one)."""
        values = self.curves[modality]
        if smooth < 1 or values.shape[1] < smooth:
            raise ValueError(f"ModalityCurves.band: need 1 <= smooth <= {values.shape[1]} iterations, got {smooth}")
        kernel = np.ones(smooth) / smooth
        smoothed = np.array([np.convolve(row, kernel, mode="valid") for row in values])
        points = [summarize(column) for column in smoothed.T]
        iterations = np.arange(smoothed.shape[1]) + smooth - 1
        return iterations, np.array([p.mean for p in points]), np.array([p.sd for p in points])

    def halfway(self, modality: str, smooth: int = 10) -> list[int | None]:
        """``halfway_iteration`` of each run's loss curve of ``modality`` (None: it did not fall)."""
        if self.quantity != "loss":
            raise ValueError("ModalityCurves.halfway: measures how fast a loss falls; these curves are accuracies")
        return [halfway_iteration(row, smooth) for row in self.curves[modality]]

    def first(self, smooth: int = 10) -> list[str | None]:
        """Per run, the modality whose loss first makes half of its drop (``learns_first``; None: none falls)."""
        if self.quantity != "loss":
            raise ValueError("ModalityCurves.first: needs loss curves, these are accuracies")
        return [learns_first({m: rows[k] for m, rows in self.curves.items()}, smooth) for k in range(len(self))]

    def last_epoch(self, modality: str) -> list[float]:
        """Per run, the mean of the curve of ``modality`` over the last epoch's iterations."""
        return [float(np.mean(row[-self.iterations_per_epoch:])) for row in self.curves[modality]]

    def __len__(self) -> int:
        return len(next(iter(self.curves.values())))


def modality_curves(runs: Sequence[Run], quantity: str = "loss") -> ModalityCurves:
    """Each modality's ``loss_uni_<m>`` (or ``acc_uni_<m>``, quantity "acc") over training, for ``runs`` of
    one method trained with ``record=True``; every run must have the same modalities, source and length."""
    if quantity not in CURVE_QUANTITIES:
        raise ValueError(f"modality_curves: quantity must be one of {CURVE_QUANTITIES}, got {quantity!r}")
    if not runs:
        raise ValueError("modality_curves: no runs (one per seed expected)")
    methods, sources = {run.method for run in runs}, {curve_source(run) for run in runs}
    if len(methods) > 1 or len(sources) > 1:
        raise ValueError(f"modality_curves: runs of one method and one source expected, got {sorted(methods)}, "
                         f"{sorted(sources)}")
    modalities = runs[0].result.model.modalities
    curves = {}
    for m in modalities:
        key = f"{quantity}_uni_{m}"
        missing = [run.seed for run in runs if key not in run.result.history]
        if missing:
            raise ValueError(f"modality_curves: no recorded {key!r} for seed(s) {missing} of {runs[0].method!r}; "
                             "train with record=True (accuracies exist for classification only)")
        lengths = {len(run.result.history[key]) for run in runs}
        if len(lengths) > 1:
            raise ValueError(f"modality_curves: runs of different lengths {sorted(lengths)}; train them alike")
        curves[m] = np.array([run.result.history[key] for run in runs], dtype=float)
    epochs = runs[0].result.config.get("epochs")
    iterations = curves[modalities[0]].shape[1]
    per_epoch = iterations // epochs if epochs else iterations
    return ModalityCurves(runs[0].method, sources.pop(), quantity, curves, max(per_epoch, 1))


class FirstAndCostliest(NamedTuple):
    """BalGrad's Fig. 2 on one run: the modality learned first and the one whose absence costs most."""

    seed: int
    first: str | None  # whose loss first makes half of its drop (``ModalityCurves.first``; None: no loss fell)
    costliest: str     # whose absence costs the trained model most (``dominant_modality`` of its table)

    @property
    def agree(self) -> bool:
        return self.first == self.costliest


def first_vs_costliest(runs: Sequence[Run], smooth: int = 10) -> list[FirstAndCostliest]:
    """BalGrad's Fig. 2 (Section 3.1) seed by seed, for ``runs`` of one method (one per seed, trained with
    ``record=True``): the modality whose loss falls first (Fig. 2b: the unimodal heads' losses for a model with
    heads, ``modality_curves``) against the one whose absence costs most (Fig. 2a: the missing-modality scores,
    ``dominant_modality``). The paper reads the two as the same modality, the dominant one."""
    firsts = modality_curves(runs).first(smooth)
    return [FirstAndCostliest(run.seed, first, dominant_modality(run.table)) for run, first in zip(runs, firsts)]


# --- chapter 2's criterion: how much of each modality the joint model did not learn -----------------

def _tables(items: Sequence, what: str) -> list[ImpairmentTable]:
    """``ImpairmentTable``s from tables or from ``Run``s (their ``.table``)."""
    tables = [item.table if isinstance(item, Run) else item for item in items]
    if not tables or not all(isinstance(t, ImpairmentTable) for t in tables):
        raise ValueError(f"{what}: expected a non-empty list of Runs or ImpairmentTables (one per seed)")
    return tables


def only_left(table: ImpairmentTable, modality: str) -> float:
    """The joint model's score with only ``modality`` left: the other modality missing (two modalities)."""
    others = [m for m in table.missing if m != modality]
    if modality not in table.missing or len(others) != 1:
        raise ValueError(f"only_left: needs a two-modality table holding {modality!r}; it has {sorted(table.missing)}")
    return table.missing[others[0]]


def shortfalls(alone: Sequence, joint: Sequence, modality: str) -> list[float]:
    """Per seed, how far the joint model left with only ``modality`` falls short of the model trained on
    ``modality`` alone (its ceiling): ceiling − score for accuracy-like metrics, score − ceiling for MAE,
    so a positive shortfall always means the joint model did not learn all that ``modality`` can tell.
    ``alone`` and ``joint``: Runs or ImpairmentTables, one per seed, paired by position."""
    alone, joint = _tables(alone, "shortfalls alone"), _tables(joint, "shortfalls joint")
    if len(alone) != len(joint):
        raise ValueError(f"shortfalls: {len(alone)} unimodal runs against {len(joint)} joint runs; pair them by seed")
    sign = 1.0 if higher_is_better(joint[0].metric) else -1.0
    return [sign * (ceiling.full - only_left(table, modality)) for ceiling, table in zip(alone, joint)]


def shortfall(alone: Sequence, joint: Sequence, modality: str) -> Difference:
    """``shortfalls`` as the kit's paired difference: mean, 95 % interval, verdict (``stats.paired_difference``)."""
    values = shortfalls(alone, joint, modality)
    return against(values)


class Leaning(NamedTuple):
    """Which modality a joint model leans on by the shortfall criterion."""

    modality: str | None             # the one with the smaller shortfall; None when the two do not differ
    difference: Difference           # shortfall of the first modality − shortfall of the second, paired
    shortfalls: dict[str, Difference]


def leaned_on(alone: dict[str, Sequence], joint: Sequence) -> Leaning:
    """Chapter 2's criterion for two modalities a, b (``alone`` = {a: runs of a alone, b: ...}): the joint
    model leans on the modality it learned more completely, i.e. whose shortfall is smaller, when the
    shortfalls differ by the kit's rule (their paired difference's interval excludes 0); else ``None``.
    Unlike the protocol's label (``dominant_modality``: whose absence costs more), this separates what a
    modality knows (its ceiling) from how much of it the joint model learned."""
    if len(alone) != 2:
        raise ValueError(f"leaned_on: needs the unimodal runs of exactly two modalities, got {sorted(alone)}")
    (a, a_runs), (b, b_runs) = alone.items()
    difference = paired_difference(shortfalls(a_runs, joint, a), shortfalls(b_runs, joint, b))
    modality = (a if difference.mean < 0 else b) if difference.differs else None
    return Leaning(modality, difference, {m: shortfall(runs, joint, m) for m, runs in alone.items()})
