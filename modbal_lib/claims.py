"""The claims ledger: every testable claim of the three papers, how this kit tests it, what it found.

One ``Claim`` per claim: the paper, where it says so, the claim in one line (the kit's words), the
paper's number with its place, how the kit tests it and the chapter section that shows it. Running
the ledger (``run_ledger``) trains what the checks need once (``Ledger.runs`` shares runs between
claims) and gives each claim a ``Finding``: the kit's number with its 95 % interval and one of four
verdicts — **holds**, **does not hold**, **partly** (the finding says which part), **not testable here**
(it says why). A comparison is always ``stats.paired_difference`` and its verdict; ``directional``
turns it into the ledger's words, and ``near`` does the same for a measured quantity against a theoretical
value (a residual slope of 2: the paired difference against that value, within a stated tolerance). The
first-order claims (BalGrad's Propositions, GOAL's appendix) run ``theory``'s checks on models that
``Ledger.trained`` trains briefly per seed; BalGrad's Fig. 2 reads ``dominance.first_vs_costliest``.
Chapter 8 renders the ledger; ``make report`` writes
``results/CLAIMS.md`` (``ledger_markdown``) and ``results/claims.json`` (``LEDGER``). The chapters' boxes come
from the same records: ``box(key, measured, reading)`` shows a claim's sentence, place and paper number from its
record, what the chapter's own run measured, and the published ledger's verdict for it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from modbal_lib import cggm_evidence, goal_evidence, stats, theory
from modbal_lib.bench import DEFAULT_EPOCHS
from modbal_lib.dominance import first_vs_costliest
from modbal_lib.experiments import Experiment, Run, compare, history_mean
from modbal_lib.plots import ratio_delta_gap
from modbal_lib.utils import atomic_path, progress, silent_progress

HOLDS, DOES_NOT_HOLD, PARTLY, NOT_TESTABLE = "holds", "does not hold", "partly", "not testable here"
VERDICTS = (HOLDS, DOES_NOT_HOLD, PARTLY, NOT_TESTABLE)
PAPERS = ("BalGrad", "CGGM", "GOAL")
CITATIONS = {"BalGrad": "Kim et al., 2025", "CGGM": "Guo et al., 2024", "GOAL": "Anonymous, 2025"}


@dataclass(frozen=True)
class Finding:
    measured: str   # the kit's number(s) with their intervals, generated from the runs
    verdict: str    # one of VERDICTS
    detail: str = ""  # which part holds (partly), why not (not testable here), what was seen

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"Finding.verdict must be one of {VERDICTS}, got {self.verdict!r}")


WARMUP_EPOCHS = {True: 1, False: 5}   # fast / full: training before a first-order check (chapters 3 and 6)
CHECK_BATCH = {True: 128, False: 256}  # samples a first-order check is measured on (the chapters: 256)


@dataclass
class Ledger:
    """The sizes of one ledger run and the runs it has trained so far (shared between claims).

    Full size is the benchmark report's (5 seeds, ``bench.DEFAULT_EPOCHS``); fast size 2 seeds and 1 epoch,
    where the kit's rule answers "too few seeds"."""

    fast: bool
    seeds: tuple[int, ...] = ()
    epochs: dict[str, int] = field(default_factory=dict)
    cache: dict = field(default_factory=dict)

    def __post_init__(self):
        self.seeds = tuple(self.seeds) or ((0, 1) if self.fast else (0, 1, 2, 3, 4))
        sizes = {dataset: 1 for dataset in DEFAULT_EPOCHS} if self.fast else DEFAULT_EPOCHS  # the report's, in full
        self.epochs = {**sizes, **self.epochs}

    def runs(self, dataset: str, method: str, *, ratios: tuple[float, ...] | None = None,
             encoders: dict[str, str] | None = None, dataset_options: dict | None = None, **options) -> list[Run]:
        """``method`` with ``options`` (method and train options) on ``dataset``, one Run per seed, trained once.
        ``ratios``: the missing ratios the protocol sweeps (``compare``'s; None: all of them); ``encoders``: the
        features' encoders per modality (``Experiment``'s; None: the offline defaults); ``dataset_options``: the
        loader's options (``Experiment``'s, e.g. SeeSaw's ``{"target": "regression"}``)."""
        key = (dataset, method, tuple(sorted(options.items()))) + (() if ratios is None else (("ratios", ratios),))
        key += () if encoders is None else (("encoders", tuple(sorted(encoders.items()))),)
        key += () if dataset_options is None else (("dataset_options", tuple(sorted(dataset_options.items()))),)
        if key not in self.cache:
            experiment = Experiment(dataset, encoders=encoders, dataset_options=dataset_options)
            runs = compare(experiment, [f"run={method}"], list(self.seeds), method_options={"run": options},
                           ratios=ratios, epochs=self.epochs[dataset])
            self.cache[key] = runs["run"]
        return self.cache[key]

    def trained(self, dataset: str, method: str) -> list[theory.Trained]:
        """``method`` trained briefly per seed on ``dataset``, the models the first-order checks measure (chapters
        3 and 6: ``WARMUP_EPOCHS``, batches of ``CHECK_BATCH``), trained once."""
        key = ("briefly trained", dataset, method, self.fast)
        if key not in self.cache:
            self.cache[key] = theory.briefly_trained(dataset, self.seeds, method, epochs=WARMUP_EPOCHS[self.fast],
                                                     batch_size=CHECK_BATCH[self.fast])
        return self.cache[key]


@dataclass(frozen=True)
class Claim:
    key: str
    paper: str
    where: str         # section / equation / table / figure of the paper
    claim: str         # one line, the kit's words
    paper_number: str  # the paper's number with its place ("" if the claim has none)
    how: str           # how the kit tests it: function, dataset, seeds
    chapter: str       # the chapter (section) that shows it, e.g. "04_balgrad.ipynb"
    check: Callable[[Ledger], Finding] | None = None
    not_testable: str = ""  # why, when there is no check

    def __post_init__(self):
        if self.paper not in PAPERS:
            raise ValueError(f"Claim {self.key!r}: paper must be one of {PAPERS}, got {self.paper!r}")
        if (self.check is None) == (not self.not_testable):
            raise ValueError(f"Claim {self.key!r}: give a check or say why it is not testable here, not both")

    def run(self, ledger: Ledger) -> Finding:
        if self.check is None:
            return Finding("—", NOT_TESTABLE, self.not_testable)
        return self.check(ledger)


# --- turning the kit's one rule into the ledger's words -----------------------------------------------

def too_few_seeds(n: int) -> str:
    return f"too few seeds (n={n}; the kit's rule needs {stats.MIN_SEEDS})"


def directional(difference: stats.Difference, expect: int, what: str, digits: int = 1) -> Finding:
    """A claim that ``difference`` (a paired difference) has the sign of ``expect`` (+1 or -1); ``digits``: the
    decimals the measurement is written with."""
    measured = f"{what}: {difference.text(digits)}"
    if difference.verdict == stats.TOO_FEW:
        return Finding(measured, NOT_TESTABLE, too_few_seeds(difference.n))
    if difference.differs and math.copysign(1, difference.mean) == expect:
        return Finding(measured, HOLDS)
    reason = "within seed noise" if not difference.differs else "the opposite direction"
    return Finding(measured, DOES_NOT_HOLD, reason)


def combined(findings: dict[str, Finding]) -> Finding:
    """A claim made of parts: holds if every part holds, does not hold if none does, otherwise partly."""
    measured = "; ".join(f.measured for f in findings.values())
    verdicts = [f.verdict for f in findings.values()]
    if NOT_TESTABLE in verdicts:
        reasons = sorted({f.detail for f in findings.values() if f.verdict == NOT_TESTABLE})
        return Finding(measured, NOT_TESTABLE, "; ".join(reasons))
    if all(v == HOLDS for v in verdicts):
        return Finding(measured, HOLDS)
    if not any(v == HOLDS for v in verdicts):
        return Finding(measured, DOES_NOT_HOLD)
    holding = [part for part, f in findings.items() if f.verdict == HOLDS]
    return Finding(measured, PARTLY, f"holds for {', '.join(holding)} only")


