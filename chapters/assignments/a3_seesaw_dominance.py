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
# # Assignment 3. Tip the see-saw: make the joint model lean on `hard`
#
# **You will learn:** which properties of a modality make a jointly trained model lean on it; how to
# show it with chapter 2's criterion, the **shortfall** of each modality against its unimodal ceiling,
# over several seeds; and how to test whether a balancing method (BalGrad) makes the joint model learn
# more of the modality it neglects.
#
# **Paper sections:** BalGrad [Kim et al., 2025] Section 3.1 (dominant modality bias, the per-modality
# losses of Fig. 2b), Section 3.2 (the method) and Section 4.1 (the missing-modality protocol); the
# SeeSaw world and its shortfall criterion are chapter 2's.
#
# SeeSaw draws a label $y$ made of a coarse group $g$ and a fine class $c$ within the group, and
# gives each modality $m$ the vector
#
# $$ x^m = a_m\, u_{m,g} + b_m\, v_{m,c} + \sigma_m\, \varepsilon_m, \qquad \varepsilon_m \sim \mathcal N(0, I_{D_m}), $$
#
# with the knobs `dim` $D_m$, `coarse` $a_m$ (how loudly it tells the group), `fine` $b_m$ (how
# loudly it tells the class within the group) and `noise` $\sigma_m$. By default `easy` tells the
# group loudly and `hard` tells the fine class plus, faintly, the group: a jointly trained model
# learns the group from `easy` and never learns `hard`'s own group cue.
#
# **The shortfall** of modality $m$ (chapter 2, `modbal_lib.dominance.shortfall`) is the score of the
# model trained on $m$ alone (its *ceiling*) minus the score of the joint model left with only $m$ (the
# other modality missing), paired seed by seed: how much of what $m$ can tell the joint model did not
# learn. The joint model **leans on** the modality with the smaller shortfall
# (`modbal_lib.dominance.leaned_on`). Chapter 2 (Section 5) shows why we do not simply ask which
# absence costs more: that label mixes what a modality *knows* with what the model *learned*, and a
# modality that knows more wins it without any see-saw.
#
# Fill in every `...`, run the check cell after each question (`grader.check(...)`), and hand in
# the notebook. The checks you see are only some of the tests used for grading.

# %%
from modbal_lib.data.seesaw import DEFAULT_KNOBS
from modbal_lib.dominance import leaned_on, shortfall, shortfalls
from modbal_lib.experiments import Experiment, compare
from modbal_lib.stats import paired_difference

import modbal_lib

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()

# %%
SEEDS = [0, 1] if FAST else [0, 1, 2]
EPOCHS = 5 if FAST else 10
NUM_SAMPLES = 2000 if FAST else 4000
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
# jointly on SeeSaw **leans on `hard`**: it learns from `hard` what `hard` can tell alone, and falls
# short of what `easy` alone reaches. Precisely: seed after seed, easy's shortfall exceeds hard's by
# at least 5 points of accuracy. Rules:
#
# - both modalities stay informative: each keeps a non-zero `coarse` or `fine`;
# - both stay noisy: each `noise` is at least `noise=0.5`.
#
# Think before you try: what made `easy` the modality the default world leans on? (Chapter 2,
# Section 3: which modality is learned *first*.) Note that `easy` must have something to lose: a
# modality that tells nothing the joint model needs has no shortfall. The check trains the joint model
# and both unimodal models once (seed 0, 2000 samples, 5 epochs, a few seconds); the hidden tests do
# the same on other seeds.

# %% [raw]
# # BEGIN SOLUTION

# %%
knobs = {"easy": {"coarse": 2.0, "fine": 2.0}, "hard": {"coarse": 8.0, "fine": 8.0, "dim": 8}}  # SOLUTION

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
def test_q1_hard_is_leaned_on_seed_0(knobs):
    from modbal_lib.dominance import leaned_on
    from modbal_lib.experiments import Experiment, compare

    experiment = Experiment("seesaw", dataset_options={"knobs": knobs, "num_samples": 2000})
    runs = compare(experiment, ["joint", "unimodal_easy", "unimodal_hard"], [0], epochs=5, ratios=(), record=False)
    leaning = leaned_on({"easy": runs["unimodal_easy"], "hard": runs["unimodal_hard"]}, runs["joint"])
    easy, hard = leaning.shortfalls["easy"].mean, leaning.shortfalls["hard"].mean
    assert easy - hard >= 5, f"seed 0: easy's shortfall {easy:.1f} does not exceed hard's {hard:.1f} by 5 points"


test_q1_hard_is_leaned_on_seed_0(knobs)


# %%
# HIDDEN
def test_q1_hard_is_leaned_on_other_seeds(knobs):
    from modbal_lib.dominance import leaned_on
    from modbal_lib.experiments import Experiment, compare

    experiment = Experiment("seesaw", dataset_options={"knobs": knobs, "num_samples": 2000})
    runs = compare(experiment, ["joint", "unimodal_easy", "unimodal_hard"], [0, 1, 2], epochs=5, ratios=(),
                   record=False)
    alone = {"easy": runs["unimodal_easy"], "hard": runs["unimodal_hard"]}
    for k in (1, 2):
        seed = leaned_on({m: [r[k]] for m, r in alone.items()}, [runs["joint"][k]])
        margin = seed.shortfalls["easy"].mean - seed.shortfalls["hard"].mean
        assert margin >= 5, f"seed {k}: easy's shortfall exceeds hard's by {margin:.1f} points only"
    assert leaned_on(alone, runs["joint"]).modality == "hard", "over seeds 0-2 the kit's rule does not name hard"


