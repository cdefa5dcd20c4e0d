# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 0. How to use this book
#
# **modbal** is a notebook textbook on *dominant modality bias*: a multimodal model leans on
# the modality that is easiest to learn and collapses when that modality is missing or noisy.
# Every chapter is a notebook you can run, change and re-run; every number it shows is
# computed by the small library `modbal_lib`, which has unit tests.
#
# **You will learn:** who the book is written for and what it assumes you know; the road through
# chapters 1–7; how the three papers it teaches relate to each other (what each one edits and what
# each one assumes); how to open and run the chapters (the paired `.py`/`.ipynb` files, *fast* and
# *full* mode, a GPU, where data and caches live); how the book judges whether two methods differ;
# how it quotes the papers and cites other work; and the notation and the glossary every chapter uses.
#
# **Paper sections:** the three papers side by side. BalGrad [Kim et al., 2025]: Section 3.1 (the
# analysis), Section 3.2 (the method), Section 4.1 and Section 4.2 with Table 1 (the protocol and its
# measures). CGGM [Guo et al., 2024]:
# Section 3 (problem setting, gradient analysis, the method) and Algorithm 1. GOAL [Anonymous, 2025]:
# Section 3 (problem formulation, AL, GO) and Appendix A.1 (pseudocode).

# %%
import jupytext
import torch
from IPython.display import Markdown, display
from scipy import stats as scipy_stats

import modbal_lib
from modbal_lib import references, stats
from modbal_lib.data.impair import NOISY_PIXEL_SHARE, NOISY_TOKEN_SHARE
from modbal_lib.evaluate import ImpairmentTable
from modbal_lib.methods.balgrad import kl_schedule
from modbal_lib.methods.goal import adaptive_weights
from modbal_lib.utils import environment_report

# %% tags=["parameters"]
# Papermill overrides this cell; nbval (which cannot) reads MODBAL_FAST from the environment.
FAST = modbal_lib.fast_mode()