def from_parts(parts: dict, digits: int = 1) -> Finding:
    """A claim checked in parts by ``cggm_evidence``/``goal_evidence`` (``{part: Part(difference, expect, what)}``):
    each part judged by ``directional``, the whole by ``combined``."""
    return combined({part: directional(*evidence, digits=digits) for part, evidence in parts.items()})


def evidence(check: Callable, digits: int = 1) -> Callable[[Ledger], Finding]:
    """A ledger check from an evidence module's ``check_*(ledger) -> parts`` (``from_parts`` of its parts)."""
    return lambda ledger: from_parts(check(ledger), digits=digits)


def verdict_text(finding: Finding) -> str:
    """A finding's verdict, with its reason where there is one ("does not hold (within seed noise)")."""
    return finding.verdict + (f" ({finding.detail})" if finding.detail else "")


def parts_table(parts: dict, digits: int = 2) -> str:
    """Markdown: each part of a claim (``{part: Part(difference, expect, what)}``, as ``cggm_evidence`` and
    ``goal_evidence`` give them) with the sign the paper implies, what the kit measured (Δ [95 % interval] (n),
    ``digits`` decimals) and its verdict by ``directional`` (chapters 5 and 6)."""
    rows = [[name, "Δ > 0" if part.expect > 0 else "Δ < 0",
             f"{part.what}: {part.difference.text(digits, verdict=False)}",
             verdict_text(directional(*part, digits=digits))] for name, part in parts.items()]
    return stats.markdown_table(["part of the claim", "the paper implies", "the kit measured", "verdict"], rows)


def paired(a: list[Run], b: list[Run], pick: Callable[[Run], float]) -> stats.Difference:
    return stats.paired_difference(a, b, pick)


MISSING_GAP = lambda run: run.table.missing_delta_gap  # noqa: E731  (picks, named for the tables they read)
NOISY_GAP = lambda run: run.table.noisy_delta_gap  # noqa: E731
FULL = lambda run: run.table.full  # noqa: E731


def compared(dataset: str, pick, expect: int, what: str, method: tuple, reference: tuple, digits: int = 1) -> Callable:
    """A check: ``pick(method) − pick(reference)`` on ``dataset`` has the sign of ``expect``;
    ``method`` and ``reference`` are ``(name, options)``; ``digits``: decimals of the measurement (3 for shares
    and losses, whose differences are below 0.05)."""
    def check(ledger: Ledger) -> Finding:
        runs = ledger.runs(dataset, method[0], **method[1])
        reference_runs = ledger.runs(dataset, reference[0], **reference[1])
        return directional(paired(runs, reference_runs, pick), expect, f"{what} on {dataset}", digits)
    return check


def compared_on(dataset: str, encoders: dict[str, str], pick, expect: int, what: str, method: str,
                reference: str) -> Callable:
    """``compared`` on features from other encoders (``Experiment(dataset, encoders=...)``)."""
    def check(ledger: Ledger) -> Finding:
        difference = paired(ledger.runs(dataset, method, encoders=encoders),
                            ledger.runs(dataset, reference, encoders=encoders), pick)
        return directional(difference, expect, f"{what} on {dataset}")
    return check


def against_each(dataset: str, pick, expect: int, what: str, method: tuple, references: dict[str, tuple]) -> Callable:
    """A check that ``method`` beats each of ``references`` ({name: (method, options)}) in the direction ``expect``."""
    def check(ledger: Ledger) -> Finding:
        return combined({name: compared(dataset, pick, expect, f"{what} vs {name}", method, reference)(ledger)
                         for name, reference in references.items()})
    return check


# --- checks that are more than one paired difference ------------------------------------------------------

def unimodal_loss_gap(run: Run, last_share: float = 0.2) -> float:
    """|L_T^v − L_T^l| averaged over the last ``last_share`` of training (the heads' losses, Fig. 6 of BalGrad)."""
    history = run.result.history
    names = [key for key in history if key.startswith("loss_uni_")]
    if len(names) != 2:
        raise ValueError(f"unimodal_loss_gap needs two modalities' losses, the history has {names}")
    a, b = (np.asarray(history[name], dtype=float) for name in names)
    return cggm_evidence.window_mean(np.abs(a - b), "late", last_share)


def conflict_share(run: Run) -> float:
    """The share of iterations in which BalGrad's g_T and g_kl conflict (cos < 0; its Table 3)."""
    return history_mean(run, "conflict")


def ratio_gap_check(dataset: str, method: str, reference: str) -> Callable:
    """BalGrad Fig. 4: the method's ΔGap at each missing ratio r (``plots.ratio_delta_gap``, seed by seed) is
    below the reference's."""
    def check(ledger: Ledger) -> Finding:
        runs, reference_runs = ledger.runs(dataset, method), ledger.runs(dataset, reference)
        ratios = sorted(next(iter(runs[0].table.ratio_sweep.values())))
        return combined({f"r = {r:g}": directional(
            paired(runs, reference_runs, lambda run, r=r: ratio_delta_gap(run.table.ratio_sweep, r)), -1,
            f"ΔGap at r = {r:g}") for r in ratios})
    return check


def step_cost_check(dataset: str, method: str, reference: str, paper_ratio: float) -> Callable:
    """A cost claim "``method`` costs ``paper_ratio`` × ``reference`` per step": the paired difference of
    log step times minus log(paper_ratio). Within seed noise or cheaper: holds; dearer: does not hold."""
    def check(ledger: Ledger) -> Finding:
        runs, reference_runs = ledger.runs(dataset, method), ledger.runs(dataset, reference)
        ratios = [a.result.median_step_seconds / b.result.median_step_seconds
                  for a, b in zip(runs, reference_runs, strict=True)]
        excess = stats.against([math.log(r) for r in ratios], math.log(paper_ratio))
        measured = f"step time {method} / {reference} on {dataset}: {stats.summarize(ratios).text(2)}"
        if excess.verdict == stats.TOO_FEW:
            return Finding(measured, NOT_TESTABLE, too_few_seeds(excess.n))
        if excess.differs and excess.mean > 0:
            return Finding(measured, DOES_NOT_HOLD,
                           f"dearer than {paper_ratio:g}× (log-ratio excess {excess.text(3)})")
        return Finding(measured, HOLDS, f"not dearer than {paper_ratio:g}× (log-ratio excess {excess.text(3)})")
    return check


def near(values, value: float, tolerance: float, what: str, fmt: str = ".3f") -> Finding:
    """A claim that a measured quantity (one value per seed) equals a theoretical ``value``, e.g. a residual slope
    of 2. The kit's rule on the paired difference of ``values`` against ``value`` (``stats.paired_difference``)
    gives the 95 % interval of the mean; the claim **holds** when that interval lies within ±``tolerance`` of
    ``value`` and **does not hold** otherwise (wholly outside: the quantity is elsewhere; reaching outside: not
    shown to be there). Below ``stats.MIN_SEEDS`` seeds: not testable here."""
    values = [float(v) for v in values]
    difference = stats.against(values, value)
    measured = (f"{what}: {value + difference.mean:{fmt}} [{value + difference.low:{fmt}}, "
                f"{value + difference.high:{fmt}}] (n={difference.n}; theory {value:g})")
    if difference.verdict == stats.TOO_FEW:
        return Finding(measured, NOT_TESTABLE, too_few_seeds(difference.n))
    if -tolerance <= difference.low and difference.high <= tolerance:
        return Finding(measured, HOLDS, f"within ±{tolerance:g} of {value:g}")
    if difference.low > tolerance or difference.high < -tolerance:
        return Finding(measured, DOES_NOT_HOLD, f"outside ±{tolerance:g} of {value:g}")
    return Finding(measured, DOES_NOT_HOLD, f"the interval reaches beyond ±{tolerance:g} of {value:g}")