test_q1_hard_is_leaned_on_other_seeds(knobs)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2_balgrad
# points: 4

# %% [markdown]
# ## Question 2. Does BalGrad make the joint model learn more of `easy`?
#
# In your world the joint model neglects `easy`. BalGrad [Kim et al., 2025] adds unimodal heads, pulls
# them towards each other (a KL term reweighted towards the lagging modality) and projects conflicting
# task gradients; if it works here, the model trained with it should fall less short of easy's ceiling.
# On **your** world (`knobs`, `NUM_SAMPLES` samples):
#
# 1. `runs`: train and evaluate `"joint"`, `"balgrad"` and `"unimodal_easy"` over `SEEDS` for `EPOCHS`
#    epochs with `modbal_lib.experiments.compare` (pass `ratios=()` to skip the ratio sweep);
# 2. `shortfall_joint`, `shortfall_balgrad`: easy's shortfall under each method,
#    `shortfall(runs["unimodal_easy"], runs[method], "easy")` (a paired difference: mean, interval, verdict);
# 3. `shortfall_change`: BalGrad's shortfall minus joint training's, seed by seed, with the kit's one
#    rule: `paired_difference` of the two methods' per-seed `shortfalls(...)`;
# 4. `balgrad_learns_more_easy`: `True` when that difference's verdict is "differs" and it is
#    negative, else `False`.
#
# Print the numbers. With two seeds the verdict is "too few seeds": would you claim that BalGrad
# fixes the neglect you built? How many seeds would you want?
#
# (Why not the missing-modality ΔGap? On SeeSaw both modalities are needed, so each missing score is
# low and a model can shrink the gap by doing equally badly without either one; chapter 4 reads Avg
# there instead. The shortfall asks the question directly: did the model learn what `easy` can tell?)

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
experiment = Experiment("seesaw", dataset_options={"knobs": knobs, "num_samples": NUM_SAMPLES})
runs = compare(experiment, ["joint", "balgrad", "unimodal_easy"], SEEDS, epochs=EPOCHS, ratios=())
shortfall_joint = shortfall(runs["unimodal_easy"], runs["joint"], "easy")
shortfall_balgrad = shortfall(runs["unimodal_easy"], runs["balgrad"], "easy")
shortfall_change = paired_difference(shortfalls(runs["unimodal_easy"], runs["balgrad"], "easy"),
                                     shortfalls(runs["unimodal_easy"], runs["joint"], "easy"))
balgrad_learns_more_easy = shortfall_change.differs and shortfall_change.mean < 0
# END SOLUTION
print(f"easy's shortfall: joint {shortfall_joint.text()}; BalGrad {shortfall_balgrad.text()}; "
      f"BalGrad − joint, seed by seed: Δ {shortfall_change.text()}; learns more of easy: {balgrad_learns_more_easy}")

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q2_runs_cover_the_methods_and_the_seeds(runs, SEEDS):
    expected = {"joint", "balgrad", "unimodal_easy"}
    assert set(runs) == expected, f"runs should hold {sorted(expected)}, not {sorted(runs)}"
    for method, method_runs in runs.items():
        assert [run.seed for run in method_runs] == list(SEEDS), f"{method}: one run per seed in SEEDS"
    assert len(SEEDS) >= 2, "use at least two seeds"


test_q2_runs_cover_the_methods_and_the_seeds(runs, SEEDS)


# %%
# HIDDEN
def test_q2_shortfalls_and_verdict_match_the_runs(runs, shortfall_joint, shortfall_balgrad, shortfall_change,
                                                  balgrad_learns_more_easy):
    import math

    from modbal_lib.dominance import shortfall, shortfalls
    from modbal_lib.stats import paired_difference

    alone = runs["unimodal_easy"]
    for method, answer in [("joint", shortfall_joint), ("balgrad", shortfall_balgrad)]:
        expected = shortfall(alone, runs[method], "easy")
        assert all(math.isclose(a, e, abs_tol=1e-6) for a, e in zip(answer[:4], expected[:4])), f"shortfall_{method}"
        assert answer.verdict == expected.verdict, f"shortfall_{method}: verdict"
    expected = paired_difference(shortfalls(alone, runs["balgrad"], "easy"), shortfalls(alone, runs["joint"], "easy"))
    assert math.isclose(shortfall_change.mean, expected.mean, abs_tol=1e-6), \
        "shortfall_change: BalGrad's shortfall minus joint's, seed by seed"
    assert shortfall_change.verdict == expected.verdict, "shortfall_change: the kit's verdict"
    assert balgrad_learns_more_easy is (expected.differs and expected.mean < 0)


test_q2_shortfalls_and_verdict_match_the_runs(runs, shortfall_joint, shortfall_balgrad, shortfall_change,
                                              balgrad_learns_more_easy)


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
#    dimension, or the noise? Change one at a time and watch both shortfalls.
# 2. BalGrad's unimodal heads are pulled towards each other by a KL term. In your world, which
#    modality's KL gradient gets the larger weight, and why (look at
#    `runs["balgrad"][0].result.history["w_easy"]`)?
# 3. Re-run Question 2 with more seeds (`SEEDS = [0, 1, 2, 3, 4]`). Does your verdict survive?
# 4. Which absence costs more in your world (`runs["joint"][0].table.missing`)? Would the protocol's
#    label ("the modality whose absence costs more dominates") have named `hard` as well, and for the
#    right reason?
