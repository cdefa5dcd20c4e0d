# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# name: modbal-a3-seesaw-dominance
# export_cell: false
# tests:
#   ok_format: false

# %% [markdown]
# # Assignment 3. Tip the see-saw: make `hard` the dominant modality
#
# **You will learn:** which properties of a modality make a jointly trained model lean on it, how
# to show dominance with the missing-modality protocol over several seeds, and how to test whether a
# balancing method (BalGrad) narrows the gap.
#
# **Paper sections:** BalGrad (Kim et al. 2025) §3 (dominant modality bias, the missing-modality
# protocol and ΔGap) and §4 (the method); the SeeSaw world of chapter 2.
#
# SeeSaw draws a label $y$ made of a coarse group $g$ and a fine class $c$ within the group, and
# gives each modality $m$ the vector
#
# $$ x_m = a_m\, u_{m,g} + b_m\, v_{m,c} + \sigma_m\, \varepsilon_m, \qquad \varepsilon_m \sim \mathcal N(0, I_{D_m}), $$
#
# with the knobs `dim` $D_m$, `coarse` $a_m$ (how loudly it tells the group), `fine` $b_m$ (how
# loudly it tells the class within the group) and `noise` $\sigma_m$. By default `easy` tells the
# group loudly and `hard` tells the fine class plus, faintly, the group: a jointly trained model
# leans on `easy` and collapses without it.
#
# Fill in every `...`, run the check cell after each question (`grader.check(...)`), and hand in
# the notebook. The checks you see are only some of the tests used for grading.

# %%
from modbal_lib.data.seesaw import DEFAULT_KNOBS
from modbal_lib.experiments import Experiment, compare
from modbal_lib.stats import paired_difference, summarize

import modbal_lib

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()

# %%
SEEDS = [0, 1] if FAST else [0, 1, 2]
EPOCHS = 5 if FAST else 10
NUM_SAMPLES = 1000 if FAST else 2000
print({m: DEFAULT_KNOBS[m] for m in ("easy", "hard")})

# %% [raw]
# # BEGIN QUESTION
# name: q1_knobs
# points: 4

# %% [markdown]
# ## Question 1. Design the knobs
#
# Set `knobs` to a dictionary of overrides, `{"easy": {...}, "hard": {...}}` (any of `dim`,
# `coarse`, `fine`, `noise`; what you leave out keeps its default), such that a model trained
# jointly on SeeSaw depends on `hard`: **removing `hard` costs more than removing `easy`**, i.e.
# the missing-`hard` test score is below the missing-`easy` score, seed after seed. Rules:
#
# - both modalities stay informative: each keeps a non-zero `coarse` or `fine`;
# - both stay noisy: each `noise` is at least 0.5.
#
# Think before you try: what made `easy` dominant in the default world? The check trains the joint
# model once (seed 0, 1000 samples, 5 epochs, a few seconds); the hidden tests do the same on other
# seeds.

# %% [raw]
# # BEGIN SOLUTION

# %%
knobs = {"easy": {"coarse": 0.5}, "hard": {"coarse": 4.0}}  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q1_knobs_follow_the_rules(knobs):
    from modbal_lib.data.seesaw import resolve_knobs

    assert isinstance(knobs, dict), "knobs must be a dict like {'easy': {...}, 'hard': {...}}"
    resolved = resolve_knobs(2, knobs)  # raises on unknown modalities or knobs
    for modality, knob in resolved.items():
        assert knob["coarse"] != 0 or knob["fine"] != 0, f"{modality} must stay informative"
        assert knob["noise"] >= 0.5, f"{modality} must keep noise >= 0.5"


test_q1_knobs_follow_the_rules(knobs)


# %%
def test_q1_hard_dominates_seed_0(knobs):
    from modbal_lib.experiments import Experiment, compare

    experiment = Experiment("seesaw", dataset_options={"knobs": knobs, "num_samples": 1000})
    table = compare(experiment, ["joint"], [0], epochs=5, ratios=())["joint"][0].table
    assert table.missing["hard"] < table.missing["easy"], (
        f"seed 0: missing hard {table.missing['hard']:.1f} is not below missing easy {table.missing['easy']:.1f}")


test_q1_hard_dominates_seed_0(knobs)


# %%
# HIDDEN
def test_q1_hard_dominates_other_seeds(knobs):
    from modbal_lib.experiments import Experiment, compare

    experiment = Experiment("seesaw", dataset_options={"knobs": knobs, "num_samples": 1000})
    for run in compare(experiment, ["joint"], [1, 2], epochs=5, ratios=())["joint"]:
        assert run.table.missing["hard"] < run.table.missing["easy"], f"seed {run.seed}: easy dominates"


test_q1_hard_dominates_other_seeds(knobs)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2_balgrad
# points: 4