THEORY_DATASET = "emoji"                 # the data chapters 3 and 6 check the propositions on
SLOPE_TOLERANCE = 0.2                    # a residual slope within 2 ± 0.2 is second order (chapter 3's bound)
FLOAT64_EPS = float(np.finfo(np.float64).eps)  # the checks run in float64; round-off is a few of these
A14_STEP_SIZES = {True: np.logspace(-7, -2, 11), False: np.logspace(-7, -2, 21)}  # fast / full


def proposition1_rows(ledger: Ledger) -> list[theory.Proposition1Seed]:
    """``theory.proposition1_over_seeds`` on the ledger's models, measured once for both readings' claims."""
    key = ("proposition 1", THEORY_DATASET, ledger.fast)
    if key not in ledger.cache:
        ledger.cache[key] = theory.proposition1_over_seeds(ledger.trained(THEORY_DATASET, "joint_unimodal_heads"))
    return ledger.cache[key]


def proposition1_check(ledger: Ledger) -> Finding:
    """BalGrad Proposition 1, the corrected reading: the residual of −λ(|g_v|² + |g_l|² + |g_T^v + g_T^l|²)
    against the actual loss change is O(λ²), a log-log slope of 2 (``near``, ±``SLOPE_TOLERANCE``)."""
    rows = proposition1_rows(ledger)
    finding = near([r.corrected_slope for r in rows], 2.0, SLOPE_TOLERANCE, "residual slope, corrected reading")
    errors = stats.summarize([r.corrected_error for r in rows])
    return replace(finding, measured=f"{finding.measured}; relative error at λ = {theory.STEP_SIZES.min():g}: "
                                     f"{errors.mean:.1e} (mean of {errors.n})")


def proposition1_literal_check(ledger: Ledger) -> Finding:
    """BalGrad Eq. 1 read literally (the sum over i in {v, l, T}): is it the first-order change, residual slope 2
    (``near``, ±``SLOPE_TOLERANCE``)? A rate off by |g_T|² leaves a first-order residual, slope 1."""
    rows = proposition1_rows(ledger)
    finding = near([r.literal_slope for r in rows], 2.0, SLOPE_TOLERANCE, "residual slope, literal reading")
    excess = stats.summarize([r.literal_excess for r in rows])
    detail = finding.detail
    if finding.verdict == DOES_NOT_HOLD:
        detail += (f"; a first-order error: the literal rate is {excess.mean:+.0%} above the corrected one "
                   "(|g_T|² twice)")
    return replace(finding, detail=detail)


def proposition2_check(ledger: Ledger) -> Finding:
    """BalGrad Proposition 2 (Eq. 5), on a batch per seed where G^τ·G^kl < 0. Two parts: Eq. 5 is the first-order
    change (residual slope 2, ``near``), and the conflict slows the decrease: the measured −ΔL/λ at the smallest
    step, paired against ‖G^τ‖² + ‖G^kl‖² over the conflicting seeds, is lower (``directional``)."""
    rows = theory.proposition2_over_seeds(ledger.trained(THEORY_DATASET, "joint_unimodal_heads"))
    conflicting = [r for r in rows if r.conflict]
    parts = {"Eq. 5 to first order": near([r.slope for r in rows], 2.0, SLOPE_TOLERANCE, "residual slope of Eq. 5")}
    if conflicting:
        slowed = stats.paired_difference([r.measured_rate for r in conflicting],
                                         [r.rate_without_inner for r in conflicting])
        parts["a conflict slows the decrease"] = directional(
            slowed, -1,
            f"−ΔL/λ minus (‖G^τ‖² + ‖G^kl‖²) on {len(conflicting)} of {len(rows)} seeds with a conflict",
            digits=3)
    else:
        parts["a conflict slows the decrease"] = Finding("no batch with G^τ·G^kl < 0", NOT_TESTABLE,
                                                         "no seed had a conflicting batch among those tried")
    return combined(parts)


def fig2_check(dataset: str) -> Callable[[Ledger], Finding]:
    """BalGrad Fig. 2 on ``dataset``: per seed, 1 when the modality learned first is the costliest to lose
    (``dominance.first_vs_costliest`` on ``joint_unimodal_heads`` runs), 0 otherwise; the claim holds when the
    agreement beats chance (1/M for M modalities) by the kit's rule (paired against it, ``directional``)."""
    def check(ledger: Ledger) -> Finding:
        runs = ledger.runs(dataset, HEADS[0], ratios=(), **HEADS[1])  # Fig. 2a needs no missing-ratio sweep
        rows = first_vs_costliest(runs)
        chance = 1 / len(runs[0].result.model.modalities)
        agreement = stats.against([float(r.agree) for r in rows], chance)
        pairs = ", ".join(f"{r.first or 'none'}/{r.costliest}" for r in rows)
        return directional(agreement, +1, f"{dataset}: first = costliest on {sum(r.agree for r in rows)} of "
                                          f"{len(rows)} seeds (first/costliest: {pairs}); agreement − chance")
    return check


def a3_check(ledger: Ledger) -> Finding:
    """GOAL A.3, the local part: after A.3's affine rescaling, u − Ṽ along the trained model's predictions shrinks
    like ε³, slope 3 (``near``, ±``SLOPE_TOLERANCE``); max-normalising V alone gives slope 2, shown for contrast."""
    rows = theory.entropy_variance_over_seeds(ledger.trained(THEORY_DATASET, "goal"),
                                              samples=16 if ledger.fast else 32)
    finding = near([r.rescaled_slope for r in rows], 3.0, SLOPE_TOLERANCE, "slope of u − Ṽ near uniform")
    plain = stats.summarize([r.plain_slope for r in rows])
    return replace(finding, measured=f"{finding.measured}; u − V/(1 − 1/K): {plain.text(2)}")


def a9_check(ledger: Ledger) -> Finding:
    """GOAL A.9: after GO, each conflicting sample's edited gradient is orthogonal to the other modality's
    (max |cos| within 10⁶ ε ≈ 2e-10 of 0, round-off) and no sample conflicts any more (share exactly 0); both by
    ``near``. Without a conflicting sample before GO there is nothing to test."""
    rows = theory.orthogonality_over_seeds(ledger.trained(THEORY_DATASET, "goal"))
    before = stats.summarize([r.conflict_before for r in rows])
    if before.mean == 0:
        return Finding(f"conflicting samples before GO: {before.text(3)}", NOT_TESTABLE,
                       "no sample's two feature gradients conflicted before GO")
    finding = combined({
        "orthogonal": near([r.max_abs_cos_to_other / FLOAT64_EPS for r in rows], 0.0, 1e6,
                           "max |cos(g_i'', g_j)| in units of float64's ε", ".2f"),
        "no conflict left": near([r.conflict_after for r in rows], 0.0, 0.0, "share conflicting after GO")})
    return replace(finding, measured=f"share conflicting before GO {before.text(3)}; {finding.measured}")


def a14_check(ledger: Ledger) -> Finding:
    """GOAL A.14 with GOAL's own correction Δv, per branch: the relative error of −η H_s Δv against the actual
    ΔG grows like η in the Taylor regime (slope 1, ``near`` ±``SLOPE_TOLERANCE``),
    i.e. ΔG = −η H_s Δv + O(η²).
    A seed whose branch has no Taylor regime (a ReLU switches at once) leaves that part not testable."""
    rows = theory.indirect_effect_over_seeds(ledger.trained(THEORY_DATASET, "goal"), A14_STEP_SIZES[ledger.fast])
    parts = {}
    for m in dict.fromkeys(r.modality for r in rows):
        slopes = [r.slope for r in rows if r.modality == m]
        if None in slopes:
            unread = [r.seed for r in rows if r.modality == m and r.slope is None]
            parts[m] = Finding(f"{m}: no Taylor regime on seed(s) {unread}", NOT_TESTABLE,
                               "fewer than 2 step sizes between round-off and the first ReLU switch")
        else:
            parts[m] = near(slopes, 1.0, SLOPE_TOLERANCE, f"relative-error slope ({m})")
    return combined(parts)


