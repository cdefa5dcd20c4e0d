"""Chapter 1's measurements: which modality a trained model leans on, and how that changes with a setting.

A model is *biased towards* modality m (m *dominates*) when taking m away costs more than taking
any other modality away: under BalGrad's missing protocol (Section 4.1) its score with m missing
is the lowest. ``Dominance`` collects the protocol tables of one setting over seeds and says which
modality dominates on average and on each seed, and how large the gap is (DeltaGap, Table 1).

How "missing" is encoded is itself a setting: a blank raw input ("black" or "white" picture, the
empty text) goes through the frozen encoder, whereas a *zero feature vector* replaces the
encoder's output (``zero_vector_source``), as if the modality had been dropped after encoding.
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


def halving_iteration(curve, fraction: float = 0.5) -> int | None:
    """First iteration at which a loss curve is at or below ``fraction`` of its first value (None: never).

    A one-number summary of "how fast does this modality learn" for BalGrad's Fig. 2b pattern.
    """
    values = np.asarray(curve, dtype=float)
    if values.size == 0:
        raise ValueError("halving_iteration: empty curve")
    below = np.flatnonzero(values <= fraction * values[0])
    return int(below[0]) if below.size else None


def learns_first(curves: dict[str, list[float]], fraction: float = 0.5) -> str | None:
    """The modality whose loss curve first falls to ``fraction`` of its start (None: none does).

    ``curves``: modality -> its loss over training; ties go to the first modality given.
    """
    reached = {m: halving_iteration(curve, fraction) for m, curve in curves.items()}
    reached = {m: iteration for m, iteration in reached.items() if iteration is not None}
    return min(reached, key=reached.get) if reached else None


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (a "|" inside a cell is escaped); every row must have as many cells as ``header``."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"markdown_table: row {row} has {len(row)} cells, the header has {len(header)}")

    def line(cells) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header)] + [line(row) for row in rows])
