# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. The see-saw in a controlled world
#
# On real data we can watch a model lean on one modality, but we cannot say *why*: we do not know
# how much each modality really knows, nor how hard it is to learn. This chapter builds a world
# where we do. **SeeSaw** is a synthetic dataset whose every sample is drawn from a formula with a
# few knobs, so the information each modality carries is known, and we can turn one knob at a time.
#
# **You will learn:** how SeeSaw generates its two (or three) modalities and what each knob does;
# how to test whether the modality a jointly trained model comes to depend on is the one it learns
# *fastest* or the one that knows the most (the default world is built so that the "hard" modality
# alone carries more than the "easy" one); which information is lost when the other modality is
# under-used, and when that loss shows (when "easy" goes missing); why the **shortfall** against
# the unimodal ceilings, not the protocol's "whose absence costs more", tells what the model
# learned; where the see-saw appears and flips as the signal strengths change; and what happens
# with three modalities and a regression target.
#
# **Paper sections:** BalGrad [Kim et al., 2025] Section 1 and Section 3.1 with Fig. 2 (the
# see-saw; the losses of unimodal classifiers during training, Fig. 2b), Section 4.1 (the
# missing-modality protocol); the mechanism is what [Pezeshki et al., 2021] call *gradient
# starvation*.

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from sklearn.decomposition import PCA

import modbal_lib
from modbal_lib.claims import box
from modbal_lib.data import load, seesaw
from modbal_lib.dominance import (costliest_modality, dominant_modality, leaned_on, modality_curves, shortfall,
                                 shortfalls)
from modbal_lib.evaluate import predict
from modbal_lib.experiments import Experiment, compare
from modbal_lib.features import Impairment
from modbal_lib.seesaw_sweeps import linear_probes, part_accuracies, signal_sweep
from modbal_lib.stats import markdown_table, paired_difference, summarize
from modbal_lib.whatif import SEESAW_COLORS, seesaw_lab, seesaw_panel

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()
SEEDS = None         # seeds of the main comparison; default [0, 1] (fast) or [0, 1, 2, 3, 4] (full)
EPOCHS = None        # epochs of the main comparison; default 5 (fast) or 10 (full)
SWEEP_SEEDS = None   # seeds of the sweeps and of sections 6-7; default [0] (fast) or [0, 1, 2] (full)
SWEEP_EPOCHS = 5     # epochs of every run of the sweeps and of sections 6-7
EASY_COARSE = None   # values of easy's group signal a_easy; default [0, 4, 16] (fast) or [0, 1, 2, 4, 8, 16]
HARD_COARSE = None   # values of hard's group signal a_hard; default [0, 1, 3] (fast) or [0, 1, 2, 3, 4]
SMOOTH = 10          # running-mean window (iterations) of the training curves

# %% [markdown]
# The defaults of the other parameters depend on `FAST`; they are filled in here, after papermill
# may have changed `FAST`.

# %%
SEEDS = SEEDS or ([0, 1] if FAST else [0, 1, 2, 3, 4])
EPOCHS = EPOCHS or (5 if FAST else 10)
SWEEP_SEEDS = SWEEP_SEEDS or ([0] if FAST else [0, 1, 2])
EASY_COARSE = EASY_COARSE or ([0.0, 4.0, 16.0] if FAST else [0.0, 1.0, 2.0, 4.0, 8.0, 16.0])
HARD_COARSE = HARD_COARSE or ([0.0, 1.0, 3.0] if FAST else [0.0, 1.0, 2.0, 3.0, 4.0])
print(f"mode: {'fast' if FAST else 'full'}; main comparison: seeds {SEEDS}, {EPOCHS} epochs; "
      f"sweeps: seeds {SWEEP_SEEDS}, {SWEEP_EPOCHS} epochs, a_easy in {EASY_COARSE}, a_hard in {HARD_COARSE}")

# %% [markdown]
# ## 1. The world and its knobs
#
# Every label is a **class** $y$ made of two parts: a coarse **group** $g$ and a **fine class** $c$
# within the group. With $G$ groups of $C$ classes each ($G = C = 4$, so 16 classes),
#
# $$y \sim \mathrm{Uniform}\{0, \dots, GC - 1\}, \qquad g = \lfloor y / C \rfloor, \qquad c = y \bmod C.$$
#
# Each modality $m$ mixes a group signal and a fine signal, at its own strength, in its own noise:
#
# $$x^m = a_m\, u_{m,g} + b_m\, v_{m,c} + \sigma_m\, \varepsilon_m, \qquad \varepsilon_m \sim \mathcal N(0, I_{D_m}).$$
#
# - $u_{m,1..G}$ and $v_{m,1..C}$ are unit **prototypes** in $\mathbb R^{D_m}$, drawn once and mutually
#   orthogonal (when $D_m \ge G + C$);
# - the knobs of modality $m$: its dimension $D_m$ (`dim`), how loudly it tells the group, $a_m$
#   (`coarse`), how loudly it tells the class within the group, $b_m$ (`fine`), and its noise
#   $\sigma_m$ (`noise`). Which information a modality has is which of $a_m, b_m$ is non-zero.
#
# Note that $v_{m,c}$ is shared by all groups: a modality with $a_m = 0$ knows *which of the four
# classes within a group* but not *which group*. The defaults (printed below) make two modalities:
#
# - **easy** tells the group, loudly ($a = 4$), and nothing else ($b = 0$), in 8 dimensions;
# - **hard** tells the class within the group ($b = 2$) and, faintly, the group too ($a = 1$), in 32
#   dimensions.
#
# Both are needed for full accuracy: easy alone can at best name the group and guess among its four
# classes (right one time in four); hard alone knows the class within the group but is unsure of the
# group. (`num_modalities=3` adds **medium**, section 6; `target="regression"` asks for a number,
# section 7.)

