# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Gradients and the first-order view
#
# BalGrad argues about *gradients*: how one step of gradient descent changes the loss, which parts
# of the gradient come from which modality, and what happens when two gradients point against each
# other. Its arguments are first-order Taylor expansions. This chapter derives them step by step and
# then **measures** them on a real model, so that a wrong sign or a missing term would show up as a
# failed assertion. It also asks what the expansions can and cannot tell us about the *balance*
# between modalities.
#
# **You will learn:** how a gradient step changes the loss to first order and why the error is
# $O(\eta^2)$; how the fused classifier's gradient splits by modality and why the split's cross term
# vanishes under concatenation but not under sum or attention fusion; how to read the printed
# Proposition 1 of BalGrad (its index set has a slip, its cross term does not); why, under
# concatenation, Proposition 1 is the first-order decrease of any gradient step and so says nothing
# by itself about balance; and what a conflict between the task gradient and the KL gradient costs
# (Proposition 2).
#
# **Paper sections:** BalGrad [Kim et al., 2025] Section 3.1 (Eq. 1, Proposition 1), Section 3.2.2
# (Eq. 5, Proposition 2), Appendix A.1 (the proof and "Influence of Fusion Methods"), Appendix A.2,
# Appendix B.2–B.3 (architecture and optimizer), Table 3 and Fig. 7 (conflicts). GOAL's appendix
# claims (A.3, A.9, A.14) are checked in chapter 6, after its two components are defined.
#
# **Notation** (chapter 0's table): $\eta$ is the step size (BalGrad writes $\lambda$); $h_v, h_l$ the
# embedding layers with parameters $\theta_v, \theta_l$ and outputs $e_v, e_l$; $f_T$ the fused classifier
# with parameters $\theta_T$; $L_T$ the task loss; $g_m = \nabla_{\theta_m} L_T$, $g_T = \nabla_{\theta_T} L_T$
# and $g_T^m$ its part from modality $m$.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

import modbal_lib
from modbal_lib import stats, theory
from modbal_lib.claims import box
from modbal_lib.evaluate import evaluate
from modbal_lib.experiments import Experiment
from modbal_lib.features import load_features
from modbal_lib.grads import flatten, loss_grads
from modbal_lib.methods.base import task_loss
from modbal_lib.stats import paired_difference, summarize
from modbal_lib.train import train
from modbal_lib.whatif import taylor_lab, taylor_panel

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()
WARMUP_EPOCHS = None    # brief training before the checks; default 1 (fast) or 5 (full)
CONFLICT_EPOCHS = None  # BalGrad runs for the conflict statistics; default 2 (fast) or 6 (full)
SEEDS = None            # seeds of the BalGrad runs; default [0] (fast) or [0, 1, 2] (full)
BATCH = 256             # samples the loss changes are measured on

# %% [markdown]
# The defaults of the other parameters depend on `FAST`; they are filled in here, after papermill
# may have changed `FAST`.

# %%
WARMUP_EPOCHS = WARMUP_EPOCHS or (1 if FAST else 5)
CONFLICT_EPOCHS = CONFLICT_EPOCHS or (2 if FAST else 6)
SEEDS = SEEDS or ([0] if FAST else [0, 1, 2])
print(f"mode: {'fast' if FAST else 'full'}; warm-up {WARMUP_EPOCHS} epochs, BalGrad {CONFLICT_EPOCHS} epochs, "
      f"seeds {SEEDS}")

