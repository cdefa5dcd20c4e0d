# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. GOAL: adaptive leveraging and gradient orthogonalization
#
# GOAL trains a late-fusion model with one unimodal head per modality, like the "joint + heads"
# baseline of the earlier chapters, and edits only one part of the gradient: the part that reaches
# each branch from the **fusion loss**. It edits it twice. *Adaptive Leveraging* (AL) scales each
# branch's fusion gradient by a weight that grows with how confident that modality's own head is.
# *Gradient Orthogonalization* (GO) then removes, wherever two modalities' fusion gradients point
# against each other, the conflicting component. This chapter takes both steps apart on hand
# examples, then trains the method and its ablations on our two datasets and compares what we
# measure with what the paper reports.
#
# **You will learn:** how AL turns unimodal predictions into weights (normalised entropy →
# confidence → softmax over modalities with a temperature → batch mean) and how far the
# temperature lets those weights move; how GO projects, in which order, and why a third modality
# makes the order matter; what GOAL's ablation (AL only, GO only, both) and temperature sweep look
# like on emoji and SeeSaw, with seeds; why the library projects *feature* gradients by default and
# when the paper's *parameter* reading is possible; what GO does to the per-sample cosines; and two
# caveats: under sum fusion GO never acts, and a "conflict" between two branches depends on an
# arbitrary numbering of their hidden units.
#
# **Paper sections:** GOAL ("Balance Multimodal Learning with Gradient Orthogonalization and
# Adaptive Leveraging", anonymous ICLR 2026 submission): the method (Eqs. 6–7 for AL, Eqs. 9–10
# for GO) and its appendix pseudocode; the main results on CREMA-D; the ablation (Table 2); the
# temperature sweep (Table 7); the per-sample cosine histograms (Fig. 2a, Fig. 5); the cost per
# sample. Appendix A.3 and A.9 are derived and checked in chapter 3 (sections 4 and 5).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

import modbal_lib
from modbal_lib import stats
from modbal_lib.claims import paper_vs_measured
from modbal_lib.plots import gradient_arrows
from modbal_lib.experiments import Experiment, compare, history_mean, run_tables
from modbal_lib.grads import loss_grads
from modbal_lib.methods.base import task_loss
from modbal_lib.methods.goal import adaptive_weights, normalized_entropy, orthogonalize, pair_cosines
from modbal_lib.train import train

torch.set_num_threads(1)  # the models of this chapter are tiny: one CPU thread is faster than two

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()
SEEDS = None          # seeds of the ablation; default [0, 1] (fast) or [0, 1, 2] (full)
SWEEP_SEEDS = None    # seeds of the T sweep and the variant comparison (a subset of SEEDS); default [0] or SEEDS
EMOJI_EPOCHS = None   # default 5 (fast) or 40 (full)
SEESAW_EPOCHS = None  # default 3 (fast) or 20 (full)
TEMPERATURES = [0.2, 0.5, 1.0, 2.0]  # AL temperatures of the sweep (section 7)
SMOOTH = 10           # running-mean window (iterations) of the training curves

# %% [markdown]
# The defaults of the other parameters depend on `FAST`; they are filled in here, after papermill
# may have changed `FAST`.

# %%
SEEDS = SEEDS or ([0, 1] if FAST else [0, 1, 2])
SWEEP_SEEDS = SWEEP_SEEDS or ([0] if FAST else SEEDS)
EMOJI_EPOCHS = EMOJI_EPOCHS or (5 if FAST else 40)
SEESAW_EPOCHS = SEESAW_EPOCHS or (3 if FAST else 20)
assert set(SWEEP_SEEDS) <= set(SEEDS), "the T sweep reuses the ablation's T = 1 runs: SWEEP_SEEDS must be among SEEDS"
EPOCHS = {"emoji": EMOJI_EPOCHS, "seesaw": SEESAW_EPOCHS}
print(f"mode: {'fast' if FAST else 'full'}; ablation seeds {SEEDS}, sweep seeds {SWEEP_SEEDS}; "
      f"epochs {EPOCHS}; temperatures {TEMPERATURES}")

# %% [markdown]
# ## 1. Which gradient GOAL edits
#
# The model is the late-fusion model of the book: a branch $h_m$ per modality gives features
# $f_m$, a fusion (here concatenation) and the fused head give the logits $z$, and each modality
# has its own head $W^{(m)}$ giving unimodal logits $z^{(m)}$. The loss is the fusion loss plus the
# unimodal losses,
#
# $$L = L_{mm}(z, y) + \sum_m L^{(m)}(z^{(m)}, y),$$
#
# so the gradient reaching branch $m$ has two parts:
#
# $$\nabla_{\theta_m} L = \underbrace{\nabla_{\theta_m} L_{mm}}_{g^{(m)}} + \underbrace{\nabla_{\theta_m} L^{(m)}}_{G^{(m)}}.$$
#
# Joint training with unimodal heads steps along $g^{(m)} + G^{(m)}$. GOAL keeps $G^{(m)}$ (each
# branch still learns to predict alone) and replaces $g^{(m)}$ by an edited $g^{(m)''}$:
#
# $$g^{(m)'} = w^{(m)} g^{(m)} \quad\text{(AL)}, \qquad
#   (g^{(1)''}, \dots, g^{(M)''}) = \mathrm{GO}(g^{(1)'}, \dots, g^{(M)'}), \qquad
#   \text{branch } m \text{ receives } g^{(m)''} + G^{(m)}.$$
#
# With both steps switched off GOAL *is* joint training with unimodal heads (a unit test checks
# that every parameter gets the same gradient), which makes that the natural baseline of the
# ablation. The fused head and the unimodal heads get their plain gradients.
#
# ## 2. Adaptive Leveraging (Eqs. 6–7)
#
# For a mini-batch of $N'$ samples and $K$ classes, each modality's unimodal prediction
# $p_i^{(m)} = \mathrm{softmax}(z_i^{(m)})$ gets a **normalised entropy** and a **confidence**,
#
# $$u_i^{(m)} = \frac{H(p_i^{(m)})}{\log K} = -\frac{1}{\log K}\sum_k p_{ik}^{(m)} \log p_{ik}^{(m)} \in [0, 1],
#   \qquad c_i^{(m)} = 1 - u_i^{(m)} \quad\text{(Eq. 6)},$$
#
# and a **softmax over modalities** with temperature $T$ turns the confidences into per-sample
# weights, which are averaged over the batch:
#
# $$w^{(m)} = \frac{1}{N'}\sum_{i=1}^{N'} \frac{\exp(c_i^{(m)}/T)}{\sum_{m'} \exp(c_i^{(m')}/T)} \quad\text{(Eq. 7)}.$$
#
# The weights are positive and sum to 1; the more confident modality gets the larger one. (The
# appendix pseudocode passes the fused logits to this step in one place; the text's $z^{(m)}$, the
# unimodal logits, is what makes sense and what the library uses.) A hand example: three samples,
# two modalities A and B, four classes.

