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
# that the modality a jointly trained model comes to depend on is the one it learns *fastest*, not
# the one that knows the most (here the "hard" modality alone beats the "easy" one, yet joint
# training leans on "easy"); which information is lost when the other modality is under-used, and
# when that loss shows (only when "easy" goes missing); where the see-saw appears and flips as the
# signal strengths change; and that the same happens with three modalities and a regression target.
#
# **Paper sections:** BalGrad (Kim et al. 2025) Section 1 and Fig. 2 (the see-saw; per-modality
# losses during training, Fig. 2b), Section 4.1 (the missing-modality protocol); the mechanism is
# what Pezeshki et al. (NeurIPS 2021) call *gradient starvation*.

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from sklearn.decomposition import PCA

import modbal_lib
from modbal_lib.claims import paper_vs_measured
from modbal_lib.data import load, seesaw
from modbal_lib.dominance import costliest_modality, dominant_modality, halfway_iteration
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
# $$x_m = a_m\, u_{m,g} + b_m\, v_{m,c} + \sigma_m\, \varepsilon_m, \qquad \varepsilon_m \sim \mathcal N(0, I_{D_m}).$$
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
# classes (about 25%); hard alone knows the class within the group but is unsure of the group.
# (`num_modalities=3` adds **medium**, section 6; `target="regression"` asks for a number, section 7.)

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
# The easy modality falls into one tight cloud per group, and within a cloud the colours of the fine
# classes are mixed: it knows the group and nothing more. The hard modality's main directions
# separate the fine classes; the groups are smeared over each other.
#
# How much does each modality *know*? Every class is a Gaussian with the same covariance, so a
# linear discriminant analysis (LDA) fitted on the training split is (up to estimation error) the
# Bayes-optimal classifier: its test accuracy measures the information in the inputs, whatever a
# network would make of it. `linear_probes` fits one per target (group, class within the group,
# class) and per modality set.

# %%
probes = linear_probes()
print(f"{'LDA probe on':>14} {'group':>7} {'class within group':>19} {'class (16)':>11}")
for modalities, accuracy in probes.items():
    print(f"{modalities:>14} {accuracy['group']:>6.1f}% {accuracy['fine']:>18.1f}% {accuracy['class']:>10.1f}%")

# %% [markdown]
# So, by the information it carries, **hard is the better modality**: alone it names the class far
# more often than easy alone. And the two are **complementary**: together they do much better than
# either, because easy settles the group that hard is unsure of.
#
# ## 2. Joint training leans on the easy modality
#
# Now the same data through the networks of this book: a late-fusion model (a linear-ReLU branch
# per modality, concatenation, a linear head) trained jointly on both modalities, and one unimodal
# model per modality (its **ceiling**: what that modality reaches when it is all the model has).
# Then BalGrad's protocol: score the joint model on the full test set, and with each modality
# missing (its vector set to zero).

# %%
experiment = Experiment("seesaw")
runs = compare(experiment, ["joint", "unimodal_easy", "unimodal_hard"], SEEDS, epochs=EPOCHS, ratios=())


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
# Read the bars in pairs. With **easy missing**, the joint model has exactly the input of the
# "hard alone" model: if it scores below it, the joint model did not learn all that hard could have
# taught it. With **hard missing** it has the input of "easy alone": a score like easy alone's means
# it learned from easy everything easy knows. The differences, paired seed by seed (the kit's rule,
# `modbal_lib.stats`, chapter 0):

# %%
hard_shortfall = paired_difference(summary["hard alone (ceiling)"], summary["joint, easy missing"])
easy_shortfall = paired_difference(summary["easy alone (ceiling)"], summary["joint, hard missing"])
print("hard alone − joint with only hard left, points:", hard_shortfall.text())
print("easy alone − joint with only easy left, points:", easy_shortfall.text())

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
# The joint model has no unimodal heads, so the trainer records, per iteration, each modality's
# **share of the fused logits** (with concatenation the head's weight splits into one block per
# modality, $z = W_\text{easy} f_\text{easy} + W_\text{hard} f_\text{hard} + b$; the share of $m$ is
# $W_m f_m + b/2$) and that share's loss and accuracy on the batch (`loss_uni_<m>`, `acc_uni_<m>`).
# Beside them, the unimodal models' own losses: how fast each modality is learned when it is alone.