# %%
print(f"{'modality':>9} {'D_m':>4} {'a_m (coarse)':>13} {'b_m (fine)':>11} {'sigma_m (noise)':>16}")
for name, knob in seesaw.DEFAULT_KNOBS.items():
    print(f"{name:>9} {knob['dim']:>4} {knob['coarse']:>13} {knob['fine']:>11} {knob['noise']:>16}")
train_data, test_data = load("seesaw", "train"), load("seesaw", "test")
C = test_data.options["classes_per_group"]
print(f"\nG = {test_data.options['groups']} groups x C = {C} classes; "
      f"{len(train_data)} training and {len(test_data)} test samples; modalities {test_data.modalities}")

# %% [markdown]
# A picture of each modality: its test samples projected on their first two principal components
# (fitted on the training split), coloured once by the group and once by the class within the group.

# %%
group, fine = test_data.labels // C, test_data.labels % C
figure, axes = plt.subplots(2, 2, figsize=(10, 8.5))
for row, m in enumerate(test_data.modalities):
    projected = PCA(2).fit(train_data.inputs[m]).transform(test_data.inputs[m])
    for column, (part, name) in enumerate(((group, "group g"), (fine, "class within the group c"))):
        axis = axes[row, column]
        axis.scatter(*projected.T, c=part, cmap="tab10", vmin=0, vmax=9, s=4, alpha=0.6)
        axis.set_title(f"{m} (D = {test_data.inputs[m].shape[1]}), coloured by {name}", fontsize=10)
        axis.set_xlabel("principal component 1")
        axis.set_ylabel("principal component 2")
figure.tight_layout()
plt.show()

# %% [markdown]
# **Figure 2.1.** Each modality's test samples on its first two principal components; left coloured
# by the group, right by the class within the group. Look for tight clouds: the easy modality should
# fall into one cloud per group with the fine classes mixed inside each (it knows the group and
# nothing more), while the hard modality's main directions should separate the fine classes and
# smear the groups over each other.
#
# How much does each modality *know*? Every one of the 16 classes is a Gaussian with the same
# covariance ($\sigma_m^2 I$ in each modality's block), so a linear discriminant analysis (LDA)
# fitted on the training split with the **16-class** target is, up to estimation error, the
# Bayes-optimal classifier for that target: its test accuracy measures the information in the inputs,
# whatever a network would make of it. That holds for the 16-class target only. A group is a mixture
# of four Gaussians (one per class within it), and so is a class within the group (one per group), so
# an LDA fitted directly on the group or fine labels would be a linear rule, not the Bayes rule. The
# probe (`linear_probes`) therefore fits one LDA on the 16 classes per modality set and reads the
# group and the class within the group from its class posterior, summed over the classes of each part
# (`part_posteriors`): the Bayes rule for each part under the same fitted Gaussian model.

# %%
probes = linear_probes()
print(f"{'LDA probe on':>14} {'group':>7} {'class within group':>19} {'class (16)':>11}")
for modalities, accuracy in probes.items():
    print(f"{modalities:>14} {accuracy['group']:>6.1f}% {accuracy['fine']:>18.1f}% {accuracy['class']:>10.1f}%")
better, worse = sorted(("easy", "hard"), key=lambda m: probes[m]["class"], reverse=True)
display(Markdown(
    f"So, by the information it carries, **{better}** is the better modality: alone it names the class in "
    f"{probes[better]['class']:.1f}% of the test samples, {worse} alone in {probes[worse]['class']:.1f}%. Together "
    f"they reach {probes['easy+hard']['class']:.1f}%, "
    + ("far more than either: the two are **complementary**, easy settling the group that hard is unsure of."
       if probes["easy+hard"]["class"] > probes[better]["class"] + 10 else "not much more than the better one.")))

# %% [markdown]
# ## 2. Which modality does joint training lean on?
#
# Now the same data through the networks of this book: a late-fusion model (a linear-ReLU branch
# $h_m$ per modality, concatenation, a linear head $f_T$) trained jointly on both modalities, and one
# unimodal model per modality (its **ceiling**: what that modality reaches when it is all the model
# has). Then BalGrad's protocol: score the joint model on the full test set, and with each modality
# missing (its vector set to zero). For section 3 the same joint model is also trained with one linear
# head $f_m$ per modality and the loss $L_T + \sum_m L_T^m$ (`joint_unimodal_heads`).

# %%
experiment = Experiment("seesaw")
runs = compare(experiment, ["joint", "joint_unimodal_heads", "unimodal_easy", "unimodal_hard"], SEEDS,
               epochs=EPOCHS, ratios=())
alone = {m: runs[f"unimodal_{m}"] for m in SEESAW_COLORS}


def per_seed(method, pick):
    """One number per seed of a method's runs."""
    return [pick(run) for run in runs[method]]


summary = {
    "easy alone (ceiling)": per_seed("unimodal_easy", lambda run: run.table.full),
    "hard alone (ceiling)": per_seed("unimodal_hard", lambda run: run.table.full),
    "joint, Full": per_seed("joint", lambda run: run.table.full),
    "joint, easy missing": per_seed("joint", lambda run: run.table.missing["easy"]),
    "joint, hard missing": per_seed("joint", lambda run: run.table.missing["hard"]),
}
for name, values in summary.items():
    print(f"{name:>22}: {summarize(values).text()}")
print(f"{'LDA probe on both':>22}: {probes['easy+hard']['class']:.1f} (fitted once on the training split)")