# %% [markdown]
# ## 1. One gradient step, to first order
#
# Take BalGrad's model (Fig. 3 of the paper): embedding layers $h_v, h_l$ with parameters
# $\theta_v, \theta_l$ produce embeddings $e_v, e_l$; a fusion $C$ combines them into
# $e_{\mathrm{fus}} = C(e_v, e_l)$; the fused classifier $f_T$ with parameters $\theta_T = (W, b)$ gives the
# logits $z = W e_{\mathrm{fus}} + b$ and the task loss $L_T(\theta)$. Write $g_i = \nabla_{\theta_i} L_T$ for
# each block $i \in \{v, l, T\}$ and take one gradient step of size $\eta$ on every parameter:
#
# $$\theta_i' = \theta_i - \eta g_i, \qquad i \in \{v, l, T\}.$$
#
# **Step 1 — Taylor.** For a twice differentiable $L_T$, with $\Delta\theta = \theta' - \theta = -\eta g$
# and $H$ the Hessian,
#
# $$L_T(\theta') = L_T(\theta) + \nabla L_T(\theta)^\top \Delta\theta + \tfrac12 \Delta\theta^\top H \Delta\theta
#   + O(\|\Delta\theta\|^3) = L_T(\theta) - \eta\, g^\top g + \tfrac{\eta^2}{2}\, g^\top H g + O(\eta^3).$$
#
# **Step 2 — split by blocks.** The squared norm is a sum over parameter blocks:
# $g^\top g = |g_v|^2 + |g_l|^2 + |g_T|^2$.
#
# **Step 3 — split the classifier gradient by modality.** Write the fused embedding as a sum of one
# term per modality, $e_{\mathrm{fus}} = t_v + t_l$ (below: what $t_m$ is for each fusion). With
# $\delta_i = \partial L_T / \partial z_i$ for sample $i$,
#
# $$g_W = \frac{\partial L_T}{\partial W} = \sum_i \delta_i e_{\mathrm{fus},i}^\top
#   = \underbrace{\sum_i \delta_i t_{v,i}^\top}_{g_T^v} + \underbrace{\sum_i \delta_i t_{l,i}^\top}_{g_T^l}.$$
#
# **Step 4 — expand the square.** $|g_T^v + g_T^l|^2 = |g_T^v|^2 + |g_T^l|^2 + 2\, g_T^v \cdot g_T^l$, so
#
# $$\boxed{\Delta L_T = -\eta \left(|g_v|^2 + |g_l|^2 + |g_T^v + g_T^l|^2\right) + O(\eta^2)
#   = -2\eta\, g_T^v\!\cdot g_T^l - \eta\left(|g_v|^2 + |g_l|^2 + |g_T^v|^2 + |g_T^l|^2\right) + O(\eta^2).}$$
#
# The residual, $\tfrac{\eta^2}{2} g^\top H g + O(\eta^3)$, is second order: on a log-log plot of
# $|\Delta L_{\text{actual}} - \Delta L_{\text{predicted}}|$ against $\eta$ it is a line of **slope 2**. A wrong
# prediction (a missing or double-counted term $c$) leaves a residual $-\eta c$ of slope 1, which is how
# the numbers below can catch a slip.
#
# Two details of a real model. The classifier's bias gradient $g_b = \sum_i \delta_i$ belongs to
# no modality and adds its own $|g_b|^2$ (the paper's $f_T$ has none, or counts it in $g_T$ without
# splitting it); under attention fusion the attention scorer's gradient adds another such term. The
# library calls their sum $|g_\text{other}|^2$.
#
# ### How the printed Proposition 1 reads
#
# BalGrad prints Proposition 1 (Section 3.1, Eq. 1; the same statement and its proof in Appendix A.1)
# in its own symbols, $\lambda$ for our $\eta$ and $\mathcal{L}$ for our $L_T$:
#
# $$\Delta\mathcal{L} = -2\lambda\,(g_T^v\cdot g_T^l)
#   - \lambda \sum_{i \in \{v, l, T\}} \left(g_i\cdot g_i + g_T^i\cdot g_T^i\right) + O(\lambda^2).$$
#
# The cross term stands **outside** the sum, so it is not dropped. The one slip is the index set:
#
# - **Read with $i \in \{v, l\}$**, the line is
#   $-2\eta\, g_T^v\cdot g_T^l - \eta(|g_v|^2 + |g_T^v|^2 + |g_l|^2 + |g_T^l|^2)$: term by term the boxed line
#   above. This is also what the proof's second-to-last line,
#   $-\lambda(g_v^\top g_v + g_l^\top g_l) - \lambda (g_T^l + g_T^v)^\top (g_T^l + g_T^v)$, expands to.
# - **Read literally, with $i = T$ included**, it adds $g_T\cdot g_T + g_T^T\cdot g_T^T$. The first is the
#   classifier counted a second time ($|g_T|^2 = |g_T^v|^2 + |g_T^l|^2 + 2 g_T^v\cdot g_T^l$), the second is
#   not defined (take it as 0). The predicted rate becomes branches $+\,2\cdot$heads $+\,4\, g_T^v\cdot g_T^l$,
#   i.e. the corrected rate plus $|g_T|^2$.
#
# (The proof in Appendix A.1 also has two typesetting slips on the way, a missing "+" between the
# $g_v$ and $g_l$ terms and a doubled "++" before $O(\lambda^2)$; neither changes the algebra.)
#
# ### What the fusion does to the cross term (BalGrad Appendix A.1)
#
# - **Concatenation**, $e_{\mathrm{fus}} = (e_v, e_l)$: $t_v = (e_v, 0)$ and $t_l = (0, e_l)$, so $g_T^v$ lives
#   in the columns of $W$ that read $e_v$ and $g_T^l$ in the others. Disjoint blocks:
#   $g_T^v \cdot g_T^l = 0$ **exactly**, whatever the data. (The appendix says concatenation "may" make the
#   two gradients "more independent, potentially lowering" the cross term; it is in fact identically 0.)
# - **Sum**, $e_{\mathrm{fus}} = e_v + e_l$: $t_m = e_m$, and
#   $g_T^v\cdot g_T^l = \sum_{i,j} (\delta_i\cdot\delta_j)(e_{v,i}\cdot e_{l,j})$, generally non-zero.
# - **Attention**, $e_{\mathrm{fus}} = a_v e_v + a_l e_l$ with $a = \mathrm{softmax}(s(e_v), s(e_l))$ per sample:
#   $t_m = a_m e_m$, a sum with weights that depend on both modalities; the cross term is generally
#   non-zero.
#
# ## 2. Measuring Proposition 1 on a real model
#
# A small late-fusion model on the emoji features (image and text), trained briefly for each fusion
# (with unimodal heads, which section 3 needs and which the task loss does not touch). Then, on a
# fixed batch, `theory.proposition1_check` takes the step $\theta \leftarrow \theta - \eta g$ for $\eta$ from
# $10^{-5}$ to $10^{-2}$ and compares the actual $\Delta L_T$ with the prediction, in float64 so that
# round-off stays far below the $\eta^2$ residual. The slope is the median of the pairwise slopes
# (`theory.loglog_slope`): a ReLU network is only piecewise smooth, and a step that switches a unit on
# or off can bend the residual at one step size.