# %%
def band(axis, curves, color, label):
    """Mean ± sample SD over seeds (``summarize`` per iteration) of smoothed per-iteration curves."""
    curves = np.array(curves)
    iterations = np.arange(curves.shape[1]) + SMOOTH - 1
    points = [summarize(column) for column in curves.T]
    mean, sd = np.array([p.mean for p in points]), np.array([p.sd for p in points])
    axis.plot(iterations, mean, color=color, label=label)
    axis.fill_between(iterations, mean - sd, mean + sd, color=color, alpha=0.2)


figure, (loss_axis, acc_axis, alone_axis) = plt.subplots(1, 3, figsize=(15, 3.8))
for m, color in SEESAW_COLORS.items():
    band(loss_axis, [run.result.curve(f"loss_uni_{m}", SMOOTH) for run in runs["joint"]], color, m)
    band(acc_axis, [100 * run.result.curve(f"acc_uni_{m}", SMOOTH) for run in runs["joint"]], color, m)
    band(alone_axis, [run.result.curve(f"loss_uni_{m}", SMOOTH) for run in runs[f"unimodal_{m}"]], color, f"{m} alone")
loss_axis.set_title("joint model: each modality's loss", fontsize=10)
acc_axis.set_title("joint model: each modality's accuracy (train batches)", fontsize=10)
alone_axis.set_title("unimodal models: loss of each modality alone", fontsize=10)
loss_axis.set_ylabel("cross-entropy")
acc_axis.set_ylabel("accuracy (%)")
alone_axis.set_ylabel("cross-entropy")
for axis in (loss_axis, acc_axis, alone_axis):
    axis.set_xlabel("iteration")
    axis.legend(fontsize=8)
figure.tight_layout()
plt.show()

# %% [markdown]
# What to look for: whether easy's loss falls first, alone as in the joint model, and whether hard's
# share in the joint model then stops improving at a higher loss than hard reaches alone (easy's share
# already supplying the group, hard's share never learning to).
#
# How fast is "fast"? `dominance.halfway_iteration`, the kit's one measure of learning speed, gives the
# iteration at which a (smoothed) loss curve has made half of its total drop; one number per seed and
# modality.

# %%
halfway = {m: [halfway_iteration(run.result.history[f"loss_uni_{m}"], SMOOTH) for run in runs["joint"]]
           for m in SEESAW_COLORS}
halfway_alone = {m: [halfway_iteration(run.result.history[f"loss_uni_{m}"], SMOOTH) for run in runs[f"unimodal_{m}"]]
                 for m in SEESAW_COLORS}
for m in SEESAW_COLORS:
    print(f"{m:>5}: half of its loss drop at iteration {summarize(halfway[m]).text(0)} in the joint model, "
          f"{summarize(halfway_alone[m]).text(0)} alone")
easy_first = sum(easy < hard for easy, hard in zip(halfway["easy"], halfway["hard"]))
display(Markdown(paper_vs_measured(
    "During joint training, the loss of the dominant modality falls faster than the other's (BalGrad, Fig. 2b).",
    "a figure of per-modality losses over training (Fig. 2b); no number to compare.",
    f"iterations until each modality's loss in the joint model made half of its drop ({EPOCHS} epochs): "
    f"easy {summarize(halfway['easy']).text(0)}, hard {summarize(halfway['hard']).text(0)}; hard − easy, "
    f"seed by seed: {paired_difference(halfway['hard'], halfway['easy']).text(0)}; "
    f"easy first in {easy_first} of {len(SEEDS)} seeds.",
    "the same pattern in the controlled world: easy, the modality the joint model ends up depending on, "
    "is learned first." if easy_first == len(SEEDS) else
    f"mixed: easy is learned first in only {easy_first} of {len(SEEDS)} seeds.",
)))