# %%
colors = [SEESAW_COLORS["easy"], SEESAW_COLORS["hard"], "black", SEESAW_COLORS["hard"], SEESAW_COLORS["easy"]]
summaries = [summarize(values) for values in summary.values()]
figure, axis = plt.subplots(figsize=(9, 3.8))
bars = axis.bar(range(len(summary)), [s.mean for s in summaries], yerr=[s.sd for s in summaries], capsize=4,
                color=colors,
                alpha=0.85, hatch=["//", "//", "", "", ""])
axis.bar_label(bars, fmt="%.1f", fontsize=8, padding=3)
axis.axhline(probes["easy+hard"]["class"], color="gray", linestyle=":", label="LDA probe on both (Bayes rule)")
axis.set_xticks(range(len(summary)), list(summary), fontsize=8)
axis.set_ylabel("test accuracy (%)")
axis.set_ylim(0, 100)
axis.set_title(f"SeeSaw defaults: mean ± sample SD over {len(SEEDS)} seeds, {EPOCHS} epochs", fontsize=10)
axis.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Figure 2.2.** Test accuracy of the two unimodal models (hatched: the ceilings), of the joint model
# on the full test set, and of the joint model with easy or with hard missing; error bars: sample SD
# over seeds; dotted line: the LDA probe on both modalities. Read the bars in pairs. With **easy
# missing**, the joint model has exactly the input of the "hard alone" model: if it scores below it,
# the joint model did not learn all that hard could have taught it. With **hard missing** it has the
# input of "easy alone": a score like easy alone's means it learned from easy everything easy knows.
#
# The differences, paired seed by seed, are the two **shortfalls** (`dominance.shortfall`: the ceiling
# minus the joint model left with only that modality; the kit's rule, `modbal_lib.stats`, chapter 0).
# `dominance.leaned_on` names the modality with the smaller shortfall when the two differ by the
# kit's rule:

# %%
leaning = leaned_on(alone, runs["joint"])
hard_shortfall, easy_shortfall = leaning.shortfalls["hard"], leaning.shortfalls["easy"]
print("hard's shortfall (hard alone − joint with only hard left), points:", hard_shortfall.text())
print("easy's shortfall (easy alone − joint with only easy left), points:", easy_shortfall.text())
print("easy's shortfall − hard's, paired:", leaning.difference.text(), "->",
      f"the joint model leans on {leaning.modality}" if leaning.modality else "no modality named by the kit's rule")

# %% [markdown]
# By BalGrad's reading of the protocol, the **dominant** modality is the one whose absence hurts the
# most (printed below). When both absences hurt a lot, because each modality carries something the
# other lacks, that label does not see the see-saw. The see-saw is in the *asymmetry* of the two
# shortfalls above: look for a large shortfall on hard, the better modality, and a small one on easy.
# Why would that be?

# %%
print("the modality whose absence costs more, per seed:", [dominant_modality(run.table) for run in runs["joint"]])

# %% [markdown]
# ## 3. Dominance comes from learning speed
#
# **BalGrad's Fig. 2b** draws, for each modality, the cross-entropy $L_T^m$ of a linear classifier
# $f_m$ added on its embedding $e_m$ over training [Kim et al., 2025, Section 3.1]. The paper does not
# say whether these classifiers' losses also train the embedding layers; the kit's reading trains them
# with the task (`joint_unimodal_heads`, as BalGrad's own method does, Fig. 3a), and the trainer records
# each head's loss per iteration (`loss_uni_<m>`).
#
# **The kit's stand-in.** The plain joint model has no unimodal heads, so for it the trainer records,
# per iteration, each modality's **share of the fused logits**: with concatenation the head's weight
# splits into one block per modality, $z = W_\text{easy} e_\text{easy} + W_\text{hard} e_\text{hard} + b$,
# and the share of $m$ is $W_m e_m + b/2$ (`LateFusion.probe_logits`); the trainer records that share's
# loss and accuracy on the batch under the same keys (`loss_uni_<m>`, `acc_uni_<m>`). The share watches
# the plain joint model without changing it, but it is not what the paper plots: no loss trains a share
# to predict the label on its own.
#
# Beside them, the unimodal models' own losses: how fast each modality is learned when it is alone.
# `dominance.modality_curves` reads each kind of curve and says which it is.

# %%
panels = [
    (modality_curves(runs["joint_unimodal_heads"]), "BalGrad's Fig. 2b: unimodal heads' losses", "cross-entropy"),
    (modality_curves(runs["joint"]), "joint model, logit shares' losses (the kit's stand-in)", "cross-entropy"),
    (modality_curves(runs["joint"], "acc"), "joint model, logit shares' accuracy (train batches)", "accuracy"),
]
figure, axes = plt.subplots(1, 4, figsize=(19, 3.9))
for axis, (race, title, ylabel) in zip(axes, panels):
    for m, color in SEESAW_COLORS.items():
        iteration, mean, sd = race.band(m, SMOOTH)
        axis.plot(iteration, mean, color=color, label=m)
        axis.fill_between(iteration, mean - sd, mean + sd, color=color, alpha=0.2)
    axis.set_title(f"{title}\n{race.method}: {race.source}", fontsize=9)
    axis.set_ylabel(ylabel)
for m, color in SEESAW_COLORS.items():
    iteration, mean, sd = modality_curves(alone[m]).band(m, SMOOTH)
    axes[3].plot(iteration, mean, color=color, label=f"{m} alone")
    axes[3].fill_between(iteration, mean - sd, mean + sd, color=color, alpha=0.2)
axes[3].set_title("unimodal models: each modality's loss alone", fontsize=9)
axes[3].set_ylabel("cross-entropy")
for axis in axes:
    axis.set_xlabel("iteration")
    axis.legend(fontsize=8)
figure.tight_layout()
plt.show()

