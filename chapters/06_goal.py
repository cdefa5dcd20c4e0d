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
# GOAL [Anonymous, 2025] trains a late-fusion model with one unimodal head per modality, like the
# "joint + heads" baseline of the earlier chapters, and edits only one part of the gradient: the part
# that reaches each branch from the **fusion loss**. It edits it twice. *Adaptive Leveraging* (AL)
# scales each branch's fusion gradient by a weight that grows with how confident that modality's own
# head is. *Gradient Orthogonalization* (GO) then removes, wherever two modalities' fusion gradients
# point against each other, the conflicting component. This chapter takes both steps apart on hand
# examples, checks the paper's appendix claims about them, trains the method and its ablations on our
# two datasets, and compares what we measure with what the paper reports.
#
# **Which gradient: this kit's default is a reading, not the paper's letter.** In the paper, $g^{(m)}$
# is the gradient of the fusion loss with respect to the parameters $\theta^{(m)}$ of encoder $m$ (Eq. 5),
# and the pseudocode (Appendix A.1–A.2) scales each modality's gradient by **one batch-mean weight**
# $w^{(m)}$ and projects the modalities' whole gradient vectors against each other. The kit's default,
# `variant="feature"`, reads $g^{(m)}$ instead as the **per-sample** gradient at the embedding $e_m$ and
# projects sample by sample. The paper's sentence that the two projections are applied "for all
# conflicting pairs within a batch" (Section 3.4) allows that reading but does not say it. The
# paper's reading is in the kit too, `variant="parameter"`; section 10 runs both side by side and reports
# their paired difference. Results in this chapter are from the feature reading unless marked.
#
# **You will learn:** how AL turns unimodal predictions into weights (normalised entropy → confidence
# → softmax over modalities with a temperature → batch mean) and how far the temperature lets those
# weights move; how GO projects, in which order, and why a third modality makes the order matter; what
# GOAL's appendix claims A.3, A.9 and A.14 say and where their derivations are right or loose; what
# GOAL's ablation (AL only, GO only, both) and temperature sweep look like on emoji and SeeSaw, with
# seeds; the two readings of "the gradient of modality $m$" and what choosing one does; what GO does to
# the per-sample cosines; two caveats: under sum fusion GO never acts, and a "conflict" between two
# branches depends on an arbitrary numbering of their hidden units; and what the empirical evidence GOAL
# rests on gives when rerun here: AL's variance premise (A.7), the clustering of the fused features (A.12),
# the agreement of $g^{(m)}$ and $G^{(m)}$ (A.15), convergence speed (A.16), GO as a plug-in on other methods
# (Fig. 2c, the kit's `"<method>+go"`) and three modalities (Table 3), each with the ledger's verdict.
#
# **Paper sections:** GOAL ("Balance Multimodal Learning with Gradient Orthogonalization and Adaptive
# Leveraging", anonymous ICLR 2026 submission, OpenReview I3uFqoUZ2Y): Section 3.1 (Eqs. 1–5), Section 3.3
# (AL, Eqs. 6–8), Section 3.4 (GO, Eqs. 9–10, Algorithm 1), Section 4.1.2 (settings), Tables 1 and 2
# (results, ablation), Section 4.3 and Fig. 2c (GO plugged into other methods), Table 3 and Appendix A.8
# (three modalities), Appendix A.1–A.2 (pseudocode), A.3, A.7, A.9 and A.14 (the appendix claims),
# A.10 (Table 7, temperature), A.11 (Table 8, cost), A.12 (Table 9, clustering), A.15 (Fig. 8, $g$ and $G$),
# A.16 (convergence), Fig. 2a and Fig. 5 (cosine histograms).
#
# **Notation** (chapter 0's table): GOAL writes $\mathcal{L}_{mm}$ and $\mathcal{L}^{(m)}$ for the fusion
# and unimodal losses (our $L_T$ and $L_T^m$), $\mathbf{f}^{(m)}$ for modality $m$'s features (our embedding
# $e_m$), $\theta^{(m)}$ for its encoder's parameters (our $\theta_m$, the embedding layer $h_m$ here) and
# $W^{(m)}$ for its unimodal head (our $f_m$). $g^{(m)}$, $G^{(m)}$, $w^{(m)}$, $T$, $u_i^{(m)}$ and
# $c_i^{(m)}$ are GOAL's own symbols.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

import modbal_lib
from modbal_lib import goal_evidence as ge
from modbal_lib import stats, theory
from modbal_lib.claims import box, combined, directional, parts_table, verdict_text
from modbal_lib.evaluate import evaluate
from modbal_lib.experiments import Experiment, compare, history_mean, run_tables
from modbal_lib.grads import loss_grads
from modbal_lib.methods.base import task_loss
from modbal_lib.methods.goal import (GOAL, adaptive_weights, normalized_entropy, orthogonalize, pair_cosines,
                                     total_variance)
from modbal_lib.plots import gradient_arrows
from modbal_lib.train import train

torch.set_num_threads(1)  # the models of this chapter are tiny: one CPU thread is faster than two

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()
SEEDS = None          # seeds of the ablation and the variant comparison; default [0, 1] (fast) or [0, 1, 2] (full)
SWEEP_SEEDS = None    # seeds of the T sweep (a subset of SEEDS); default [0] (fast) or SEEDS
EMOJI_EPOCHS = None   # default 5 (fast) or 40 (full)
SEESAW_EPOCHS = None  # default 3 (fast) or 20 (full)
WARMUP_EPOCHS = None  # training of the model the appendix claims are checked on; default 1 (fast) or 5 (full)
TEMPERATURES = [0.2, 0.6, 1.0, 2.0, 5.0]  # AL temperatures of the sweep (section 8)
SMOOTH = 10           # running-mean window (iterations) of the training curves
BATCH = 256           # samples the appendix checks are measured on

# %% [markdown]
# The defaults of the other parameters depend on `FAST`; they are filled in here, after papermill
# may have changed `FAST`.

# %%
SEEDS = SEEDS or ([0, 1] if FAST else [0, 1, 2])
SWEEP_SEEDS = SWEEP_SEEDS or ([0] if FAST else SEEDS)
EMOJI_EPOCHS = EMOJI_EPOCHS or (5 if FAST else 40)
SEESAW_EPOCHS = SEESAW_EPOCHS or (3 if FAST else 20)
WARMUP_EPOCHS = WARMUP_EPOCHS or (1 if FAST else 5)
assert set(SWEEP_SEEDS) <= set(SEEDS), "the T sweep reuses the ablation's T = 1 runs: SWEEP_SEEDS must be among SEEDS"
EPOCHS = {"emoji": EMOJI_EPOCHS, "seesaw": SEESAW_EPOCHS}
print(f"mode: {'fast' if FAST else 'full'}; ablation seeds {SEEDS}, sweep seeds {SWEEP_SEEDS}; "
      f"epochs {EPOCHS}; temperatures {TEMPERATURES}")

# %% [markdown]
# ## 1. Which gradient GOAL edits
#
# The model is the late-fusion model of the book: a branch $h_m$ per modality gives embeddings $e_m$, a
# fusion (here concatenation) and the fused head $f_T$ give the logits $z$, and each modality has its own
# head $f_m$ giving unimodal logits $z_m$. The loss is the fusion loss plus the unimodal losses (GOAL's
# Eq. 4, which sums over samples where the kit averages; that only rescales the learning rate),
#
# $$L = L_T(z, y) + \sum_m L_T^m(z_m, y),$$
#
# so the gradient reaching branch $m$ has two parts (Eq. 5):
#
# $$\nabla_{\theta_m} L = \underbrace{\nabla_{\theta_m} L_T}_{g^{(m)}} + \underbrace{\nabla_{\theta_m} L_T^m}_{G^{(m)}}
#   = \frac{\partial L_T}{\partial e_m}\frac{\partial e_m}{\partial \theta_m}
#   + \frac{\partial L_T^m}{\partial e_m}\frac{\partial e_m}{\partial \theta_m}.$$
#
# Joint training with unimodal heads steps along $g^{(m)} + G^{(m)}$. GOAL keeps $G^{(m)}$ (each
# branch still learns to predict alone) and replaces $g^{(m)}$ by an edited $g^{(m)''}$:
#
# $$g^{(m)'} = w^{(m)} g^{(m)} \quad\text{(AL, Eq. 8)}, \qquad
#   (g^{(1)''}, \dots, g^{(M)''}) = \mathrm{GO}(g^{(1)'}, \dots, g^{(M)'}) \quad\text{(Eqs. 9–10)}, \qquad
#   \text{branch } m \text{ receives } g^{(m)''} + G^{(m)}.$$
#
# With both steps switched off GOAL *is* joint training with unimodal heads (a unit test checks
# that every parameter gets the same gradient), which makes that the natural baseline of the
# ablation. The fused head and the unimodal heads get their plain gradients.
#
# Eq. 5's chain rule shows where the two readings part. AL multiplies $g^{(m)}$ by one scalar per
# modality, and a scalar passes through the chain rule unchanged: scaling the per-sample feature
# gradients $\partial L_T/\partial e_m$ by $w^{(m)}$ scales the parameter gradient by the same $w^{(m)}$. So **AL is
# the same in both readings**. GO is not linear: projecting each sample's feature gradient and then
# summing over samples is not the same as projecting the summed parameter gradients. **Only GO
# depends on the reading.**
#
# ## 2. Adaptive Leveraging (Eqs. 6–7)
#
# For a mini-batch of $N'$ samples and $K$ classes, each modality's unimodal prediction
# $p_i^{(m)} = \mathrm{softmax}(z_{m,i})$ gets a **normalised entropy** and a **confidence**,
#
# $$u_i^{(m)} = \frac{H(p_i^{(m)})}{\log K} = -\frac{1}{\log K}\sum_k p_{ik}^{(m)} \log p_{ik}^{(m)} \in [0, 1]
#   \quad\text{(Eq. 6)}, \qquad c_i^{(m)} = 1 - u_i^{(m)},$$
#
# and a **softmax over modalities** with temperature $T$ turns the confidences into per-sample
# weights, which are averaged over the batch:
#
# $$w^{(m)} = \frac{1}{N'}\sum_{i=1}^{N'} \frac{\exp(c_i^{(m)}/T)}{\sum_{m'} \exp(c_i^{(m')}/T)} \quad\text{(Eq. 7)}.$$
#
# The weights are positive and sum to 1; the more confident modality gets the larger one. One detail
# of the pseudocode: the training loop of Appendix A.2 calls `GOAL(g, z_fus)` with the *fused* logits,
# while the function of Appendix A.1 documents its `z` as modality-specific logits of shape B × M × K
# and Eq. 6 uses $\mathrm{softmax}(z_m)$. The library follows Eq. 6. A hand example: three samples, two
# modalities A and B, four classes.

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
LARGEST_WEIGHT = math.e / (1 + math.e)   # one sample, T = 1: a one-hot modality against a uniform one
print(f"the largest per-sample weight at T = 1: e / (1 + e) = {LARGEST_WEIGHT:.3f}")