# %%
hand_logits = torch.tensor([
    [[4.0, 0.0, 0.0, 0.0], [1.0, 0.5, 0.0, 0.0]],  # sample 1: A sure, B unsure
    [[3.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]],  # sample 2: both equally sure
    [[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]],  # sample 3: A uniform, B fairly sure
])                                                 # [samples N', modalities M, classes K]
entropy = normalized_entropy(hand_logits)          # Eq. 6: u, one per (sample, modality)
confidence = 1 - entropy
print("sample |   u_A    u_B |   c_A    c_B | per-sample weights (A, B) at T = 1")
for i in range(len(hand_logits)):
    per_sample = torch.softmax(confidence[i] / 1.0, dim=0)
    print(f"{i + 1:>6} | {entropy[i, 0]:.3f}  {entropy[i, 1]:.3f} | {confidence[i, 0]:.3f}  {confidence[i, 1]:.3f} | "
          f"{per_sample[0]:.3f}, {per_sample[1]:.3f}")
for T in (0.2, 0.5, 1.0, 2.0, 100.0):
    weights = adaptive_weights(hand_logits, T)     # Eq. 7: the batch mean of the per-sample softmax
    by_hand = torch.softmax(confidence / T, dim=1).mean(0)
    torch.testing.assert_close(weights, by_hand)
    print(f"T = {T:>5}: w_A = {weights[0]:.3f}, w_B = {weights[1]:.3f}")

# %% [markdown]
# Two things limit how far AL can move the weights. The confidences live in $[0, 1]$, so for two
# modalities a sample's weight is $\sigma\big((c_A - c_B)/T\big)$ with $|c_A - c_B| \le 1$: at the
# default $T = 1$ even a one-hot modality against a uniform one gets at most
# $e/(1+e) \approx 0.73$. And the batch mean evens things out further (sample 1 favours A,
# sample 3 favours B). A small $T$ sharpens the weights; a large $T$ makes them uniform, $1/M$ each.

# %%
gap = torch.linspace(-1, 1, 201)
figure, axis = plt.subplots(figsize=(6.5, 3.5))
for T in (0.2, 0.5, 1.0, 2.0):
    per_sample = torch.softmax(torch.stack([gap, torch.zeros_like(gap)], dim=1) / T, dim=1)[:, 0]
    axis.plot(gap, per_sample, label=f"T = {T}")
axis.axhline(0.5, color="gray", linewidth=0.8)
axis.set(xlabel="confidence gap c_A − c_B of one sample", ylabel="weight of A (Eq. 7, one sample)",
         title="AL weight of one sample, two modalities")
axis.legend()
plt.show()

# %% [markdown]
# Note what the weights do to the *scale* of the fusion gradient. Joint training with heads uses
# $w^{(m)} = 1$ for every modality; AL's weights sum to 1, so with two modalities each branch gets
# on average **half** of the fusion gradient it got before, while its unimodal gradient $G^{(m)}$
# keeps its full size. Part of whatever AL does may come from this shift towards the unimodal
# losses rather than from the leveraging itself; the temperature sweep (section 7) helps tell them
# apart, because at a large $T$ only the shift is left.
#
# ## 3. Gradient Orthogonalization (Eqs. 9–10)
#
# For each modality $i$, starting from $g_i'' = g_i'$, and for each other modality $j$ in order:
#
# $$\text{if } g_i''\cdot g_j' < 0: \qquad g_i'' \leftarrow g_i'' - \frac{g_i''\cdot g_j'}{\|g_j'\|^2 + \epsilon}\, g_j'
#   \quad\text{(Eqs. 9–10)}.$$
#
# As in the appendix pseudocode, the running $g_i''$ is projected against the **original** leveraged
# $g_j'$, never against $g_j$'s projected version. `goal.orthogonalize` does exactly this (each step
# is PCGrad's projection, `grads.project_conflicting`). Two modalities in two dimensions:

# %%
g_a, g_b = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
new_a, new_b = orthogonalize([g_a, g_b])
print(f"before: g_A = {g_a.tolist()}, g_B = {g_b.tolist()}, g_A·g_B = {float(g_a @ g_b):+.2f} (a conflict)")
print(f"after:  g_A'' = {new_a.tolist()}, g_B'' = {new_b.tolist()}")
print(f"g_A''·g_B = {float(new_a @ g_b):+.2f}, g_B''·g_A = {float(new_b @ g_a):+.2f}, g_A''·g_B'' = {float(new_a @ new_b):+.2f}")