# %%
features = load_features("emoji", "train")
image, text = features.modalities
batch = torch.randperm(len(features), generator=torch.Generator().manual_seed(0))[:BATCH]
inputs = {m: x[batch] for m, x in features.features.items()}
labels = features.labels[batch]
print(f"emoji train: {len(features)} samples, modalities {features.modalities}, "
      f"{len(features.class_names)} classes; checks on a batch of {len(labels)}")

models = {}
for fusion in ("concat", "sum", "attention"):
    models[fusion] = train(features, "joint_unimodal_heads", epochs=WARMUP_EPOCHS, fusion=fusion, seed=0,
                           show_progress=False).model

# %%
checks = {fusion: theory.proposition1_check(model, inputs, labels, features.task) for fusion, model in models.items()}
for fusion, check in checks.items():
    terms = ", ".join(f"{name} {value:.3g}" for name, value in check.terms.items())
    print(f"{fusion:>9}: slope {check.slope:.3f}; relative residual at η=1e-5: "
          f"{abs(check.residual[0] / check.predicted[0]):.1e}; terms: {terms}")
    assert 1.8 <= check.slope <= 2.2, f"{fusion}: residual slope {check.slope} is not second order"

# %%
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
for fusion, check in checks.items():
    left.plot(check.step_sizes, check.actual / check.predicted, "o-", label=fusion)
    right.loglog(check.step_sizes, np.abs(check.residual), "o-", label=f"{fusion} (slope {check.slope:.2f})")
concat = checks["concat"]
right.loglog(concat.step_sizes, np.abs(concat.residual[0]) * (concat.step_sizes / concat.step_sizes[0]) ** 2,
             "--", color="gray", label="∝ η²")
left.axhline(1, color="gray", linewidth=0.8)
left.set(xscale="log", xlabel="step size η", ylabel="actual ΔL_T / predicted ΔL_T",
         title="the first-order prediction becomes exact as η → 0")
right.set(xlabel="step size η", ylabel="|actual − predicted|", title="the residual is O(η²)")
left.legend()
right.legend()
figure.tight_layout()
plt.show()

# %% [markdown]
# **Figure 3.1.** Left: the actual loss change divided by the first-order prediction, for each fusion.
# Look for the curves to meet the line at 1 as $\eta$ shrinks and to leave it at the largest steps.
# Right: the absolute residual on log-log axes; a correct first-order prediction runs parallel to the
# grey $\eta^2$ guide (the slopes are in the legend).
#
# The readings of the printed equation (`theory.proposition1_readings`), on the same steps:
# `corrected` (the boxed line), `over_v_l` (Eq. 1 with $i \in \{v, l\}$) and `literal` (Eq. 1 with
# $i = T$ included, $g_T^T := 0$). The table shows each reading's residual slope and how far its rate
# is from the corrected one.

# %%
readings = {fusion: theory.proposition1_readings(check) for fusion, check in checks.items()}
rows = []
for name in ("corrected", "over_v_l", "literal"):
    cells = []
    for fusion in readings:
        rate = readings[fusion][name].terms["rate"]
        excess = rate / readings[fusion]["corrected"].terms["rate"] - 1
        cells.append(f"slope {readings[fusion][name].slope:.2f}, rate {excess:+.1%}")
    rows.append([f"`{name}`"] + cells)
display(Markdown(stats.markdown_table(["reading"] + [f"{f} fusion" for f in readings], rows)
                 + "\n_rate: the reading's predicted rate relative to the corrected one._\n"))
for fusion in readings:
    np.testing.assert_allclose(readings[fusion]["over_v_l"].predicted, readings[fusion]["corrected"].predicted)
    assert 1.8 <= readings[fusion]["corrected"].slope <= 2.2
    assert readings[fusion]["literal"].slope < 1.5

# %% [markdown]
# What to look for: the first two rows are the same numbers, under every fusion, because Eq. 1 read
# over $\{v, l\}$ *is* the corrected statement. The literal reading adds $|g_T|^2$, and how much that is
# depends on how large the classifier's gradient is next to the branches'; wherever it is visible, its
# residual is first order (slope near 1). Now the cross term itself, from `theory.classifier_split` and
# `theory.cross_term`:

# %%
cross = {fusion: theory.cross_term(theory.classifier_split(model, inputs, labels, features.task))
         for fusion, model in models.items()}
for fusion, value in cross.items():
    print(f"{fusion:>9}: g_T^v·g_T^l = {value['absolute']: .3e}   "
          f"relative to |g_T^v||g_T^l|: {value['relative']: .3e}")
assert cross["concat"]["absolute"] == 0.0
assert abs(cross["sum"]["relative"]) > 1e-3 and abs(cross["attention"]["relative"]) > 1e-3
literal_excess = {f: readings[f]["literal"].terms["rate"] / readings[f]["corrected"].terms["rate"] - 1
                  for f in readings}

measured_on = f"emoji, one batch of {len(labels)}, seed 0, float64"
display(Markdown(box(
    "balgrad-prop1",
    "residual slopes of the corrected statement " + ", ".join(f"{f} {c.slope:.2f}" for f, c in checks.items())
    + "; relative cross term " + ", ".join(f"{f} {v['relative']:.2g}" for f, v in cross.items()) + f" ({measured_on}).",
    "read over i ∈ {v, l}, the printed line is the corrected statement, which holds to second order under all "
    "three fusions. The cross term is exactly zero under concatenation, not merely lower.",
)))
display(Markdown(box(
    "balgrad-prop1-literal",
    "the rate of the literal i ∈ {v, l, T} reading is higher than the corrected one's by "
    + ", ".join(f"{f} {e:.1%}" for f, e in literal_excess.items()) + f" ({measured_on}).",
    "only adding i = T is wrong: it counts the classifier's |g_T|² twice, an error of first order in λ.",
)))