# %% [markdown]
# **Figure 2.3.** Per modality, mean ± sample SD over seeds of smoothed per-iteration curves. First
# panel: the losses $L_T^m$ of the unimodal heads of `joint_unimodal_heads`, BalGrad's Fig. 2b quantity.
# Second and third: the loss and the accuracy of each modality's share of the fused logits in plain
# joint training (the kit's stand-in). Fourth: each unimodal model's loss. Look for whether easy's loss
# falls first, in the joint models as alone, and whether hard's curve in the joint models then stops
# improving at a higher loss than hard reaches alone (easy already supplying the group, hard never
# learning to).
#
# How fast is "fast"? `dominance.halfway_iteration`, the kit's one measure of learning speed, gives the
# iteration at which a (smoothed) loss curve has made half of its total drop; one number per seed and
# modality (`ModalityCurves.halfway`).

# %%
races = {"unimodal heads": panels[0][0], "logit shares (stand-in)": panels[1][0]}
halfway = {name: {m: race.halfway(m, SMOOTH) for m in SEESAW_COLORS} for name, race in races.items()}
halfway_alone = {m: modality_curves(alone[m]).halfway(m, SMOOTH) for m in SEESAW_COLORS}


def speed_text(values):
    """Mean ± SD of halfway iterations, or 'never' when a loss did not fall on some seed."""
    return "never (on some seed)" if None in values else summarize(values).text(0)


def lag(values):
    """hard − easy halfway iterations, paired (None when a loss did not fall)."""
    return None if None in values["hard"] + values["easy"] else paired_difference(values["hard"], values["easy"])


for name, values in halfway.items():
    for m in SEESAW_COLORS:
        print(f"{name:>24}, {m:>5}: half of its loss drop at iteration {speed_text(values[m])}")
for m in SEESAW_COLORS:
    print(f"{'alone':>24}, {m:>5}: half of its loss drop at iteration {speed_text(halfway_alone[m])}")
easy_first = {name: race.first(SMOOTH).count("easy") for name, race in races.items()}
lags = {name: lag(values) for name, values in halfway.items()}
display(Markdown(box(
    "balgrad-fig2-seesaw",
    f"iterations until each loss made half of its drop ({EPOCHS} epochs). Unimodal heads (the paper's quantity): "
    f"easy {speed_text(halfway['unimodal heads']['easy'])}, hard {speed_text(halfway['unimodal heads']['hard'])}; "
    f"hard − easy, seed by seed: {lags['unimodal heads'].text(0) if lags['unimodal heads'] else 'not computable'}; "
    f"easy first in {easy_first['unimodal heads']} of {len(SEEDS)} seeds. Logit shares of plain joint training "
    f"(the kit's stand-in): hard − easy "
    f"{lags['logit shares (stand-in)'].text(0) if lags['logit shares (stand-in)'] else 'not computable'}; easy "
    f"first in {easy_first['logit shares (stand-in)']} of {len(SEEDS)} seeds.",
    ("the same pattern in the controlled world, on the paper's quantity: easy, the modality the joint model "
     "ends up depending on, is learned first on every seed" if easy_first["unimodal heads"] == len(SEEDS) else
     f"mixed: on the heads, easy is learned first in only {easy_first['unimodal heads']} of {len(SEEDS)} seeds")
    + (" (read the paired difference's verdict before generalising from these seeds).")
)))

# %% [markdown]
# Where the curves show that pattern, this is why. Both modalities can tell the group, but easy says
# it loudly in a few dimensions, so the gradient that teaches the group flows mostly through easy's
# branch, and easy settles the group within the first iterations. From then on the group part of the
# loss is nearly zero, and nothing is left to push the hard branch towards its own (faint) group cue:
# the gradient it would need has been **starved** (*gradient starvation* [Pezeshki et al., 2021]). The
# hard branch still learns the class within the group, because only it can provide that (section 4
# measures it), but not its group cue. Whether training longer repairs this is exercise 4.
#
# If easy is the one learned first and leaned on while the probes of section 1 name hard the better
# modality, informativeness did not decide this: speed did.
#
# ## 4. What the under-used modality carries, and what ignoring it costs
#
# A class is right when both its parts are right. `part_accuracies` splits each prediction into its
# group and its class within the group, so we can see which part each model gets right, on the full
# test set and with a modality missing.

# %%
test_sets = {"Full": experiment.features("test")}
test_sets.update({f"{m} missing": experiment.features("test", Impairment(m, "missing")) for m in SEESAW_COLORS})
cases = [("joint", "Full"), ("joint", "easy missing"), ("unimodal_hard", "Full"),
         ("joint", "hard missing"), ("unimodal_easy", "Full")]
parts = {}
for method, test_name in cases:
    features = test_sets[test_name]
    parts[(method, test_name)] = [part_accuracies(predict(run.result.model, features), features.labels, C)
                                  for run in runs[method]]
print(f"{'model, test input':>28} {'group':>20} {'class within group':>20} {'class':>20}")
for (method, test_name), values in parts.items():
    cells = [summarize([v[part] for v in values]).text() for part in ("group", "fine", "class")]
    print(f"{method + ', ' + test_name:>28} " + " ".join(f"{cell:>20}" for cell in cells))

# %% [markdown]
# What to look for in the table:
#
# - **The class within the group comes from hard only.** With hard missing, the joint model's
#   within-group accuracy should drop to chance (one in four): this is the complementary information
#   the weaker-looking modality carries. If the joint model learned it, its within-group accuracy with
#   easy missing matches hard alone's.
# - **Hard's group cue is what was not learned.** With easy missing, does the joint model name the
#   group less often than hard alone does? If so, that single lost skill is the see-saw here.
# - **At full input nothing is lost.** With both modalities present, easy supplies the group, and the
#   joint model can come close to the LDA probe on both. The cost of an under-used group cue is paid
#   only when easy is missing (or noisy).
#
# The same comparisons, as paired differences:

# %%
def part(method, test_name, name):
    """One part accuracy ("group", "fine" or "class") per seed."""
    return [values[name] for values in parts[(method, test_name)]]


lost_group = paired_difference(part("unimodal_hard", "Full", "group"), part("joint", "easy missing", "group"))
worth_fine = paired_difference(part("joint", "Full", "class"), part("joint", "hard missing", "class"))
below_probe = summarize([probes["easy+hard"]["class"] - full for full in summary["joint, Full"]])
noisy_easy = summarize(per_seed("joint", lambda run: run.table.noisy["easy"]))
print("group accuracy lost with easy missing (hard alone − joint), points:", lost_group.text())
print("what hard adds to the joint model (Full − hard missing), points:   ", worth_fine.text())
print("joint Full below the LDA probe on both, points:                    ", below_probe.text())
print("joint model with easy noisy (BalGrad's noisy protocol):            ", noisy_easy.text())

# %% [markdown]
# A word on "missing = zero". The protocol replaces a missing vector by zeros. For easy, zero is not
# an exotic input: the group centres $a\,u_g$ are orthonormal directions scaled by $a$, so zero lies at
# the same distance $a$ from every group centre, and nearer to their mean (distance $a/\sqrt G$) than
# any centre is ($a\sqrt{1 - 1/G}$): a "no group" input in the middle of the data. The group/class
# split above shows whether what fails is the group, and only the group.
#
# ## 5. Sweeping the signal strengths: where the see-saw appears and flips
#
# Two knobs, one at a time, all else at the defaults; at each value, `signal_sweep` trains the joint
# model and both unimodal models for every seed and scores them with each modality missing.
#
# - **easy's group signal $a_\text{easy}$** (`easy.coarse`): from 0 (easy carries nothing) upwards.
#   Above a few units easy knows the group perfectly (its ceiling cannot grow further), but it keeps
#   getting *louder*, i.e. faster to learn.
# - **hard's group signal $a_\text{hard}$** (`hard.coarse`): from 0 (hard knows nothing about the
#   group) to strong.
#
# Each setting changes only one modality's samples (the generator draws every modality's prototypes
# and noise from the same stream whatever the signal strengths), so the other modality's ceiling
# stays put.

# %%
easy_sweep = signal_sweep("easy", "coarse", EASY_COARSE, SWEEP_SEEDS, epochs=SWEEP_EPOCHS)
hard_sweep = signal_sweep("hard", "coarse", HARD_COARSE, SWEEP_SEEDS, epochs=SWEEP_EPOCHS)


def plot_sweep(axis, sweep, xlabel):
    """Joint Full, and per modality its ceiling and the joint model with only it left, against the knob."""
    values = np.array(sweep.values)
    lines = [("joint, Full", sweep.full(), "black", "-"),
             ("hard alone", sweep.ceiling("hard"), SEESAW_COLORS["hard"], "--"),
             ("joint, only hard left (easy missing)", sweep.missing("easy"), SEESAW_COLORS["hard"], "-"),
             ("easy alone", sweep.ceiling("easy"), SEESAW_COLORS["easy"], "--"),
             ("joint, only easy left (hard missing)", sweep.missing("hard"), SEESAW_COLORS["easy"], "-")]
    for label, (mean, sd), color, style in lines:
        axis.plot(values, mean, style, color=color, marker="o", markersize=4, label=label)
        axis.fill_between(values, mean - sd, mean + sd, color=color, alpha=0.15)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("test accuracy (%)")
    axis.set_ylim(0, 100)


figure, (easy_axis, hard_axis) = plt.subplots(1, 2, figsize=(14, 4.5))
plot_sweep(easy_axis, easy_sweep, "easy's group signal a_easy (symlog scale)")
easy_axis.set_xscale("symlog", linthresh=1.0)
easy_axis.set_xticks(EASY_COARSE, [f"{value:g}" for value in EASY_COARSE])
easy_axis.set_xlim(-0.1, 1.1 * max(EASY_COARSE))
plot_sweep(hard_axis, hard_sweep, "hard's group signal a_hard")
easy_axis.set_title(f"louder easy (a_hard = {seesaw.DEFAULT_KNOBS['hard']['coarse']})", fontsize=10)
hard_axis.set_title(f"stronger group cue in hard (a_easy = {seesaw.DEFAULT_KNOBS['easy']['coarse']})", fontsize=10)
easy_axis.legend(fontsize=8)
figure.suptitle(f"mean ± sample SD over {len(SWEEP_SEEDS)} seed(s), {SWEEP_EPOCHS} epochs per run", fontsize=10)
figure.tight_layout()
plt.show()

# %% [markdown]
# **Figure 2.4.** Left: easy's group signal $a_\text{easy}$ grows, all else at the defaults; right:
# hard's group signal $a_\text{hard}$ grows. Dashed: each modality alone (its ceiling); solid in the
# same colour: the joint model left with only that modality; black: the joint model on the full test
# set. The vertical gap between a dashed line and the solid line of its colour is that modality's
# shortfall. Look for where the hard gap opens (left) and where it closes (right).
#
# The numbers behind the figure: both **shortfalls** (`dominance.shortfall`, paired seed by seed), the
# modality the joint model leans on by the shortfall criterion (`dominance.leaned_on`: the smaller
# shortfall, when the two differ by the kit's rule), and the modality BalGrad's protocol would call
# dominant (the one whose absence costs more, on the mean scores).