# %% [markdown]
# Two things limit how far AL can move the weights. The confidences live in $[0, 1]$, so for two
# modalities a sample's weight is $\sigma\big((c_A - c_B)/T\big)$ with $|c_A - c_B| \le 1$: at the default
# $T = 1$ even a one-hot modality against a uniform one gets at most $e/(1+e)$ (printed above). And the
# batch mean evens things out further (sample 1 favours A, sample 3 favours B). A small $T$ sharpens the
# weights; a large $T$ makes them uniform, $1/M$ each.

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
# **Figure 6.1.** The AL weight of modality A for one sample, as a function of the confidence gap
# $c_A - c_B \in [-1, 1]$, for four temperatures. Look at the ends of each curve: they are the most AL can
# ever give one sample at that temperature, and at $T = 1$ the curve stays well inside $(0, 1)$.
#
# Note what the weights do to the *scale* of the fusion gradient. Joint training with heads uses
# $w^{(m)} = 1$ for every modality; AL's weights sum to 1, so with two modalities each branch gets on
# average **half** of the fusion gradient it got before, while its unimodal gradient $G^{(m)}$ keeps its
# full size. Part of whatever AL does may come from this shift towards the unimodal losses rather than
# from the leveraging itself; the temperature sweep (section 8) helps tell them apart, because at a
# large $T$ only the shift is left.
#
# ## 3. Gradient Orthogonalization (Eqs. 9–10)
#
# For each modality $i$, starting from $g_i'' = g_i'$, and for each other modality $j$ in order:
#
# $$\text{if } g_i''\cdot g_j' < 0: \qquad g_i'' \leftarrow g_i'' - \frac{g_i''\cdot g_j'}{\|g_j'\|^2 + \epsilon}\, g_j'
#   \quad\text{(Eqs. 9–10)}.$$
#
# As in the appendix pseudocode (Appendix A.1), the running $g_i''$ is projected against the **original**
# leveraged $g_j'$, never against $g_j$'s projected version. `goal.orthogonalize` does exactly this (each
# step is PCGrad's projection [Yu et al., 2020], `grads.project_conflicting`, which chapter 4 introduces).
# Two modalities in two dimensions:

# %%
g_a, g_b = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
new_a, new_b = orthogonalize([g_a, g_b])
print(f"before: g_A = {g_a.tolist()}, g_B = {g_b.tolist()}, g_A·g_B = {float(g_a @ g_b):+.2f} (a conflict)")
print(f"after:  g_A'' = {new_a.tolist()}, g_B'' = {new_b.tolist()}")
print(f"g_A''·g_B = {float(new_a @ g_b):+.2f}, g_B''·g_A = {float(new_b @ g_a):+.2f}, "
      f"g_A''·g_B'' = {float(new_a @ new_b):+.2f}")

figure, axis = plt.subplots(figsize=(4.5, 4))
gradient_arrows(axis, [(g_a, "C0", "-", "g_A"), (g_b, "C1", "-", "g_B"),
                       (new_a, "C0", "--", "g_A'' (after GO)"), (new_b, "C1", "--", "g_B'' (after GO)")],
                title="GO on two conflicting gradients", xlim=(-1.3, 1.3), ylim=(-0.4, 1.3), legend_loc="upper right")
plt.show()

# %% [markdown]
# **Figure 6.2.** Two conflicting gradients (solid) and their versions after GO (dashed). Each dashed
# arrow is perpendicular to the *other* modality's solid arrow, and the two dashed arrows no longer
# point against each other.
#
# Each result is orthogonal to the *other* modality's original gradient, and the two results no longer
# conflict ($g_A''\cdot g_B'' \ge 0$ always, by Cauchy–Schwarz; section 4 proves it). Note also what GO does
# *not* do: it never shortens a gradient that conflicts with nobody, and it leaves the unimodal gradients
# $G^{(m)}$ alone.
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
# ## 4. GOAL's appendix claims, checked (A.3, A.9, A.14)
#
# GOAL's appendix backs AL and GO with three small mathematical claims. Now that both are defined, we
# derive each and measure it: A.3 on distributions, A.9 and A.14 on a model that GOAL has trained
# briefly on emoji, on one batch of training samples (in float64, so that round-off stays far below
# what is measured). The gradients are the per-sample feature gradients of the kit's reading (section 1);
# A.3 and A.9 hold for any vectors, so that choice does not matter for them. The appendix's empirical
# evidence (A.7, A.12, A.15, A.16) needs fully trained models; section 13 reruns it on section 6's runs.

# %%
experiments = {"emoji": Experiment("emoji"), "seesaw": Experiment("seesaw")}
emoji_train = experiments["emoji"].features("train")
batch = torch.randperm(len(emoji_train), generator=torch.Generator().manual_seed(0))[:BATCH]
batch_inputs = {m: x[batch] for m, x in emoji_train.features.items()}
batch_labels = emoji_train.labels[batch]
appendix_model = train(emoji_train, "goal", epochs=WARMUP_EPOCHS, seed=0, show_progress=False).model
print(f"GOAL on emoji, {WARMUP_EPOCHS} epoch(s), seed 0; checks on a batch of {len(batch_labels)} training samples")

# %% [markdown]
# ### A.3: normalised entropy and total variance
#
# AL measures a prediction's uncertainty by its normalised entropy $u(p) = H(p)/\log K$. Appendix A.3
# calls entropy a proxy for the prediction's variance: it takes the total variance
# $V(p) = \mathrm{Tr}(\mathrm{diag}(p) - pp^\top) = 1 - \sum_k p_k^2$ of the one-hot outcome, expands $H$ to second
# order around the uniform distribution and finds $\log K - H(p) \approx \frac{K}{2}\,(V(\text{uniform}) - V(p))$
# (a "local" equivalence); then it argues that both are Schur-concave and so "respond monotonically in
# the same direction" (a "global" one). Let us derive the local part to one order more.
#
# Write $p_k = (1 + x_k)/K$ with $\sum_k x_k = 0$. Using $(1+x)\log(1+x) = x + \tfrac{x^2}{2} - \tfrac{x^3}{6} + O(x^4)$
# and $\sum_k (1 + x_k)/K = 1$:
#
# $$H(p) = \log K - \frac1K \sum_k (1+x_k)\log(1+x_k)
#   = \log K - \frac{\sum x_k^2}{2K} + \frac{\sum x_k^3}{6K} + O(x^4),$$
#
# $$u(p) = 1 - \frac{\sum x_k^2}{2K\log K} + \frac{\sum x_k^3}{6K\log K} + O(x^4), \qquad
#   V(p) = 1 - \frac1K - \frac{\sum x_k^2}{K^2} \ \text{(exact)}.$$
#
# Both fall from their maximum by a multiple of $\sum x_k^2$. Matching the multiples gives the affine
# rescaling
#
# $$\tilde V(p) = 1 - \frac{K}{2\log K}\left(1 - \frac1K - V(p)\right), \qquad
#   u(p) - \tilde V(p) = \frac{\sum_k x_k^3}{6K\log K} + O(x^4).$$
#
# This is A.3's local relation, divided by $\log K$; the appendix's algebra is right. With
# $p = \text{uniform} + \varepsilon d$ ($\sum d = 0$), $x = K\varepsilon d$ and the gap is
# $\frac{K^2 \sum_k d_k^3}{6\log K}\,\varepsilon^3 + O(\varepsilon^4)$: **third order** in general and fourth order
# when $\sum d_k^3 = 0$. The affine map matters: normalising $V$ by its maximum alone, $V/(1 - 1/K)$, makes it
# fall by $\sum x_k^2/(K(K-1))$, a factor $(K-1)/(2\log K)$ off $u$'s fall (printed below for our $K$), so
# those two disagree already at second order.

# %%
K = len(emoji_train.class_names)
uniform = torch.full((K,), 1 / K, dtype=torch.float64)
generic = torch.linspace(-1, 1, K, dtype=torch.float64) ** 2
generic = generic - generic.mean()                              # sums to 0, sum d³ ≠ 0
symmetric = torch.zeros(K, dtype=torch.float64)
symmetric[0], symmetric[1] = 1.0, -1.0                          # sum d³ = 0
epsilons = np.logspace(-2, -4, 5) / float(generic.abs().max())
gap_generic = theory.entropy_variance_gaps(generic, epsilons)
symmetric_epsilons = np.logspace(-1.5, -3, 4)
gap_symmetric = theory.entropy_variance_gaps(symmetric, symmetric_epsilons)
probs = torch.stack([uniform + e * generic for e in epsilons])
gap_plain = (theory.entropy_of(probs) - total_variance(probs) / (1 - 1 / K)).numpy()
slopes = {"rescaled, generic d": theory.loglog_slope(epsilons, gap_generic),
          "rescaled, sum d³ = 0": theory.loglog_slope(symmetric_epsilons, gap_symmetric),
          "max-normalised only": theory.loglog_slope(epsilons, gap_plain)}
coefficient = theory.predicted_gap_coefficient(generic)
print(f"K = {K}; the factor (K − 1)/(2 log K) between the max-normalised V's fall and u's: "
      f"{(K - 1) / (2 * math.log(K)):.2f}")
print("gap slopes: " + ", ".join(f"{k} {v:.2f}" for k, v in slopes.items()))
print(f"gap / ε³ at the smallest ε: {gap_generic[-1] / epsilons[-1] ** 3:.5f}; "
      f"derived K² Σd³ / (6 log K) = {coefficient:.5f}")
assert abs(slopes["rescaled, generic d"] - 3) < 0.1 and abs(slopes["rescaled, sum d³ = 0"] - 4) < 0.15
assert abs(slopes["max-normalised only"] - 2) < 0.1
assert abs(gap_generic[-1] / epsilons[-1] ** 3 / coefficient - 1) < 0.02

# %%
path = torch.linspace(0, 1, 101, dtype=torch.float64)
one_hot = torch.eye(K, dtype=torch.float64)[0]
along = torch.stack([(1 - t) * uniform + t * one_hot for t in path])   # later points majorise earlier ones
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.plot(path, theory.entropy_of(along), label="normalised entropy u")
left.plot(path, theory.rescaled_total_variance(along), "--", label="rescaled total variance Ṽ")
left.plot(path, total_variance(along) / (1 - 1 / K), ":", label="V / (1 − 1/K)")
left.set(xlabel="t: p = (1 − t) uniform + t one-hot", ylabel="uncertainty",
         title=f"from uniform to one-hot, K = {K}")
left.legend()
right.loglog(epsilons, np.abs(gap_generic), "o-", label="|u − Ṽ|, generic d")
right.loglog(symmetric_epsilons, np.abs(gap_symmetric), "s-", label="|u − Ṽ|, Σd³ = 0")
right.loglog(epsilons, np.abs(gap_plain), "^-", label="|u − V/(1 − 1/K)|")
right.set(xlabel="ε (p = uniform + ε d)", ylabel="gap", title="gaps near uniform (slopes printed above)")
right.legend()
figure.tight_layout()
plt.show()

# %% [markdown]
# **Figure 6.3.** Left: three uncertainty measures along the straight path from the uniform distribution
# ($t = 0$) to a one-hot one ($t = 1$). Near $t = 0$ the entropy and the rescaled variance coincide; further
# out the rescaled variance falls below zero: it is a *local* match, exact in value and curvature at the
# uniform point only. Right: the gaps near the uniform point on log-log axes; their slopes (printed
# above) are the orders derived in the text.
#
# **Schur-concavity, the "global" part.** If $p$ majorises $q$ ($p \succ q$: $p$'s largest entries hold at
# least as much mass as $q$'s, for every count of entries), a Schur-concave $\varphi$ has $\varphi(p) \le \varphi(q)$.
# Both $u$ and $V$ are Schur-concave, as A.3 says, and along the path above each point majorises the ones
# before it, so both fall. But majorisation is only a partial order: for two distributions neither of
# which majorises the other, $u$ and $V$ may rank them differently. So "they respond monotonically in the
# same direction" holds only for comparable pairs, and away from the uniform distribution the two
# measures are not interchangeable. Note also which variance A.3 is about: the dispersion of *one*
# predicted distribution. The argument AL rests on (Appendix A.7, taken from ARL [Wei et al., 2025], a
# balancing method that weights each modality by the inverse variance of its prediction) is about the
# variance of a modality's output *across samples*; the appendix does not connect the two variances
# (section 13 measures whether AL's entropy tracks A.7's variance).

# %%
p, q = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), torch.tensor([0.4, 0.4, 0.2], dtype=torch.float64)
a, b = torch.tensor([0.7, 0.15, 0.15], dtype=torch.float64), torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
for name, x, y in (("p, q", p, q), ("a, b", a, b)):
    print(f"{name}: first majorises second {theory.majorizes(x, y)}, second majorises first {theory.majorizes(y, x)}; "
          f"u {float(theory.entropy_of(x)):.3f} vs {float(theory.entropy_of(y)):.3f}, "
          f"V {float(total_variance(x)):.3f} vs {float(total_variance(y)):.3f}")