figure, axis = plt.subplots(figsize=(4.5, 4))
gradient_arrows(axis, [(g_a, "C0", "-", "g_A"), (g_b, "C1", "-", "g_B"),
                       (new_a, "C0", "--", "g_A'' (after GO)"), (new_b, "C1", "--", "g_B'' (after GO)")],
                title="GO on two conflicting gradients", xlim=(-1.3, 1.3), ylim=(-0.4, 1.3), legend_loc="upper right")
plt.show()

# %% [markdown]
# Each result is orthogonal to the *other* modality's original gradient, and the two results no
# longer conflict ($g_A''\cdot g_B'' \ge 0$ always, by Cauchy–Schwarz). That is GOAL's appendix A.9;
# chapter 3, section 5 proves it and checks it on the per-sample gradients of a trained model. Note
# also what GO does *not* do: it never shortens a gradient that conflicts with nobody, and it
# leaves the unimodal gradients $G^{(m)}$ alone.
#
# With three or more modalities the loop order matters: after projecting $g_1$ away from $g_2$, a
# projection away from $g_3$ can bring the conflict with $g_2$ back.

# %%
g_1, g_2, g_3 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0]), torch.tensor([-1.0, -2.0])
for name, order in (("g1, g2, g3", [g_1, g_2, g_3]), ("g1, g3, g2", [g_1, g_3, g_2])):
    result = orthogonalize(order)[0]
    print(f"order {name}: g1'' = {[round(x, 3) for x in result.tolist()]}; "
          f"g1''·g2 = {float(result @ g_2):+.2f}, g1''·g3 = {float(result @ g_3):+.2f}")

# %% [markdown]
# ## 4. GOAL as a training strategy
#
# `modbal_lib.methods.goal.GOAL` (name `"goal"`) puts the two steps into training. What is
# $g^{(m)}$ in a real network? The paper speaks of the gradient "of encoder $m$" but draws per-sample
# cosine histograms, and its two encoders (ResNet-18s for audio and video) happen to have the same
# shape. The library offers both readings:
#
# - `variant="feature"` (the default): $g^{(m)} = \partial L_{mm}/\partial f_m$, the gradient with
#   respect to each sample's feature vector, a $[B, \text{hidden}]$ tensor of the same width for every
#   modality. AL scales it, GO projects it **sample by sample**, and the result is back-propagated
#   into branch $m$ together with $G^{(m)}$ in one backward pass.
# - `variant="parameter"`: $g^{(m)}$ is the flattened gradient of $L_{mm}$ on branch $m$'s parameters,
#   one vector per modality and batch; possible only when every branch has the same parameter shapes.
#
# Switches: `adaptive_leveraging`, `orthogonalization` (the ablation) and `T` (the sweep). Every step
# records `w_<m>`, the mean per-sample cosine between the modalities' leveraged fusion gradients
# before and after GO (`cos_<a>_<b>_before/after`), and the share of conflicting samples
# (`conflict_before/after`); `keep_cosines=True` keeps every per-sample cosine for histograms.
#
# ## 5. The ablation, in the shape of GOAL's Table 2
#
# On emoji (frozen EfficientNet-Lite0 image features and MiniLM text features, 9 categories) and on
# SeeSaw (chapter 2's synthetic world), with the same settings as the other chapters (Adam, lr 1e-3,
# hidden 128, concatenation, batch 128): plain joint training; joint training with unimodal heads
# (the baseline, GOAL with both switches off); AL only; GO only; and GOAL with both. Each model is
# scored under BalGrad's protocol (chapter 1): Full, each modality missing, and the gap
# $\Delta$Gap between the two missing scores (smaller is less dominated).

# %%
ABLATION = ["joint", "joint_unimodal_heads", "al_only=goal", "go_only=goal", "goal"]
ABLATION_OPTIONS = {"al_only": {"orthogonalization": False}, "go_only": {"adaptive_leveraging": False},
                    "goal": {"keep_cosines": True}}
NAMES = {"joint": "joint (concat)", "joint_unimodal_heads": "joint + heads (baseline)", "al_only": "AL only",
         "go_only": "GO only", "goal": "GOAL (AL + GO)"}
COLORS = {label: f"C{k}" for k, label in enumerate(NAMES)}
experiments = {"emoji": Experiment("emoji"), "seesaw": Experiment("seesaw")}
ablation = {name: compare(experiment, ABLATION, SEEDS, method_options=ABLATION_OPTIONS, ratios=(), epochs=EPOCHS[name])
            for name, experiment in experiments.items()}
modalities = {name: runs["joint"][0].result.model.modalities for name, runs in ablation.items()}


def recorded(key):
    """A pick: the mean over training of a recorded series, None for runs that do not record it."""
    return lambda run: history_mean(run, key) if key in run.result.history else None


def step_ms(run):
    """One training step's cost in ms: the 10th percentile of the run's step times.

    On a busy machine other processes slow some steps down; the fast steps show the work itself.
    """
    return 1e3 * float(np.percentile(run.result.step_seconds, 10))


for name, runs in ablation.items():
    display(Markdown(f"**{name}**, {EPOCHS[name]} epochs, seeds {SEEDS}\n\n" + stats.table1(run_tables(runs, NAMES))))

# %%
figure, axes = plt.subplots(1, 2, figsize=(14, 4))
for axis, (name, runs) in zip(axes, ablation.items()):
    bars = ["Full"] + [f"missing {m}" for m in modalities[name]]
    summaries = stats.table1_summaries(run_tables(runs, NAMES))
    width = 0.8 / len(runs)
    for k, label in enumerate(runs):
        cells = dict(summaries[NAMES[label]])
        axis.bar(np.arange(len(bars)) + (k - (len(runs) - 1) / 2) * width, [cells[row].mean for row in bars], width,
                 yerr=[cells[row].sd for row in bars], capsize=3, color=COLORS[label], label=NAMES[label])
    axis.set_xticks(range(len(bars)), bars)
    axis.set(ylabel="test accuracy (%)", ylim=(0, 100), title=f"{name}: the ablation ({len(SEEDS)} seeds)")