# %% [markdown]
# ## 1. Who this book is for
#
# For readers who train multimodal models, or want to, and who want to know *why* a model ends up
# relying on one of its inputs and what the recent gradient-editing methods do about it: graduate
# students, researchers who need to read (and check) the papers, engineers deciding whether one of
# these methods is worth adding to a training loop, and teachers (the README describes graded
# assignments built from the chapters).
#
# **Prerequisites.**
#
# * Python and the basics of PyTorch: tensors, `loss.backward()`, an optimiser step.
# * Calculus: gradients, the chain rule, and the idea of a first-order Taylor expansion (chapter 3
#   derives everything it uses).
# * Probability: softmax, cross-entropy, entropy and the Kullback–Leibler divergence.
# * Linear algebra: dot products, cosines, projecting one vector off another.
# * Statistics: a mean, a standard deviation, a confidence interval (section 5 states the one rule
#   the book uses).
#
# No GPU and no download are needed for the default path: the chapters train small models on
# features of frozen encoders, on two embedded datasets, on a laptop CPU.
#
# ## 2. The road through the book
#
# 1. [Dominant modality bias](01_dominant_modality_bias.ipynb): the definition; BalGrad's missing and
#    noisy protocol (Full, Avg, ΔGap) on the emoji set; unimodal ceilings and negative transfer; why
#    *which* modality dominates depends on the encoder, the preprocessing and how "missing" is encoded.
# 2. [The see-saw in a controlled world](02_seesaw_controlled_world.ipynb): SeeSaw, synthetic data whose
#    information per modality is known; the modality a joint model leans on is the one it learns
#    fastest, not the one that knows the most.
# 3. [Gradients and the first-order view](03_gradients_first_order.ipynb): BalGrad's Propositions 1
#    and 2 by first-order Taylor expansion, checked numerically; the cross term under each fusion;
#    GOAL's appendix claims.
# 4. [BalGrad](04_balgrad.ipynb): mutual KL, loss-based reweighting and its schedule, the projection
#    of conflicting task gradients; the ablation of Table 2 and the conflict statistics of Table 3.
# 5. [CGGM](05_cggm.ipynb): classifier-guided magnitude and direction modulation; the balancing terms
#    over training; what the paper's equations and its released code each compute.
# 6. [GOAL](06_goal.ipynb): entropy-based adaptive leveraging and gradient orthogonalization; the
#    ablation, the temperature, and the feature and parameter readings of its gradients.
# 7. [Head to head](07_head_to_head.ipynb): every method and baseline with the same model, seeds and
#    protocol, on emoji and SeeSaw (and on a real dataset once its features are cached); costs per step;
#    the papers' claims next to what the kit measures.
#
# Chapters 1–3 are the foundation. Chapters 4, 5 and 6 each need chapter 3 and can be read in any
# order; chapter 7 draws on all of them.
#
# ## 3. The three papers and how they relate
#
# All three papers look at the same kind of model, one encoder per modality whose outputs a fusion
# module combines, and they share a diagnosis: during joint training one modality is learned faster
# and the others stay under-trained. They differ in which signal reveals the
# imbalance and in which gradient they edit. The chapters follow the papers' own text; this is the
# map, aspect by aspect (symbols as in section 7).
#
# * **The papers.** BalGrad [Kim et al., 2025], arXiv 2503.13834. CGGM [Guo et al., 2024], NeurIPS 2024,
#   arXiv 2411.01409. GOAL [Anonymous, 2025], an ICLR 2026 submission (OpenReview I3uFqoUZ2Y).
# * **The imbalance each one sees.** BalGrad: the dominant modality's unimodal loss falls first
#   (Sec. 3.1, Fig. 2b), and Proposition 1 ties the decrease of the loss to the magnitudes and
#   directions of the per-modality gradients. CGGM: the dominant modality's gradient magnitude grows
#   fast and the fusion's gradient turns towards it (Sec. 3.2, Fig. 2). GOAL: the two modalities'
#   gradients from the fusion loss point against each other (Sec. 3.2, Fig. 2a).
# * **What each adds to the model.** BalGrad: linear unimodal heads $f_v, f_l$ on the embeddings
#   (Sec. 3.1). CGGM: one classifier $f_i$ per modality, used only in training (Eq. 5). GOAL: unimodal
#   heads $\mathbf{W}^{(m)}$ with their own losses (Eqs. 3–4).
# * **The magnitude edit.** BalGrad: a mutual KL between the unimodal predictions, whose gradients are
#   weighted by the unimodal losses ($W^m$) and by a schedule (Eq. 4). CGGM: each encoder's gradient
#   times a balancing term $B_m^t$ computed from the classifiers' accuracy gains (Eqs. 6–8). GOAL:
#   each modality's fusion gradient $g^{(m)}$ times a weight $w^{(m)}$ computed from the heads'
#   confidences (AL, Eqs. 6–8).
# * **Who gets more.** BalGrad: the modality with the higher unimodal loss gets the larger KL weight.
#   CGGM: the modality whose classifier gains least gets the larger $B$. GOAL: the *more confident*
#   modality gets the larger $w$ (Sec. 3.3 motivates this by the inverse-variance weighting of ARL
#   [Wei et al., 2025]).
# * **The direction edit.** BalGrad: the task gradient is projected off the KL gradient when the two
#   conflict, $g_T^\perp$ (Eq. 6). CGGM: a loss $L_{gm}$, weighted by $\lambda$, turns the fusion head's
#   gradient towards the classifiers' gradients (Eq. 12). GOAL: the conflicting component between the
#   modalities' fusion gradients is removed (GO, Eqs. 9–10); $G^{(m)}$ is left alone.
# * **What each assumes.** BalGrad: two modalities (image and text), frozen encoders with trained
#   embedding layers (Sec. 4.1), late concatenation (other fusions in Appendix C.1), classification.
#   CGGM: any number of modalities and any task with a metric computed at every iteration
#   (Sec. 3.3.1); encoders trained with the rest. GOAL: a "multi-encoder" model with unimodal heads
#   (Sec. 3.1), an uncertainty for each prediction (the entropy for classification, Sec. 3.3); Eq. 7
#   is written for two modalities.
# * **How each is judged.** BalGrad: the missing/noisy protocol, Full, Avg. and ΔGap on Food-101,
#   Hateful Memes and MM-IMDb (Sec. 4.1, Table 1). CGGM: the score on unimpaired test data on UPMC
#   Food-101, CMU-MOSI, IEMOCAP and BraTS 2021 (Sec. 4.3, Tables 2–4). GOAL: accuracy and macro F1 on
#   unimpaired test data, CREMA-D first (Sec. 4.2, Table 1).
#
# Two things follow for a reader. First, "balance" means three different things: BalGrad wants the two
# impaired scores close to each other, CGGM and GOAL want the unimpaired score up; a method can do one
# without the other, so chapter 7 measures both. Second, the magnitude edits pull in different
# directions: BalGrad and CGGM give the larger weight to the modality that lags, GOAL's AL gives more to the one
# that is surer of itself. The kit runs all three on one model (frozen encoder $E_m$, trainable
# branch $h_m$, fused head $f_T$, unimodal heads $f_m$), so where a paper edits the gradient of a
# trained encoder, the kit edits the gradient that reaches $h_m$: chapters 5 and 6 say where that is
# a reading of the paper rather than the paper.
#
# **The datasets the papers use**, named in the chapters: UPMC Food-101 [Wang et al., 2015],
# Hateful Memes [Kiela et al., 2020] and MM-IMDb [Arevalo et al., 2017] (BalGrad); CMU-MOSI
# [Zadeh et al., 2016], IEMOCAP [Busso et al., 2008] and BraTS 2021 [Baid et al., 2021] (CGGM);
# CREMA-D [Cao et al., 2014] (GOAL). BalGrad encodes images with ViT [Dosovitskiy et al., 2021] and
# text with BERT [Devlin et al., 2019]; GOAL's audio and visual backbones are ResNet-18s
# [He et al., 2016].
#
# **The baselines and the ideas the methods build on**, each in one line (the kit implements those
# marked with its method name):
#
# * **OGM-GE** [Peng et al., 2022] (`ogm_ge`): on-the-fly gradient modulation; the modality whose
#   own logits put more probability on the true class has its encoder's gradient scaled down, and
#   Gaussian noise is added to the gradient (the "generalisation enhancement").
# * **MSLR** [Yao and Mihalcea, 2022] (`mslr`): a separate learning rate for each modality's branch
#   of a late-fusion model, taken from the best unimodal runs.
# * **PCGrad** [Yu et al., 2020] (`pcgrad`): from multi-task learning; when two tasks' gradients
#   conflict (negative dot product), each is projected onto the normal plane of the other.
#   BalGrad's Eq. 6 and GOAL's GO are specialisations of it.
# * **Deep Mutual Learning** (DML) [Zhang et al., 2018]: two networks trained side by side, each with
#   a KL term pulling its prediction towards the other's; BalGrad names it among the inspirations of
#   its mutual KL (Sec. 3.2.1).
# * **AGM** [Li et al., 2023]: modulates each modality's gradient by its mono-modal response,
#   estimated with Shapley values (BalGrad's baseline; not in the kit).
# * **G-Blending** [Wang et al., 2020]: weights the unimodal and multimodal losses by how much each
#   overfits (a baseline of CGGM and GOAL; not in the kit). The same paper shows that a multimodal
#   network can be worse than the best unimodal one.
# * **PMR** [Fan et al., 2023]: prototypical modal rebalance, class prototypes per modality used to
#   speed up the slower modality (a baseline of CGGM and GOAL; not in the kit).
#
# Why a model leans on the modality it learns fastest has a name in the wider literature, *gradient
# starvation* [Pezeshki et al., 2021]: chapter 2 builds a world where it can be watched.