# %%
def sweep_table(sweep, name):
    """Per knob value: hard alone, the joint model with only hard / only easy left, both shortfalls, both labels."""
    rows = []
    for value, at_value in zip(sweep.values, sweep.runs):
        joint = at_value["joint"]
        sweep_leaning = leaned_on({m: at_value[f"unimodal_{m}"] for m in SEESAW_COLORS}, joint)
        missing = {m: [run.table.missing[m] for run in joint] for m in SEESAW_COLORS}
        mean_missing = {m: summarize(scores).mean for m, scores in missing.items()}
        protocol = costliest_modality(mean_missing, joint[0].table.metric)
        rows.append([f"{value:g}", summarize(run.table.full for run in at_value["unimodal_hard"]).text(),
                     summarize(missing["easy"]).text(), sweep_leaning.shortfalls["hard"].text(),
                     sweep_leaning.shortfalls["easy"].text(),
                     sweep_leaning.modality or f"none ({sweep_leaning.difference.verdict})", protocol])
    return markdown_table([name, "hard alone", "only hard left", "hard's shortfall", "easy's shortfall",
                           "leaned on (shortfalls)", "protocol's dominant"], rows)


display(Markdown("\n\n".join(sweep_table(sweep, name)
                             for sweep, name in ((easy_sweep, "a_easy"), (hard_sweep, "a_hard")))))

# %% [markdown]
# How to read the two panels, and what to look for:
#
# - **Louder easy (left).** With $a_\text{easy} = 0$ easy carries nothing, so the joint model with
#   easy missing should be as good as hard alone: no see-saw. As easy grows louder, its ceiling stops
#   growing (it knows the group perfectly after a few units); if the joint model's "only hard left" score
#   keeps falling all the same, hard's shortfall grows with easy's *speed*, not with its information.
#   Far enough out, the joint model with easy missing can fall below the joint model with hard missing,
#   and the protocol's "dominant" label then flips to easy, although hard alone still beats easy alone.
# - **Stronger group cue in hard (right).** With $a_\text{hard} = 0$ hard cannot tell the group at
#   all and losing easy is the worse loss. As hard's group cue grows, hard's ceiling rises; once the cue
#   is loud enough the joint model can learn it anyway, and the shortfall shrinks towards zero. The
#   protocol's "dominant" label can flip to hard as soon as hard knows something about the group,
#   whether or not the joint model learned it.
#
# The protocol's label (which absence costs more) mixes what a modality knows with how much of it the
# model learned. Only the comparison with the unimodal ceilings (the shortfalls) separates the two, and
# on real data we rarely have those. With a single seed per value (fast mode) the kit's rule cannot name
# a modality from the shortfalls: read the two shortfall columns instead.
#
# ## 6. Three modalities, briefly
#
# `num_modalities=3` adds **medium** between the two: it tells the group at $a = 2$ and the class
# within the group at $b = 1$, in 16 dimensions. With three modalities, "m missing" leaves two
# modalities, and the missing-modality ΔGap is the largest missing score minus the smallest.

# %%
three = Experiment("seesaw", dataset_options={"num_modalities": 3})
three_modalities = seesaw.MODALITY_SETS[3]
three_runs = compare(three, ["joint"] + [f"unimodal_{m}" for m in three_modalities], SWEEP_SEEDS,
                     epochs=SWEEP_EPOCHS, ratios=(), record=False)
print("knobs:", {m: seesaw.DEFAULT_KNOBS[m] for m in three_modalities})
print(f"joint, Full: {summarize(three_runs['joint'], lambda run: run.table.full).text()}")
for m in three_modalities:
    alone_m = summarize(three_runs[f"unimodal_{m}"], lambda run: run.table.full)
    missing = summarize([run.table.missing[m] for run in three_runs["joint"]])
    print(f"{m:>7}: alone {alone_m.text():>22}   joint with {m} missing {missing.text():>22}")
print("missing-modality ΔGap:", summarize(three_runs["joint"], lambda run: run.table.missing_delta_gap).text())

# %% [markdown]
# Medium and hard both carry the class within the group, and medium also carries the group at a middle
# strength. Compare each "m missing" score with the ceilings of the modalities that are left; to see
# which of them the joint model leans on for the group, sweep a knob of one of them with
# `signal_sweep(..., dataset_options={"num_modalities": 3})`. (The shortfall needs "only m left", which
# the one-modality-missing protocol does not score with three modalities.)
#
# ## 7. A regression target, briefly
#
# With `target="regression"` the label is the number $t = g + (c + \tfrac12)/C \in (0, G)$: the group
# gives the integer part and the class within the group the fraction. The loss is the L1 loss and the
# score the mean absolute error (MAE, lower is better); `dominance.shortfall` then counts the joint
# model's error minus the ceiling's, so a positive shortfall still means "fell short".

# %%
regression = Experiment("seesaw", dataset_options={"target": "regression"})
regression_runs = compare(regression, ["joint", "unimodal_easy", "unimodal_hard"], SWEEP_SEEDS,
                          epochs=SWEEP_EPOCHS, ratios=(), record=False)
print(f"{'joint, Full':>22}: MAE {summarize([r.table.full for r in regression_runs['joint']]).text(3)}")
for m in SEESAW_COLORS:
    only_m = [r.table.missing[other] for r in regression_runs["joint"] for other in SEESAW_COLORS if other != m]
    print(f"{m + ' alone':>22}: MAE {summarize(r.table.full for r in regression_runs[f'unimodal_{m}']).text(3)}")
    print(f"{'joint, only ' + m + ' left':>22}: MAE {summarize(only_m).text(3)}"
          f"   ({m}'s shortfall: {shortfall(regression_runs[f'unimodal_{m}'], regression_runs['joint'], m).text(3)})")