path_u, path_v = theory.entropy_of(along).numpy(), total_variance(along).numpy()
assert theory.majorizes(p, q) and theory.entropy_of(p) < theory.entropy_of(q) and total_variance(p) < total_variance(q)
assert (np.diff(path_u) < 0).all() and (np.diff(path_v) < 0).all()
assert (theory.entropy_of(a) > theory.entropy_of(b)) and (total_variance(a) < total_variance(b))

display(Markdown(box(
    "goal-a3",
    "after the affine rescaling Ṽ = 1 − K/(2 log K)(1 − 1/K − V), the gap shrinks like "
    f"ε^{slopes['rescaled, generic d']:.2f} "
    f"(ε^{slopes['rescaled, sum d³ = 0']:.2f} when Σd³ = 0); normalised by the maximum only, like "
    f"ε^{slopes['max-normalised only']:.2f} (K = {K}); for a = {a.tolist()} and b = {b.tolist()}, neither "
    f"majorising the other, u ranks {'a' if theory.entropy_of(a) > theory.entropy_of(b) else 'b'} as the more "
    f"uncertain and V ranks {'a' if total_variance(a) > total_variance(b) else 'b'}.",
    "the local claim is right (it is the affine map Ṽ, whose slope K/(2 log K) depends on K); the global one holds "
    "for pairs one of which majorises the other, not for every pair.",
)))

# %% [markdown]
# ### A.9: orthogonality after projection
#
# Appendix A.9 proves, for Eq. 9, that $g^{(1)''}\cdot g^{(2)'} = 0$: substitute the projection and the two
# inner products cancel (ignoring $\epsilon$; with $\epsilon > 0$ the product is small, not zero). The proof is
# right; its closing sentence names the result $g^{(1)'}$ where it means $g^{(1)''}$. It shows orthogonality to
# the *other modality's leveraged* gradient. That the two *results* no longer conflict needs one more
# step, which the appendix does not take:
#
# $$g_1''\cdot g_2'' = -c\, g_1''\cdot g_1' = -c\left(\|g_1'\|^2 - \frac{(g_1'\cdot g_2')^2}{\|g_2'\|^2}\right) \ge 0,
#   \qquad c = \frac{g_2'\cdot g_1'}{\|g_1'\|^2} < 0,$$
#
# by Cauchy–Schwarz (use $g_2'' = g_2' - c\,g_1'$ and $g_1''\cdot g_2' = 0$). For three or more
# modalities neither statement survives the sequential loop (section 3). We check the two-modality case
# per sample on the feature gradients of the trained model. Under sum fusion there is nothing to check:
# $\partial L_T/\partial e_v = \partial L_T/\partial e_l = W^\top\delta$, so the two never conflict (section 11).

# %%
orthogonality = theory.orthogonality_check(appendix_model, batch_inputs, batch_labels, emoji_train.task)
print(f"conflicting samples before GO: {orthogonality['conflict_before']:.1%}, "
      f"after: {orthogonality['conflict_after']:.1%}; "
      f"max |cos(g_i'', g_j')| over conflicting samples: {orthogonality['max_abs_cos_to_other']:.1e}")
assert orthogonality["conflict_after"] == 0.0 and orthogonality["max_abs_cos_to_other"] < 1e-10

figure, axis = plt.subplots(figsize=(7, 3.5))
cosines = np.concatenate([orthogonality["cos_before"], orthogonality["cos_after"]])
bins = np.linspace(cosines.min(), cosines.max(), 41)
axis.hist(orthogonality["cos_before"], bins=bins, alpha=0.6, label="before GO")
axis.hist(orthogonality["cos_after"], bins=bins, alpha=0.6, label="after GO")
axis.set(xlabel="per-sample cos(∂L_T/∂e_image, ∂L_T/∂e_text)", ylabel="samples", title="GO on one batch (A.9)")
axis.legend()
plt.show()

# %% [markdown]
# **Figure 6.4.** Per-sample cosines between the two modalities' fusion-loss feature gradients on one
# batch, before and after GO. Look at the left end: every sample that had a negative cosine sits at
# zero (or just above) after GO; the positive side is unchanged.
#
# ### A.14: the next step's unimodal gradient
#
# GOAL edits only the fusion-loss gradient. Appendix A.14 asks whether it nevertheless changes the
# unimodal gradient $G$ one step later. Under plain SGD the baseline step is $-\eta(g_t + G_t)$ and GOAL's
# is $-\eta(\tilde g_t + G_t)$, with $\tilde g_t$ the edited gradient; they differ by $-\eta\,\Delta v_t$,
# $\Delta v_t = \tilde g_t - g_t$. Taylor-expanding $G$ around $\theta_t$ with the Hessian $H_s$ of the unimodal loss,
#
# $$\Delta G = G^{\text{goal}}_{t+1} - G^{\text{base}}_{t+1}
#   \approx \big(G_t - \eta H_s(\tilde g_t + G_t)\big) - \big(G_t - \eta H_s(g_t + G_t)\big)
#   = -\eta H_s\,\Delta v_t.$$
#
# The conclusion is right. The appendix's intermediate line is not: it prints
# $G_t - \eta H_s(\tilde g_t + G_t) - G_t - \eta H_s(g_t + G_t)$, subtracting $G^{\text{base}}_{t+1}$ without its
# brackets, so the last term carries the wrong sign; taken as printed, the line equals
# $-\eta H_s(\tilde g_t + g_t + 2G_t)$. The next line, $-\eta H_s\tilde g_t + \eta H_s g_t$, has the right sign again.
# Two limits of the statement: it describes one step of plain SGD (the paper trains with SGD and momentum,
# Section 4.1.2; the kit with Adam, whose step is not linear in the gradient), and it needs a smooth loss.
#
# To first order, the difference of the two next-step gradients is the change that a step $-\eta\,\Delta v$
# alone makes, $G(\theta - \eta\Delta v) - G(\theta)$. `theory.indirect_effect_check(..., edit="goal")` computes
# $\Delta v$ as GOAL's own correction (`GOAL.edit`, carried from the feature gradients into the branch
# parameters), $H_s\Delta v$ by double backward (a Hessian-vector product; the Hessian itself is never
# formed), and compares $-\eta H_s\Delta v$ with the actual change for $\eta$ from $10^{-7}$ to $10^{-2}$. Expect
# three regimes. At the smallest steps the round-off of the difference dominates (relative error
# $\propto 1/\eta$). Then the Taylor regime: relative error $\propto \eta$, slope 1. And a ReLU branch is smooth
# only between activation switches, so the check also counts the ReLU units a step switches on or off:
# once one does, the gradient jumps.

# %%
indirect = {m: theory.indirect_effect_check(appendix_model, batch_inputs, batch_labels, emoji_train.task, m,
                                            edit="goal")
            for m in emoji_train.modalities}
for m, check in indirect.items():
    regime = check.taylor_regime
    switched = check.step_sizes[~check.smooth]
    print(f"{m:>6}: Taylor regime η = {check.step_sizes[regime].min():.1e} .. {check.step_sizes[regime].max():.1e}, "
          f"slope {check.slope:.3f}, min cos(ΔG, −ηH_sΔv) there {check.cosine[regime].min():.8f}; "
          "first ReLU switch "
          + (f"at η = {switched.min():.1e}" if len(switched) else "beyond the largest η"))
    assert 0.8 <= check.slope <= 1.2 and check.cosine[regime].min() > 0.9999

figure, axis = plt.subplots(figsize=(7.5, 3.8))
for m, check in indirect.items():
    line, = axis.loglog(check.step_sizes, check.relative_error, "-", linewidth=0.8, label=m)
    for mask, marker in ((check.taylor_regime, "o"), (~check.smooth, "x")):
        axis.loglog(check.step_sizes[mask], check.relative_error[mask], marker, color=line.get_color())
axis.set(xlabel="step size η", ylabel="‖ΔG − (−η H_s Δv)‖ / ‖ΔG‖",
         title="A.14 with GOAL's correction Δv   o: Taylor regime   x: a ReLU switched")
axis.legend()
plt.show()

# %% [markdown]
# **Figure 6.5.** Relative error of A.14's prediction $-\eta H_s\Delta v$ against the actual change of each
# branch's unimodal gradient, over the step size. Circles mark the Taylor regime, where the error should
# fall along a line of slope 1 as $\eta$ shrinks; crosses mark steps that switch a ReLU unit, where the
# prediction stops meaning anything; at the far left round-off takes over.
#
# Between the round-off floor and the first ReLU switch the prediction is as good as a Taylor expansion
# gets (the slopes and cosines are printed above); beyond a switch the second-order picture says
# nothing. A.14 is a statement about small steps of a smooth loss — for ReLU branches, about steps
# smaller than the nearest activation switch. It shows that GOAL's edit *reaches* $G$ one step later; how
# large that effect is at the learning rate actually used is a separate, empirical question.

# %% [markdown]
# ## 5. GOAL as a training strategy
#
# `modbal_lib.methods.goal.GOAL` (name `"goal"`) puts the two steps into training, in either reading of
# $g^{(m)}$ (section 1):
#
# - `variant="feature"` (the default, **the kit's reading**): $g^{(m)} = \partial L_T/\partial e_m$, the gradient
#   with respect to each sample's embedding, a $[B, \text{hidden}]$ tensor of the same width for every
#   modality. AL scales it by the batch-mean weight $w^{(m)}$, GO projects it **sample by sample**, and the
#   result is back-propagated into branch $m$ together with $G^{(m)}$ in one backward pass.
# - `variant="parameter"` (**the paper's Eq. 5 and pseudocode**): $g^{(m)}$ is the flattened gradient of
#   $L_T$ on branch $m$'s parameters, one vector per modality and batch, and GO projects these whole vectors.
#   The dot product of Eqs. 9–10 needs vectors of one length, so the kit allows this variant only when
#   every branch has the same parameter shapes.
#
# That condition does not hold automatically in the paper's own setting either. GOAL uses ResNet-18
# encoders for audio and video with the audio processed as in OGM-GE [Peng et al., 2022] (Section 4.1.2).
# In OGM-GE's released code (github GeWu-Lab/OGM-GE_CVPR2022, `models/backbone.py`) the audio ResNet-18's
# first convolution reads one input channel (a spectrogram) and the visual one reads three (RGB frames),
# so the two encoders' parameter vectors differ in length, by the first convolution's weights. The
# paper does not say how it takes the dot product of two such vectors (for instance over the layers they
# share).
#
# Switches: `adaptive_leveraging`, `orthogonalization` (the ablation) and `T` (the sweep). Every step
# records `w_<m>`, the mean cosine between the modalities' leveraged fusion gradients before and after
# GO (`cos_<a>_<b>_before/after`; per sample in the feature variant, per batch in the parameter one), and
# the share of conflicts (`conflict_before/after`); `keep_cosines=True` keeps every cosine for histograms.
#
# ## 6. The ablation, in the shape of GOAL's Table 2
#
# > **Paper (GOAL, Table 2, CREMA-D, Acc / macro F1):** Concat 69.62 / 70.14; AL only 75.13 / 75.35;
# > GO only 76.75 / 77.33; AL + GO (GOAL) 78.23 / 78.85.
#
# > **Paper (GOAL, Table 1, Acc, Concatenation → GOAL):** CREMA-D 69.62 → 78.23; Kinetics-Sounds
# > 69.88 → 75.37; AVE 65.17 → 72.14 (ResNet-18 encoders trained from scratch, SGD with momentum 0.9,
# > learning rate 4×10⁻⁴; Section 4.1.2).
#
# On emoji (frozen EfficientNet-Lite0 image features and MiniLM text features, 9 categories) and on
# SeeSaw (chapter 2's synthetic world), with the same settings as the other chapters (Adam, `lr=1e-3`,
# hidden 128, concatenation, batch 128): plain joint training; joint training with unimodal heads
# (the baseline, GOAL with both switches off); AL only; GO only; and GOAL with both. Each model is
# scored under BalGrad's protocol (chapter 1): Full, each modality missing, and the gap $\Delta$Gap
# between the two missing scores (smaller is less dominated).