SEESAW_REGRESSION = {"target": "regression"}  # SeeSaw's regression target (chapter 5, section 11): Full is the MAE


def cggm_versatility_check(ledger: Ledger) -> Finding:
    """CGGM's claim that it needs no change for more modalities or another loss, and still helps: Full, CGGM − joint,
    on SeeSaw with three modalities (the runs GOAL's Table 3 check trains, ``goal_evidence.table3_ledger_runs``), and
    the MAE (lower is better), CGGM − joint, on SeeSaw's regression target."""
    three = paired(goal_evidence.table3_ledger_runs(ledger, "cggm"), goal_evidence.table3_ledger_runs(ledger, "joint"),
                   FULL)
    regression = paired(ledger.runs("seesaw", "cggm", ratios=(), dataset_options=SEESAW_REGRESSION),
                        ledger.runs("seesaw", "joint", ratios=(), dataset_options=SEESAW_REGRESSION), FULL)
    return combined({
        "three modalities": directional(three, +1, "Full, CGGM − joint, SeeSaw with 3 modalities"),
        "regression": directional(regression, -1, "MAE, CGGM − joint, SeeSaw regression", digits=3)})


# --- the ledger -------------------------------------------------------------------------------------------

JOINT = ("joint", {})
HEADS = ("joint_unimodal_heads", {})
BALGRAD = ("balgrad", {})
BALGRAD_NEITHER = ("balgrad", {"reweighting": False, "projection": False})
BALGRAD_REWEIGHT = ("balgrad", {"projection": False})
BALGRAD_PROJECT = ("balgrad", {"reweighting": False})
CGGM = ("cggm", {})
CGGM_UNMODULATED = ("cggm", {"magnitude": False, "direction": False})
GOAL = ("goal", {})
GOAL_NEITHER = ("goal", {"adaptive_leveraging": False, "orthogonalization": False})
NO_DATA = "the paper's dataset is not in this kit's embedded data; run it through a cached real dataset"

FIG2B_REPORTS = ("Fig. 2b, curves without numbers: on Food-101 and Hateful Memes the dominant modality's loss falls "
                 "fast and the weak one's slowly; on MM-IMDb, where neither dominates, the gap between the two losses "
                 "closes over training (Section 3.1)")
TABLE1_SETTING = "frozen ViT + BERT, linear probing, 20 epochs, one run per cell, no spread"
TABLE2_GAPS = ("missing ΔGap (Baseline, w/ Gradient reweighting, w/ Gradient projection, BalGrad): Food-101 50.53, "
               "41.80, 43.94, 39.54; Hateful Memes 8.74, 9.34, 9.20, 8.38; MM-IMDb 0.45, 4.28, 0.33, 1.34 (Table 2)")
FIGURE_ONLY = "bar charts of ΔGap on Food-101, Hateful Memes and MM-IMDb, no numbers"

FIRST_ORDER_SIZES = ("per seed a model trained 1 epoch (fast) or 5 (full) on emoji, one batch of 128 (fast) or 256 "
                     "(full) samples, float64")