axes[0].legend(fontsize=8, loc="lower left")
figure.tight_layout()
plt.show()

# %% [markdown]
# Read the table in two steps. **Joint → joint + heads**: adding the unimodal losses (nothing of
# GOAL yet). **Joint + heads → AL only / GO only / GOAL**: what GOAL's two edits add on top. The
# paired per-seed differences (same seeds, same data order) make the second step precise; each is
# judged by the kit's one rule (`modbal_lib.stats`, explained in [chapter 0](00_how_to_use.ipynb)).
#
# On SeeSaw read the missing scores rather than ΔGap. Both absences hurt there (each modality
# carries something the other lacks, chapter 2), and the joint model under-learns *hard*: anything
# that teaches hard more raises the score with easy missing, the higher of the two, and so *widens*
# the gap. A smaller ΔGap is better only when the two impaired scores could in principle be equal.

# %%
full, gap = (lambda run: run.table.full), (lambda run: run.table.missing_delta_gap)
for name, runs in ablation.items():
    rows = [[f"{NAMES[label]} − {NAMES[reference]}"]
            + [stats.paired_difference(runs[label], runs[reference], pick).text() for pick in (full, gap)]
            for label, reference in (("joint_unimodal_heads", "joint"), ("al_only", "joint_unimodal_heads"),
                                     ("go_only", "joint_unimodal_heads"), ("goal", "joint_unimodal_heads"))]
    display(Markdown(f"**{name}**: paired differences (points)\n\n" + stats.markdown_table(["", "Full", "ΔGap"], rows)
                     + f"\n_{stats.DIFFERENCE_NOTE}._\n"))

# %% [markdown]
# What AL and GO do inside training, from the recorded series (mean over training): the AL weight of
# each modality, and the share of (sample, pair) combinations whose fusion gradients conflict
# before and after GO.

# %%
for name, runs in ablation.items():
    columns = {f"w_{m}": recorded(f"w_{m}") for m in modalities[name]}
    columns.update({"conflicts before GO": recorded("conflict_before"), "conflicts after GO": recorded("conflict_after")})
    rows = [[NAMES[label]] + [stats.summarize(runs[label], pick).text(2) for pick in columns.values()]
            for label in ("al_only", "go_only", "goal")]
    display(Markdown(f"**{name}**, mean over training; {stats.SD_NOTE}\n\n"
                     + stats.markdown_table([""] + list(columns), rows)))

# %%
emoji, seesaw = ablation["emoji"], ablation["seesaw"]
goal_vs_joint = stats.paired_difference(emoji["goal"], emoji["joint"], full)
goal_vs_heads = stats.paired_difference(emoji["goal"], emoji["joint_unimodal_heads"], full)
heads_gap = stats.paired_difference(emoji["joint_unimodal_heads"], emoji["joint"], gap)
edits_gap = stats.paired_difference(emoji["goal"], emoji["joint_unimodal_heads"], gap)
display(Markdown(paper_vs_measured(
    "GOAL improves clearly on plain concatenation (joint training).",
    "CREMA-D (audio + video, ResNet-18 encoders trained from scratch, SGD) accuracy: concatenation 69.62, "
    "GOAL 78.23 (+8.6 points).",
    f"emoji ({EPOCHS['emoji']} epochs, frozen pretrained encoders) Full accuracy: joint "
    f"{stats.summarize(emoji['joint'], full).text()}, joint + heads "
    f"{stats.summarize(emoji['joint_unimodal_heads'], full).text()}, GOAL "
    f"{stats.summarize(emoji['goal'], full).text()}; ΔGap (missing): joint "
    f"{stats.summarize(emoji['joint'], gap).text()}, "
    f"joint + heads {stats.summarize(emoji['joint_unimodal_heads'], gap).text()}, GOAL "
    f"{stats.summarize(emoji['goal'], gap).text()}. SeeSaw ({EPOCHS['seesaw']} epochs) Full: joint "
    f"{stats.summarize(seesaw['joint'], full).text()}, GOAL {stats.summarize(seesaw['goal'], full).text()}.",
    f"different data and encoders, so only the direction is comparable. On emoji GOAL − joint in Full accuracy: "
    f"{goal_vs_joint.text()}; GOAL − joint + heads: {goal_vs_heads.text()}. The unimodal heads alone change emoji's "
    f"ΔGap by {heads_gap.text()}; GOAL's edits on top of them by {edits_gap.text()}. Our encoders "
    "are frozen: GOAL's edits reach only the small embedding layers, whereas the paper's edits steer whole encoders "
    "trained from scratch.",
)))

# %%
def ablation_summaries(runs):
    """The Full accuracy and ΔGap of the baseline and GOAL's ablation rows, each as ``Summary.text()``."""
    return "; ".join(f"{NAMES[label]} Full {stats.summarize(runs[label], full).text()}, ΔGap "
                     f"{stats.summarize(runs[label], gap).text()}"
                     for label in ("joint_unimodal_heads", "al_only", "go_only", "goal"))


readings = []
for name, runs in ablation.items():
    parts = [f"{NAMES[label]} {stats.paired_difference(runs[label], runs['joint_unimodal_heads'], full).text()}"
             for label in ("al_only", "go_only", "goal")]
    readings.append(f"{name}, Full accuracy against joint + heads: " + "; ".join(parts))
display(Markdown(paper_vs_measured(
    "Each of AL and GO helps on its own, and together they help most (GOAL's Table 2).",
    "CREMA-D accuracy: AL only 75.13, GO only 76.75, both 78.23 (baseline concatenation 69.62).",
    f"emoji: {ablation_summaries(emoji)}. SeeSaw: {ablation_summaries(seesaw)}.",
    ". ".join(readings) + ". Different data and encoders; the paper's rows differ by 1.5–3 points, and the paired "
    "intervals say whether differences as large as that are there in our runs.",
)))