# %% [markdown]
# ## 4. Running the book
#
# ### Your environment
# The report below is produced by `modbal_lib.utils.environment_report()`.

# %%
report = environment_report(fast=FAST)
for key, value in report.items():
    print(f"{key:>16}: {value}")

# %% [markdown]
# ### Opening the book
#
# From the root of the repository, after `make book` or `make test` has created `.venv`:
#
# ```bash
# .venv/bin/jupyter lab chapters/
# ```
#
# Each chapter exists twice, as a **pair** kept in sync by [jupytext](https://jupytext.readthedocs.io):
#
# * `NN_slug.py` — the source of truth, a plain Python file in the *percent* format
#   (`# %%` starts a code cell, `# %% [markdown]` a text cell). Easy to diff and review.
# * `NN_slug.ipynb` — the notebook you open in JupyterLab. It is committed **without outputs**.
#
# When you save one of them in JupyterLab (with jupytext installed, as it is in `.venv`), the
# other is updated. From the command line: `jupytext --sync chapters/*.ipynb`.
# Executed copies with all outputs go to `_build/executed/`, never back into `chapters/`.
#
# ### Fast and full mode
#
# Every chapter has a cell tagged `parameters` with `FAST`. Fast mode (`MODBAL_FAST=1`, or
# `FAST=True` passed by papermill) trains fewer epochs on fewer seeds so that each chapter
# finishes in well under a minute on two CPU cores; the test command (and CI) uses it. Full
# mode is what `make book` runs. The text never types a result: every number about the kit's runs
# is printed by the run itself, so a fast-mode run prints its own, noisier, numbers, and the
# sentences printed next to them are generated from those numbers too.
#
# ```bash
# MODBAL_FAST=1 .venv/bin/jupyter lab chapters/        # fast mode in JupyterLab
# .venv/bin/papermill chapters/01_dominant_modality_bias.ipynb out.ipynb -p FAST True
# ```
#
# ### Running on a GPU
#
# `modbal_lib.select_device()` picks CUDA when PyTorch sees a GPU, otherwise the CPU; set
# `MODBAL_DEVICE=cpu` (or `cuda:1`) to force a choice. On a machine with CUDA, install the
# ordinary PyTorch wheel (`make book` does this on its own when no local CPU wheel is present).
#
# ### Where data and caches live
#
# * The embedded datasets (the Noto emoji set, the synthetic see-saw data) ship inside the package:
#   nothing is downloaded for the default path.
# * Encoder features are computed once and cached in `MODBAL_CACHE` (default `~/.cache/modbal`). The
#   default encoders are EfficientNet-Lite0 [Tan and Le, 2019], pretrained on ImageNet
#   [Deng et al., 2009], for images and all-MiniLM-L6-v2 from Sentence-Transformers
#   [Reimers and Gurevych, 2019] for text.
# * Real datasets (Food-101, Hateful Memes, MM-IMDb, CREMA-D) go to `MODBAL_DATA`
#   (default `~/.cache/modbal/datasets`); see `data_scripts/README.md`. Once a dataset's features are
#   cached, `MODBAL_DATASET=food101` (or chapter 7's `DATASET` parameter) makes chapter 7 compare the
#   methods on it too.
# * Every method trains with Adam [Kingma and Ba, 2015] unless a chapter says otherwise; CGGM's
#   released recipe uses AdamW [Loshchilov and Hutter, 2019] (chapter 5).