CLAIMS: list[Claim] = [
    Claim("balgrad-prop1", "BalGrad", "Section 3.1, Proposition 1 (Eq. 1, Appendix A.1)",
          "One gradient step lowers the task loss by λ(|g_v|² + |g_l|² + |g_T^v + g_T^l|²) to first order "
          "(Eq. 1 read over i ∈ {v, l}).",
          "a derivation, no numbers; under concatenation the cross term −2λ g_T^v·g_T^l is 'potentially' lower "
          "(Appendix A.1, Influence of Fusion Methods)",
          "theory.proposition1_over_seeds on joint_unimodal_heads: residual slope of the corrected reading against 2 "
          f"(±{SLOPE_TOLERANCE}); {FIRST_ORDER_SIZES}", "03_gradients_first_order.ipynb", proposition1_check),
    Claim("balgrad-prop1-literal", "BalGrad", "Section 3.1, Proposition 1 (Eq. 1 as printed)",
          "Eq. 1 as printed, its sum running over i ∈ {v, l, T}, is the first-order loss change.",
          "Eq. 1: ΔL = −2λ g_T^v·g_T^l − λ Σ_{i ∈ {v, l, T}} (g_i·g_i + g_T^i·g_T^i) + O(λ²); a derivation, no "
          "numbers",
          "theory.proposition1_over_seeds: residual slope of the literal reading (g_T^T := 0) against 2 "
          f"(±{SLOPE_TOLERANCE}); {FIRST_ORDER_SIZES}", "03_gradients_first_order.ipynb", proposition1_literal_check),
    Claim("balgrad-prop2", "BalGrad", "Section 3.2.2, Proposition 2 (Eq. 5, Appendix A.2)",
          "When the task and KL gradients conflict (G^τ·G^kl < 0), the first-order decrease of L_T + L_kl shrinks "
          "by 2|G^τ·G^kl|.", "",
          "theory.proposition2_over_seeds on joint_unimodal_heads, the first batch per seed with G^τ·G^kl < 0: "
          "residual "
          "slope of Eq. 5 against 2, and −ΔL/λ paired against ‖G^τ‖² + ‖G^kl‖²; " + FIRST_ORDER_SIZES,
          "03_gradients_first_order.ipynb", proposition2_check),
    Claim("balgrad-fig2-emoji", "BalGrad", "Section 3.1, Fig. 2 (a) and (b)",
          "The modality whose absence costs most is the one whose loss falls fastest in training (emoji).",
          FIG2B_REPORTS,
          "dominance.first_vs_costliest on joint_unimodal_heads runs (the ledger's epochs), emoji: per-seed agreement "
          "(1/0) paired against chance (1/2)", "01_dominant_modality_bias.ipynb", fig2_check("emoji")),
    Claim("balgrad-fig2-seesaw", "BalGrad", "Section 3.1, Fig. 2 (the reading, on other data)",
          "The modality whose absence costs most is the one whose loss falls fastest in training (SeeSaw).",
          FIG2B_REPORTS,
          "dominance.first_vs_costliest on joint_unimodal_heads runs (the ledger's epochs), SeeSaw: per-seed "
          "agreement (1/0) paired against chance (1/2)", "02_seesaw_controlled_world.ipynb", fig2_check("seesaw")),
    Claim("balgrad-table1-missing", "BalGrad", "Table 1, Missing ΔGap",
          "BalGrad narrows the gap between the image-missing and text-missing scores compared with joint training.",
          "missing ΔGap, Baseline → BalGrad: Food-101 50.53 → 39.54, Hateful Memes 8.74 → 8.28, MM-IMDb 0.45 → 1.34 "
          f"(Table 1; {TABLE1_SETTING})",
          "paired difference of missing ΔGap, BalGrad − joint, emoji", "04_balgrad.ipynb",
          compared("emoji", MISSING_GAP, -1, "missing ΔGap, BalGrad − joint", BALGRAD, JOINT)),
    Claim("balgrad-table1-noisy", "BalGrad", "Table 1, Noisy ΔGap",
          "BalGrad narrows the gap between the image-noisy and text-noisy scores compared with joint training.",
          "Food-101 noisy ΔGap: baseline 25.36, BalGrad 22.96 (Table 1)",
          "paired difference of noisy ΔGap, BalGrad − joint, emoji", "04_balgrad.ipynb",
          compared("emoji", NOISY_GAP, -1, "noisy ΔGap, BalGrad − joint", BALGRAD, JOINT)),
    Claim("balgrad-table1-full", "BalGrad", "Table 1, Full",
          "BalGrad does not pay for balance with accuracy on complete inputs: Full rises over joint training.",
          "Food-101 Full: baseline 76.01, BalGrad 80.32 (Table 1)",
          "paired difference of Full, BalGrad − joint, emoji", "07_head_to_head.ipynb",
          compared("emoji", FULL, +1, "Full, BalGrad − joint", BALGRAD, JOINT)),
    Claim("balgrad-table1-baselines", "BalGrad", "Table 1, Missing ΔGap",
          "BalGrad's missing ΔGap is below that of the balancing baselines MSLR and OGM-GE.",
          "missing ΔGap (Baseline, MSLR, OGM-GE, AGM, BalGrad): Food-101 50.53, 42.48, 47.59, 40.53, 39.54; Hateful "
          "Memes 8.74, 10.38, 9.63, 10.05, 8.28; MM-IMDb 0.45, 4.59, 12.17, 2.11, 1.34 (Table 1)",
          "paired differences of missing ΔGap, BalGrad − MSLR and BalGrad − OGM-GE, emoji",
          "07_head_to_head.ipynb",
          against_each("emoji", MISSING_GAP, -1, "missing ΔGap, BalGrad", BALGRAD,
                       {"MSLR": ("mslr", {}), "OGM-GE": ("ogm_ge", {})})),
    Claim("balgrad-table2-reweighting", "BalGrad", "Table 2 (ablation)",
          "The reweighting alone (no projection) narrows missing ΔGap compared with neither part.",
          TABLE2_GAPS, "paired difference of missing ΔGap, reweighting only − neither part, emoji", "04_balgrad.ipynb",
          compared("emoji", MISSING_GAP, -1, "missing ΔGap, reweighting only − neither", BALGRAD_REWEIGHT,
                   BALGRAD_NEITHER)),
    Claim("balgrad-table2-projection", "BalGrad", "Table 2 (ablation)",
          "The projection alone (no reweighting) narrows missing ΔGap compared with neither part.",
          TABLE2_GAPS, "paired difference of missing ΔGap, projection only − neither part, emoji", "04_balgrad.ipynb",
          compared("emoji", MISSING_GAP, -1, "missing ΔGap, projection only − neither", BALGRAD_PROJECT,
                   BALGRAD_NEITHER)),
    Claim("balgrad-table2-both", "BalGrad", "Table 2 (ablation)",
          "Both parts together narrow missing ΔGap more than either part alone.",
          TABLE2_GAPS, "paired differences of missing ΔGap, BalGrad − each single part, emoji", "04_balgrad.ipynb",
          against_each("emoji", MISSING_GAP, -1, "missing ΔGap, BalGrad", BALGRAD,
                       {"reweighting only": BALGRAD_REWEIGHT, "projection only": BALGRAD_PROJECT})),
    Claim("balgrad-table3-conflicts", "BalGrad", "Table 3 and Fig. 7",
          "With the projection, the task and KL gradients conflict in fewer iterations.",
          "conflict share without → with projection: Food-101 0.66 → 0.36, Hateful Memes 0.78 → 0.32, "
          "MM-IMDb 0.28 → 0.26 (Table 3; ViT + BERT, 20 epochs; when the conflicts are counted is not said)",
          "paired difference of the share of iterations with cos(g_T, g_kl) < 0, BalGrad − reweighting only, emoji",
          "04_balgrad.ipynb",
          compared("emoji", conflict_share, -1, "conflict share, with − without projection", BALGRAD,
                   BALGRAD_REWEIGHT, digits=3)),
    Claim("balgrad-fig6-losses", "BalGrad", "Fig. 6",
          "The reweighting brings the two modalities' unimodal losses closer together.",
          "", "paired difference of |L_T^v − L_T^l| over the last fifth of training, with − without reweighting, "
          "emoji", "04_balgrad.ipynb",
          compared("emoji", unimodal_loss_gap, -1, "|L_T^v − L_T^l|, with − without reweighting", BALGRAD,
                   BALGRAD_PROJECT, digits=3)),
    Claim("balgrad-fig4-ratios", "BalGrad", "Fig. 4",
          "BalGrad's ΔGap stays below joint training's at every missing ratio r.",
          "a figure, no numbers: a lower ΔGap than the other methods at every r ∈ {0.2, 0.4, 0.6, 0.8}, slightly "
          "above the baseline's on MM-IMDb, which has no dominant modality (Fig. 4, Section 4.2)",
          "paired difference of ΔGap at r = 0.2, 0.4, 0.6, 0.8, BalGrad − joint, emoji", "07_head_to_head.ipynb",
          ratio_gap_check("emoji", "balgrad", "joint")),
    Claim("balgrad-fig8-fusion", "BalGrad", "Fig. 8 and Appendix C.1",
          "With element-wise addition or attention fusion instead of concatenation, BalGrad still narrows missing "
          "ΔGap compared with the baseline.",
          f"{FIGURE_ONLY}; BalGrad's ΔGap the smallest on all three with both fusions (Fig. 8, Appendix C.1)",
          "paired difference of missing ΔGap, BalGrad − joint, under sum and under attention fusion, emoji "
          "(concatenation is Table 1's claim)", "04_balgrad.ipynb",
          lambda ledger: combined({fusion: compared("emoji", MISSING_GAP, -1, f"missing ΔGap ({fusion})",
                                                    ("balgrad", {"fusion": fusion}),
                                                    ("joint", {"fusion": fusion}))(ledger)
                                   for fusion in ("sum", "attention")})),
    Claim("balgrad-fig9-backbones", "BalGrad", "Fig. 9 and Appendix C.2",
          "With other backbones (ResNet-50 with DistilBERT, CLIP) BalGrad still narrows missing ΔGap.",
          f"{FIGURE_ONLY}, BalGrad against existing methods (Fig. 9, Appendix C.2)",
          "paired difference of missing ΔGap, BalGrad − joint, with the one other offline image backbone, a small "
          "CNN from scratch on 16 × 16 pixels, emoji (a neighbour of the paper's test: the text side and the "
          "paper's pretrained backbones need downloads)", "04_balgrad.ipynb",
          lambda ledger: compared_on("emoji", {"image": "pixels:16"}, MISSING_GAP, -1,
                                     "missing ΔGap, BalGrad − joint, pixel CNN", "balgrad", "joint")(ledger)),
    Claim("balgrad-hateful-memes", "BalGrad", "Table 1, Hateful Memes",
          "On Hateful Memes (text-dominant), BalGrad has the smallest missing ΔGap.",
          "Hateful Memes missing ΔGap: baseline 8.74, BalGrad 8.28 (Table 1)", "—", "07_head_to_head.ipynb",
          not_testable=NO_DATA),
    Claim("balgrad-food101-image", "BalGrad", "Section 3.1 (Fig. 2a) and Table 1, UPMC Food-101",
          "Joint training on UPMC Food-101 leans on the image: without it the score falls far more than without the "
          "text.",
          f"Food-101 Baseline: Full 76.01, image missing 12.99, text missing 63.52, missing ΔGap 50.53 (Table 1, "
          f"accuracy %; {TABLE1_SETTING})", "—", "01_dominant_modality_bias.ipynb", not_testable=NO_DATA),
    Claim("cggm-tables-accuracy", "CGGM", "Tables 2 and 4 (images in the text)",
          "CGGM raises the fused accuracy over joint training.",
          "Food-101 accuracy 92.94 for CGGM (Table 2; an image in the paper's text, as transcribed by a "
          "secondary source)",
          "paired difference of Full, CGGM − joint, emoji", "05_cggm.ipynb",
          compared("emoji", FULL, +1, "Full, CGGM − joint", CGGM, JOINT)),
    Claim("cggm-table6-parts", "CGGM", "Table 6",
          "Modulating the magnitude and the direction each help, and both together help most.",
          "IEMOCAP: magnitude modulation helps more than direction modulation, and both together most (Table 6, an "
          "image in our copy; the ordering is stated in Section 4.5)",
          "paired differences of Full: magnitude only, direction only and both, each − neither, emoji",
          "05_cggm.ipynb",
          against_each("emoji", FULL, +1, "Full − unmodulated", CGGM,
                       {"magnitude only": ("cggm", {"direction": False}),
                        "direction only": ("cggm", {"magnitude": False})})),
    Claim("cggm-fig3-balance", "CGGM", "Fig. 3 and Section 4.4",
          "CGGM holds back the dominant modality, so the modalities are used more evenly (smaller missing ΔGap).",
          "no number for a missing-modality gap: the balance is shown by how accuracy, gradient magnitudes and "
          "directions change over training (Fig. 3, CMU-MOSI) and by higher scores on every dataset",
          "paired difference of missing ΔGap, CGGM − its unmodulated classifiers, emoji", "05_cggm.ipynb",
          compared("emoji", MISSING_GAP, -1, "missing ΔGap, CGGM − unmodulated", CGGM, CGGM_UNMODULATED)),
    Claim("cggm-fig5-rho", "CGGM", "Fig. 5 (a) and Section 4.5",
          "Every scale ρ of the balancing term improves on joint training.",
          "on IEMOCAP the accuracy peaks at ρ = 1.2, and every ρ tried is above the joint baseline (Fig. 5a, "
          "Section 4.5)", "paired difference of Full, CGGM(ρ) − joint, ρ ∈ {0.8, 1.3, 1.8}, "
          "emoji", "05_cggm.ipynb",
          lambda ledger: combined({f"ρ = {rho}": compared("emoji", FULL, +1, f"Full, ρ = {rho}",
                                                          ("cggm", {"rho": rho}), JOINT)(ledger)
                                   for rho in (0.8, 1.3, 1.8)})),
    Claim("cggm-versatility", "CGGM", "Sections 1 and 4.3 (Tables 3 and 4)",
          "CGGM needs no change for more than two modalities or for a regression loss (L1), and still improves on "
          "joint training there.",
          "CMU-MOSI (regression, L1 loss) MAE 0.747 and IEMOCAP (three modalities) accuracy 75.38 for CGGM (Table 4, "
          "an image in the paper's text, as transcribed by a secondary source); BraTS 2021 has four modalities "
          "(Table 3)",
          "paired differences, CGGM − joint: Full on SeeSaw with 3 modalities (the runs of goal-table3-three) and the "
          "MAE on SeeSaw's regression target", "05_cggm.ipynb", cggm_versatility_check),
    Claim("cggm-table8-memory", "CGGM", "Table 8",
          "The classifiers add little GPU memory.", "", "—", "05_cggm.ipynb",
          not_testable="needs a GPU (the peak allocated GPU memory); on a CPU the kit's memory column is only a "
                       "rough signal"),
    Claim("goal-a3", "GOAL", "Appendix A.3",
          "Near the uniform distribution, normalised entropy and total variance agree to second order (after an "
          "affine rescaling), so entropy can stand in for the prediction's variance.",
          "a derivation, no numbers: log K − H(p) ≈ (K/2)(Var_T(u) − Var_T(p)) near the uniform u; globally, both "
          "are Schur-concave",
          "theory.entropy_variance_over_seeds on GOAL's models: slope of u − Ṽ along each prediction's direction "
          f"(median per seed) against 3 (±{SLOPE_TOLERANCE}); {FIRST_ORDER_SIZES}", "06_goal.ipynb", a3_check),
    Claim("goal-a9", "GOAL", "Appendix A.9 (Eqs. 9–10)",
          "After Gradient Orthogonalization the two modalities' edited gradients are orthogonal to each other's and "
          "no longer conflict.", "",
          "theory.orthogonality_over_seeds on GOAL's models: max |cos(g_i'', g_j)| against 0 (±10⁶ float64 ε) and the share "
          f"of conflicting samples after GO against 0; {FIRST_ORDER_SIZES}", "06_goal.ipynb", a9_check),
    Claim("goal-a14", "GOAL", "Appendix A.14",
          "GOAL's edit Δv of the fusion gradient changes the next step's unimodal gradient by ΔG ≈ −η H_s Δv.", "",
          "theory.indirect_effect_over_seeds (edit='goal') on GOAL's models, per branch: slope of the relative error "
          f"in the Taylor regime against 1 (±{SLOPE_TOLERANCE}); {FIRST_ORDER_SIZES}", "06_goal.ipynb", a14_check),
    Claim("goal-accuracy", "GOAL", "Tables 1 and 3",
          "GOAL raises the fused accuracy over joint training.",
          "Acc, Concatenation → GOAL: CREMA-D 69.62 → 78.23 (Table 1), Hateful Memes 60.20 → 62.30 (Table 3)",
          "paired difference of Full, GOAL − joint, emoji", "06_goal.ipynb",
          compared("emoji", FULL, +1, "Full, GOAL − joint", GOAL, JOINT)),
    Claim("goal-table1-ogm", "GOAL", "Table 1 (OGM, a baseline)",
          "OGM-GE, which slows the dominant modality's branch, raises the fused accuracy over plain concatenation.",
          "CREMA-D Acc: Concatenation 69.62, OGM 73.79 (Table 1)",
          "paired difference of Full, OGM-GE − joint, emoji", "07_head_to_head.ipynb",
          compared("emoji", FULL, +1, "Full, OGM-GE − joint", ("ogm_ge", {}), JOINT)),
    Claim("goal-ablation", "GOAL", "ablation (Section 4)",
          "Adaptive leveraging and gradient orthogonalization each add to the fused accuracy.",
          "CREMA-D Acc: Concat 69.62, AL only 75.13, GO only 76.75, GOAL 78.23 (Table 2)",
          "paired differences of Full: AL only and GO only, each − neither, emoji", "06_goal.ipynb",
          lambda ledger: combined({
              "AL only": compared("emoji", FULL, +1, "Full, AL only − neither", ("goal", {"orthogonalization": False}),
                                  GOAL_NEITHER)(ledger),
              "GO only": compared("emoji", FULL, +1, "Full, GO only − neither",
                                  ("goal", {"adaptive_leveraging": False}), GOAL_NEITHER)(ledger)})),
    Claim("goal-a10-temperature", "GOAL", "Appendix A.10 and Table 7",
          "AL's temperature T = 1, used in all the paper's runs, gives the best accuracy of the sweep; a sharper "
          "weighting (smaller T) does worse.",
          "Acc at T = 0.2 and T = 1.0: CREMA-D 76.08, 78.23; KS 74.35, 75.37; AVE 70.15, 72.14; T = 1.0 is the best "
          "of T ∈ {0.2, 0.4, 0.6, 0.8, 1.0} on all three and the largest value tried (Table 7)",
          "paired differences of Full, GOAL at T = 1 − GOAL at T = 0.2 and at T = 0.6, emoji", "06_goal.ipynb",
          against_each("emoji", FULL, +1, "Full, T = 1", GOAL,
                       {"T = 0.2": ("goal", {"T": 0.2}), "T = 0.6": ("goal", {"T": 0.6})})),
    Claim("goal-balance", "GOAL", "Section 1 and Section 4",
          "GOAL balances the modalities: the gap between the two missing-modality scores narrows.",
          "", "paired difference of missing ΔGap, GOAL − joint, emoji", "06_goal.ipynb",
          compared("emoji", MISSING_GAP, -1, "missing ΔGap, GOAL − joint", GOAL, JOINT)),
    Claim("goal-a11-cost", "GOAL", "Appendix A.11",
          "GOAL's training costs about 1.11 times the baseline's.",
          "CREMA-D: 17.41 ms per training sample against 15.67 for the base model (a ratio of 1.11), 1089 MiB of "
          "GPU memory for both (Table 8, Appendix A.11)",
          "step-time ratio GOAL / joint, paired log difference against log 1.11, emoji", "07_head_to_head.ipynb",
          step_cost_check("emoji", "goal", "joint", 1.11)),
    Claim("goal-seesaw-balance", "GOAL", "Section 4",
          "GOAL narrows missing ΔGap on data where one modality is learned faster (SeeSaw).", "",
          "paired difference of missing ΔGap, GOAL − joint, SeeSaw", "06_goal.ipynb",
          compared("seesaw", MISSING_GAP, -1, "missing ΔGap, GOAL − joint", GOAL, JOINT)),
    Claim("balgrad-seesaw-balance", "BalGrad", "Table 1 (the claim, on other data)",
          "BalGrad narrows missing ΔGap on data where one modality is learned faster (SeeSaw).", "",
          "paired difference of missing ΔGap, BalGrad − joint, SeeSaw", "04_balgrad.ipynb",
          compared("seesaw", MISSING_GAP, -1, "missing ΔGap, BalGrad − joint", BALGRAD, JOINT)),
    Claim("cggm-seesaw-accuracy", "CGGM", "Tables 2 and 4 (the claim, on other data)",
          "CGGM raises the fused accuracy over joint training on SeeSaw.", "",
          "paired difference of Full, CGGM − joint, SeeSaw", "05_cggm.ipynb",
          compared("seesaw", FULL, +1, "Full, CGGM − joint", CGGM, JOINT)),
    # --- the evidence the papers rest on (chapters 5 and 6: modbal_lib.cggm_evidence, modbal_lib.goal_evidence) ---
    Claim("cggm-fig2-magnitude", "CGGM", "Section 3.2 and Fig. 2(b)",
          "Under joint training, the dominant modality's gradient grows fast while the others' stay stable.", "",
          "log growth of each modality's gradient norm (last fifth / first fifth of training), dominant vs others, "
          "joint training with CGGM's classifiers watching, emoji (cggm_evidence.check_fig2_magnitude)",
          "05_cggm.ipynb", evidence(cggm_evidence.check_fig2_magnitude, digits=2)),
    Claim("cggm-fig3-magnitude", "CGGM", "Section 4.3 and Fig. 3(b)",
          "CGGM holds back the dominant modality's gradient early in training and lets the others' grow.", "",
          "log ratio of early gradient norms, CGGM vs joint, per modality, emoji (cggm_evidence.check_fig3_magnitude)",
          "05_cggm.ipynb", evidence(cggm_evidence.check_fig3_magnitude, digits=2)),
    Claim("cggm-fig2-direction", "CGGM", "Section 3.2 and Fig. 2(c)",
          "Under joint training, the weaker modality's gradient points against the fusion's while the dominant "
          "modality's comes into line with it.", "",
          "cosine of each classifier's gradient with the fused head's, over training, emoji "
          "(cggm_evidence.check_fig2_direction)",
          "05_cggm.ipynb", evidence(cggm_evidence.check_fig2_direction, digits=2)),
    Claim("cggm-fig3-direction", "CGGM", "Section 4.3 and Fig. 3(c)",
          "Under CGGM every modality's gradient agrees more with the fusion's than under joint training.", "",
          "paired difference of the late cosine with the fused gradient, CGGM − joint, per modality, emoji "
          "(cggm_evidence.check_fig3_direction)",
          "05_cggm.ipynb", evidence(cggm_evidence.check_fig3_direction, digits=2)),
    Claim("cggm-fig4-stand-in", "CGGM", "Sections 3.3.2 and 4.4, Fig. 4",
          "A classifier's gradient is a faithful stand-in for its modality's unimodal gradient (the method's key "
          "assumption).", "",
          "cosine per batch between the classifier's gradient and the true unimodal gradient, against pairs from "
          "different batches, emoji (cggm_evidence.check_fig4_stand_in)",
          "05_cggm.ipynb", evidence(cggm_evidence.check_fig4_stand_in, digits=2)),
    Claim("cggm-table5-cggm", "CGGM", "Section 4.4 and Table 5",
          "CGGM raises every modality's classifier accuracy over joint training.", "",
          "paired difference of each classifier's test accuracy, CGGM − joint, emoji (cggm_evidence.check_table5_cggm)",
          "05_cggm.ipynb", evidence(cggm_evidence.check_table5_cggm)),
    Claim("cggm-table5-joint", "CGGM", "Section 4.4 and Table 5",
          "Joint training under-uses the weaker modalities: their classifiers fall below unimodal training while "
          "the dominant one's does not.", "",
          "paired differences of classifier accuracy, joint − unimodal model, per modality, emoji "
          "(cggm_evidence.check_table5_joint)",
          "05_cggm.ipynb", evidence(cggm_evidence.check_table5_joint)),
    Claim("cggm-table6-order", "CGGM", "Section 4.5 and Table 6",
          "Modulating the magnitude and modulating the direction each help, and the magnitude helps more.", "",
          "paired differences of Full: magnitude only and direction only, each − neither, and magnitude − direction, "
          "emoji (cggm_evidence.check_table6)",
          "05_cggm.ipynb", evidence(cggm_evidence.check_table6)),
    Claim("goal-a7-premise", "GOAL", "Section 3.3 and Appendix A.7",
          "A modality whose prediction has high entropy also has high prediction variance, so AL, which favours "
          "confident modalities, favours the low-variance one.", "",
          "Spearman correlation of normalised entropy with A.7's variance across test samples, and AL's weight of the "
          "smaller-variance modality, emoji (goal_evidence.check_a7)",
          "06_goal.ipynb", evidence(goal_evidence.check_a7, digits=2)),
    Claim("goal-a12-clustering", "GOAL", "Appendix A.12 and Table 9",
          "GOAL's fused features cluster by class better than the baseline's.",
          "Silhouette 0.074 → 0.131, DBI 2.566 → 1.910, NMI 0.457 → 0.939, ARI 0.403 → 0.498 (Table 9)",
          "paired differences of silhouette, Davies–Bouldin, NMI and ARI of the fused test features, GOAL − joint, "
          "emoji (goal_evidence.check_a12)",
          "06_goal.ipynb", evidence(goal_evidence.check_a12, digits=3)),
    Claim("goal-a15-alignment", "GOAL", "Appendix A.15 and Fig. 8",
          "In a GOAL-trained model the fusion gradient g and the unimodal gradient G are well aligned, more than in "
          "the baseline.", "",
          "cosine of g and G per batch on the final model, GOAL − joint with heads, per modality, emoji "
          "(goal_evidence.check_a15)",
          "06_goal.ipynb", evidence(goal_evidence.check_a15, digits=3)),
    Claim("goal-a15-over-training", "GOAL", "Appendices A.14 and A.15 (the kit's extension over training)",
          "GOAL brings g and G into line as training goes on.", "",
          "cos(g, G) per step, last fifth minus first fifth of training, per modality, emoji "
          "(goal_evidence.check_a15_over_training)",
          "06_goal.ipynb", evidence(goal_evidence.check_a15_over_training, digits=2)),
    Claim("goal-a16-convergence", "GOAL", "Appendix A.16",
          "GOAL converges faster than the baseline.", "",
          "paired difference of the epochs to half the task loss's drop (dominance.halfway_iteration), GOAL − joint, "
          "emoji (goal_evidence.check_a16)",
          "06_goal.ipynb", evidence(goal_evidence.check_a16, digits=2)),
    Claim("goal-table3-three", "GOAL", "Table 3 and Appendix A.8",
          "GOAL beats concatenation also with three modalities.", "IEMOCAP accuracy 68.94 → 72.90 (Table 3)",
          "paired difference of Full, GOAL − joint, SeeSaw with three modalities (goal_evidence.check_table3)",
          "06_goal.ipynb", evidence(goal_evidence.check_table3)),
    Claim("goal-fig2c-plug-in", "GOAL", "Section 4.3 and Fig. 2(c)",
          "Adding GO to a method that rescales the modalities' gradients improves it.", "",
          "paired differences of Full, base + GO − base, for OGM-GE, MSLR and joint with heads, emoji "
          "(goal_evidence.check_fig2c, methods.plus_go)",
          "06_goal.ipynb", evidence(goal_evidence.check_fig2c)),
]