# %% [markdown]
# ### What Proposition 1 does and does not say about balance
#
# BalGrad's own architecture fuses by concatenation (Section 3.1; Appendix B.2). There the cross term is
# identically zero, and Eq. 1 becomes
#
# $$\Delta L_T = -\eta\left(|g_v|^2 + |g_T^v|^2\right) - \eta\left(|g_l|^2 + |g_T^l|^2\right)
#   - \eta\,|g_\text{other}|^2 + O(\eta^2) = -\eta\,\|\nabla L_T\|^2 + O(\eta^2) \le 0 \quad\text{(to first order).}$$
#
# That is the first-order decrease of **any** gradient step on **any** differentiable loss, written out
# block by block. It holds for a model that uses both modalities equally and for one that ignores a
# modality, so by itself it cannot tell the two apart.
#
# What it does support:
#
# - a bookkeeping of one plain gradient step: each modality's parameter blocks add a non-negative
#   amount, $|g_m|^2 + |g_T^m|^2$, to the first-order decrease; a modality with larger gradients adds more
#   (the sense in which Section 3.1 says larger gradients "substantially impact loss reduction");
# - under sum or attention fusion, a real interaction: the cross term can add to the decrease or eat
#   into it (section 2 measured its size).
#
# What it does not support on its own:
#
# - that a larger share of the decrease is a *bias* or harms the impaired-modality scores: Eq. 1 has no
#   term that compares a modality's share with what that modality could contribute, and it is about the
#   fused loss $L_T$ only, not the unimodal losses whose curves (Fig. 2b) motivate the method;
# - the remark under Eq. 1 that conflicting directions of $g_T^v$ and $g_T^l$ unbalance the loss reduction,
#   for BalGrad's architecture: there the cross term is zero and only the magnitudes remain;
# - that the split is a property of the model: the same function can be written with rescaled
#   parameters, and the split moves (checked below);
# - the actual training step: BalGrad trains with Adam (Appendix B.3), whose step is not $-\eta g$, so the
#   decrease is not $\|\nabla L_T\|^2$ (exercise 4);
# - the methods built on it: Section 4.3 reads the faster convergence with reweighting (Fig. 6) as
#   support for Proposition 1, but Eq. 1 contains neither the KL loss nor its weights, so that support is
#   by analogy, not by derivation.
#
# A computed check on the concatenation model. `theory.proposition1_shares` splits the first-order
# decrease by modality. `theory.rescaled_branch(model, m, c)` multiplies branch $m$'s weights and bias by
# $c$ and divides the head columns that read $e_m$ by $c$: a ReLU branch is positively homogeneous, so
# the rescaled model computes the same function, while $g_m$ becomes $g_m/c$ and $g_T^m$ becomes $c\,g_T^m$.
# Next to them, the model's accuracy with each modality missing (BalGrad's protocol, chapter 1).

# %%
concat_model = models["concat"]
as_trained = theory.proposition1_shares(checks["concat"])
smaller = min((image, text), key=as_trained.get)   # rescale the branch with the smaller share
RESCALINGS = (1.0, 4.0, 16.0, 64.0)
rows, shares_of = [], {}
for factor in RESCALINGS:
    rescaled = theory.rescaled_branch(concat_model, smaller, factor)
    check = theory.proposition1_check(rescaled, inputs, labels, features.task)
    shares_of[factor] = theory.proposition1_shares(check)
    with torch.no_grad():
        same = float((rescaled(inputs).logits - concat_model(inputs).logits).abs().max())
    assert same < 1e-4 and shares_of[factor]["cross"] == 0.0 and (check.predicted < 0).all()
    rows.append([f"{factor:g}", f"{same:.1e}", f"{shares_of[factor][image]:.1%}", f"{shares_of[factor][text]:.1%}",
                 f"{shares_of[factor]['other']:.1%}", f"{sum(check.terms.values()):.3g}"])
display(Markdown(stats.markdown_table(
    [f"{smaller} branch scaled by c", "max |Δ logits|", f"share of {image}", f"share of {text}", "share unsplit",
     "‖∇L_T‖²"], rows)))
scores = evaluate(concat_model, Experiment("emoji").test_source(), ratios=(), noisy=False)
costly = min(scores.missing, key=scores.missing.get)
larger_share = {factor: max((image, text), key=shares.get) for factor, shares in shares_of.items()}
display(Markdown(
    f"As trained, Proposition 1 gives {as_trained[image]:.1%} of this step's first-order decrease to the "
    f"{image} blocks and {as_trained[text]:.1%} to the {text} blocks. The same function, with the {smaller} "
    f"branch rescaled, gives the {smaller} anything from {min(s[smaller] for s in shares_of.values()):.1%} to "
    f"{max(s[smaller] for s in shares_of.values()):.1%}, and the larger share goes to "
    + ", ".join(f"the {larger_share[factor]} at c = {factor:g}" for factor in RESCALINGS)
    + f". The model scores {scores.full:.1f} on the full test set, {scores.missing[image]:.1f} with the {image} "
    f"missing and {scores.missing[text]:.1f} with the {text} missing: losing the {costly} costs it more, for every "
    "one of these parametrisations alike. The split is a bookkeeping of one step in one parametrisation, not a "
    "measure of which modality the model relies on."))