# %% [markdown]
# ## 6. What AL does on this data
#
# AL favours the modality whose own head is more confident. In a dominated model that is usually
# the dominant modality, the one whose absence costs the most. The AL weights over training, next
# to the modality whose absence costs the joint model the most (the band spans the seeds' lowest to
# highest weight):

# %%
figure, axes = plt.subplots(1, 2, figsize=(13, 3.6))
for axis, (name, runs) in zip(axes, ablation.items()):
    costly = min(modalities[name],
                 key=lambda m: stats.summarize(runs["joint"], lambda run: run.table.missing[m]).mean)
    weights = {m: stats.summarize(runs["goal"], recorded(f"w_{m}")) for m in modalities[name]}
    for m in modalities[name]:
        curves = np.array([run.result.curve(f"w_{m}", SMOOTH) for run in runs["goal"]])
        x = np.arange(curves.shape[1]) + SMOOTH - 1
        axis.plot(x, curves.mean(0), label=f"w_{m}")
        axis.fill_between(x, curves.min(0), curves.max(0), alpha=0.2)
    axis.axhline(0.5, color="gray", linewidth=0.8)
    axis.set(xlabel="iteration", ylabel="AL weight", ylim=(0.2, 0.8),
             title=f"{name}: GOAL's AL weights (T = 1); missing {costly} costs joint the most")
    axis.legend()
    favoured = max(weights, key=lambda m: weights[m].mean)
    print(f"{name}: missing {costly} costs the joint model the most; GOAL's mean AL weights "
          + ", ".join(f"w_{m} {weights[m].text(2)}" for m in modalities[name])
          + f": AL favours {favoured}, so on average it leans {'with' if favoured == costly else 'against'} "
          "the dominance")
figure.tight_layout()
plt.show()

# %% [markdown]
# What to look for. On emoji, if the image head becomes confident first, AL gives the image branch the
# larger share of the fusion gradient and the text branch the smaller one: it leans *with* the
# dominance rather than against it (the lines above say which way it leans in this run). The gap
# between the weights should narrow as the text head catches up, and it is never large, because the
# weights are bounded as section 2 showed. On SeeSaw the two heads are about equally (un)certain (easy
# knows only the group, hard mostly the class within the group), so expect weights near one half.
#
# ## 7. The temperature sweep (GOAL's Table 7)
#
# GOAL on emoji for each temperature (the $T = 1$ runs are the ablation's). Smaller $T$ sharpens
# the weights towards the confident modality; larger $T$ flattens them to $1/2$ each, which leaves
# only the halving of the fusion gradient described in section 2. For reference, the dashed lines
# are joint + heads (no AL, no GO) and GO only ($w = 1$ for both modalities: GOAL without any AL).

# %%
image = modalities["emoji"][0]  # the modality whose absence costs emoji's joint model the most
fresh = [T for T in TEMPERATURES if T != 1.0]
sweep_runs = compare(experiments["emoji"], [f"T {T}=goal" for T in fresh], SWEEP_SEEDS,
                     method_options={f"T {T}": {"T": T} for T in fresh}, ratios=(), epochs=EPOCHS["emoji"])
sweep_runs["T 1.0"] = [run for run in emoji["goal"] if run.seed in SWEEP_SEEDS]  # GOAL's default T
sweep = {T: sweep_runs[f"T {T}"] for T in TEMPERATURES}
sweep_weight = {T: stats.summarize(runs, recorded(f"w_{image}")) for T, runs in sweep.items()}
display(Markdown(f"**emoji**, GOAL, seeds {SWEEP_SEEDS}\n\n"
                 + stats.table1(run_tables({f"T = {T}": runs for T, runs in sweep.items()}))))
print(f"mean AL weight of {image} over training: "
      + ", ".join(f"T = {T}: {sweep_weight[T].text(2)}" for T in TEMPERATURES))

# %%
references = {label: [run for run in emoji[label] if run.seed in SWEEP_SEEDS] for label in ("joint_unimodal_heads", "go_only")}
figure, axes = plt.subplots(1, 3, figsize=(15, 3.6))
for axis, (title, pick) in zip(axes, (("Full accuracy", full), (f"accuracy, {image} missing", lambda run: run.table.missing[image]),
                                     ("ΔGap (missing)", gap))):
    summaries = [stats.summarize(sweep[T], pick) for T in TEMPERATURES]
    axis.errorbar(TEMPERATURES, [s.mean for s in summaries], yerr=[s.sd for s in summaries], marker="o", capsize=3,
                  label="GOAL")
    for (label, runs), color in zip(references.items(), ("gray", "C3")):
        axis.axhline(stats.summarize(runs, pick).mean, color=color, linestyle="--", label=NAMES[label])
    axis.set(xscale="log", xlabel="temperature T", title=title)
    axis.set_xticks(TEMPERATURES, [str(T) for T in TEMPERATURES])
    axis.minorticks_off()
axes[0].legend(fontsize=8)
figure.tight_layout()
plt.show()

# %% [markdown]
# The sweep also separates AL's two effects (section 2). At the largest temperature the weights are
# close to $1/2$ each, so what is left is mostly the halving of every branch's fusion gradient: compare
# it with GO only, the same edits with $w = 1$. Going down to the smallest temperature adds the
# leaning towards the confident modality.

# %%
hottest, coldest = max(TEMPERATURES), min(TEMPERATURES)
for title, pick in ((f"missing {image}", lambda run: run.table.missing[image]), ("ΔGap", gap)):
    print(f"{title:>14}: GO only (w = 1) {stats.summarize(references['go_only'], pick).text()}; "
          f"GOAL at T = {hottest} (w_{image} {sweep_weight[hottest].text(2)}) "
          f"{stats.summarize(sweep[hottest], pick).text()}; at T = {coldest} (w_{image} "
          f"{sweep_weight[coldest].text(2)}) {stats.summarize(sweep[coldest], pick).text()}")