# %%
print("feature cache :", report["feature cache"])
print("datasets      :", report["datasets folder"])
print("mode          :", "fast" if FAST else "full")

# %% [markdown]
# ## 5. How this book judges a difference
#
# Every training run depends on its seed (initialisation, data order, which samples are impaired),
# so one run proves little: the book trains each setting on several seeds, and one module,
# `modbal_lib.stats`, summarises them. A quantity over seeds is quoted as its mean ± **sample** SD
# (divided by n − 1) with the number of seeds n (`stats.summarize`). Two methods are compared
# **paired, seed by seed** (`stats.paired_difference`): on the same seed both see the same
# initialisation, data order and impairments, so the difference a_s − b_s removes what the seed does to
# both and keeps what the method does. Paired differences scatter much less than the scores themselves,
# so pairing sees differences that two overlapping "mean ± SD" bars hide. The book quotes their mean
# with a t-interval and one of three verdicts: **differs** when the interval excludes 0, **within seed
# noise** when it contains 0 (no difference this number of seeds can tell), **too few seeds** below a
# minimum n, whatever the interval: from two seeds the interval rests on a single spread and the
# t-factor is huge, so its width says little. The cell below states the rule as the code applies it and
# works it through on **made-up numbers**.

# %%
a = [84.1, 86.0, 85.2, 87.3, 85.9]  # ILLUSTRATION ONLY: invented accuracies of "method A" on seeds 0-4
b = [83.0, 85.1, 83.6, 86.4, 84.4]  # ILLUSTRATION ONLY: invented accuracies of "method B" on the same seeds
c = [82.6, 85.5, 83.1, 86.9, 84.1]  # ILLUSTRATION ONLY: a "method C" that beats B on some seeds, not others
t_factor = {n: scipy_stats.t.ppf(0.5 + stats.CONFIDENCE / 2, n - 1) for n in (stats.MIN_SEEDS - 1, len(a))}
display(Markdown(
    f"**The rule** (`modbal_lib.stats`): values over seeds are quoted as {stats.SD_NOTE}; comparisons as a "
    f"{stats.DIFFERENCE_NOTE}. The interval is the mean difference ± t × (sample SD of the differences)/√n, "
    f"with t = {t_factor[len(a)]:.2f} for {len(a)} seeds but {t_factor[stats.MIN_SEEDS - 1]:.1f} for "
    f"{stats.MIN_SEEDS - 1}.\n\n"
    "**Worked example, made-up numbers (an illustration, not a result of this kit):**\n\n"
    f"* A: {stats.summarize(a).text()}; B: {stats.summarize(b).text()}; C: {stats.summarize(c).text()}. "
    "The ± bars overlap.\n"
    f"* A − B, paired seed by seed: {stats.paired_difference(a, b).text()} (A is above B on every seed).\n"
    f"* C − B: {stats.paired_difference(c, b).text()}.\n"
    f"* A − B on the first two seeds only: {stats.paired_difference(a[:2], b[:2]).text()}."))