# %% [markdown]
# ## 3. Proposition 2: task and KL gradients
#
# BalGrad adds a mutual KL loss between the unimodal predictions,
# $L_{kl} = \mathrm{KL}(p^v\|p^l) + \mathrm{KL}(p^l\|p^v)$ (`balgrad.mutual_kl`). In Proposition 2 (Section 3.2.2,
# Eq. 5; proof in Appendix A.2) BalGrad writes $\mathcal{G}^\tau = \{g_v, g_l, g_\tau\}$ and
# $\mathcal{G}^{kl} = \{g_v^{kl}, g_l^{kl}, 0\}$ for the two gradients over all blocks; we write $G^\tau$ and
# $G^{kl}$. $G^{kl}$ reaches the embedding layers (and the unimodal heads) but not the fused classifier. A
# joint step $\theta \leftarrow \theta - \eta (G^\tau + G^{kl})$ changes the joint loss $L = L_T + L_{kl}$ by
#
# $$\Delta L = -\eta\, \nabla L \cdot (G^\tau + G^{kl}) + O(\eta^2)
#   = -\eta \left(\|G^\tau\|^2 + \|G^{kl}\|^2 + 2\, G^\tau\!\cdot G^{kl}\right) + O(\eta^2),$$
#
# because $\nabla L = G^\tau + G^{kl}$; that is Eq. 5. The inner product lives on the embedding layers only
# (the one block where both are non-zero). A **conflict**, $G^\tau\cdot G^{kl} < 0$, eats into the
# decrease. The same step changes the task loss alone by
#
# $$\Delta L_T = -\eta\, G^\tau \cdot (G^\tau + G^{kl}) + O(\eta^2)
#   = -\eta \left(\|G^\tau\|^2 + G^\tau\!\cdot G^{kl}\right) + O(\eta^2),$$
#
# so a conflict slows the task loss directly, and one with $G^\tau\cdot G^{kl} < -\|G^\tau\|^2$ makes
# it rise. For the first line to be a Taylor expansion $G^{kl}$ must be the true gradient of $L_{kl}$,
# so this check does not detach the KL targets (`theory.task_and_kl_losses`; the kit's BalGrad detaches
# them by default, chapter 4).

# %%
joint_check, task_check = theory.proposition2_check(models["concat"], inputs, labels, features.task)
terms = joint_check.terms
print(f"‖G^τ‖² = {terms['task']:.4g}, ‖G^kl‖² = {terms['kl']:.4g}, 2 G^τ·G^kl = {terms['inner']:.4g}")
print(f"joint loss: residual slope {joint_check.slope:.3f};  task loss alone: residual slope {task_check.slope:.3f}, "
      f"relative residual at η=1e-5 {abs(task_check.residual[0] / task_check.predicted[0]):.1e}")
without_inner = theory.FirstOrderCheck(joint_check.step_sizes, -joint_check.step_sizes * (terms["task"] + terms["kl"]),
                                       joint_check.actual, {})
print(f"the same prediction without the inner product: residual slope {without_inner.slope:.3f}, "
      f"residual at η=1e-5 {abs(without_inner.residual[0]):.2e} vs {abs(joint_check.residual[0]):.2e}")
assert 1.8 <= joint_check.slope <= 2.2
assert abs(task_check.residual[0] / task_check.predicted[0]) < 1e-2
assert abs(without_inner.residual[0]) > abs(joint_check.residual[0])

# %% [markdown]
# ### How often do task and KL gradients conflict during training?
#
# BalGrad's Table 3 reports the share of iterations in which $g_T \cdot g_{kl} < 0$ on the embedding
# layers:
#
# > **Paper (BalGrad, Table 3, fraction of conflicting gradients, w/o → w/ projection):** UPMC Food-101
# > 0.66 → 0.36, Hateful Memes 0.78 → 0.32, MM-IMDb 0.28 → 0.26 (ViT and BERT features, concatenation,
# > Adam, 20 epochs, batch 128; Appendix B.3).
#
# We train BalGrad on emoji with its projection switched off (`projection=False`) and on, and read the
# recorded `conflict` flag and `cos_task_kl` (both measured *before* any projection).

# %%
runs = {projection: [train(features, "balgrad", projection=projection, epochs=CONFLICT_EPOCHS, seed=seed,
                           show_progress=False) for seed in SEEDS]
        for projection in (False, True)}
conflict_share = {projection: [float(np.mean(r.history["conflict"])) for r in results]
                  for projection, results in runs.items()}
for projection, shares in conflict_share.items():
    print(f"projection {'on ' if projection else 'off'}: conflict share {summarize(shares).text(2)}")

figure, axis = plt.subplots(figsize=(7, 3.5))
for projection, results in runs.items():
    cosines = np.concatenate([r.history["cos_task_kl"] for r in results])
    axis.hist(cosines, bins=40, alpha=0.6, label=f"projection {'on' if projection else 'off'}")
axis.axvline(0, color="black", linewidth=0.8)
axis.set(xlabel="cos(g_T, g_kl) on the embedding layers, before projection", ylabel="iterations",
         title=f"BalGrad on emoji, {CONFLICT_EPOCHS} epochs, {len(SEEDS)} seed(s)")
axis.legend()
plt.show()