# %%
sweep_full = {T: stats.summarize(sweep[T], full) for T in TEMPERATURES}
against_default = {T: stats.paired_difference(sweep[T], sweep_runs["T 1.0"], full) for T in TEMPERATURES if T != 1.0}
ordered = sorted(TEMPERATURES)
full_means = {T: summary.mean for T, summary in sweep_full.items()}
weight_falls = all(sweep_weight[a].mean > sweep_weight[b].mean for a, b in zip(ordered, ordered[1:]))
display(Markdown(paper_vs_measured(
    "The temperature matters, and the default T = 1 is the best of the sweep (GOAL's Table 7).",
    "CREMA-D accuracy between 76.08 and 78.23 over T ∈ {0.2, …, 1.0}; 78.23 is the main result at T = 1.",
    f"emoji, seeds {SWEEP_SEEDS}: Full accuracy " + ", ".join(f"T = {T}: {sweep_full[T].text()}" for T in TEMPERATURES)
    + "; ΔGap " + ", ".join(f"T = {T}: {stats.summarize(sweep[T], gap).text()}" for T in TEMPERATURES)
    + f"; mean w_{image} " + ", ".join(f"T = {T}: {sweep_weight[T].text(2)}" for T in TEMPERATURES) + ".",
    f"the mean Full accuracy spans {max(full_means.values()) - min(full_means.values()):.1f} points over the sweep "
    f"(the paper's spans 2.2), highest at T = {max(full_means, key=full_means.get)}; "
    "against the default T = 1, seed by seed: "
    + "; ".join(f"T = {T} {difference.text()}" for T, difference in against_default.items())
    + f". The mean weight of {image} {'falls' if weight_falls else 'does not fall steadily'} as T grows. "
    "Different data and encoders; temperatures above 1 are outside the paper's range.",
)))

# %% [markdown]
# ## 8. Per-sample cosines before and after GO (the shape of Fig. 2a / Fig. 5)
#
# The GOAL runs of section 5 kept, at every step, the cosine between the two modalities' leveraged
# fusion gradients for every sample, before and after GO (AL's positive weights do not change a
# cosine). Pooled over all steps and seeds:

# %%
figure, axes = plt.subplots(1, 2, figsize=(13, 3.6))
for axis, (name, runs) in zip(axes, ablation.items()):
    pair = "_".join(modalities[name])
    before = torch.cat([step[f"{pair}_before"] for run in runs["goal"] for step in run.result.method.cosines]).numpy()
    after = torch.cat([step[f"{pair}_after"] for run in runs["goal"] for step in run.result.method.cosines]).numpy()
    bins = np.linspace(-1, 1, 61)
    axis.hist(before, bins=bins, alpha=0.6, label=f"before GO ({np.mean(before < 0):.0%} < 0)")
    axis.hist(after, bins=bins, alpha=0.6, label=f"after GO ({np.mean(after < 0):.0%} < 0)")
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set(xlabel=f"per-sample cos(g_{modalities[name][0]}, g_{modalities[name][1]})", ylabel="(sample, step) pairs",
             title=f"{name}: GOAL, {len(before)} per-sample cosines")
    axis.legend(fontsize=8)
figure.tight_layout()
plt.show()

# %% [markdown]
# Before GO the cosines spread around zero; after GO every conflicting sample sits at (or just
# above) zero, and the non-conflicting ones are untouched. Note the scale of the x axis: the two
# modalities' 128-d feature gradients are nearly orthogonal to begin with. How much does GO change a
# gradient? For two modalities, projecting $g_i$ away from $g_j$ removes its component along $g_j$,
# whose length is $|\cos(g_i, g_j)|\,\|g_i\|$: the relative change of a conflicting sample's gradient
# *is* the absolute cosine.

# %%
for name, runs in ablation.items():
    pair = "_".join(modalities[name])
    before = torch.cat([step[f"{pair}_before"] for run in runs["goal"] for step in run.result.method.cosines])
    change = (-before).clamp_min(0)  # |cos| where the sample conflicts, 0 where GO leaves it alone
    print(f"{name}: GO changes a conflicting sample's fusion gradient by {change[before < 0].mean():.1%} of its length "
          f"on average (at most {change.max():.1%}); over all samples, by {change.mean():.1%}")

# %% [markdown]
# How the share of conflicts evolves during training, for GOAL and for its ablations (for AL only
# nothing is projected, so "after" equals "before"):

# %%
figure, axes = plt.subplots(1, 2, figsize=(13, 3.6))
for axis, (name, runs) in zip(axes, ablation.items()):
    for label in ("al_only", "go_only", "goal"):
        for key, style in (("conflict_before", "-"), ("conflict_after", ":")):
            curve = np.mean([run.result.curve(key, SMOOTH) for run in runs[label]], axis=0)
            axis.plot(np.arange(len(curve)) + SMOOTH - 1, curve, style, color=COLORS[label],
                      label=f"{NAMES[label]}, {key.split('_')[1]} GO")
    axis.set(xlabel="iteration", ylabel="share of conflicting samples", ylim=(-0.02, 0.8), title=name)
    axis.legend(fontsize=7, ncol=3)
figure.tight_layout()
plt.show()

# %% [markdown]
# GO does exactly what it promises, removing every conflict of every step. How much that changes the
# trained model is a different question, answered by the paired differences of section 5 (GO only
# and GOAL against joint + heads). Two reasons to expect little on our data: what the projection
# removes is a small part of each gradient (the numbers above), and with frozen encoders and one
# embedding layer per branch there is little for the fusion gradient to undo in the first place.
#
# ## 9. Feature vs parameter variants
#
# The parameter reading needs branches of one shape. On emoji (a 1280-d image and a 384-d text
# embedding layer) there is no common parameter space, and the strategy says so:

# %%
try:
    train(experiments["emoji"].features("train"), "goal", variant="parameter", epochs=1, show_progress=False)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# On SeeSaw we can make both branches the same shape by giving `easy` 32 dimensions like `hard`
# (`knobs={"easy": {"dim": 32}}`; the extra dimensions carry only noise, so this world is a little
# harder than chapter 2's). Then both variants run on the same data.

# %%
equal_shapes = Experiment("seesaw", dataset_options={"knobs": {"easy": {"dim": 32}}})
NAMES.update({"goal_feature": "GOAL, feature variant", "goal_parameter": "GOAL, parameter variant"})
variants = compare(equal_shapes, ["joint_unimodal_heads", "goal_feature=goal", "goal_parameter=goal"], SWEEP_SEEDS,
                   method_options={"goal_parameter": {"variant": "parameter"}}, ratios=(), epochs=EPOCHS["seesaw"])
columns = {"conflicts before GO": recorded("conflict_before"), "conflicts after GO": recorded("conflict_after"),
           "step (ms)": step_ms}
rows = [[NAMES[label]] + [stats.summarize(runs, pick).text(2) if pick(runs[0]) is not None else "—"
                          for pick in columns.values()] for label, runs in variants.items()]
display(Markdown(f"**SeeSaw with equal branch shapes**, {EPOCHS['seesaw']} epochs, seeds {SWEEP_SEEDS}\n\n"
                 + stats.table1(run_tables(variants, NAMES)) + "\n" + stats.markdown_table([""] + list(columns), rows)
                 + f"\n_{stats.SD_NOTE}; — where the method records no conflicts._\n"))
easy = modalities["seesaw"][0]
parameter_vs_feature = {"Full": full, f"missing {easy}": lambda run: run.table.missing[easy]}
print("parameter − feature variant: " + "; ".join(
    f"{what} {stats.paired_difference(variants['goal_parameter'], variants['goal_feature'], pick).text()}"
    for what, pick in parameter_vs_feature.items()))

# %% [markdown]
# In the parameter variant a "conflict" is a property of a whole batch (one flattened gradient per
# branch), so its conflict share is the share of *steps* in which the two branches' gradients point
# against each other; in the feature variant it is the share of *samples*. Why the library makes the
# feature variant the default:
#
# 1. **It works for any branches.** Different input widths, a CNN next to a linear layer, three
#    modalities of three sizes: the features $f_m$ always have the same width (the model's `hidden`).
# 2. **It is what the paper's figures show.** Fig. 2a and Fig. 5 are histograms over *samples*; a
#    parameter-space reading gives one cosine per batch.
# 3. **It is cheap.** The fusion gradient at the features needs a backward pass through the fused
#    head only, and the edited gradients go into the branches together with the unimodal gradients
#    in one backward pass. The parameter variant needs a second full backward pass through the branches
#    (the step-time column shows what that costs here; timings on a shared machine are noisy).
# 4. **Its edits are finer.** Per sample, GO removes only the conflicting part of the samples that
#    conflict; per batch, it acts on the sum over all samples or not at all.
#
# ## 10. Two caveats
#
# **Under sum fusion GO never acts.** With $f_{fus} = \sum_m f_m$,
# $\partial L_{mm}/\partial f_m = \partial L_{mm}/\partial f_{fus}$ for every $m$: every modality gets the
# same feature gradient, the cosine is 1 and nothing conflicts. (AL still scales the copies.) GO can act
# under concatenation and attention fusion only. Measured:

# %%
summed = train(experiments["emoji"].features("train"), "goal", fusion="sum", epochs=2, seed=0, show_progress=False)
pair = "_".join(modalities["emoji"])
print(f"sum fusion, {len(summed.step_seconds)} steps: largest conflict share {max(summed.history['conflict_before']):.3f}, "
      f"smallest mean cosine {min(summed.history[f'cos_{pair}_before']):.6f}")
assert max(summed.history["conflict_before"]) == 0.0

# %% [markdown]
# **A conflict between two branches depends on an arbitrary basis.** Under concatenation,
# $f_{image}$ and $f_{text}$ enter the fused head through different columns; nothing pairs hidden unit
# $k$ of the image branch with hidden unit $k$ of the text branch. Renumber the text branch's units
# with a permutation matrix $P$ (its rows of $W$ and $b$, and the matching columns of the fused head
# and of its unimodal head): the network computes the same function, its new features are
# $P f_{text}$, and by the chain rule its feature gradient is $P\, \partial L/\partial f_{text}$. The
# per-sample dot product with the image gradient becomes $g_{image}\cdot P g_{text}$, a different
# number. So whether a sample "conflicts", and what GO projects away, depends on a numbering that
# means nothing. (The parameter variant has the same property.) On a trained GOAL model and one batch
# of 512 training samples, the share of conflicting samples for the model as trained and for 200
# renumberings of the same model:

# %%
model = emoji["goal"][0].result.model
train_features = experiments["emoji"].features("train")
index = torch.randperm(len(train_features), generator=torch.Generator().manual_seed(0))[:512]
output = model({m: x[index] for m, x in train_features.features.items()})
feature_grads = loss_grads(task_loss(train_features.task, output.logits, train_features.labels[index]),
                           [output.embeddings[m] for m in model.modalities])
conflict_share = float((pair_cosines(feature_grads, model.modalities)[pair] < 0).float().mean())
generator = torch.Generator().manual_seed(1)
renumbered = [float((pair_cosines([feature_grads[0], feature_grads[1][:, torch.randperm(model.hidden, generator=generator)]],
                                  model.modalities)[pair] < 0).float().mean()) for _ in range(200)]