# %% [markdown]
# ## 6. How the book quotes papers and cites works
#
# **Quotes.** Whatever a paper reports is quoted in a block that opens with `> **Paper (`, followed by
# the paper and the place (section, equation, table, row). Such a block is the only place where the
# book's static text holds a measured number; everything else with a number is printed by code. An
# example, the impairments of BalGrad's protocol:
#
# > **Paper (BalGrad, Section 4.1):** missing image: zero pixels; missing text: the empty string;
# > noisy image: salt-and-pepper noise on 30% of the pixels; noisy text: 15% of the tokens deleted at
# > random. The model is trained on unimpaired data and one modality is impaired on the whole test set.
#
# CGGM's result tables are images in its text, so the numbers the book quotes from them (for example
# its Food-101 accuracy) come from a secondary transcription (the kit's reference notes) and are marked
# so; the authors' released repository (github.com/zrguo/CGGM) gives its training recipe, not these numbers.
#
# **Citations.** A work is cited in one form, `[Surname et al., YEAR]`, `[Surname and Surname, YEAR]` for
# two authors, `[Surname, YEAR]` for one; GOAL, an anonymous submission, is [Anonymous, 2025]. Every label
# resolves to an entry of `chapters/references.bib`; `modbal_lib.references` makes the labels from the
# entries and prints the list at the end of this chapter (the tests check that every citation of the book
# resolves and every entry is cited).
#
# ## 7. Notation
#
# One symbol per thing, in every chapter. When a chapter quotes a paper's equation in the paper's own
# symbols, it says how they map; the last column says what the papers write where it differs.
#
# | symbol | meaning | the papers write |
# |---|---|---|
# | $m$, $M$ | a modality, the number of modalities | CGGM $m_i$, $i = 1, \dots, M$ (Sec. 3.1); GOAL $m = 1, \dots, M$ (Sec. 3.1) |
# | $v$, $l$ (and $a$) | image (vision), text (language), audio | BalGrad $v$, $l$ (Sec. 3.1); GOAL numbers them, $m \in \{1, 2\}$ (Eqs. 7, 9–10) |
# | $x^m$, $y$ | input of modality $m$, label | BalGrad $x_i^v, x_i^l, y_i$; CGGM $x^{m_i}$; GOAL $\mathbf{x}_i^{(m)}, y_i$ |
# | $E_m$ | the frozen pretrained encoder of modality $m$ | BalGrad: frozen ViT and BERT (Sec. 4.1); CGGM $\phi_i$ and GOAL $E^{(m)}$, both trained there |
# | $h_m$, $\theta_m$ | the trainable embedding layer of modality $m$ and its parameters | BalGrad $h_v, h_l$ and $\theta_v, \theta_l$ (Sec. 3.1); GOAL's $\boldsymbol{\theta}^{(m)}$ are all of encoder $E^{(m)}$'s parameters (Eq. 1) |
# | $e_m$ | the embedding $h_m(E_m(x^m))$ | CGGM $h_i$ (Eq. 1; there $h$ is this output, not a layer); GOAL $\mathbf{f}^{(m)}$ (Eq. 1) |
# | $f_T$, $\theta_T$ | the fused classifier and its parameters | BalGrad $f_\mathcal{T}$, $\theta_\mathcal{T}$ (Sec. 3.1); CGGM fusion module $\Omega$ and head $\mathcal{F}$ (Eq. 2); GOAL fusion $C(\cdot; \boldsymbol{\theta}^c)$ and classifier $\mathbf{W}, \mathbf{b}$ (Eq. 2) |
# | $f_m$ | the unimodal head on $e_m$ | BalGrad $f_v, f_l$ (Sec. 3.1); CGGM classifiers $f_i$ (Eq. 5); GOAL $\mathbf{W}^{(m)}, \mathbf{b}^{(m)}$ (Eq. 3) |
# | $z$, $z_m$, $p^m$ | fused logits, unimodal logits, $p^m = \mathrm{softmax}(z_m)$ | BalGrad $p_\mathcal{T}$, $p_i^v, p_i^l$ (Sec. 3.1); GOAL $\mathbf{z}^{fus}$, $\mathbf{z}^{(m)}$, $\mathbf{p}^{(m)}$ (Eqs. 2, 3, 6) |
# | $L_T$, $L_T^m$ | task (fused) cross-entropy, unimodal cross-entropy | BalGrad $\mathcal{L}_\mathcal{T}$, $\mathcal{L}_\mathcal{T}^v, \mathcal{L}_\mathcal{T}^l$ (Sec. 3.1); CGGM $\mathcal{L}_{task}$; GOAL $\mathcal{L}_{mm}$, $\mathcal{L}^{(m)}$ (Eq. 4, sums over the batch) |
# | $\eta$ | learning rate / step size | BalGrad $\lambda$ (Propositions 1 and 2); CGGM $\alpha$ (Eqs. 3, 4, 8); GOAL $\eta$ (Appendix A.14) |
# | $g_m$ | gradient of $L_T$ w.r.t. $\theta_m$ | BalGrad $g_v, g_l$ (Proposition 1) |
# | $g_T$, $g_T^m$ | gradient of $L_T$ w.r.t. $\theta_T$; its part from modality $m$'s inputs | BalGrad $g_\mathcal{T}$, $g_\mathcal{T}^v, g_\mathcal{T}^l$ (Sec. 3.1) |
# | $L_{kl}^m$, $g_{kl}^m$, $g_{kl}$ | BalGrad's KL terms, their gradients, the scheduled weighted sum (Eq. 4) | BalGrad $\mathcal{L}_{kl}^l$, $g_{kl}^l$, $g_{kl}$ (Sec. 3.2.1); Proposition 2 writes $g_v^{kl}$ |
# | $W^m$, $s(t)$, $\gamma$ | BalGrad's reweighting, schedule, its constant ($\gamma = 1/2$) | BalGrad $\mathcal{W}^v, \mathcal{W}^l$; the factor $\gamma + \gamma/(1 + e^{-t})$ of Eq. 4 has no name there |
# | $g_T^\perp$ | the projected task gradient (Eq. 6) | BalGrad $g_\mathcal{T}^\perp$ |
# | $\Delta\varepsilon_m^t$, $B_m^t$, $\rho$, $\lambda$, $L_{gm}$ | CGGM: accuracy gain of head $m$, balancing term (Eq. 7), its scale, the direction loss weight, the direction loss | CGGM $\Delta\varepsilon_{m_i}^t$ (Eq. 6), $\mathcal{B}_{m_i}^t$ (Eq. 7), $\rho$, $\lambda$, $\mathcal{L}_{gm}$ (Eq. 12); in this book $\lambda$ is only CGGM's weight |
# | $g^{(m)}$, $G^{(m)}$ | GOAL: gradient of $L_T$ and of $L_T^m$ for modality $m$ (GO, Eq. 5 onwards) | GOAL $\mathbf{g}^{(m)}$, $\mathbf{G}^{(m)}$ (Eq. 5, with respect to the encoder's $\boldsymbol{\theta}^{(m)}$) |
# | $w^{(m)}$, $T$, $u_i^{(m)}$, $c_i^{(m)}$ | GOAL's AL weight (Eq. 7), temperature, normalised entropy, confidence $1 - u$ | GOAL, the same symbols (Eqs. 6–7) |
# | Full, Avg, ΔGap, $r$ | score on unimpaired test data; mean of the two impaired scores; absolute gap between them (points); missing ratio | BalGrad "Full", "Avg.", $\Delta_{Gap}$ (Sec. 4.2, Table 1); the impairments in Sec. 4.1; $r$ in Sec. 4.2 and Fig. 4 |
#
# ## 8. Glossary
#
# The book's own terms, and where each is introduced.
#
# * **dominant modality** (chapter 1, section 1): the modality whose absence costs the model most: taking
#   it away hurts far more than taking the other away, $S_{\neg v} \ll S_{\neg l}$ or the reverse. The
#   other one is the *weak* (neglected) modality.
# * **missing / noisy protocol** (chapter 1, section 2): BalGrad's test. Train on complete data, then
#   impair one modality on the whole test set, on the raw input before the encoder: *missing* (blanked)
#   or *noisy* (corrupted). The kit's settings are printed below.
# * **Full, Avg, ΔGap** (chapter 1, section 2): the score with nothing impaired; the mean of the two
#   impaired scores; the absolute gap between them, in points. A small ΔGap means the model suffers about
#   equally whichever modality it loses. With three modalities the kit's ΔGap is the largest impaired
#   score minus the smallest.
# * **missing ratio** $r$ (chapter 7, section 4): the dominant modality missing on a share $r$ of the test
#   samples only, as in BalGrad's Fig. 4.
# * **ceiling**, or unimodal ceiling (chapter 1, sections 1 and 5; chapter 2, section 2): the score of a
#   model trained on modality $m$ alone, what $m$ reaches when it is all the model has.
# * **shortfall** (chapter 1, section 5; chapter 2, sections 2 and 5): the ceiling of $m$ minus the joint
#   model's score when it is left with only $m$ (the other modality missing), as a paired difference. A
#   large shortfall means the joint model never learned to use $m$ on its own.
# * **negative transfer** (chapter 1, section 5): in BalGrad's sense, removing a modality *raises* the
#   score (`ImpairmentTable.negative_transfer`; BalGrad takes the term from [Wang et al., 2019]); in the
#   sense of [Wang et al., 2020], the joint model is worse than the best unimodal one.
# * **logit share**, or probe share (chapter 1, section 6; chapter 2, section 3): the part of the fused
#   logits that comes from modality $m$. With concatenation $z = W_v e_v + W_l e_l + b$, the share of $m$
#   is $z_m = W_m e_m + b/2$ (`LateFusion.probe_logits`); its cross-entropy, the *probe loss*, shows how
#   well $m$'s part of the model predicts on its own during training. It stands in, for models without
#   unimodal heads, for the heads' losses that BalGrad's Fig. 2b plots.
# * **conflict** (chapter 3, section 3): two gradients with a negative dot product, so that a step along
#   one undoes progress along the other. BalGrad counts conflicts between $g_T$ and $g_{kl}$, GOAL between
#   $g^{(1)}$ and $g^{(2)}$.
# * **guard** (chapter 5, section 2): how the kit computes CGGM's balancing terms where Eq. 7 is undefined
#   or misbehaves (no progress, negative gains). `guard="robust"`, the library's default, clips each gain
#   at zero; `guard="official"` computes what the released code does, unclipped.
# * **official recipe** (chapter 5, sections 4 and 8): CGGM as the authors' released code runs it, all its
#   choices at once: `variant="official", guard="official", clip_norm=0.8`.
# * **paired difference** (chapter 0, section 5): method A minus method B seed by seed (same seed: same
#   initialisation, data order and impairments), quoted as its mean and 95 % t-interval with a verdict
#   (`stats.paired_difference`).
# * **verdict** (chapter 0, section 5): one of the three words the library attaches to a paired
#   difference; the words and their rule are printed below.
#
# The verdict words and the protocol's settings, printed from the library so that they are the words
# and numbers the code uses:

# %%
verdict_meaning = {
    stats.DIFFERS: f"the {stats.CONFIDENCE:.0%} interval of the paired difference excludes 0",
    stats.WITHIN_NOISE: f"the {stats.CONFIDENCE:.0%} interval contains 0: no difference these seeds can tell",
    stats.TOO_FEW: f"fewer than {stats.MIN_SEEDS} paired seeds, whatever the interval",
}
assert tuple(verdict_meaning) == stats.VERDICTS  # the library's three words, in its order
display(Markdown(
    stats.markdown_table(["verdict (`modbal_lib.stats`)", "when"], [[f"**{word}**", meaning]
                                                                  for word, meaning in verdict_meaning.items()])
    + "\n\n**Impairment settings of the kit** (`modbal_lib.data.impair`, BalGrad Section 4.1 for image and text): "
    f"noisy image: salt-and-pepper on {NOISY_PIXEL_SHARE:.0%} of the pixels; noisy text: each token deleted "
    f"with probability {NOISY_TOKEN_SHARE:.2f}; missing image: a blank picture; missing text: the empty string."))

# %% [markdown]
# ## Summary
#
# * The book reads three gradient-editing methods, BalGrad, CGGM and GOAL, against their papers and
#   measures each claim with one small model on small data; the papers differ in what "balance" means
#   (close impaired scores for BalGrad, a higher unimpaired score for CGGM and GOAL) and in which modality
#   their magnitude edits favour.
# * Every chapter is a `.py`/`.ipynb` pair with a `FAST` parameter; every number about the kit's runs is
#   printed by the run, never typed, and papers' numbers appear only in `> **Paper (` quote blocks.
# * Results over seeds are mean ± sample SD with n; comparisons are paired differences with a 95 %
#   t-interval and one of the verdicts of `modbal_lib.stats` (printed in section 8).
# * One notation (section 7) and one citation form, `[Surname et al., YEAR]`, resolving to
#   `chapters/references.bib`, hold for the whole book.

