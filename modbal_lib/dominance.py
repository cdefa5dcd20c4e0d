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
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from modbal_lib.data.impair import chosen_indices
from modbal_lib.evaluate import FeatureSource, ImpairmentTable, evaluate
from modbal_lib.experiments import Experiment, Run
from modbal_lib.features import FeatureSet, Impairment
from modbal_lib.metrics import higher_is_better

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