# %% [markdown]
# Read it as in section 2: a positive shortfall means the joint model left with only $m$ does worse than
# $m$ alone. Look at whether the regression model falls short of *both* ceilings, easy's included. It
# can, unlike the classifier: its head adds the two modalities' contributions into one number, so a
# zeroed modality also shifts every prediction, on top of any unlearned cue, and the missing-modality
# score of a regression model mixes the two effects. CGGM's chapter (5) comes back to regression
# targets.
#
# ## 8. Lab: turn the knobs yourself
#
# `seesaw_lab` draws a smaller SeeSaw world (4,000 samples) with the knobs you give, trains the joint
# model and both unimodal models on the CPU, and shows each modality's loss and accuracy during joint
# training (the logit shares, the kit's stand-in) next to the missing-modality scores and the ceilings.
# First with the defaults:

# %%
figure, lab_numbers = seesaw_lab()
plt.show()
print(f"Full {lab_numbers['full']:.1f}; "
      f"missing {', '.join(f'{m} {v:.1f}' for m, v in lab_numbers['missing'].items())}; "
      f"ceilings {', '.join(f'{m} {v:.1f}' for m, v in lab_numbers['ceiling'].items())}; "
      f"shortfall {', '.join(f'{m} {v:.1f}' for m, v in lab_numbers['shortfall'].items())}")

# %% [markdown]
# **Figure 2.5.** The lab with the default knobs (one seed, 4,000 samples). Left and middle: each
# modality's logit-share loss and accuracy during joint training (the kit's stand-in for Fig. 2b's
# unimodal heads), with the iteration at which each loss made half of its drop; right: per modality,
# the joint model with only that modality left beside that modality's ceiling, and the joint model's
# Full score. Look for the same asymmetry as in Figure 2.2, on a smaller world.
#
# And as a panel: move the sliders, then press **Run** (each run trains three small models,
# a few seconds on a laptop).

# %% tags=["nbval-ignore-output"]
seesaw_panel()

# %% [markdown]
# **Figure 2.6.** The see-saw lab as a panel (drawn when you press **Run**): the same three plots as
# Figure 2.5 for the knobs on the sliders. Try a louder easy, a stronger group cue in hard, or more
# epochs, and watch hard's shortfall.

# %% [markdown]
# ## Summary
#
# * SeeSaw's knobs fix what each modality knows (its probes and ceilings) and how loudly it says it;
#   the LDA probe is the Bayes rule for the 16-class target, and its summed posterior for the parts.
# * Which modality a joint model *under-learns* is read from the shortfalls against the unimodal
#   ceilings; the protocol's "whose absence costs more" mixes knowledge with learning.
#
# What this chapter measured, printed from the runs above:

# %%
display(Markdown("\n".join([
    f"* **Information.** LDA probes, class accuracy: easy {probes['easy']['class']:.1f}%, hard "
    f"{probes['hard']['class']:.1f}%, both {probes['easy+hard']['class']:.1f}%.",
    f"* **Shortfalls** ({len(SEEDS)} seeds, {EPOCHS} epochs): hard {hard_shortfall.text()}, easy "
    f"{easy_shortfall.text()}; easy's − hard's: {leaning.difference.text()}"
    + (f"; the joint model leans on **{leaning.modality}**." if leaning.modality else "."),
    f"* **Learning speed** (Fig. 2b, unimodal heads): easy makes half of its loss drop first on "
    f"{easy_first['unimodal heads']} of {len(SEEDS)} seeds; hard − easy, in iterations: "
    f"{lags['unimodal heads'].text(0) if lags['unimodal heads'] else 'not computable'}.",
    f"* **What is lost.** Group accuracy in points, hard alone minus the joint model with easy missing: "
    f"{lost_group.text()}.",
    f"* **Sweep.** hard's shortfall at a_easy = {easy_sweep.values[0]:g} and {easy_sweep.values[-1]:g}: "
    + " and ".join(shortfall(at_value["unimodal_hard"], at_value["joint"], "hard").text()
                   for at_value in (easy_sweep.runs[0], easy_sweep.runs[-1])) + ".",
])))

# %% [markdown]
# ## Exercises
#
# 1. **Find the threshold.** With the lab, find the smallest hard group signal $a_\text{hard}$ at which
#    the joint model's shortfall on hard falls below 2 points. Then check your answer with
#    `signal_sweep("hard", "coarse", [...], seeds=[0, 1, 2])`: is it the same for every seed?
#
#    <details><summary>Hint</summary>
#
#    Section 5 already swept $a_\text{hard}$ (`hard_sweep`); `dominance.shortfalls` of each value's
#    `unimodal_hard` and `joint` runs gives one shortfall per seed. Between two swept values, run the
#    lab or a finer sweep.
#
#    </details>
# 2. **Unimodal heads.** Section 3 also trained `"joint_unimodal_heads"` (a unimodal loss $L_T^m$ on
#    each branch). Does hard's shortfall shrink with the heads? Quote it as a paired difference
#    (`stats.paired_difference`) over at least three seeds.
#
#    <details><summary>Hint</summary>
#
#    `runs["joint_unimodal_heads"]` and `runs["joint"]` share their seeds; compare
#    `dominance.shortfalls(runs["unimodal_hard"], ..., "hard")` of the two. Fast mode has two seeds:
#    rerun the chapter with `SEEDS=[0, 1, 2]` for a verdict.
#
#    </details>
# 3. **Noise instead of loudness.** Keep $a_\text{easy}$ at its default but make easy noisier
#    (`signal_sweep("easy", "noise", [...], ...)`). Easy still names the group alone for a while; does
#    hard's shortfall shrink as easy gets noisier, i.e. slower to learn? (To make the joint model lean
#    on *hard* instead, see assignment a3.)
#
#    <details><summary>Hint</summary>
#
#    Read, at each noise level, easy's ceiling (`sweep.ceiling("easy")`) next to hard's shortfall: look
#    for a level at which easy alone is still well above chance while hard's shortfall has shrunk.
#
#    </details>
# 4. **Train longer.** Does the joint model eventually learn hard's group cue? Run the lab with 5, 10
#    and 20 epochs and follow the shortfall against the number of epochs; explain what you see with the
#    starved gradient of section 3.
#
#    <details><summary>Hint</summary>
#
#    `seesaw_lab(epochs=...)` returns `(figure, numbers)`; `numbers["shortfall"]["hard"]` is the
#    shortfall. Once easy has settled the group, the group part of the loss, and with it the gradient
#    towards hard's group cue, is small: ask whether more epochs of a small gradient add up.
#
#    </details>