# %% [markdown]
# ## Exercises
#
# 1. **Pairing and one bad seed.** In the worked example of section 5, lower A's score on seed 2 step by
#    step until A − B turns negative there. How does the interval of A − B move, and at which point does
#    the verdict change?
#    <details><summary>Hint</summary>
#
#    The interval is centred on the mean difference and its half-width is t times the sample SD of the
#    differences over √n: one seed moving against the others lowers the mean *and* widens the interval.
#
#    </details>
# 2. **How many seeds?** Take the first n seeds of the worked example, for n from 2 to 5. How do the
#    t-factor, the width of the interval of A − B and the verdict change with n? Why does the library say
#    "too few seeds" below its minimum, even when the interval happens to exclude 0?
#    <details><summary>Hint</summary>
#
#    With n seeds the t-factor has n − 1 degrees of freedom; compare its value for 1 and for 4 degrees
#    of freedom, and remember that the SD from two values is a single spread.
#
#    </details>
# 3. **The protocol by hand.** A made-up model scores 80 on full data, 41 with the image missing and 83
#    with the text missing; with noise, 60 (noisy image) and 78 (noisy text). Compute Avg and ΔGap for
#    missing and for noisy by hand, name the dominant modality, and say whether there is negative transfer
#    in BalGrad's sense. Then check with `modbal_lib.evaluate.ImpairmentTable`.
#    <details><summary>Hint</summary>
#
#    "Image missing" is the score the model keeps with the text alone. Negative transfer means a row
#    *without* a modality beats Full.
#
#    </details>
# 4. **Reading two equations in the book's notation.** BalGrad's Eq. 4 multiplies the weighted KL
#    gradient by $s(t) = \gamma + \gamma/(1 + e^{-t})$; GOAL's Eq. 7 turns confidences $c_i^{(m)}$ into
#    weights $w^{(m)}$. Between which two values does $s(t)$ move for $\gamma = 1/2$? For one sample on
#    which one unimodal head is sure of its class and the other is undecided, which modality gets the
#    larger $w^{(m)}$, and what happens as $T$ grows? Compare with section 3: which modality does each
#    method favour? Check with `modbal_lib.methods.balgrad.kl_schedule` and
#    `modbal_lib.methods.goal.adaptive_weights`.
#    <details><summary>Hint</summary>
#
#    $1/(1 + e^{-t})$ is one half at $t = 0$ and tends to 1. A softmax over $c/T$ tends to the uniform
#    distribution as $T$ grows.
#
#    </details>
# 5. **Follow the citations.** Which works does each chapter cite, and does every citation resolve to an
#    entry of the bibliography? Use `references.find_citations` on the Markdown cells of each chapter
#    source and the labels of `references.load()`.
#    <details><summary>Hint</summary>
#
#    `jupytext.read(path).cells` gives the cells of a chapter source; `references.labels(data)` maps each
#    label to its BibTeX key.
#
#    </details>

# %% [markdown]
# ## Solutions
#
# Worked solutions; each code cell computes its answer from the library (hidden on the site).

# %% [markdown]
# ### Solution to exercise 1
#
# Lowering one of A's seeds pulls the mean difference down by a fifth of the change (five seeds) and,
# because that seed now disagrees with the other four, raises the SD of the differences, so the interval
# both slides towards 0 and widens. The verdict changes when its lower end crosses 0, well before the
# mean difference itself reaches 0. The table below walks seed 2 down and prints the first value at which
# the verdict changes.

# %% tags=["solution", "hide-input"]
steps = [round(a[2] - k / 2, 1) for k in range(0, 2 * int(a[2] - b[2]) + 7)]  # down to 3 points under B
rows, first_change = [], None
for value in steps:
    changed = a[:2] + [value] + a[3:]
    difference = stats.paired_difference(changed, b)
    rows.append([f"{value:.1f}", f"{value - b[2]:+.1f}", difference.text()])
    if first_change is None and difference.verdict != stats.paired_difference(a, b).verdict:
        first_change = (value, difference)