figure, axis = plt.subplots(figsize=(7, 3.5))
axis.hist(renumbered, bins=30, alpha=0.7, label=f"the same model, {model.modalities[1]} units renumbered")
axis.axvline(conflict_share, color="C3", label=f"as trained ({conflict_share:.0%})")
axis.set(xlabel="share of samples whose fusion gradients conflict", ylabel="renumberings", title="emoji, GOAL, seed 0")
axis.legend(fontsize=8)
plt.show()
print(f"conflict share as trained {conflict_share:.2f}; over the renumberings {stats.summarize(renumbered).text(2)}, "
      f"min {min(renumbered):.2f}, max {max(renumbered):.2f}")

# %% [markdown]
# The share of "conflicts" is a property of the numbering as much as of the data. A renumbered copy
# of the model would be trained differently by GO from the next step on, although it is the same
# network. (Training itself picks a numbering, starting from the random initialisation, so GO is
# well defined; it is just not a property of the function the model computes.) Where the branches
# share an output space, as under sum fusion, a conflict would mean something, but there GO has
# nothing to do.
#
# ## 11. What it costs
#
# The time of a training step (forward, backward, the edits and the optimizer step; for GOAL also
# its recorded statistics), per run, as a ratio to the same seed's joint run. One CPU thread. Each
# run's step time is the 10th percentile over its steps (`step_ms`), which a busy machine disturbs
# less than the mean or the median; still, timings on a shared machine are noisy.

# %%
def step_ratio(runs, label, reference):
    return [step_ms(a) / step_ms(b) for a, b in zip(runs[label], runs[reference], strict=True)]


ratios = {name: {reference: stats.summarize(step_ratio(runs, "goal", reference))
                 for reference in ("joint", "joint_unimodal_heads")} for name, runs in ablation.items()}
COST_LABELS = ("joint", "joint_unimodal_heads", "goal")
rows = [[name] + [stats.summarize(runs[label], step_ms).text(2) for label in COST_LABELS]
        for name, runs in ablation.items()]
display(Markdown(stats.markdown_table(["step (ms)"] + [NAMES[label] for label in COST_LABELS], rows)
                 + f"\n_{stats.SD_NOTE}._\n"))
display(Markdown(paper_vs_measured(
    "GOAL's overhead is small.",
    "17.41 vs 15.67 ms per sample (about 1.11×), the same GPU memory (CREMA-D, ResNet-18 encoders, a GPU).",
    "; ".join(f"{name}: GOAL / joint {r['joint'].text(2)}, GOAL / joint + heads "
              f"{r['joint_unimodal_heads'].text(2)}" for name, r in ratios.items())
    + " (ratios of step times, seed by seed; one CPU thread).",
    "a GOAL step adds a fixed amount of work (a backward pass through the fused head, the AL weights, the per-sample "
    "projections and cosines, one device read of the statistics). Next to ResNet-18 encoders that is little; next to "
    "our one-layer branches on precomputed features it is not (compare the two datasets: SeeSaw's branches read 8- "
    "and 32-d inputs, emoji's 1280- and 384-d ones). The ratio says as much about the size of the model as about GOAL.",
)))

# %% [markdown]
# ## 12. What we learned
#
# - AL and GO are small, exact operations: a bounded re-weighting of each branch's fusion gradient
#   (at most about 0.73 : 0.27 per sample at $T = 1$), and a per-sample projection that removes every
#   conflict (chapter 3 proves the two-modality case).
# - In the ablation, read the step from joint to joint + heads and the step from joint + heads to
#   GOAL separately. Do the unimodal heads carry the gain in robustness, a higher score when the
#   under-learned modality is left alone (image missing on emoji, easy missing on SeeSaw)? Does GO
#   or AL on top of them change the Full accuracy or ΔGap by more than the seeds can tell apart
#   (the verdict "differs")? The paired differences of sections 5 and 7 answer for your run.
# - AL gives the more confident modality the larger weight; where that is the dominant one it leans
#   *with* the dominance (section 6 says which way it leans here), and a smaller $T$ leans harder.
#   Its weights also halve every branch's fusion gradient; the sweep's largest temperature shows how
#   much of AL's effect that halving alone accounts for.
# - GO removes every conflict, but section 8 measures how small the conflicts it removes are (the
#   share of a gradient's length), under concatenation they are defined only up to a renumbering of
#   hidden units, and under sum fusion there are none.
# - The paper's setting differs from ours in the ways that matter most here: CREMA-D, and encoders
#   trained from scratch, which the edited fusion gradient shapes throughout. Our encoders are
#   frozen, and GOAL's edits reach only a thin embedding layer per modality. Whether that explains
#   the gap between the paper's gains and ours we have not tested; chapter 7 puts GOAL next to the
#   other methods, and on real data where it is available.
#
# ## Exercises
#
# 1. **Leveraging or halving?** AL's weights sum to 1, which halves the fusion gradient of every
#    branch as well as re-weighting it. Train GOAL with `T=100` (weights ≈ 1/2 each, so only the
#    halving is left) and compare it with AL only and with joint + heads on emoji. Which of AL's two
#    effects moves the scores?
# 2. **Lean the other way.** Subclass `GOAL` and override `leverage_weights(step)` to return
#    `super().leverage_weights(step).flip(0)`, so that the *less* confident modality gets the larger
#    weight; pass an instance to `train`. Does it shrink ΔGap on emoji more than GOAL does?
# 3. **Three modalities.** Train GOAL on `Experiment("seesaw", dataset_options={"num_modalities": 3})`
#    and read `conflict_after` in the history. Why is it not zero any more (section 3), and does the
#    order of the modalities change the result?
# 4. **Attention fusion.** Rerun the ablation of section 5 on emoji with `fusion="attention"`. Does GO
#    act (conflict shares before GO), and does it change the scores more than under concatenation?