# %% [markdown]
# Where the curves show that pattern, this is why. Both modalities can tell the group, but easy says
# it loudly in a few dimensions, so the gradient that teaches the group flows mostly through easy's branch, and easy
# settles the group within the first iterations. From then on the group part of the loss is nearly
# zero, and nothing is left to push the hard branch towards its own (faint) group cue: the gradient
# it would need has been **starved** (Pezeshki et al.'s *gradient starvation*). The hard branch
# still learns the class within the group, because only it can provide that (section 4 measures
# it), but not its group cue. Whether training longer repairs this is exercise 4.
#
# If easy is the one learned first and leaned on, informativeness did not decide this: hard is the
# *more* informative modality (section 1). Speed did.
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
# split above confirms that what fails is the group, and only the group.
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
# The numbers behind the figure: hard's **shortfall** (hard alone minus the joint model with only
# hard left, paired seed by seed: how much of hard the joint model did not learn), and which modality
# BalGrad's protocol would call dominant (the one whose absence costs more, on the mean scores).

# %%
def sweep_table(sweep, name):
    """Per knob value: hard alone, the joint model with only hard / only easy left, hard's shortfall."""
    rows = []
    for value, at_value in zip(sweep.values, sweep.runs):
        hard_alone = [run.table.full for run in at_value["unimodal_hard"]]
        missing = {m: [run.table.missing[m] for run in at_value["joint"]] for m in SEESAW_COLORS}
        dominant = costliest_modality({m: summarize(scores).mean for m, scores in missing.items()},
                                      at_value["joint"][0].table.metric)
        rows.append([f"{value:g}", summarize(hard_alone).text(), summarize(missing["easy"]).text(),
                     paired_difference(hard_alone, missing["easy"]).text(), summarize(missing["hard"]).text(),
                     dominant])
    return markdown_table([name, "hard alone", "only hard left", "hard's shortfall", "only easy left",
                           "protocol's dominant"], rows)