# %% [markdown]
# **Figure 3.2.** The cosine between the task and KL gradients on the embedding layers at every
# iteration, measured before the projection acts, for BalGrad trained without and with its projection.
# The mass left of the black line is the share of conflicting iterations; compare the two histograms'
# mass there (the numbers are printed above and in the box below).

# %%
with_minus_without = paired_difference(conflict_share[True], conflict_share[False])
if with_minus_without.differs:
    direction = "less" if with_minus_without.mean < 0 else "more"
    reading = f"on emoji the conflicts are {direction} frequent with the projection"
else:
    reading = f"on emoji, with against without the projection: {with_minus_without.verdict}"
display(Markdown(box(
    "balgrad-table3-conflicts",
    f"emoji, {CONFLICT_EPOCHS} epochs: without projection {summarize(conflict_share[False]).text(2)}, "
    f"with projection {summarize(conflict_share[True]).text(2)}; with minus without, seed by seed: "
    f"{with_minus_without.text(2)}.",
    f"{reading}; different data, encoders and training length, so only the direction is comparable.",
)))

# %% [markdown]
# ## 4. Taylor lab
#
# `modbal_lib.whatif.taylor_lab(step_size, fusion)` trains a small model on the SeeSaw data (it ships
# with the package and trains in a second) and shows, for one step size, the predicted and actual loss
# change, together with the whole curve over step sizes (the lab's axes say λ, BalGrad's symbol for our
# $\eta$). Here it is with its defaults:

# %%
figure, numbers = taylor_lab(step_size=0.01, fusion="concat")
print(f"η = {numbers['step_size']}: predicted ΔL {numbers['predicted']:.5f}, actual {numbers['actual']:.5f}, "
      f"relative error {numbers['relative_error']:.2%}, residual slope {numbers['slope']:.2f}")
plt.show()

# %% [markdown]
# **Figure 3.3.** The Taylor lab at its defaults. Left: the loss change per unit step against the step
# size; the first-order prediction is the flat line, and the actual change meets it for small steps and
# leaves it as the step grows (the chosen step is marked). Right: the residual on log-log axes next to a
# slope-2 guide.
#
# And as a panel: move the slider or change the fusion, and the lab re-runs (in JupyterLab; in the
# static book the panel is not interactive).

# %% tags=["nbval-ignore-output"]
taylor_panel()

# %% [markdown]
# **Figure 3.4.** The same lab as an interactive panel (a step-size slider and a fusion menu). In the
# static book it shows its first drawing only; in JupyterLab, watch the marked point slide along the
# curve and the cross term appear when you switch from concatenation to sum or attention.

# %% [markdown]
# ## Summary

# %%
summary = [
    "Read over i ∈ {v, l}, BalGrad's printed Eq. 1 is the corrected Proposition 1, term by term; its residual "
    "slope here is " + ", ".join(f"{f} {c.slope:.2f}" for f, c in checks.items())
    + " (2 means right to first order). Only the literal reading with i = T adds a term (the classifier twice): "
    "slopes " + ", ".join(f"{f} {readings[f]['literal'].slope:.2f}" for f in readings) + ".",
    f"Under concatenation the cross term is exactly {cross['concat']['absolute']:g}; under sum and attention its "
    f"cosine is {cross['sum']['relative']:.2g} and {cross['attention']['relative']:.2g}.",
    "Under concatenation Proposition 1 is −η‖∇L_T‖², the decrease of any gradient step: it splits the "
    f"decrease by modality ({as_trained[image]:.1%} {image}, {as_trained[text]:.1%} {text} here), but the same "
    "function "
    f"rescaled gives the {smaller} anything from {min(s[smaller] for s in shares_of.values()):.1%} to "
    f"{max(s[smaller] for s in shares_of.values()):.1%}; by itself it says nothing about balance.",
    f"Proposition 2 holds to first order (residual slope {joint_check.slope:.2f}). On emoji the share of iterations "
    f"whose task and KL gradients conflict is {summarize(conflict_share[False]).text(2)} without the projection and "
    f"{summarize(conflict_share[True]).text(2)} with it (BalGrad's Table 3 reports 0.66 → 0.36 on Food-101).",
]
display(Markdown("\n".join(f"- {point}" for point in summary)))