display(Markdown(stats.markdown_table(["A on seed 2", "A − B on seed 2", "A − B over 5 seeds"], rows)))
if first_change is None:
    display(Markdown("The verdict does not change over this range."))
else:
    display(Markdown(f"The verdict changes when A's seed 2 reaches {first_change[0]:.1f} (A − B on that seed: "
                     f"{first_change[0] - b[2]:+.1f}): {first_change[1].text()}."))

# %% [markdown]
# ### Solution to exercise 2
#
# The t-factor for one degree of freedom is many times the one for four, so with two seeds the interval
# is wide even when the two differences agree, and a lucky pair of seeds can still give an interval that
# excludes 0: its width rests on one spread, which is itself a noisy estimate. That is why the library
# answers "too few seeds" below its minimum whatever the interval. The table prints t, the interval and
# the verdict for each n.

# %% tags=["solution", "hide-input"]
rows = []
for n in range(2, len(a) + 1):
    difference = stats.paired_difference(a[:n], b[:n])
    t = scipy_stats.t.ppf(0.5 + stats.CONFIDENCE / 2, n - 1)
    rows.append([n, f"{t:.2f}", f"{difference.high - difference.low:.2f}", difference.text()])
display(Markdown(stats.markdown_table(["seeds n", "t-factor", "interval width", "A − B"], rows)))

# %% [markdown]
# ### Solution to exercise 3
#
# With the image missing the model keeps the text; with the text missing it keeps the image. Avg is the
# mean of the two impaired scores, ΔGap their absolute difference; the modality whose loss costs more is
# the dominant one, and a row that beats Full is negative transfer. The cell computes the same with the
# library's `ImpairmentTable`.

# %% tags=["solution", "hide-input"]
made_up = ImpairmentTable(metric="accuracy", full=80.0, missing={"image": 41.0, "text": 83.0},
                          noisy={"image": 60.0, "text": 78.0})  # ILLUSTRATION ONLY: the exercise's invented scores
costliest = min(made_up.missing, key=made_up.missing.get)
display(Markdown(
    f"Missing: Avg {made_up.missing_avg:.1f}, ΔGap {made_up.missing_delta_gap:.1f}; noisy: Avg "
    f"{made_up.noisy_avg:.1f}, ΔGap {made_up.noisy_delta_gap:.1f}. Losing the {costliest} costs most, so the "
    f"{costliest} dominates. Negative transfer (removing the modality raises the score): "
    f"{', '.join(made_up.negative_transfer) or 'none'}."))

# %% [markdown]
# ### Solution to exercise 4
#
# $s(0) = \gamma + \gamma/2$ and $s(t) \to 2\gamma$, so for $\gamma = 1/2$ the KL gradient's factor moves
# from three quarters to one. GOAL's softmax gives the larger weight to the larger confidence, so the head
# that is sure of its class wins; as $T$ grows the weights flatten to one half each. Section 3's row "who
# gets more" follows: BalGrad's $W^m$ grows with the unimodal loss (the lagging modality), GOAL's $w^{(m)}$
# with the confidence (the leading one). The cell checks both with the library's functions.

# %% tags=["solution", "hide-input"]
sure, undecided = [8.0, 0.0, 0.0], [0.0, 0.0, 0.0]  # logits of a sure head and an undecided one, 3 classes
logits = torch.tensor([[sure, undecided]])  # [batch 1, modalities 2, classes 3]
rows = [[f"{T:g}", *(f"{w:.3f}" for w in adaptive_weights(logits, T=T).tolist())] for T in (0.25, 1.0, 4.0, 100.0)]
display(Markdown(
    f"BalGrad, $\\gamma = 1/2$: $s(0)$ = {kl_schedule(0):.3f}, $s(5)$ = {kl_schedule(5):.3f}, "
    f"$s(50)$ = {kl_schedule(50):.3f}.\n\n"
    + stats.markdown_table(["GOAL temperature T", "w, sure head", "w, undecided head"], rows)))

# %% [markdown]
# ### Solution to exercise 5
#
# Read the Markdown cells of each chapter source, collect the labels `find_citations` finds, and look
# each one up among the labels of the bibliography. A label that is not there is a citation the `.bib`
# lacks (or a typo); the unit test `tests/test_references.py` makes the same check for the whole book.

# %% tags=["solution", "hide-input"]
known = references.labels(references.load())
rows = []
for source in sorted(references.BIB.parent.glob("[0-9][0-9]_*.py")):
    cited = [label for cell in jupytext.read(source).cells if cell.cell_type == "markdown"
             for label in references.find_citations(cell.source)]
    unknown = sorted({label for label in cited if label not in known})
    rows.append([source.stem, len(set(cited)), ", ".join(unknown) or "none"])
display(Markdown(stats.markdown_table(["chapter", "works cited", "labels not in the bibliography"], rows)))

# %% [markdown]
# ## References
#
# The book's bibliography, `chapters/references.bib`, formatted by `modbal_lib.references` (pybtex),
# each entry after the label the chapters cite it by.

# %%
display(Markdown(references.bibliography_markdown()))