display(Markdown("\n".join(sweep_table(sweep, name)
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
# model learned. Only the comparison with the unimodal ceilings separates the two, and on real data
# we rarely have those.
#
# ## 6. Three modalities, briefly
#
# `num_modalities=3` adds **medium** between the two: it tells the group at $a = 2$ and the class
# within the group at $b = 1$, in 16 dimensions. With three modalities, "m missing" leaves two
# modalities, and the missing-modality DeltaGap is the largest missing score minus the smallest.

# %%
three = Experiment("seesaw", dataset_options={"num_modalities": 3})
three_modalities = seesaw.MODALITY_SETS[3]
three_runs = compare(three, ["joint"] + [f"unimodal_{m}" for m in three_modalities], SWEEP_SEEDS,
                     epochs=SWEEP_EPOCHS, ratios=(), record=False)
print("knobs:", {m: seesaw.DEFAULT_KNOBS[m] for m in three_modalities})
print(f"joint, Full: {summarize(three_runs['joint'], lambda run: run.table.full).text()}")
for m in three_modalities:
    alone = summarize(three_runs[f"unimodal_{m}"], lambda run: run.table.full)
    missing = summarize([run.table.missing[m] for run in three_runs["joint"]])
    print(f"{m:>7}: alone {alone.text():>22}   joint with {m} missing {missing.text():>22}")
print("missing-modality DeltaGap:", summarize(three_runs["joint"], lambda run: run.table.missing_delta_gap).text())

# %% [markdown]
# Medium and hard both carry the class within the group, and medium also carries the group at a middle
# strength. Compare each "m missing" score with the ceilings of the modalities that are left; to see
# which of them the joint model leans on for the group, sweep a knob of one of them with
# `signal_sweep(..., dataset_options={"num_modalities": 3})`.
#
# ## 7. A regression target, briefly
#
# With `target="regression"` the label is the number $t = g + (c + \tfrac12)/C \in (0, G)$: the group
# gives the integer part and the class within the group the fraction. The loss is the L1 loss and the
# score the mean absolute error (MAE, lower is better).

# %%
regression = Experiment("seesaw", dataset_options={"target": "regression"})
regression_runs = compare(regression, ["joint", "unimodal_easy", "unimodal_hard"], SWEEP_SEEDS,
                          epochs=SWEEP_EPOCHS, ratios=(), record=False)
print(f"{'joint, Full':>22}: MAE {summarize([r.table.full for r in regression_runs['joint']]).text(3)}")
for m in SEESAW_COLORS:
    other = "hard" if m == "easy" else "easy"
    alone = [r.table.full for r in regression_runs[f"unimodal_{m}"]]
    only_m = [r.table.missing[other] for r in regression_runs["joint"]]
    print(f"{m + ' alone':>22}: MAE {summarize(alone).text(3)}")
    print(f"{'joint, only ' + m + ' left':>22}: MAE {summarize(only_m).text(3)}"
          f"   (minus {m} alone, seed by seed: {paired_difference(only_m, alone).text(3)})")

# %% [markdown]
# Read it as in section 2, remembering that lower is better: compare "joint, only m left" with "m
# alone" (a positive difference: the joint model is worse). Unlike the classifier, the regression model
# can fall short of *both* ceilings, easy's included: its head adds the two modalities' contributions
# into one number, so a zeroed modality also shifts every prediction, on top of any unlearned cue. The
# missing-modality score of a regression model mixes the two effects. CGGM's chapter (5) comes back
# to regression targets.
#
# ## 8. Lab: turn the knobs yourself
#
# `seesaw_lab` draws a smaller SeeSaw world (4,000 samples) with the knobs you give, trains the joint
# model and both unimodal models on the CPU, and shows each modality's loss and accuracy during joint
# training next to the missing-modality scores and the ceilings. First with the defaults:

# %%
figure, lab_numbers = seesaw_lab()
plt.show()
print(f"Full {lab_numbers['full']:.1f}; "
      f"missing {', '.join(f'{m} {v:.1f}' for m, v in lab_numbers['missing'].items())}; "
      f"ceilings {', '.join(f'{m} {v:.1f}' for m, v in lab_numbers['ceiling'].items())}; "
      f"shortfall {', '.join(f'{m} {v:.1f}' for m, v in lab_numbers['shortfall'].items())}")

# %% [markdown]
# And as a panel: move the sliders, then press **Run** (each run trains three small models,
# a few seconds on a laptop).

# %% tags=["nbval-ignore-output"]
seesaw_panel()

# %% [markdown]
# ## Exercises
#
# 1. **Find the threshold.** With the lab, find the smallest hard group signal $a_\text{hard}$ at which
#    the joint model's shortfall on hard falls below 2 points. Then check your answer with
#    `signal_sweep("hard", "coarse", [...], seeds=[0, 1, 2])`: is it the same for every seed?
# 2. **Unimodal heads.** Rerun section 2 with `"joint_unimodal_heads"` added to the methods (a unimodal
#    loss on each branch). Does hard's shortfall shrink? Quote it as a paired difference
#    (`stats.paired_difference`) over at least three seeds.
# 3. **Make hard dominant.** Find knobs for which the joint model under-learns *easy* instead (a
#    shortfall on easy of more than 5 points). Hint: give easy a fine signal too
#    (`signal_sweep(..., dataset_options={"knobs": {"easy": {"fine": ...}}})`) and make hard loud.
# 4. **Train longer.** Does the joint model eventually learn hard's group cue? Run the lab with 5, 10
#    and 20 epochs and plot the shortfall against the number of epochs; explain what you see with the
#    starved gradient of section 3.