# %% [markdown]
# ## Exercises
#
# 1. **Where the first order stops.** For the concatenation model of section 2, find the step size at
#    which the actual loss change is half the predicted one, and relate it to the curvature along the
#    gradient, $g^\top H g / \|g\|^2$.
#
#    <details><summary>Hint</summary>
#
#    The residual is $\tfrac{\eta^2}{2} g^\top H g$ to leading order, so the residual at a small step gives
#    $g^\top H g$. Setting $-\eta\|g\|^2 + \tfrac{\eta^2}{2} g^\top H g = -\tfrac{\eta}{2}\|g\|^2$ gives the step.
#
#    </details>
# 2. **The projection protects the KL step, not the task loss.** Let $g$ and $k$ be the task and KL
#    gradients on the embedding layers, $p = g\cdot k < 0$, and replace $g$ by BalGrad's projection
#    $g_\perp = g - \frac{p}{\|k\|^2}k$ in the joint step. Show that to first order
#    $\Delta L_T = -\eta(\|G^\tau\|^2 + p - p^2/\|k\|^2)$, a *smaller* decrease than without the
#    projection, while $\Delta L_{kl} = -\eta\|G^{kl}\|^2$, the decrease the KL step would have alone.
#    Check both numerically by building the edited direction and calling `theory.first_order_check`.
#
#    <details><summary>Hint</summary>
#
#    $G^\tau$ is zero on the unimodal heads and $G^{kl}$ is zero on the fused head, so every inner product
#    reduces to the embedding layers. `theory.task_and_kl_losses` gives both losses with the KL targets
#    attached; if the batch you pick has $p \ge 0$, nothing is projected, so try another batch.
#
#    </details>
# 3. **Three modalities.** Load `load_features("seesaw", "train", num_modalities=3)` and run
#    `theory.proposition1_check` and `theory.cross_term` under sum fusion. How many cross terms are
#    there, and does the corrected Proposition 1 still hold?
#
#    <details><summary>Hint</summary>
#
#    $|\sum_m g_T^m|^2$ expands into one square per modality and one cross term per *pair*. The check's
#    terms sum to $\|g\|^2$ whatever the number of modalities.
#
#    </details>
# 4. **Adam's first step.** The kit, like BalGrad (Appendix B.3), trains with Adam. Adam's very first
#    update is (up to its $\epsilon$) $-\eta\,\mathrm{sign}(g)$. What is its first-order loss change, and how
#    does it split between the two modalities compared with Proposition 1's split?
#
#    <details><summary>Hint</summary>
#
#    For any direction $d$, $\Delta L_T \approx -\eta\, g\cdot d$; with $d = \mathrm{sign}(g)$ that is
#    $-\eta\|g\|_1$. Split $g\cdot d$ over the same blocks as `theory.proposition1_shares` (each branch and the
#    head columns that read its embedding).
#
#    </details>
#
# ## Solutions

# %% [markdown]
# ### Solution to exercise 1
#
# Along the gradient, $\Delta L_T(\eta) = -\eta\|g\|^2 + \tfrac{\eta^2}{2} g^\top H g + O(\eta^3)$. The ratio
# actual/predicted is $1 - \tfrac{\eta}{2}\, g^\top H g/\|g\|^2$, which is one half at
# $\eta_{1/2} = \|g\|^2 / g^\top H g$, the inverse of the curvature along the normalised gradient. The cell
# estimates the curvature from the residual at a small step, predicts $\eta_{1/2}$ and measures the ratio
# around it. If the measured ratio at $\eta_{1/2}$ is far from one half, the third-order terms (or a ReLU
# switch) already matter there.

# %% tags=["solution", "hide-input"]
model64, inputs64, labels64 = theory.as_float64(concat_model, inputs, labels)
params64 = list(model64.parameters())
gradient64 = loss_grads(task_loss(features.task, model64(inputs64).logits, labels64), params64)
squared_norm = float(flatten(gradient64).pow(2).sum())
small = 1e-4
change = theory.loss_changes(lambda: task_loss(features.task, model64(inputs64).logits, labels64),
                             params64, gradient64, [small])[0]
curvature = 2 * (change + small * squared_norm) / small**2          # g^T H g from the O(η²) residual
half_step = squared_norm / curvature
probe = half_step * np.array([0.5, 1.0, 2.0])
ratios = theory.loss_changes(lambda: task_loss(features.task, model64(inputs64).logits, labels64),
                             params64, gradient64, probe) / (-probe * squared_norm)
display(Markdown(
    f"‖g‖² = {squared_norm:.4g}, gᵀHg ≈ {curvature:.4g}, curvature along the gradient gᵀHg/‖g‖² ≈ "
    f"{curvature / squared_norm:.4g}; predicted half-way step η½ = {half_step:.3g}. Measured actual/predicted: "
    + ", ".join(f"{r:.2f} at η = {s:.3g}" for s, r in zip(probe, ratios)) + "."))

# %% [markdown]
# ### Solution to exercise 2
#
# The edited direction is $G^\tau_\perp + G^{kl}$, where $G^\tau_\perp$ has $g_\perp$ on the embedding layers and
# $g_T$ on the fused head. Then $G^\tau\cdot G^\tau_\perp = \|G^\tau\|^2 - p^2/\|k\|^2$ and $G^\tau\cdot G^{kl} = p$, so
# $\Delta L_T \approx -\eta(\|G^\tau\|^2 + p - p^2/\|k\|^2)$: a conflicting $p$ already slows the task loss, and the
# projection removes a further $p^2/\|k\|^2$. For the KL loss, $k\cdot g_\perp = 0$ by construction, so
# $\Delta L_{kl} \approx -\eta\|G^{kl}\|^2$. The cell searches a few batches for one with $p < 0$, builds the
# direction and checks both predictions (residual slope 2 means the first-order prediction is right).