@dataclass(frozen=True)
class Row:
    claim: Claim
    finding: Finding


def run_ledger(ledger: Ledger, claims: list[Claim] | None = None) -> list[Row]:
    """Every claim's finding (the runs are shared through ``ledger``)."""
    keys = [c.key for c in CLAIMS]
    if len(set(keys)) != len(keys):
        raise ValueError("claims: two claims share a key")
    rows = []
    for claim in progress(CLAIMS if claims is None else claims, desc="claims ledger"):
        with silent_progress():  # one bar for the ledger, not one per training run
            rows.append(Row(claim, claim.run(ledger)))
    return rows


def verdict_counts(rows: list[Row]) -> dict[str, int]:
    return {verdict: sum(row.finding.verdict == verdict for row in rows) for verdict in VERDICTS}


def ledger_markdown(rows: list[Row], link_prefix: str = "") -> str:
    """The ledger as Markdown: one table per paper (where, claim, paper's number, kit's number, verdict)."""
    parts = []
    for paper in PAPERS:
        paper_rows = [row for row in rows if row.claim.paper == paper]
        if not paper_rows:
            continue
        table = [[row.claim.where, row.claim.claim, row.claim.paper_number or "—", row.finding.measured,
                  f"**{row.finding.verdict}**" + (f" ({row.finding.detail})" if row.finding.detail else ""),
                  f"[{row.claim.chapter.split('.')[0]}]({link_prefix}{row.claim.chapter})"]
                 for row in paper_rows]
        parts.append(f"### {paper} [{CITATIONS[paper]}]\n\n" + stats.markdown_table(
            ["where", "claim", "the paper reports", "we measured (95 % interval)", "verdict", "shown in"], table))
    counts = ", ".join(f"{n} {verdict}" for verdict, n in verdict_counts(rows).items())
    return f"{len(rows)} claims: {counts}.\n\n" + "\n".join(parts)