# %%
ABLATION = ["joint", "joint_unimodal_heads", "al_only=goal", "go_only=goal", "goal"]
ABLATION_OPTIONS = {"al_only": {"orthogonalization": False}, "go_only": {"adaptive_leveraging": False},
                    "goal": {"keep_cosines": True}}
NAMES = {"joint": "joint (concat)", "joint_unimodal_heads": "joint + heads (baseline)", "al_only": "AL only",
         "go_only": "GO only", "goal": "GOAL (AL + GO)"}
COLORS = {label: f"C{k}" for k, label in enumerate(NAMES)}
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
# **Figure 6.6.** The ablation's scores on the full test set and with each modality missing (bars: mean
# over seeds, whiskers: sample SD). Compare the bars of one group with each other: the gap between the
# two "missing" groups is $\Delta$Gap, and a method that helps the under-used modality raises the lower of
# them.
#
# Read the table in two steps. **Joint → joint + heads**: adding the unimodal losses (nothing of
# GOAL yet). **Joint + heads → AL only / GO only / GOAL**: what GOAL's two edits add on top. The
# paired per-seed differences (same seeds, same data order) make the second step precise; each is
# judged by the kit's one rule (`modbal_lib.stats`, explained in [chapter 0](00_how_to_use.ipynb)).
#
# On SeeSaw read the missing scores rather than ΔGap. Both absences hurt there (each modality
# carries something the other lacks, chapter 2), and the joint model under-learns *hard*: anything
# that teaches hard more raises the score with easy missing, and when that is the higher of the two
# (compare the two "missing" rows above) it *widens* the gap. A smaller ΔGap is better only when the two
# impaired scores could in principle be equal.

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
    columns.update({"conflicts before GO": recorded("conflict_before"),
                    "conflicts after GO": recorded("conflict_after")})
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
PAPER_TABLE2 = {"concatenation": 69.62, "AL only": 75.13, "GO only": 76.75, "GOAL": 78.23}  # CREMA-D Acc
display(Markdown(box(
    "goal-accuracy",
    f"emoji ({EPOCHS['emoji']} epochs, frozen pretrained encoders) Full accuracy: joint "
    f"{stats.summarize(emoji['joint'], full).text()}, joint + heads "
    f"{stats.summarize(emoji['joint_unimodal_heads'], full).text()}, GOAL "
    f"{stats.summarize(emoji['goal'], full).text()}; ΔGap (missing): joint "
    f"{stats.summarize(emoji['joint'], gap).text()}, "
    f"joint + heads {stats.summarize(emoji['joint_unimodal_heads'], gap).text()}, GOAL "
    f"{stats.summarize(emoji['goal'], gap).text()}. SeeSaw ({EPOCHS['seesaw']} epochs) Full: joint "
    f"{stats.summarize(seesaw['joint'], full).text()}, GOAL {stats.summarize(seesaw['goal'], full).text()}.",
    "different data and encoders (the paper's CREMA-D gain, "
    f"{PAPER_TABLE2['GOAL'] - PAPER_TABLE2['concatenation']:+.2f} points, comes from audio and video ResNet-18 "
    "encoders trained from scratch with SGD), so only the direction is comparable. On emoji GOAL − joint in Full "
    f"accuracy: {goal_vs_joint.text()}; GOAL − joint + heads: {goal_vs_heads.text()}. The unimodal heads alone "
    f"change emoji's ΔGap by {heads_gap.text()}; GOAL's edits on top of them by {edits_gap.text()}. Our encoders "
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
paper_steps = [PAPER_TABLE2[k] - PAPER_TABLE2["concatenation"] for k in ("AL only", "GO only", "GOAL")]
display(Markdown(box(
    "goal-ablation",
    f"emoji: {ablation_summaries(emoji)}. SeeSaw: {ablation_summaries(seesaw)}.",
    ". ".join(readings) + ". Different data and encoders; the paper's rows are "
    + ", ".join(f"{d:+.2f}" for d in paper_steps) + " points above its concatenation baseline (which has no "
    "unimodal heads), and the paired intervals say whether differences of that size are there in our runs.",
)))

# %% [markdown]
# ## 7. What AL does on this data
#
# AL favours the modality whose own head is more confident. In a dominated model that is often the
# dominant modality, the one whose absence costs the most. The AL weights over training, next to the
# modality whose absence costs the joint model the most (the band spans the seeds' lowest to highest
# weight):

# %%
figure, axes = plt.subplots(1, 2, figsize=(13, 3.6))
lean = {}
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
    lean[name] = (costly, favoured, weights)
    print(f"{name}: missing {costly} costs the joint model the most; GOAL's mean AL weights "
          + ", ".join(f"w_{m} {weights[m].text(2)}" for m in modalities[name])
          + f": AL favours {favoured}, so on average it leans {'with' if favoured == costly else 'against'} "
          "the dominance")
figure.tight_layout()
plt.show()

# %% [markdown]
# **Figure 6.7.** GOAL's AL weights over training on each dataset (line: mean over seeds; band: lowest to
# highest seed), with the even split $1/2$ in grey. Look at which modality's curve sits above the grey
# line, whether the gap between the curves narrows as the weaker head catches up, and how far from $1/2$
# the curves get at all (section 2 bounds it).
#
# What to look for. If the image head becomes confident first on emoji, AL gives the image branch the
# larger share of the fusion gradient and the text branch the smaller one: it leans *with* the dominance
# rather than against it (the lines above say which way it leans in your run). On SeeSaw, compare both
# weights with $1/2$: easy knows only the group and hard mostly the class within the group, so neither
# head has an obvious reason to be the more confident one.
#
# ## 8. The temperature sweep (GOAL's Table 7)
#
# > **Paper (GOAL, Appendix A.10, Table 7, Acc for T = 0.2, 0.4, 0.6, 0.8, 1.0):** CREMA-D 76.08, 77.96,
# > 77.42, 77.82, 78.23; Kinetics-Sounds 74.35, 74.49, 74.63, 74.91, 75.37; AVE 70.15, 71.23, 70.23, 71.98,
# > 72.14.
#
# The paper's grid is $T \in \{1/5, 2/5, 3/5, 4/5, 1\}$, and on all three datasets its best $T$ is $1$, the
# **largest value tried**: the best sits at the edge of the grid. Table 7 therefore cannot say whether a
# larger $T$ would do better still, and a larger $T$ means *weaker* leveraging (weights closer to $1/2$).
# Section 3.3 then sets $T = 1$ "in all experiments". Our sweep crosses the edge. GOAL on emoji for each
# temperature (the $T = 1$ runs are the ablation's); smaller $T$ sharpens the weights towards the confident
# modality, larger $T$ flattens them to $1/2$ each, which leaves only the halving of the fusion gradient
# described in section 2. For reference, the dashed lines are joint + heads (no AL, no GO) and GO only
# ($w = 1$ for both modalities: GOAL without any AL).

# %%
PAPER_TABLE7 = {"CREMA-D": dict(zip((0.2, 0.4, 0.6, 0.8, 1.0), (76.08, 77.96, 77.42, 77.82, 78.23))),
                "Kinetics-Sounds": dict(zip((0.2, 0.4, 0.6, 0.8, 1.0), (74.35, 74.49, 74.63, 74.91, 75.37))),
                "AVE": dict(zip((0.2, 0.4, 0.6, 0.8, 1.0), (70.15, 71.23, 70.23, 71.98, 72.14)))}
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
references = {label: [run for run in emoji[label] if run.seed in SWEEP_SEEDS]
              for label in ("joint_unimodal_heads", "go_only")}
figure, axes = plt.subplots(1, 3, figsize=(15, 3.6))
panels = (("Full accuracy", full), (f"accuracy, {image} missing", lambda run: run.table.missing[image]),
          ("ΔGap (missing)", gap))
for axis, (title, pick) in zip(axes, panels):
    summaries = [stats.summarize(sweep[T], pick) for T in TEMPERATURES]
    axis.errorbar(TEMPERATURES, [s.mean for s in summaries], yerr=[s.sd for s in summaries], marker="o", capsize=3,
                  label="GOAL")
    for (label, runs), color in zip(references.items(), ("gray", "C3")):
        axis.axhline(stats.summarize(runs, pick).mean, color=color, linestyle="--", label=NAMES[label])
    axis.axvspan(min(PAPER_TABLE7["CREMA-D"]), max(PAPER_TABLE7["CREMA-D"]), color="C2", alpha=0.1,
                 label="the paper's grid")
    axis.set(xscale="log", xlabel="temperature T", title=title)
    axis.set_xticks(TEMPERATURES, [str(T) for T in TEMPERATURES])
    axis.minorticks_off()
axes[0].legend(fontsize=8)
figure.tight_layout()
plt.show()

# %% [markdown]
# **Figure 6.8.** GOAL on emoji across temperatures (mean and SD over the sweep's seeds) for the Full
# accuracy, the accuracy with the image missing and ΔGap, with joint + heads and GO only as dashed
# references; the shaded band is the range the paper's Table 7 covers. Look at whether the curve keeps
# rising, falls or stays flat to the right of the band, where the paper has no points.
#
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
paper_best = {dataset: max(scores, key=scores.get) for dataset, scores in PAPER_TABLE7.items()}
paper_span = {dataset: max(scores.values()) - min(scores.values()) for dataset, scores in PAPER_TABLE7.items()}
grid_edge = max(PAPER_TABLE7["CREMA-D"])
display(Markdown(box(
    "goal-a10-temperature",
    f"emoji, seeds {SWEEP_SEEDS}: Full accuracy " + ", ".join(f"T = {T}: {sweep_full[T].text()}" for T in TEMPERATURES)
    + "; ΔGap " + ", ".join(f"T = {T}: {stats.summarize(sweep[T], gap).text()}" for T in TEMPERATURES)
    + f"; mean w_{image} " + ", ".join(f"T = {T}: {sweep_weight[T].text(2)}" for T in TEMPERATURES) + ".",
    f"the mean Full accuracy spans {max(full_means.values()) - min(full_means.values()):.1f} points over our sweep "
    "(the paper's, over its grid: " + ", ".join(f"{d} {s:.2f}" for d, s in paper_span.items()) + "), "
    f"highest at T = {max(full_means, key=full_means.get)}; against the default T = 1, seed by seed: "
    + "; ".join(f"T = {T} {difference.text()}" for T, difference in against_default.items())
    + f". The mean weight of {image} {'falls' if weight_falls else 'does not fall steadily'} as T grows. "
    f"The paper's best T is the largest of its grid ({grid_edge:g}) on "
    f"{sum(t == grid_edge for t in paper_best.values())} of {len(paper_best)} datasets, so its own table leaves open "
    "whether weaker leveraging "
    "(larger T) would do better; our temperatures above 1 probe that side, on different data and encoders.",
)))

# %% [markdown]
# ## 9. Per-sample cosines before and after GO (the shape of Fig. 2a / Fig. 5)
#
# GOAL's Fig. 2a and Fig. 5 show histograms of the cosine between $g^{(1)}$ and $g^{(2)}$ on CREMA-D, before
# and after GOAL; the paper does not say whether each count is a sample, a batch or an iteration. The
# GOAL runs of section 6 kept, at every step, the cosine between the two modalities' leveraged fusion
# gradients for every sample, before and after GO (AL's positive weights do not change a cosine). Pooled
# over all steps and seeds:

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
# **Figure 6.9.** All per-sample cosines between the two modalities' fusion gradients during GOAL's
# training, pooled over steps and seeds, before and after GO (the legend gives the share below zero).
# Look at how wide the "before" histogram is: a narrow peak around zero means the two feature gradients
# are nearly orthogonal to begin with, and then GO has little to remove.
#
# How much does GO change a gradient? For two modalities, projecting $g_i$ away from $g_j$ removes its
# component along $g_j$, whose length is $|\cos(g_i, g_j)|\,\|g_i\|$: the relative change of a conflicting
# sample's gradient *is* the absolute cosine.

# %%
go_change = {}
for name, runs in ablation.items():
    pair = "_".join(modalities[name])
    before = torch.cat([step[f"{pair}_before"] for run in runs["goal"] for step in run.result.method.cosines])
    change = (-before).clamp_min(0)  # |cos| where the sample conflicts, 0 where GO leaves it alone
    go_change[name] = (float(change[before < 0].mean()), float(change.max()), float(change.mean()))
    print(f"{name}: GO changes a conflicting sample's fusion gradient by {go_change[name][0]:.1%} of its length "
          f"on average (at most {go_change[name][1]:.1%}); over all samples, by {go_change[name][2]:.1%}")

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
# **Figure 6.10.** The share of conflicting samples per iteration (running mean), before GO (solid) and
# after it (dotted), for AL only, GO only and GOAL. The dotted GO-only and GOAL lines should lie on zero
# (two modalities, A.9); compare the solid lines to see whether training with GO changes how often the
# raw fusion gradients conflict.
#
# GO removes every conflict it sees, by construction. How much that changes the trained model is a
# different question, answered by the paired differences of section 6 (GO only and GOAL against
# joint + heads). Two things bound what to expect on our data: what the projection removes from a
# gradient is the size of the cosine (the numbers above), and with frozen encoders and one embedding
# layer per branch there is little for the fusion gradient to undo in the first place.
#
# ## 10. The two readings side by side: feature vs parameter variant
#
# The parameter reading needs branches of one shape. On emoji (a 1280-d image and a 384-d text
# embedding layer) there is no common parameter space, and the strategy says so:

# %%
try:
    train(emoji_train, "goal", variant="parameter", epochs=1, show_progress=False)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# On SeeSaw we can make both branches the same shape by giving `easy` 32 dimensions like `hard`
# (`knobs={"easy": {"dim": 32}}`; the extra dimensions carry only noise, so this world is a little
# harder than chapter 2's). Then both variants run on the same data, with the same seeds as the ablation,
# and their paired difference says whether the choice of reading matters here.

# %%
equal_shapes = Experiment("seesaw", dataset_options={"knobs": {"easy": {"dim": 32}}})
NAMES.update({"goal_feature": "GOAL, feature variant (kit)", "goal_parameter": "GOAL, parameter variant (paper)"})
variants = compare(equal_shapes, ["joint_unimodal_heads", "goal_feature=goal", "goal_parameter=goal"], SEEDS,
                   method_options={"goal_parameter": {"variant": "parameter"}}, ratios=(), epochs=EPOCHS["seesaw"])
columns = {"conflicts before GO": recorded("conflict_before"), "conflicts after GO": recorded("conflict_after"),
           "step (ms)": step_ms}
rows = [[NAMES[label]] + [stats.summarize(runs, pick).text(2) if pick(runs[0]) is not None else "—"
                          for pick in columns.values()] for label, runs in variants.items()]
display(Markdown(f"**SeeSaw with equal branch shapes**, {EPOCHS['seesaw']} epochs, seeds {SEEDS}\n\n"
                 + stats.table1(run_tables(variants, NAMES)) + "\n" + stats.markdown_table([""] + list(columns), rows)
                 + f"\n_{stats.SD_NOTE}; — where the method records no conflicts._\n"))
easy, hard = modalities["seesaw"]
variant_picks = {"Full": full, f"missing {easy}": lambda run: run.table.missing[easy],
                 f"missing {hard}": lambda run: run.table.missing[hard], "ΔGap": gap}
variant_differences = {what: stats.paired_difference(variants["goal_parameter"], variants["goal_feature"], pick)
                       for what, pick in variant_picks.items()}
display(Markdown("**parameter − feature variant** (points)\n\n" + stats.markdown_table(
    ["", *variant_differences], [["paired difference", *(d.text() for d in variant_differences.values())]])
    + f"\n_{stats.DIFFERENCE_NOTE}._\n"))

# %% [markdown]
# In the parameter variant a "conflict" is a property of a whole batch (one flattened gradient per
# branch), so its conflict share is the share of *steps* in which the two branches' gradients point
# against each other; in the feature variant it is the share of *samples*. What separates the two
# readings:
#
# 1. **Where they apply.** The feature reading works for any branches: different input widths, a CNN
#    next to a linear layer, three modalities of three sizes; the embeddings $e_m$ always have the same
#    width (the model's `hidden`). The parameter reading needs one parameter shape, which the paper's own
#    encoders do not have (section 5).
# 2. **What the paper shows.** Eq. 5 and the pseudocode are parameter gradients; Fig. 2a and Fig. 5 do
#    not say what they count (section 9), so they support neither reading over the other.
# 3. **What GO edits.** Per sample, GO removes only the conflicting part of the samples that conflict;
#    per batch, it acts on the sum over all samples or not at all. AL is the same in both (section 1).
# 4. **What it costs.** The feature variant needs a backward pass through the fused head only and one
#    combined backward pass into the branches, but it also projects and measures every sample; the
#    parameter variant projects one pair of vectors but needs the branch gradients of the fusion loss on
#    their own. Which is cheaper depends on the sizes: read the step-time column above.
#
# Which reading the authors ran cannot be settled from the paper; the paired differences above say
# whether the choice changes the scores on this data.
#
# ## 11. Two caveats
#
# **Under sum fusion GO never acts.** With $e_{\mathrm{fus}} = \sum_m e_m$,
# $\partial L_T/\partial e_m = \partial L_T/\partial e_{\mathrm{fus}}$ for every $m$: every modality gets the same
# feature gradient, the cosine is 1 and nothing conflicts. (AL still scales the copies.) GO can act under
# concatenation and attention fusion only. Measured:

# %%
summed = train(emoji_train, "goal", fusion="sum", epochs=2, seed=0, show_progress=False)
pair = "_".join(modalities["emoji"])
print(f"sum fusion, {len(summed.step_seconds)} steps: "
      f"largest conflict share {max(summed.history['conflict_before']):.3f}, "
      f"smallest mean cosine {min(summed.history[f'cos_{pair}_before']):.6f}")
assert max(summed.history["conflict_before"]) == 0.0

# %% [markdown]
# **A conflict between two branches depends on an arbitrary basis.** Under concatenation, $e_{image}$ and
# $e_{text}$ enter the fused head through different columns; nothing pairs hidden unit $k$ of the image
# branch with hidden unit $k$ of the text branch. Renumber the text branch's units with a permutation
# matrix $P$ (its rows of $W$ and $b$, and the matching columns of the fused head and of its unimodal
# head): the network computes the same function, its new embeddings are $P e_{text}$, and by the chain
# rule its feature gradient is $P\, \partial L_T/\partial e_{text}$. The per-sample dot product with the image
# gradient becomes $g_{image}\cdot P g_{text}$, a different number. So whether a sample "conflicts", and what
# GO projects away, depends on a numbering that means nothing. (The parameter variant has the same
# property.) On a trained GOAL model and one batch of 512 training samples, the share of conflicting
# samples for the model as trained and for 200 renumberings of the same model:

# %%
model = emoji["goal"][0].result.model
index = torch.randperm(len(emoji_train), generator=torch.Generator().manual_seed(0))[:512]
output = model({m: x[index] for m, x in emoji_train.features.items()})
feature_grads = loss_grads(task_loss(emoji_train.task, output.logits, emoji_train.labels[index]),
                           [output.embeddings[m] for m in model.modalities])
conflict_share = float((pair_cosines(feature_grads, model.modalities)[pair] < 0).float().mean())
generator = torch.Generator().manual_seed(1)
renumbered = []
for _ in range(200):
    permuted = feature_grads[1][:, torch.randperm(model.hidden, generator=generator)]
    renumbered.append(float((pair_cosines([feature_grads[0], permuted], model.modalities)[pair] < 0).float().mean()))
print(f"conflict share as trained {conflict_share:.2f}; over the renumberings {stats.summarize(renumbered).text(2)}, "
      f"min {min(renumbered):.2f}, max {max(renumbered):.2f}")

figure, axis = plt.subplots(figsize=(7, 3.5))
axis.hist(renumbered, bins=30, alpha=0.7, label=f"the same model, {model.modalities[1]} units renumbered")
axis.axvline(conflict_share, color="C3", label=f"as trained ({conflict_share:.0%})")
axis.set(xlabel="share of samples whose fusion gradients conflict", ylabel="renumberings", title="emoji, GOAL, seed 0")
axis.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Figure 6.11.** The share of "conflicting" samples of one trained GOAL model on one batch (red line)
# and of 200 copies of the same network with the text branch's hidden units renumbered (histogram). The
# width of the histogram is how much of a "conflict share" the numbering alone decides.
#
# A renumbered copy of the model would be trained differently by GO from the next step on, although it
# is the same network. (Training itself picks a numbering, starting from the random initialisation, so
# GO is well defined; it is just not a property of the function the model computes.) Where the branches
# share an output space, as under sum fusion, a conflict would mean something, but there GO has nothing
# to do.
#
# ## 12. What it costs
#
# > **Paper (GOAL, Appendix A.11, Table 8, CREMA-D, Base → GOAL):** training time per sample 15.67 → 17.41 ms,
# > per epoch 1.73 → 1.93 min, GPU memory 1089 → 1089 MiB.
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
display(Markdown(box(
    "goal-a11-cost",
    "; ".join(f"{name}: GOAL / joint {r['joint'].text(2)}, GOAL / joint + heads "
              f"{r['joint_unimodal_heads'].text(2)}" for name, r in ratios.items())
    + " (ratios of step times, seed by seed; one CPU thread).",
    "a GOAL step adds a fixed amount of work (a backward pass through the fused head, the AL weights, the per-sample "
    "projections and cosines, one device read of the statistics). Next to ResNet-18 encoders that is little; next to "
    "our one-layer branches on precomputed features it is not (compare the two datasets: SeeSaw's branches read 8- "
    "and 32-d inputs, emoji's 1280- and 384-d ones). The ratio says as much about the size of the model as about GOAL.",
)))

# %% [markdown]
# ## 13. The evidence GOAL rests on (A.7, A.12, A.15, A.16, Fig. 2c, Table 3)
#
# Section 4 checked GOAL's mathematical appendix claims. The rest of its evidence is empirical: AL's premise
# about prediction variance (A.7), the clustering quality of the fused features (A.12, Table 9), how well the
# two gradients each branch receives agree (A.15, Fig. 8), how fast training converges (A.16), GO added to
# other methods (Fig. 2c) and three modalities (Table 3). We rerun each on emoji, and Table 3 on SeeSaw with
# three modalities, with `modbal_lib.goal_evidence`, the module the claims ledger of chapter 8 uses, so the
# verdicts below are the ledger's. Most of these appendix sections are figures, and the figures are images
# that our copy of the paper does not contain; where the text leaves a choice open, the module implements one
# **reading** (its docstrings say which), and each subsection names the readings it depends on. Wherever they
# suffice, the runs are section 6's emoji ablation (same seeds and epochs); new training is needed only for
# A.15's curves, for the plug-ins of Fig. 2c and for Table 3.
#
# Each claim is cut into **parts**: a paired difference (GOAL against a baseline trained with the same seed)
# or, where there is no baseline, a per-seed quantity against zero, together with the sign the paper implies.
# The ledger's rule (`claims.directional`) turns a part into **holds** (the interval excludes zero on the
# paper's side), **does not hold** (within seed noise, or on the other side), or **not testable here** (fewer
# than three seeds); `claims.combined` joins the parts of one claim.

# %%
emoji_test = experiments["emoji"].features("test")


evidence = {}  # claim -> its parts, for the verdicts at the end of the section

# %% [markdown]
# ### A.7: does the entropy track the variance AL is meant to follow?
#
# > **Paper (GOAL, Section 3.3):** "if the unimodal encoder $E^{(m)}$ produces a prediction with high entropy,
# > the prediction variance for that modality is also high" (the premise of AL's entropy, Eq. 6).
#
# > **Paper (GOAL, Appendix A.7, after [Wei et al., 2025]):** with $f(x_i) = w_0 s_i^{m_0} + w_1 s_i^{m_1}$,
# > $w_0 + w_1 = 1$, and $\text{Var}(f(x)) = E[f(x)^2] - E[f(x)]^2$, $E$ the mean over the $N$ samples:
# > $w_0 = \frac{\text{Var}(s^{m_1})}{\text{Var}(s^{m_1}) + \text{Var}(s^{m_0})}$,
# > $w_1 = \frac{\text{Var}(s^{m_0})}{\text{Var}(s^{m_1}) + \text{Var}(s^{m_0})}$;
# > "we should enable the modality with a lower variance to have a larger contribution".
#
# A.7 writes $m_0, m_1$ for the modalities, $M$ for the number of classes (our $K$) and $s_i^{m}$ for modality
# $m$'s logit vector, its additive share $W_m e_m + b_m$ of the fused logits under concatenation. Its variance
# belongs to a **set of samples**, while AL's entropy $u_i^{(m)}$ belongs to **one sample**, so the premise
# needs a bridge. The kit's readings (`goal_evidence`): the square of a logit vector is its squared norm, so
# $\text{Var}(s^m)$ is the mean over samples of $d_i = \|s_i^m - \bar s^m\|^2$, and $d_i$ is sample $i$'s share of it;
# "the entropy tracks the variance" means a positive rank correlation (Spearman) between $u_i$ and $d_i$ across
# the test samples. Which logits: AL's entropy reads the unimodal head's $z_m$ (Eq. 6), A.7 the share $s^m$; the
# table shows both, and the ledger's part uses the heads. The second part asks whether AL's weights, with all
# test samples as one batch, favour the modality that A.7's rule favours (the one with the smaller variance).
#
# Before reading the numbers, think about what $d_i$ measures: a sample whose logits sit far from the average
# logit vector usually has one large logit, which is a *confident*, low-entropy prediction. Nothing in A.7
# guarantees that the sign comes out as the premise needs.

# %%
LOGIT_NAMES = {"heads": "head z_m", "shares": "share s^m"}
a7_readings = {source: [ge.a7_reading(run.result.model, emoji_test, source) for run in emoji["goal"]]
               for source in ge.LOGIT_SOURCES}
A7_COLUMNS = {"Spearman(u_i, d_i)": "spearman", "Var (A.7)": "variance", "mean u_i": "mean_entropy",
              "A.7 weight": "a7_weight", "AL weight": "al_weight"}
rows = [[f"{m}, {LOGIT_NAMES[source]}"] + [stats.summarize([r[m][key] for r in readings]).text(2)
                                            for key in A7_COLUMNS.values()]
        for source, readings in a7_readings.items() for m in modalities["emoji"]]
evidence["A.7: the entropy tracks A.7's variance, AL follows A.7"] = ge.a7_parts(emoji["goal"], emoji_test, "emoji")
a7_lines = []
for source, readings in a7_readings.items():
    for m in modalities["emoji"]:
        rho = stats.summarize([r[m]["spearman"] for r in readings])
        a7_lines.append(f"- {m}, {LOGIT_NAMES[source]}: mean Spearman {rho.mean:+.2f}: across the test samples the "
                        f"entropy {'rises' if rho.mean > 0 else 'falls'} as the sample's share of A.7's variance "
                        f"rises, {'as' if rho.mean > 0 else 'the opposite of what'} the premise needs.")
favoured = [min(r, key=lambda m: r[m]["variance"]) for r in a7_readings["heads"]]
al_agrees = [r[m]["al_weight"] > 1 / len(r) for r, m in zip(a7_readings["heads"], favoured)]
a7_lines.append("- A.7's rule favours the modality whose head's logits vary less: "
                + ", ".join(f"{m} (seed {run.seed})" for m, run in zip(favoured, emoji["goal"]))
                + f"; AL gives that modality more than the even share 1/M in {sum(al_agrees)} of {len(al_agrees)} "
                "seeds.")
display(Markdown(f"**emoji test, section 6's GOAL models** ({stats.SD_NOTE})\n\n"
                 + stats.markdown_table([""] + list(A7_COLUMNS), rows) + "\n\n"
                 + parts_table(evidence["A.7: the entropy tracks A.7's variance, AL follows A.7"]) + "\n\n"
                 + "\n".join(a7_lines)))

# %%
a7_logits = ge.modality_logits(emoji["goal"][0].result.model, emoji_test)
figure, axes = plt.subplots(1, len(a7_logits), figsize=(12, 3.6), sharey=True)
for axis, (m, logits) in zip(axes, a7_logits.items()):
    axis.scatter(ge.logit_spread(logits).numpy(), normalized_entropy(logits).numpy(), s=8, alpha=0.5)
    axis.set(xscale="log", xlabel="d_i = ‖z_i − mean z‖² (sample i's share of A.7's variance)",
             title=f"{m} head: Spearman {ge.entropy_spread_correlation(logits):+.2f}")
    axis.minorticks_off()
axes[0].set_ylabel("normalised entropy u_i (Eq. 6)")
figure.suptitle(f"emoji test, GOAL seed {emoji['goal'][0].seed}: "
                "AL's entropy against A.7's variance, sample by sample")
figure.tight_layout()
plt.show()

# %% [markdown]
# **Figure 6.12.** Each test sample's normalised entropy (what AL reads) against its share of A.7's variance
# (log scale), for each modality's unimodal head of one GOAL model. The premise needs a cloud that rises to the
# right; look at which way it runs, and at whether the samples far from the average logit vector are the
# confident ones at the bottom.
#
# ### A.12: do GOAL's fused features cluster better?
#
# > **Paper (GOAL, Appendix A.12, Table 9, CREMA-D, Base → GOAL):** silhouette score (↑) 0.074 → 0.131;
# > Davies–Bouldin index (↓) 2.566 → 1.910; normalized mutual info (↑) 0.457 → 0.939;
# > adjusted Rand index (↑) 0.403 → 0.498. The text: the silhouette score "nearly doubles", the
# > Davies–Bouldin index "decreases by 25%", and the normalized mutual info and adjusted Rand index
# > "increase 18% and 23%".
#
# The code below recomputes the relative changes from Table 9's own numbers: the text and the table disagree
# about the mutual information. The readings (A.12 names the four indicators but not the clustering they
# score): the silhouette and Davies–Bouldin scores group the fused features $f^{fus}$ by their **true class**
# (Figs. 3 and 6 colour the points by class), while the mutual information and the Rand index compare a KMeans
# clustering with as many clusters as classes against the true classes ("consistency between clustering and
# true labels"). Base is read as joint training (the baseline of the paper's Table 2 is plain concatenation);
# joint + heads is added to tell the unimodal heads' share from GOAL's edits. All on emoji's test split, with
# scikit-learn.

# %%
PAPER_TABLE9 = {"silhouette": (0.074, 0.131), "davies_bouldin": (2.566, 1.910), "nmi": (0.457, 0.939),
                "ari": (0.403, 0.498)}  # Base, GOAL on CREMA-D
PAPER_TEXT9 = {"davies_bouldin": -25, "nmi": 18, "ari": 23}  # the relative changes the text states (%)
table9_change = {name: 100 * (after / before - 1) for name, (before, after) in PAPER_TABLE9.items()}
print("Table 9's own relative changes, GOAL vs Base: "
      + ", ".join(f"{name} {change:+.1f} %" for name, change in table9_change.items())
      + f" (silhouette ×{PAPER_TABLE9['silhouette'][1] / PAPER_TABLE9['silhouette'][0]:.2f})")
print("the text states: " + ", ".join(f"{name} {change:+d} %" for name, change in PAPER_TEXT9.items())
      + f"; an NMI rise of {PAPER_TEXT9['nmi']} % would put GOAL's NMI at "
      f"{PAPER_TABLE9['nmi'][0] * (1 + PAPER_TEXT9['nmi'] / 100):.3f}, not Table 9's {PAPER_TABLE9['nmi'][1]}")

CLUSTERED = ("joint", "joint_unimodal_heads", "goal")
clustering = {label: ge.run_clustering(emoji[label], emoji_test) for label in CLUSTERED}
evidence["A.12: GOAL's fused features cluster better (Table 9)"] = ge.a12_parts(emoji["goal"], emoji["joint"],
                                                                               emoji_test, "emoji")
rows = []
for name, sign in ge.CLUSTER_METRICS.items():
    values = {label: [scores[name] for scores in clustering[label]] for label in CLUSTERED}
    means = {label: stats.summarize(values[label]).mean for label in CLUSTERED}
    rows.append([f"{name} ({'↑' if sign > 0 else '↓'})"]
                + [stats.summarize(values[label]).text(3) for label in CLUSTERED]
                + [stats.paired_difference(values["goal"], values["joint_unimodal_heads"]).text(3),
                   f"{100 * (means['goal'] / means['joint'] - 1):+.0f} %",
                   f"{table9_change[name]:+.0f} %"])
display(Markdown(f"**emoji test, fused features** ({stats.SD_NOTE}; paired differences: {stats.DIFFERENCE_NOTE})\n\n"
                 + stats.markdown_table(["indicator"] + [NAMES[label] for label in CLUSTERED]
                                        + ["GOAL − joint + heads", "GOAL vs joint (means)", "Table 9, GOAL vs Base"],
                                        rows) + "\n\n"
                 + parts_table(evidence["A.12: GOAL's fused features cluster better (Table 9)"], digits=3)))

# %% [markdown]
# Compare the last two columns for the size of the effect, and the verdicts for whether it is more than seed
# noise. The column against joint + heads tells whether what GOAL adds comes from its edits or from the
# unimodal heads it shares with that baseline.
#
# ### A.15: do $g^{(m)}$ and $G^{(m)}$ agree?
#
# > **Paper (GOAL, Appendix A.15, Fig. 8):** the caption: "The final model used to compute the loss and the
# > corresponding gradients g and G on the training set, and to check for any conflicts." The text computes the
# > cosine between them "across the entire training set" for the baseline and for GOAL, and reads the figure
# > (visual modality) as "a high degree of alignment" of g and G in the GOAL-trained model.
#
# $g^{(m)}$ is the gradient of the fusion loss and $G^{(m)}$ that of the unimodal loss on branch $m$'s parameters
# (Eq. 5, section 1). The readings: a cosine per **batch** of the training batch size (the paper does not say
# per sample, per batch or over the whole set), on the **raw** gradients of the trained model (no AL or GO
# applied); and the baseline is joint + heads, because a model without unimodal heads has no $G^{(m)}$. We read
# A.15 twice: on the final models as the paper does (section 6's runs), and over training, where
# `goal_evidence.TracedGOAL` and `TracedHeads` train exactly like GOAL and joint + heads while recording
# $\cos(g^{(m)}, G^{(m)})$ at every step, before any edit.

# %%
traced = {NAMES["goal"]: ge.train_traced(emoji_train, "goal", SEEDS, EPOCHS["emoji"]),
          NAMES["joint_unimodal_heads"]: ge.train_traced(emoji_train, "joint_unimodal_heads", SEEDS, EPOCHS["emoji"])}
same_models = all(torch.equal(p, q) for result, run in zip(traced[NAMES["goal"]], emoji["goal"])
                  for p, q in zip(result.model.parameters(), run.result.model.parameters()))
print(f"the traced GOAL runs are section 6's GOAL runs, parameter for parameter: {same_models}")
display(ge.alignment_figure(traced, smooth=SMOOTH, title="emoji"))
plt.show()

# %% [markdown]
# **Figure 6.13.** The cosine between each branch's fusion-loss gradient $g$ and unimodal-loss gradient $G$
# over training (mean over seeds, band ± SD), for GOAL and for joint + heads, one panel per modality. A.15
# expects GOAL's line high above zero; look at where each line starts and ends, and at whether GOAL's line
# separates from the baseline's.

# %%
a15_final = ge.a15_parts(emoji["goal"], emoji["joint_unimodal_heads"], emoji_train, "emoji")
a15_over = ge.a15_over_training_parts(traced[NAMES["goal"]], "emoji")
goal_change, heads_change = ([ge.alignment_change(result) for result in traced[label]] for label in traced)
a15_over.update({f"{m}: rises more than the baseline's": ge.Part(
    stats.paired_difference([change[m] for change in goal_change], [change[m] for change in heads_change]), +1,
    f"cos(g, G) of {m}, late − early, GOAL − joint + heads, emoji") for m in modalities["emoji"]})
evidence["A.15: g and G agree in GOAL's final model (Fig. 8)"] = a15_final
evidence["A.15 over training: GOAL brings g and G together"] = a15_over
display(Markdown("**the final models, emoji training set** (mean per-batch cosine)\n\n"
                 + parts_table(a15_final) + "\n\n**over training** (mean over the last fifth of the steps minus "
                 "the first fifth)\n\n" + parts_table(a15_over)))

# %% [markdown]
# ### A.16: does GOAL converge faster?
#
# > **Paper (GOAL, Appendix A.16):** the section "Comparison of convergence speed between GOAL and baseline
# > methods" is a figure only; our copy has neither its caption nor any number from it.
#
# The reading: the kit's one measure of learning speed (chapter 2's `dominance.halfway_iteration`) applied to
# the fusion loss $L_T$, which every method records: the epoch at which its running mean has made half of its
# drop. Fewer epochs is faster. Section 6's runs, nothing new trained. One thing to keep in mind: AL's weights
# sum to one, so GOAL hands each branch about half of the fusion gradient (section 2), which by itself slows
# the fall of $L_T$; joint + heads is the comparison that shares GOAL's losses.

# %%
convergence_runs = {NAMES[label]: [run.result for run in emoji[label]] for label in CLUSTERED}
display(ge.convergence_figure(convergence_runs, title="emoji"))  # the ledger's smoothing, as below
plt.show()

# %% [markdown]
# **Figure 6.14.** The fusion loss over training for joint, joint + heads and GOAL (mean over seeds, band
# ± SD), with a dotted line where each has made half of its drop on average. Look at the order of the dotted
# lines, and at where each curve ends: speed and final level are different questions.

# %%
halfway = {label: [ge.convergence_epoch(result) for result in results]
           for label, results in convergence_runs.items()}
evidence["A.16: GOAL converges faster"] = {
    **ge.a16_parts(convergence_runs[NAMES["goal"]], convergence_runs[NAMES["joint"]], "emoji"),
    "faster than joint + heads": ge.Part(stats.paired_difference(halfway[NAMES["goal"]],
                                                                 halfway[NAMES["joint_unimodal_heads"]]), -1,
                                         "epochs to half of the fused loss's drop, GOAL − joint + heads, emoji")}
display(Markdown("epochs to half of the fusion loss's drop: "
                 + ", ".join(f"{label} {stats.summarize(values).text(2)}" for label, values in halfway.items())
                 + f" ({stats.SD_NOTE})\n\n" + parts_table(evidence["A.16: GOAL converges faster"])))

# %% [markdown]
# ### Fig. 2c: GO as a plug-in
#
# > **Paper (GOAL, Section 4.3 and Fig. 2c, CREMA-D):** "OGM+GO and ARL+GO perform much better than the
# > original OGM and ARL"; the caption of Fig. 2c: "Incorporating GO with existing methods can further improve
# > the performance." The bars' numbers are in the figure, which our copy does not contain.
#
# `modbal_lib.methods.plus_go` adds GO to any method of the kit: the name `"<method>+go"` (for instance
# `compare("emoji", ["ogm_ge", "ogm_ge+go"], seeds)`) wraps the method so that, wherever it back-propagates the
# fusion loss, each embedding receives GO's orthogonalized gradient instead of the raw one (a zero-valued term
# added to the loss carries the change; the module's docstring explains it). Everything else is the method's
# own: its losses, its scaling, its options. The paper plugs GO into OGM [Peng et al., 2022] and ARL
# [Wei et al., 2025]. The kit has OGM-GE (OGM with its noise term, the same paper) but not ARL, so we use
# OGM-GE, MSLR [Yao and Mihalcea, 2022] (a learning rate per modality, chapter 4) and joint + heads, whose
# plug-in is GOAL without AL (exercise 5). The baselines' runs are section 6's where they exist; MSLR and
# MSLR + GO search their learning rates once each, seeded, so they get the same ones.

# %%
FIG2C_NEW = ["ogm_ge", "ogm_ge+go", "mslr", "mslr+go", "joint_unimodal_heads+go"]
fig2c = {**compare(experiments["emoji"], FIG2C_NEW, SEEDS, ratios=(), epochs=EPOCHS["emoji"]),
         "joint_unimodal_heads": emoji["joint_unimodal_heads"]}
display(ge.fig2c_figure(fig2c, title="emoji"))
plt.show()

# %% [markdown]
# **Figure 6.15.** Full accuracy of each base method without and with GO on emoji (bars: mean over seeds,
# whiskers: SD). The paper's picture is the right bar of each pair above the left one; compare each pair's
# gap with its whiskers before reading anything into it.

# %%
evidence["Fig. 2c: GO improves other methods"] = ge.fig2c_parts(fig2c, "emoji")
rows = [[label, stats.summarize(fig2c[base], full).text(), stats.summarize(fig2c[base + "+go"], full).text(),
         stats.paired_difference(fig2c[base + "+go"], fig2c[base], gap).text(),
         stats.summarize(fig2c[base + "+go"], recorded("conflict_before")).text(2)]
        for label, base in ge.FIG2C_BASES.items()]
display(Markdown(f"**emoji**, {EPOCHS['emoji']} epochs ({stats.SD_NOTE})\n\n"
                 + stats.markdown_table(["base", "Full", "Full with GO", "ΔGap: with GO − without",
                                         "conflicts before GO"], rows)
                 + f"\n_{stats.DIFFERENCE_NOTE}._\n\n" + parts_table(evidence["Fig. 2c: GO improves other methods"],
                                                                      digits=1)))

# %% [markdown]
# The last column is the share of samples whose fusion gradients conflicted during training, the only samples
# GO changes. How much it changes each of them is the size of the cosine (section 9): where conflicts are rare,
# or their cosines small, there is little for GO to change in any base method, and the paired differences
# above can only be small.
#
# ### Table 3: three modalities
#
# > **Paper (GOAL, Table 3, Acc / macro F1, Concatenation → GOAL):** CMU-MOSI 78.43 / 56.82 → 81.78 / 58.32;
# > MELD 68.58 / 64.92 → 71.23 / 68.22; IEMOCAP 68.94 / 69.19 → 72.90 / 73.61 (audio, visual and text; the
# > other methods extended to three modalities by the authors).
#
# The text reads Table 3 as GOAL performing best among the methods also with three modalities. SeeSaw can be
# generated with three modalities (`num_modalities=3`: easy, medium and hard, chapter 2), which gives the
# table's shape: joint training, joint + heads and GOAL under BalGrad's protocol, with each modality missing
# in turn. With $M = 3$, Eq. 7's softmax runs over three modalities and GO projects each $g^{(m)}$ against the
# two others in turn, so conflicts can survive it (section 3).

# %%
table3 = ge.table3_runs(SEEDS, CLUSTERED, ratios=(), epochs=EPOCHS["seesaw"])
three_modalities = table3["goal"][0].result.model.modalities
evidence["Table 3: GOAL beats joint with three modalities"] = {
    **ge.table3_parts(table3["goal"], table3["joint"]),
    "GOAL beats joint + heads with 3 modalities": ge.Part(
        stats.paired_difference(table3["goal"], table3["joint_unimodal_heads"], full), +1,
        "Full, GOAL − joint + heads, SeeSaw with 3 modalities")}
goal_inside = {f"w_{m}": recorded(f"w_{m}") for m in three_modalities}
goal_inside.update({"conflicts before GO": recorded("conflict_before"),
                    "conflicts after GO": recorded("conflict_after")})
display(Markdown(f"**SeeSaw with three modalities**, {EPOCHS['seesaw']} epochs, seeds {SEEDS}\n\n"
                 + stats.table1(run_tables(table3, NAMES)) + "\n\n**GOAL, mean over training** "
                 f"({stats.SD_NOTE})\n\n"
                 + stats.markdown_table(list(goal_inside), [[stats.summarize(table3["goal"], pick).text(2)
                                                             for pick in goal_inside.values()]])
                 + "\n\n" + parts_table(evidence["Table 3: GOAL beats joint with three modalities"], digits=1)))

# %% [markdown]
# ### The evidence, claim by claim
#
# Each claim's parts joined by the ledger's rule: a claim **holds** when every part holds, **partly** when some
# do (the cell names which), **does not hold** when none does. With fewer than three seeds (fast mode's
# default) every claim is "not testable here" by the kit's rule, and the tables above show only the size of
# the effects.

# %%
evidence_verdicts = {claim: combined({name: directional(*part) for name, part in parts.items()})
                     for claim, parts in evidence.items()}
display(Markdown(stats.markdown_table(["claim", "verdict"], [[claim, verdict_text(finding)]
                                                             for claim, finding in evidence_verdicts.items()])))

# %% [markdown]
# ## Summary

# %%
def versus_heads(name, label, pick):
    return stats.paired_difference(ablation[name][label], ablation[name]["joint_unimodal_heads"], pick).text()


summary = [
    f"AL is a bounded re-weighting: at T = 1 one sample's weight never exceeds e/(1+e) = {LARGEST_WEIGHT:.3f}, and "
    "over training GOAL's mean weights were " + "; ".join(
        f"{name} " + ", ".join(f"w_{m} {w.text(2)}" for m, w in lean[name][2].items())
        + f" (leaning {'with' if lean[name][0] == lean[name][1] else 'against'} the dominance)" for name in lean) + ".",
    "GO removes every two-modality conflict (A.9); on our data a conflicting sample's fusion gradient changed by "
    + ", ".join(f"{name} {values[0]:.1%}" for name, values in go_change.items()) + " of its length on average.",
    "GOAL against joint + heads, seed by seed: " + "; ".join(
        f"{name} Full {versus_heads(name, 'goal', full)}, ΔGap {versus_heads(name, 'goal', gap)}" for name in ablation)
    + f". Over temperatures, our sweep's highest mean Full accuracy on emoji is at T = "
    f"{max(full_means, key=full_means.get)}, while the paper's best T is the edge of its grid (T = {grid_edge:g} on "
    f"{sum(t == grid_edge for t in paper_best.values())} of {len(paper_best)} datasets).",
    "The two readings of g^(m) on SeeSaw with equal branches, parameter − feature: "
    + ", ".join(f"{what} {d.text()}" for what, d in variant_differences.items()) + ".",
    "GOAL's appendix: A.3's local claim and A.9 hold; A.14's conclusion holds, its intermediate line has a sign "
    "slip (section 4). Its empirical evidence rerun on our data (section 13), by the ledger's rule: "
    + "; ".join(f"{claim.split(':')[0]} {finding.verdict}" for claim, finding in evidence_verdicts.items())
    + (f" (with {len(SEEDS)} seeds, fewer than the rule's {stats.MIN_SEEDS})" if len(SEEDS) < stats.MIN_SEEDS else "")
    + ".",
]
display(Markdown("\n".join(f"- {point}" for point in summary)))

# %% [markdown]
# ## Exercises
#
# 1. **Leveraging or halving?** AL's weights sum to 1, which halves the fusion gradient of every
#    branch as well as re-weighting it. Train AL only with `T=100` (weights ≈ 1/2 each, so only the
#    halving is left) and compare it, seed by seed, with AL only at `T=1` and with joint + heads on emoji.
#    Which of AL's two effects moves the scores?
#
#    <details><summary>Hint</summary>
#
#    A labelled configuration, `"al_hot=goal"` with the options `{"orthogonalization": False, "T": 100.0}`,
#    trained by `compare` with the ablation's seeds and epochs, gives runs that pair with the ablation's
#    seed by seed; use `stats.paired_difference` on the Full accuracy and ΔGap.
#
#    </details>
# 2. **Lean the other way.** Subclass `GOAL` and override `leverage_weights(step)` to return
#    `super().leverage_weights(step).flip(0)`, so that the *less* confident modality gets the larger
#    weight; pass an instance to `train`. Does it shrink ΔGap on emoji more than GOAL does?
#
#    <details><summary>Hint</summary>
#
#    `train(emoji_train, FlippedGOAL(), epochs=EPOCHS["emoji"], seed=seed)` trains it; score it like
#    `compare` does, with `evaluate(model, experiments["emoji"].test_source(), seed=seed, ratios=())`, so that
#    it pairs with the ablation's GOAL runs seed by seed.
#
#    </details>
# 3. **Three modalities.** Train GOAL on `Experiment("seesaw", dataset_options={"num_modalities": 3})`
#    and read `conflict_after` in the history. Why is it not zero any more (section 3), and does the
#    order of the modalities change the result?
#
#    <details><summary>Hint</summary>
#
#    GO projects $g_1$ against $g_2'$ and then against $g_3'$; the second projection can reintroduce a
#    conflict with $g_2'$. Apply `orthogonalize` to one batch's feature gradients of the trained model in two
#    orders and count the conflicts that remain.
#
#    </details>
# 4. **Attention fusion.** Rerun joint + heads and GO only on emoji with `fusion="attention"`. Does GO act
#    (conflict shares before GO), and does it change the scores more than under concatenation?
#
#    <details><summary>Hint</summary>
#
#    `compare` passes training options through: `compare(..., fusion="attention")`. Under attention the
#    fused embedding is $a_v e_v + a_l e_l$, so the two feature gradients are $a_v W^\top\delta$ and
#    $a_l W^\top\delta$ plus the terms through the attention weights: mostly aligned, but not identical.
#
#    </details>
# 5. **GO as a plug-in, computed two ways.** Section 13 trained `joint_unimodal_heads+go` (GO plugged into
#    joint + heads); section 6 trained GO only (`goal` with `adaptive_leveraging=False`). The docstring of
#    `modbal_lib.methods.plus_go` says they are the same training, computed differently. Check it seed by seed,
#    on the parameters and on the scores. Then check on random per-sample gradients the property that lets GO
#    commute with the magnitude methods of Fig. 2c (OGM-GE's coefficients, MSLR's learning rates, AL's
#    weights): projecting $k_1 g_1$ and $k_2 g_2$ with $k_1, k_2 > 0$ gives $k_1$ and $k_2$ times the projections of
#    $g_1$ and $g_2$. Why does this fail for a method that edits directions itself, such as `pcgrad+go`?
#
#    <details><summary>Hint</summary>
#
#    Pair `fig2c["joint_unimodal_heads+go"]` with `emoji["go_only"]` (same seeds) and take the largest absolute
#    difference over all parameters; two computations of the same sums in floating point need not agree to
#    the last bit. For the second part, compare `orthogonalize([k1 * g1, k2 * g2], eps=0.0)` with `k1` and
#    `k2` times `orthogonalize([g1, g2], eps=0.0)` in float64, and write out Eq. 9 with the scales: where do
#    they cancel, and what happens to the condition $g_1\cdot g_2 < 0$?
#
#    </details>

# %% [markdown]
# ## Solutions

# %% [markdown]
# ### Solution to exercise 1
#
# At $T = 100$ every per-sample weight is within a hair of $1/2$, so AL only at $T = 100$ is "halve the fusion
# gradient, lean nowhere". Its difference from joint + heads is the halving; its difference from AL only
# at $T = 1$ is the leaning. Read the two rows of the table: the effect whose interval excludes 0 (verdict
# "differs") is the one that moves the scores; with two seeds the verdict is "too few seeds" and the
# intervals only show the size of the noise.

# %% tags=["solution", "hide-input"]
hot = compare(experiments["emoji"], ["al_hot=goal"], SEEDS, method_options={"al_hot": {"orthogonalization": False,
                                                                                        "T": 100.0}},
              ratios=(), epochs=EPOCHS["emoji"])["al_hot"]
rows = [[f"AL only, T = 100 − {NAMES[reference]}"]
        + [stats.paired_difference(hot, emoji[reference], pick).text() for pick in (full, gap)]
        for reference in ("joint_unimodal_heads", "al_only")]
display(Markdown(f"mean w_{image} at T = 100: {stats.summarize(hot, recorded(f'w_{image}')).text(3)}\n\n"
                 + stats.markdown_table(["", "Full", "ΔGap"], rows) + f"\n_{stats.DIFFERENCE_NOTE}._"))

# %% [markdown]
# ### Solution to exercise 2
#
# Flipping the weights gives the larger share of the fusion gradient to the modality whose head is less
# sure (on emoji the text, whenever section 7's weights favour the image). If the under-used modality is
# held back because the fused loss is minimised mostly through the other one, leaning towards it should
# raise the score with the dominant modality missing and shrink ΔGap; whether it does is the paired
# difference against GOAL below.

# %% tags=["solution", "hide-input"]
class FlippedGOAL(GOAL):
    """GOAL with AL's weights swapped: the less confident modality gets the larger weight."""

    def leverage_weights(self, step):
        return super().leverage_weights(step).flip(0)


flipped = []
for seed in SEEDS:
    result = train(emoji_train, FlippedGOAL(), epochs=EPOCHS["emoji"], seed=seed, show_progress=False)
    flipped.append(evaluate(result.model, experiments["emoji"].test_source(), seed=seed, ratios=()))
goal_tables = [run.table for run in emoji["goal"]]
rows = [[what, stats.summarize(flipped, pick).text(), stats.summarize(goal_tables, pick).text(),
         stats.paired_difference(flipped, goal_tables, pick).text()]
        for what, pick in (("Full", lambda t: t.full), (f"missing {image}", lambda t: t.missing[image]),
                           ("ΔGap", lambda t: t.missing_delta_gap))]
display(Markdown(stats.markdown_table(["emoji", "flipped AL", "GOAL", "flipped − GOAL"], rows)
                 + f"\n_{stats.DIFFERENCE_NOTE}._"))

# %% [markdown]
# ### Solution to exercise 3
#
# With three modalities GO projects $g_1$ first away from $g_2'$ and then away from $g_3'$; the second step
# moves $g_1''$ along $g_3'$, which can make it point against $g_2'$ again. Nothing in the loop goes back to
# check, so some conflicts survive, and which ones depends on the order of the inner loop. The cell trains
# GOAL briefly on three-modality SeeSaw, reads the recorded share after GO, and then projects one batch's
# feature gradients in two orders.

# %% tags=["solution", "hide-input"]
three = Experiment("seesaw", dataset_options={"num_modalities": 3}).features("train")
three_run = train(three, "goal", epochs=1, seed=0, show_progress=False)
three_model = three_run.model
three_output = three_model({m: x[:BATCH] for m, x in three.features.items()})
three_grads = [g.detach() for g in loss_grads(task_loss(three.task, three_output.logits, three.labels[:BATCH]),
                                               [three_output.embeddings[m] for m in three_model.modalities])]


def remaining_conflicts(order):
    """Share of (sample, pair) conflicts left after GO with the modalities in this order."""
    edited = orthogonalize([three_grads[k] for k in order])
    cosines = pair_cosines(edited, [three_model.modalities[k] for k in order])
    return float((torch.stack(list(cosines.values())) < 0).float().mean())


orders = {"as given": [0, 1, 2], "reversed": [2, 1, 0]}
display(Markdown(
    f"Modalities {three_model.modalities}; recorded share of conflicts after GO during training: "
    f"{float(np.mean(three_run.history['conflict_after'])):.3f} (before GO: "
    f"{float(np.mean(three_run.history['conflict_before'])):.3f}). On one batch after training, conflicts left "
    "after GO: " + ", ".join(f"{name} order {remaining_conflicts(order):.3f}" for name, order in orders.items()) + "."))

# %% [markdown]
# ### Solution to exercise 4
#
# Under attention the feature gradients share the factor $W^\top\delta$ but are scaled by different attention
# weights and receive different terms through the attention scores, so they are mostly aligned: expect
# far fewer conflicts than under concatenation and, with less to project, little effect of GO. The cell
# prints the conflict shares before GO and the paired differences against joint + heads.

# %% tags=["solution", "hide-input"]
attention = compare(experiments["emoji"], ["joint_unimodal_heads", "go_only=goal"], SEEDS,
                    method_options={"go_only": {"adaptive_leveraging": False}}, ratios=(), epochs=EPOCHS["emoji"],
                    fusion="attention")
rows = [[f"{NAMES[label]} (attention)", stats.summarize(attention[label], recorded("conflict_before")).text(2),
         stats.paired_difference(attention[label], attention["joint_unimodal_heads"], full).text(),
         stats.paired_difference(attention[label], attention["joint_unimodal_heads"], gap).text()]
        for label in ("go_only",)]
rows.append([f"{NAMES['go_only']} (concat, section 6)",
             stats.summarize(emoji["go_only"], recorded("conflict_before")).text(2),
             versus_heads("emoji", "go_only", full), versus_heads("emoji", "go_only", gap)])
header = ["emoji", "conflicts before GO", "Full − joint + heads", "ΔGap − joint + heads"]
display(Markdown(stats.markdown_table(header, rows) + f"\n_{stats.DIFFERENCE_NOTE}._"))


# %% [markdown]
# ### Solution to exercise 5
#
# With AL switched off GOAL's weights are one, so each branch receives $\mathrm{GO}(g)^{(m)} + G^{(m)}$ at its
# embedding. The plug-in adds to the fusion loss the term $\sum_m \langle e_m - \mathrm{sg}(e_m), \delta_m\rangle$
# ($\mathrm{sg}$: a detached copy, $\delta_m = \mathrm{GO}(g)^{(m)} - g^{(m)}$ a constant), which is zero in value
# and adds $\delta_m$ to the gradient at $e_m$: the branch receives $g^{(m)} + \delta_m + G^{(m)}$, the same
# thing. The two differ only in the order of floating-point operations, so expect parameters equal up to
# rounding (Adam may grow that rounding a little over many steps) and the same scores.
#
# For the scales, Eq. 9 with $\epsilon = 0$ on $k_1 g_1$ and $k_2 g_2$ gives
#
# $$k_1 g_1 - \frac{k_1 k_2\, g_1\cdot g_2}{k_2^2 \|g_2\|^2} k_2 g_2
#   = k_1\Big(g_1 - \frac{g_1\cdot g_2}{\|g_2\|^2} g_2\Big),$$
#
# and the condition $k_1 k_2\, g_1\cdot g_2 < 0$ holds exactly when $g_1\cdot g_2 < 0$: positive scales per
# modality pass through GO. With $\epsilon > 0$ this is no longer exact. A method that changes directions (PCGrad's
# projection, BalGrad's, CGGM's direction loss) does not commute with GO, so for those `+go` is one particular
# order, GO first.

# %% tags=["solution", "hide-input"]
plugged, go_only_runs = fig2c["joint_unimodal_heads+go"], emoji["go_only"]
parameter_gap = max(float((p - q).abs().max()) for a, b in zip(plugged, go_only_runs, strict=True)
                    for p, q in zip(a.result.model.state_dict().values(), b.result.model.state_dict().values(),
                                    strict=True))
largest_parameter = max(float(p.abs().max()) for run in go_only_runs for p in run.result.model.state_dict().values())
scores_gap = stats.paired_difference(plugged, go_only_runs, full)
generator = torch.Generator().manual_seed(0)
g1, g2 = (torch.randn(BATCH, 16, generator=generator, dtype=torch.float64) for _ in range(2))
k1, k2 = 0.3, 2.5
plain, scaled = orthogonalize([g1, g2], eps=0.0), orthogonalize([k1 * g1, k2 * g2], eps=0.0)  # Eq. 10, eps = 0
commutation_gap = max(float((scaled[0] - k1 * plain[0]).abs().max()), float((scaled[1] - k2 * plain[1]).abs().max()))
conflicting = int(((g1 * g2).sum(1) < 0).sum())
display(Markdown(
    f"joint + heads + GO against GO only, emoji, seeds {SEEDS}: largest absolute parameter difference "
    f"{parameter_gap:.1e} (the largest parameter is {largest_parameter:.1f} in size); Full accuracy, paired: "
    f"{scores_gap.text(2)}.\n\nGO of the scaled gradients (k = {k1}, {k2}) against the scaled GO, {BATCH} random "
    f"samples of which {conflicting} conflict: largest absolute difference {commutation_gap:.1e}."))