# %% [markdown]
# ## Question 2. Does BalGrad narrow the gap?
#
# The missing-modality ΔGap is $|\text{score without } easy - \text{score without } hard|$: large
# when the model leans on one modality. On **your** world (`knobs`, `NUM_SAMPLES` samples):
#
# 1. `runs`: train and evaluate `"joint"` and `"balgrad"` over `SEEDS` for `EPOCHS` epochs with
#    `modbal_lib.experiments.compare` (pass `ratios=()` to skip the ratio sweep);
# 2. `gap_joint`, `gap_balgrad`: each method's missing ΔGap over seeds, `modbal_lib.stats.summarize(runs[m],
#    pick)` with `pick = lambda run: run.table.missing_delta_gap` (mean, sample SD and n);
# 3. `gap_change`: BalGrad's ΔGap minus joint training's, seed by seed, with the kit's one rule:
#    `modbal_lib.stats.paired_difference(runs["balgrad"], runs["joint"], pick)`;
# 4. `balgrad_reduces_gap`: `True` when that difference's verdict is "differs" and it is negative, else `False`.
#
# Print the numbers. With two seeds the verdict is "too few seeds": would you claim that BalGrad fixes
# the dominance you built? How many seeds would you want?

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
experiment = Experiment("seesaw", dataset_options={"knobs": knobs, "num_samples": NUM_SAMPLES})
runs = compare(experiment, ["joint", "balgrad"], SEEDS, epochs=EPOCHS, ratios=())
def pick(run):
    return run.table.missing_delta_gap


gap_joint = summarize(runs["joint"], pick)
gap_balgrad = summarize(runs["balgrad"], pick)
gap_change = paired_difference(runs["balgrad"], runs["joint"], pick)
balgrad_reduces_gap = gap_change.differs and gap_change.mean < 0
# END SOLUTION
print(f"missing ΔGap: joint {gap_joint.text()}, BalGrad {gap_balgrad.text()}; BalGrad − joint, seed by seed: "
      f"Δ {gap_change.text()}; reduces the gap: {balgrad_reduces_gap}")

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q2_runs_cover_both_methods_and_the_seeds(runs, SEEDS):
    assert set(runs) == {"joint", "balgrad"}, f"runs should hold 'joint' and 'balgrad', not {sorted(runs)}"
    for method, method_runs in runs.items():
        assert [run.seed for run in method_runs] == list(SEEDS), f"{method}: one run per seed in SEEDS"
    assert len(SEEDS) >= 2, "use at least two seeds"


test_q2_runs_cover_both_methods_and_the_seeds(runs, SEEDS)


# %%
# HIDDEN
def test_q2_gaps_and_verdict_match_the_runs(runs, gap_joint, gap_balgrad, gap_change, balgrad_reduces_gap):
    import math

    from modbal_lib.stats import paired_difference, summarize

    def pick(run):
        return run.table.missing_delta_gap

    for method, answer in [("joint", gap_joint), ("balgrad", gap_balgrad)]:
        expected = summarize(runs[method], pick)
        assert all(math.isclose(a, e, abs_tol=1e-6) for a, e in zip(answer, expected)), f"gap_{method}"
    expected = paired_difference(runs["balgrad"], runs["joint"], pick)
    assert math.isclose(gap_change.mean, expected.mean, abs_tol=1e-6) and gap_change.verdict == expected.verdict, \
        "gap_change: BalGrad minus joint, seed by seed"
    assert balgrad_reduces_gap is (expected.differs and expected.mean < 0)


test_q2_gaps_and_verdict_match_the_runs(runs, gap_joint, gap_balgrad, gap_change, balgrad_reduces_gap)


# %%
# HIDDEN
def test_q2_runs_were_trained_on_the_designed_world(runs, knobs, SEEDS, EPOCHS, NUM_SAMPLES):
    from modbal_lib.experiments import Experiment, compare

    experiment = Experiment("seesaw", dataset_options={"knobs": knobs, "num_samples": NUM_SAMPLES})
    again = compare(experiment, ["joint"], [SEEDS[0]], epochs=EPOCHS, ratios=())["joint"][0]
    assert again.table.full == runs["joint"][0].table.full, "runs['joint'] was not trained on knobs, NUM_SAMPLES, EPOCHS"


test_q2_runs_were_trained_on_the_designed_world(runs, knobs, SEEDS, EPOCHS, NUM_SAMPLES)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## To think about (not graded)
#
# 1. Which knob mattered most to tip the see-saw: the loudness of the group cue (`coarse`), the
#    dimension, or the noise? Change one at a time and watch the missing-modality scores.
# 2. BalGrad's unimodal heads are pulled towards each other by a KL term. In your world, which
#    modality's head is pulled harder, and why (look at `runs["balgrad"][0].result.history["w_easy"]`)?
# 3. Re-run Question 2 with more seeds (`SEEDS = [0, 1, 2, 3, 4]`). Does your verdict survive?