# %% [markdown]
# ## Solutions
#
# Each solution reuses the chapter's runs or trains a few small models (the sweep settings of the
# chapter: `SWEEP_SEEDS`, `SWEEP_EPOCHS`).

# %% [markdown]
# ### Solution to exercise 1
#
# Hard's shortfall closes as its group cue gets loud enough for the joint model to learn it despite
# easy. The cell reads the shortfall per seed at each swept $a_\text{hard}$ of section 5 and names the
# smallest value at which it is below 2 points on every seed; between two swept values the threshold
# is not resolved, so refine the sweep there if you need it.

# %% tags=["solution", "hide-input"]
threshold_rows, threshold = [], None
for value, at_value in zip(hard_sweep.values, hard_sweep.runs):
    per_seed_shortfall = shortfalls(at_value["unimodal_hard"], at_value["joint"], "hard")
    below = all(s < 2 for s in per_seed_shortfall)
    threshold = value if below and threshold is None and value > 0 else threshold
    threshold_rows.append([f"{value:g}", ", ".join(f"{s:+.1f}" for s in per_seed_shortfall), "yes" if below else "no"])
display(Markdown(
    markdown_table(["a_hard", "hard's shortfall per seed (points)", "below 2 on every seed"], threshold_rows)
    + "\n\n" + (f"The smallest swept a_hard > 0 with hard's shortfall below 2 points on every seed "
                f"({len(SWEEP_SEEDS)} seed(s)) is {threshold:g}." if threshold is not None else
                "No swept a_hard > 0 brings the shortfall below 2 points on every seed: extend the sweep.")))

# %% [markdown]
# ### Solution to exercise 2
#
# The heads give hard's branch a loss of its own, $L_T^\text{hard}$, which does not go to zero when
# easy has settled the group: the gradient towards hard's group cue is no longer starved. Expect a
# smaller shortfall with heads; the cell quotes the paired difference and its verdict.

# %% tags=["solution", "hide-input"]
with_heads = paired_difference(shortfalls(alone["hard"], runs["joint_unimodal_heads"], "hard"),
                               shortfalls(alone["hard"], runs["joint"], "hard"))
display(Markdown(
    f"hard's shortfall with heads {shortfall(alone['hard'], runs['joint_unimodal_heads'], 'hard').text()}, without "
    f"{hard_shortfall.text()}; with minus without, seed by seed: {with_heads.text()}. "
    + ("The heads shrink hard's shortfall." if with_heads.differs and with_heads.mean < 0 else
       "The heads grow hard's shortfall." if with_heads.differs else
       f"No verdict either way ({with_heads.verdict}): run more seeds before concluding.")))

# %% [markdown]
# ### Solution to exercise 3
#
# Noise slows easy down without taking its information away at first: while easy alone still names
# the group, a smaller shortfall on hard would again say that speed, not information, decides which
# branch learns the group. The cell sweeps easy's noise and prints easy's ceiling and hard's shortfall
# side by side.

# %% tags=["solution", "hide-input"]
NOISE_LEVELS = [1.0, 2.0, 4.0] if FAST else [1.0, 2.0, 4.0, 8.0]
noise_sweep = signal_sweep("easy", "noise", NOISE_LEVELS, SWEEP_SEEDS, epochs=SWEEP_EPOCHS)
noise_rows = [[f"{value:g}", summarize(run.table.full for run in at_value["unimodal_easy"]).text(),
               shortfall(at_value["unimodal_hard"], at_value["joint"], "hard").text()]
              for value, at_value in zip(noise_sweep.values, noise_sweep.runs)]
first_noise, last_noise = (shortfalls(noise_sweep.runs[k]["unimodal_hard"], noise_sweep.runs[k]["joint"], "hard")
                           for k in (0, -1))
display(Markdown(
    markdown_table(["easy's noise σ", "easy alone (ceiling)", "hard's shortfall"], noise_rows)
    + f"\n\nhard's shortfall at σ = {NOISE_LEVELS[-1]:g} minus at σ = {NOISE_LEVELS[0]:g}, paired: "
    f"{paired_difference(last_noise, first_noise).text()}."))

# %% [markdown]
# ### Solution to exercise 4
#
# With easy supplying the group from the first epoch, the group part of the loss stays small, so each
# further epoch adds only a small push towards hard's group cue: expect the shortfall to shrink slowly,
# if at all, as epochs grow. The cell runs the lab at several lengths (one seed, the lab's world).

# %% tags=["solution", "hide-input"]
EPOCH_COUNTS = [5, 10] if FAST else [5, 10, 20]
epoch_rows = []
for epochs in EPOCH_COUNTS:
    lab_figure, numbers = seesaw_lab(epochs=epochs)
    plt.close(lab_figure)
    epoch_rows.append([str(epochs), f"{numbers['ceiling']['hard']:.1f}", f"{numbers['shortfall']['hard']:+.1f}",
                       f"{numbers['shortfall']['easy']:+.1f}"])
display(Markdown(markdown_table(["epochs", "hard alone", "hard's shortfall", "easy's shortfall"], epoch_rows)
                 + "\n\n(one seed each: differences of a point or two are within what another seed could give)"))