# --- the published ledger: results/CLAIMS.md and results/claims.json ------------------------------------

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"  # where the rows' chapter links point


def header(command: str, ledger: Ledger, wall_seconds: float) -> str:
    return "\n".join([
        "# What holds up: the claims of BalGrad, CGGM and GOAL, tested by this kit",
        "",
        f"- **Command:** `{command}`",
        f"- **Seeds:** {list(ledger.seeds)} (n = {len(ledger.seeds)}); **epochs:** "
        + ", ".join(f"{d} {e}" for d, e in ledger.epochs.items()),
        f"- **Wall time:** {wall_seconds / 60:.1f} min",
        "",
        f"Every comparison is the kit's one rule (`modbal_lib.stats`): {stats.DIFFERENCE_NOTE}. A directional "
        "claim **holds** when the interval excludes 0 on the claimed side, **does not hold** when it contains 0 or "
        "lies on the other side, **partly** when only some of its parts hold, and is **not testable here** when the "
        "kit lacks what it needs (said in each row). Generated by `modbal_lib.claims`; chapter 8 discusses it.",
        "",
    ])


def write(out_dir, ledger: Ledger, command: str, claims: list[Claim] | None = None) -> Path:
    """Run the ledger and write ``out_dir/CLAIMS.md`` and ``out_dir/claims.json`` (atomically); returns the .md."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():  # refused before any training
        raise ValueError(f"--out {out_dir}: is a file; expected a folder for CLAIMS.md and claims.json")
    started = time.perf_counter()
    rows = run_ledger(ledger, claims)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"seeds": list(ledger.seeds), "epochs": ledger.epochs, "fast": ledger.fast,
              "findings": {row.claim.key: asdict(row.finding) for row in rows}}
    with atomic_path(out_dir / "claims.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False))
    markdown = out_dir / "CLAIMS.md"
    chapters = Path(os.path.relpath(CHAPTERS, out_dir.resolve())).as_posix() + "/"  # links work from out_dir
    with atomic_path(markdown) as tmp:
        tmp.write_text(header(command, ledger, time.perf_counter() - started) + "\n" + ledger_markdown(rows, chapters))
    return markdown


def read_findings(path) -> tuple[dict[str, Finding], dict]:
    """The findings a ledger ``write`` saved (claims.json), keyed by claim, and its sizes (seeds, epochs, fast).
    A key in the file that no claim has any more is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no claims ledger here; write it with `python -m modbal_lib claims`")
    record = json.loads(path.read_text())
    findings = record.get("findings")
    if not isinstance(findings, dict):
        raise ValueError(f"{path}: expected a 'findings' object keyed by claim")
    unknown = sorted(set(findings) - {claim.key for claim in CLAIMS})
    if unknown:
        raise ValueError(f"{path}: claims {unknown} are not in modbal_lib.claims.CLAIMS; rewrite the ledger")
    return ({key: Finding(**finding) for key, finding in findings.items()},
            {key: record.get(key) for key in ("seeds", "epochs", "fast")})