# %% tags=["solution", "hide-input"]
def projected_direction_checks(batch_seed):
    """First-order checks of ΔL_T and ΔL_kl for the joint step with BalGrad's projected task gradient, or None."""
    pick = torch.randperm(len(features), generator=torch.Generator().manual_seed(batch_seed))[:BATCH]
    model, batch_inputs, batch_labels = theory.as_float64(
        concat_model, {m: x[pick] for m, x in features.features.items()}, features.labels[pick])
    params = list(model.parameters())
    task_value, kl_value = theory.task_and_kl_losses(model, batch_inputs, batch_labels, features.task)
    task_grads, kl_grads = loss_grads(task_value, params), loss_grads(kl_value, params)
    branch_ids = {id(p) for m in model.modalities for p in model.branch_parameters(m)}
    on_branches = [id(p) in branch_ids for p in params]
    g = flatten([t for t, keep in zip(task_grads, on_branches) if keep])
    k = flatten([t for t, keep in zip(kl_grads, on_branches) if keep])
    p = float(g @ k)
    if p >= 0:
        return None
    scale = p / float(k @ k)
    direction = [t - scale * kk + kk if keep else t + kk for t, kk, keep in zip(task_grads, kl_grads, on_branches)]
    task_norm, kl_norm = float(flatten(task_grads).pow(2).sum()), float(flatten(kl_grads).pow(2).sum())
    task_terms = {"task": task_norm, "inner": p, "projection": -p * p / float(k @ k)}

    def losses():
        return theory.task_and_kl_losses(model, batch_inputs, batch_labels, features.task)

    task_side = theory.first_order_check(lambda: losses()[0], params, direction, task_terms, theory.STEP_SIZES)
    kl_side = theory.first_order_check(lambda: losses()[1], params, direction, {"kl": kl_norm}, theory.STEP_SIZES)
    return p, task_side, kl_side


found = next((result for seed in range(20) if (result := projected_direction_checks(seed)) is not None), None)
if found is None:
    display(Markdown("No batch among the 20 tried has a conflict (p < 0): nothing would be projected."))
else:
    p, task_side, kl_side = found
    display(Markdown(
        f"A batch with p = g·k = {p:.3g}. ΔL_T: predicted rate ‖G^τ‖² + p − p²/‖k‖² = "
        f"{sum(task_side.terms.values()):.4g} (without the projection it would be "
        f"{task_side.terms['task'] + p:.4g}), residual slope {task_side.slope:.2f}. ΔL_kl: predicted rate "
        f"‖G^kl‖² = {kl_side.terms['kl']:.4g}, residual slope {kl_side.slope:.2f}."))

# %% [markdown]
# ### Solution to exercise 3
#
# With $M$ modalities, $|\sum_m g_T^m|^2 = \sum_m |g_T^m|^2 + 2\sum_{a<b} g_T^a\cdot g_T^b$: there are $M(M-1)/2$
# cross terms, three for three modalities, and under sum fusion none of them needs to vanish. The
# corrected statement is still $-\eta\|g\|^2$, so its residual slope should stay near 2; `theory.cross_term`
# adds the pairs up.

# %% tags=["solution", "hide-input"]
three = load_features("seesaw", "train", num_modalities=3, num_samples=2000)
three_model = train(three, "joint", epochs=1, fusion="sum", hidden=32, seed=0, show_progress=False).model
three_inputs = {m: x[:BATCH] for m, x in three.features.items()}
three_check = theory.proposition1_check(three_model, three_inputs, three.labels[:BATCH], three.task)
three_split = theory.classifier_split(three_model, three_inputs, three.labels[:BATCH], three.task)
pairs = [(a, b) for i, a in enumerate(three.modalities) for b in three.modalities[i + 1:]]
pair_values = {f"{a}·{b}": float((three_split[a] * three_split[b]).sum()) for a, b in pairs}
display(Markdown(
    f"{len(three.modalities)} modalities {three.modalities}: {len(pairs)} cross terms, "
    + ", ".join(f"{k} = {v:.3g}" for k, v in pair_values.items())
    + f" (sum {theory.cross_term(three_split)['absolute']:.3g}); the corrected statement's residual slope is "
    f"{three_check.slope:.2f}."))

# %% [markdown]
# ### Solution to exercise 4
#
# For $d = \mathrm{sign}(g)$, $g\cdot d = \sum_j |g_j| = \|g\|_1$, so $\Delta L_T \approx -\eta\|g\|_1 \le 0$: still a
# decrease, but split by the **absolute values** of the gradient entries, not their squares. A block with
# many small entries weighs more under $\ell_1$ than under $\ell_2^2$, so the two splits can differ a lot. The
# cell computes both for the concatenation model and checks the first-order prediction of the sign step.

# %% tags=["solution", "hide-input"]
sign_direction = [g.sign() for g in gradient64]
width = model64.hidden


def block_sums(values):
    """sum over each modality's blocks (its branch, and the fused-head columns that read its embedding)."""
    value_of = {id(p): v for p, v in zip(params64, values)}
    sums = {}
    for index, m in enumerate(model64.modalities):
        branch = sum(float(value_of[id(p)].sum()) for p in model64.branch_parameters(m))
        head = float(value_of[id(model64.head.weight)][:, index * width:(index + 1) * width].sum())
        sums[m] = branch + head
    return sums


l1, l2 = block_sums([g.abs() for g in gradient64]), block_sums([g.pow(2) for g in gradient64])
total_l1, total_l2 = float(flatten(gradient64).abs().sum()), squared_norm
sign_check = theory.first_order_check(
    lambda: task_loss(features.task, model64(inputs64).logits, labels64), params64, sign_direction,
    {"l1": total_l1}, np.logspace(-8, -5, 7))
display(Markdown(stats.markdown_table(
    ["step", f"share of {image}", f"share of {text}"],
    [["gradient step, −η g (Proposition 1)", f"{l2[image] / total_l2:.1%}", f"{l2[text] / total_l2:.1%}"],
     ["Adam's first step, −η sign(g)", f"{l1[image] / total_l1:.1%}", f"{l1[text] / total_l1:.1%}"]])
    + f"\n\nThe sign step's first-order prediction −η‖g‖₁ has residual slope {sign_check.slope:.2f}."))