def read(path) -> tuple[list[Row], dict]:
    """The rows of a ledger ``write`` saved (claims.json), and its sizes (seeds, epochs, fast).

    A claim of the ledger that the file lacks (added after the file was written) comes back as not testable: with
    its own reason when it has no check, otherwise saying that the ledger has to be rerun."""
    findings, sizes = read_findings(path)
    rerun = Finding("—", NOT_TESTABLE, f"not in {Path(path).name} yet; rerun `python -m modbal_lib claims`")
    return [Row(claim, findings.get(claim.key) or (rerun if claim.check else claim.run(None)))
            for claim in CLAIMS], sizes


# --- the chapters' boxes: a claim's record, the chapter's own run, the ledger's verdict ----------------------

LEDGER = Path(__file__).resolve().parents[1] / "results" / "claims.json"  # the published ledger (`make report`)
LEDGER_CHAPTER = "08_what_holds_up.ipynb"  # the chapter that shows the whole ledger


def claim_by_key(key: str) -> Claim:
    """The record of ``CLAIMS`` with this key."""
    for claim in CLAIMS:
        if claim.key == key:
            return claim
    raise KeyError(f"no claim {key!r} in modbal_lib.claims.CLAIMS; add its record there or use one of its keys "
                   f"(e.g. {CLAIMS[0].key!r})")


def ledger_verdict(claim: Claim, ledger_file=LEDGER) -> str:
    """The published ledger's verdict on ``claim`` as one Markdown line: the verdict, the ledger's measurement and
    its seeds, linked to chapter 8. A claim without a check has its reason already; a claim the file ``ledger_file``
    lacks (or no file) says that the verdict comes from ``make report``."""
    chapter = f"[chapter 8]({LEDGER_CHAPTER})"
    if claim.check is None:
        return f"**{NOT_TESTABLE}** ({claim.not_testable}); {chapter} lists it with the other claims."
    ledger_file = Path(ledger_file)
    shown = f"`{ledger_file.parent.name}/{ledger_file.name}`"
    findings, sizes = read_findings(ledger_file) if ledger_file.is_file() else ({}, {})
    if claim.key not in findings:
        where = f"{shown} has no row for it yet" if ledger_file.is_file() else f"there is no {shown} yet"
        return f"comes from `make report`, which runs every claim's check ({where}); {chapter} has it."
    finding, seeds = findings[claim.key], sizes.get("seeds") or []
    size = "reduced" if sizes.get("fast") else "full"
    return (f"**{finding.verdict}**" + (f" ({finding.detail})" if finding.detail else "")
            + f". It measured {finding.measured} ({len(seeds)} seeds, {size} size; {chapter}).")


def box(key: str, measured: str, reading: str = "", ledger_file=LEDGER) -> str:
    """Markdown for the box a chapter shows next to its own run: the claim ``key`` of ``CLAIMS`` (its sentence,
    the paper and place, what the paper reports), what the chapter's run ``measured``, an optional ``reading`` of
    it, and the verdict of the published ledger ``ledger_file`` on the same claim (``ledger_verdict``). The claim's
    words and numbers live in its record only. Display it with ``IPython.display.Markdown(box(...))``."""
    claim = claim_by_key(key)
    if not isinstance(measured, str) or not measured.strip():
        raise ValueError(f"box({key!r}): measured must say what this run measured, got {measured!r}")
    lines = [f"> **Claim** ({claim.paper} [{CITATIONS[claim.paper]}], {claim.where}): {claim.claim}", ">",
             f"> **The paper reports:** {claim.paper_number or 'no number; see the place above'}", ">",
             f"> **We measured (this run):** {measured}"]
    if reading:
        lines += [">", f"> **Reading:** {reading}"]
    return "\n".join(lines + [">", f"> **The claims ledger's verdict:** {ledger_verdict(claim, ledger_file)}"])
