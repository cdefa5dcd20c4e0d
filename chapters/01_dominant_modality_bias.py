# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Dominant modality bias
#
# Give a network two modalities and it will often learn to use one of them: the one that is
# easiest to fit. It still scores well on clean test data, so nothing looks wrong, until the
# favoured modality goes missing or gets noisy and the score collapses, although the other
# modality alone would have been enough for a decent answer. BalGrad [Kim et al., 2025] calls
# this **dominant modality bias**. This chapter defines it, measures it with BalGrad's protocol
# on a small real dataset, watches it appear during training, and then shows that *which*
# modality dominates is not a property of the data alone: one preprocessing switch, the choice
# of image encoder or the way "missing" is encoded moves it.
#
# **You will learn:** what dominant modality bias is and how BalGrad measures it (missing and
# noisy modalities at test time, Avg and ΔGap); how to compare a joint model with its
# unimodal ceilings and check for negative transfer; how the losses of unimodal heads during
# training (BalGrad's Fig. 2b) reveal the dominant modality, and what the kit's head-free
# stand-in for them measures; and why a claim "modality X dominates" must name the encoder,
# the preprocessing and the encoding of a missing input.
#
# **Paper sections:** BalGrad [Kim et al., 2025] (arXiv 2503.13834) Section 1 and Section 3.1
# with Fig. 2 (dominant modality bias: (a) the scores with one modality missing, (b) the losses
# of unimodal classifiers during training), Section 4.1 and Table 1 (the impairment protocol,
# Avg and ΔGap). For the "multimodal is worse than unimodal" check: [Wang et al., 2020],
# *What makes training multi-modal classification networks hard?*

# %%
import os
from collections import Counter
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

import modbal_lib
from modbal_lib.claims import box
from modbal_lib.data import cremad
from modbal_lib.data import load as load_dataset
from modbal_lib.dominance import Dominance, leaned_on, modality_curves, rescore_missing, shortfall, shortfalls
from modbal_lib.encoders import encode
from modbal_lib.evaluate import evaluate
from modbal_lib.experiments import Experiment, compare
from modbal_lib.features import Impairment
from modbal_lib.stats import WITHIN_NOISE, markdown_table, paired_difference, summarize, table1
from modbal_lib.train import train
from modbal_lib.utils import data_dir

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()
SEEDS = None         # training seeds; default [0, 1] (fast) or [0, 1, 2, 3, 4] (full)
EPOCHS = None        # epochs on frozen features; default 5 (fast) or 20 (full)
CNN_EPOCHS = None    # epochs of the from-scratch image CNN; default 3 (fast) or 10 (full)
CNN_INPUT = "pixels:16"  # raw pixels for the CNN: 16 x 16 thumbnails (try "pixels:32", 4x slower)
CREMAD_VOTES = os.environ.get("MODBAL_CREMAD_VOTES") or str(
    data_dir() / "cremad" / "processedResults" / "summaryTable.csv"
)

# %% [markdown]
# The defaults that depend on `FAST` are filled in here, after papermill may have changed `FAST`.

# %%
SEEDS = SEEDS or ([0, 1] if FAST else [0, 1, 2, 3, 4])
EPOCHS = EPOCHS or (5 if FAST else 20)
CNN_EPOCHS = CNN_EPOCHS or (3 if FAST else 10)
MODALITIES = ("image", "text")
OTHER = {"image": "text", "text": "image"}
SMOOTH = 5  # running mean over iterations of the training curves
print(f"mode: {'fast' if FAST else 'full'}; seeds {SEEDS}; {EPOCHS} epochs on features, "
      f"{CNN_EPOCHS} epochs for the CNN on {CNN_INPUT}")

# %% [markdown]
# ## 1. The definition
#
# A model $f(x^v, x^l)$ is trained on an image $x^v$ and a text $x^l$. Write $S(\cdot)$ for its
# test score (accuracy here) when
#
# * both modalities are given: $S_\text{full}$ (BalGrad's **Full**);
# * the image is impaired (missing or noisy), the text kept: $S_{\neg v}$;
# * the text is impaired, the image kept: $S_{\neg l}$.
#
# The model is **biased towards the image** (the image *dominates*) when taking the image away
# costs far more than taking the text away, $S_{\neg v} \ll S_{\neg l}$, and vice versa. That
# alone could mean that the text is simply uninformative. It becomes a *bias* when the
# neglected modality is useful on its own: a model trained on the text alone (its **unimodal
# ceiling**) does much better than the joint model does when it is left with only the text.
#
# ## 2. BalGrad's protocol (Section 4.1, Table 1)
#
# Train on complete data. At test time impair **one** modality over the whole test set, on the
# raw input, before the encoder:
#
# | impairment | image $x^v$ | text $x^l$ |
# |---|---|---|
# | missing | an all-black picture (zero pixels) | the empty string |
# | noisy | salt-and-pepper on a share `NOISY_PIXEL_SHARE` of the pixels | words deleted w.p. `NOISY_TOKEN_SHARE` |
#
# Both shares live in `modbal_lib.data.impair` and are set to the paper's values:
#
# > **Paper (BalGrad, Section 4.1):** missing: zero pixels for images, empty strings for text;
# > noisy: 30% salt-and-pepper noise on the images, 15% of the text tokens deleted at random.
#
# The kit deletes each word with that probability rather than exactly that share of each text
# (emoji names have two or three words, so a fixed share would round to nothing). The protocol
# then reports, for missing and for noisy separately,
#
# $$\text{Avg} = \tfrac12\,(S_{\neg v} + S_{\neg l}), \qquad
#   \Delta\text{Gap} = |S_{\neg v} - S_{\neg l}| \ \text{(percentage points)}.$$
#
# A small ΔGap means the model degrades about equally whichever modality it loses: less
# dominant modality bias. In `modbal_lib` the protocol is one call,
# `evaluate(model, features_for) -> ImpairmentTable`, and `compare(experiment, methods, seeds)`
# runs it for every method and seed. (The missing-*ratio* sweep of Fig. 4 is chapter 7's.)
#
# ## 3. The data: emoji pictures and their names
#
# The kit's offline real dataset: 1,906 Noto emoji, each a 64×64 picture and its Unicode name
# ("grinning face with big eyes"), labelled with one of 9 categories (Smileys & Emotion, Food &
# Drink, Flags, ...). Both modalities carry the label, in different ways.

# %%
test_data = load_dataset("emoji", "test")
rng = np.random.default_rng(0)
shown = rng.choice(len(test_data), size=8, replace=False)
fig, axes = plt.subplots(1, 8, figsize=(14, 2.6))
for ax, i in zip(axes, shown):
    ax.imshow(test_data.inputs["image"][i])
    ax.set_title(f"{test_data.inputs['text'][i][:22]}\n[{test_data.class_names[test_data.labels[i]]}]", fontsize=7)
    ax.axis("off")
plt.show()

# %% [markdown]
# **Figure 1.1.** Eight test emoji, each with the start of its Unicode name and, in brackets, its
# category (the label). Look for categories that the picture shows at a glance (a flag, a face) and
# ones that the name gives away in a word ("pizza", "flag").
#
# The default encoders $E_m$ are frozen and pretrained: EfficientNet-Lite0 [Tan and Le, 2019]
# (trained on ImageNet [Deng et al., 2009]) gives a 1280-d image feature, all-MiniLM-L6-v2 (a
# sentence-transformers model [Reimers and Gurevych, 2019]) a 384-d sentence embedding. Features
# are computed once and cached. Look at their **sizes**: MiniLM's output is L2-normalised (as
# sentence-transformers does), EfficientNet's pooled feature is not. This detail comes back in
# Section 7.

# %%
default = Experiment("emoji")
train_features = default.features("train")
feature_norm = {m: float(train_features.features[m].norm(dim=1).mean()) for m in MODALITIES}
for m in MODALITIES:
    x = train_features.features[m]
    print(f"{m:>5}: {len(x)} training samples x {x.shape[1]} dims, mean feature norm {feature_norm[m]:.2f}")

# %% [markdown]
# ## 4. Joint training under the protocol
#
# The model (BalGrad's architecture, on frozen features): a trainable embedding layer
# $h_m$ (linear + ReLU, 128-d) per modality giving $e_m = h_m(E_m(x^m))$, concatenation, and a
# linear classifier $f_T$; Adam [Kingma and Ba, 2015], the cross-entropy $L_T$ on the fused logits
# only ("joint training"). Beside it, the two unimodal models (`unimodal_image`, `unimodal_text`):
# the same branch and a classifier on one modality; and, for Section 6, joint training with one
# extra linear head $f_m$ per modality (`joint_unimodal_heads`).

# %%
main_runs = compare(default, ["joint", "joint_unimodal_heads", "unimodal_image", "unimodal_text"], SEEDS,
                    epochs=EPOCHS, ratios=())
joint_runs, heads_runs = main_runs["joint"], main_runs["joint_unimodal_heads"]
alone_runs = {m: main_runs[f"unimodal_{m}"] for m in MODALITIES}
display(Markdown(f"**Joint training on emoji, accuracy (%), BalGrad's Table 1 layout**\n\n"
                 + table1({"joint": [run.table for run in joint_runs]}, marks=False)))

# %% [markdown]
# `Dominance` (in `modbal_lib.dominance`) collects these tables over seeds and names the modality
# whose absence costs most, on average and seed by seed.

# %%
main_dominance = Dominance("EfficientNet, raw features", [run.table for run in joint_runs])
dominant, weak = main_dominance.dominant, OTHER[main_dominance.dominant]
noisy = {m: [run.table.noisy[m] for run in joint_runs] for m in MODALITIES}
noisy_vs_missing = paired_difference(noisy[dominant], main_dominance.missing(dominant))
display(Markdown(
    f"**Reading.** The {dominant} dominates on {main_dominance.agreeing_seeds} of {len(SEEDS)} seeds. Left with only "
    f"the {weak} ({dominant} missing) the joint model scores {summarize(main_dominance.missing(dominant)).text()}, "
    f"against {summarize(main_dominance.full).text()} with both; left with only the {dominant} it scores "
    f"{summarize(main_dominance.missing(weak)).text()}. The ΔGap, {summarize(main_dominance.delta_gap).text()} "
    f"points, measures that asymmetry. With noise instead of absence: noisy {dominant} "
    f"{summarize(noisy[dominant]).text()}, noisy {weak} {summarize(noisy[weak]).text()}; noisy minus missing "
    f"{dominant}, seed by seed: {noisy_vs_missing.text()}"
    + (f" (noise on the {dominant} hurts even more than its absence: corrupted features mislead, missing ones "
       "only stop informing)." if noisy_vs_missing.differs and noisy_vs_missing.mean < 0 else ".")))

# %% [markdown]
# ## 5. Unimodal ceilings and the negative-transfer check
#
# Is the weaker-looking modality just uninformative? The unimodal ceilings answer that. Two
# checks follow:
#
# 1. **Is each modality used?** Compare the joint model *left with only modality m* (the other
#    one missing) with the model trained on m alone, seed by seed: the **shortfall** of m
#    (`dominance.shortfall`, the kit's paired difference of `modbal_lib.stats`, explained in
#    chapter 0). A big shortfall means the joint model never learned to use m on its own.
# 2. **Negative transfer.** In BalGrad's sense (the grey marks of its Table 1): removing a
#    modality *raises* the score (`ImpairmentTable.negative_transfer`). In the sense of
#    [Wang et al., 2020]: the joint model is worse than the best unimodal model.

# %%
ceiling = {m: [run.table.full for run in alone_runs[m]] for m in MODALITIES}
left_with = {m: [run.table.missing[OTHER[m]] for run in joint_runs] for m in MODALITIES}
shortfall_of = {m: shortfall(alone_runs[m], joint_runs, m) for m in MODALITIES}
rows = [[f"{m} only", summarize(ceiling[m]).text(), summarize(left_with[m]).text(), shortfall_of[m].text()]
        for m in MODALITIES]
display(Markdown(markdown_table(["modality", "unimodal ceiling", "joint model, other one missing",
                                 "shortfall (ceiling − joint, paired)"], rows)))

fig, ax = plt.subplots(figsize=(6, 3))
positions = np.arange(len(MODALITIES))
for offset, scores, label in ((-0.2, ceiling, "trained on m alone (ceiling)"),
                              (0.2, left_with, "joint model left with m only")):
    summaries = [summarize(scores[m]) for m in MODALITIES]
    ax.bar(positions + offset, [s.mean for s in summaries], 0.4, yerr=[s.sd for s in summaries], label=label)
ax.set_xticks(positions, [f"{m} only" for m in MODALITIES])
ax.set_ylabel("test accuracy (%)")
ax.set_ylim(0, 100)
ax.set_title(f"mean ± sample SD over {len(SEEDS)} seeds", fontsize=9)
ax.legend(fontsize=8, loc="lower left")
plt.show()

# %% [markdown]
# **Figure 1.2.** For each modality, the model trained on it alone (its ceiling, left bar) beside the
# joint model left with only that modality (right bar); error bars: sample SD over seeds. The gap
# between the two bars of a pair is that modality's shortfall. Look for a pair with a tall left bar
# and a short right one: a modality that is useful alone but that the joint model did not learn to
# use.

# %%
joint_full = [run.table.full for run in joint_runs]
joint_gain = paired_difference(joint_full, np.maximum(ceiling["image"], ceiling["text"]))
flagged = Counter(m for run in joint_runs for m in run.table.negative_transfer)
ceilings_compared = paired_difference(ceiling[weak], ceiling[dominant])
leaning = leaned_on(alone_runs, joint_runs)
weak_alone = ""
if ceilings_compared.differs:
    weak_alone = f": the neglected modality is the {'stronger' if ceilings_compared.mean > 0 else 'weaker'} one alone"
gain_reading = ""
if joint_gain.differs:
    gain_reading = ": the joint model is worse than the best unimodal one" if joint_gain.mean < 0 else ": fusing helps"
elif joint_gain.verdict == WITHIN_NOISE:
    gain_reading = ": no gain or loss from fusing that these seeds can show"
leaning_reading = (f"by the kit's rule the joint model leans on the **{leaning.modality}** (the smaller shortfall)"
                   if leaning.modality else f"the two shortfalls do not differ by the kit's rule "
                   f"({leaning.difference.verdict})")
display(Markdown(
    f"**Reading** (differences in percentage points). The {weak} alone reaches {summarize(ceiling[weak]).text()}, "
    f"the {dominant} alone {summarize(ceiling[dominant]).text()} ({weak} − {dominant}, paired: "
    f"{ceilings_compared.text()}{weak_alone}). The joint model left with only the {weak} reaches "
    f"{summarize(left_with[weak]).text()}: a shortfall of {shortfall_of[weak].text()} (for the {dominant}: "
    f"{shortfall_of[dominant].text()}); image's shortfall minus text's, paired: {leaning.difference.text()}: "
    f"{leaning_reading}. Joint minus best unimodal model, seed by seed: {joint_gain.text()}{gain_reading}. "
    "Removing a modality raised the score (BalGrad's negative transfer) on "
    + (", ".join(f"{n} seed(s) for the {m}" for m, n in flagged.items()) if flagged else "no seed") + "."))

# %% [markdown]
# A large shortfall for one modality and a small one for the other is dominant modality bias in
# one figure: the joint model treats the neglected branch as a small correction to the dominant
# one. On emoji the two modalities largely carry the same information (both name the
# category), so expect fusing them to gain little over the best single modality even when nothing
# is impaired (the "joint minus best unimodal" difference above); the price of the bias is paid
# when the dominant modality goes missing.
#
# ## 6. Watching it happen: per-modality losses during training (BalGrad Fig. 2b)
#
# **What the paper plots.** BalGrad's Section 3.1 adds a linear classifier on each embedding,
# $f_v$ on $e_v$ and $f_l$ on $e_l$, whose softmax outputs $p^v, p^l$ predict the label with the
# cross-entropies $L_T^v$ and $L_T^l$, and Fig. 2b draws these two losses over training on each
# dataset. The paper reads them as: the dominant modality's loss drops quickly, the weak one's
# slowly. It does not say whether the two classifiers' losses also train the embedding layers. The
# kit's reading trains them with the task, $L_T + L_T^v + L_T^l$ (`joint_unimodal_heads`; BalGrad's
# own method trains the same heads, Fig. 3a), and the trainer records each head's loss at every
# iteration (`history["loss_uni_image"]`, `history["loss_uni_text"]`). Because these losses also
# move $h_v$ and $h_l$, this model is not exactly the joint model of Sections 4–5 (exercise 2
# compares the two).
#
# **The kit's stand-in.** The plain joint model has no unimodal heads, but with concatenation its
# fused logits split exactly into one share per modality, $z = W_v e_v + W_l e_l + b$; the share
# of $m$ is $W_m e_m + b/2$ (`LateFusion.probe_logits`), and for a model without heads the trainer
# records the cross-entropy of each share under the same keys. The share watches the model of
# Sections 4–5 without changing it, but it is not what the paper plots: no loss trains a share to
# predict the label on its own, so its loss can stay high while the branch is in use.
#
# `dominance.modality_curves` reads either kind of curve (and says which it is); the kit's one
# measure of how fast a loss falls is `dominance.halfway_iteration`, the iteration at which the
# smoothed loss has made half of its drop.

# %%
curves = {"unimodal heads (BalGrad's Fig. 2b)": modality_curves(heads_runs),
          "logit shares (the kit's stand-in)": modality_curves(joint_runs)}
fig, axes = plt.subplots(1, 2, figsize=(14, 3.6), sharey=True)
for ax, (title, race) in zip(axes, curves.items()):
    for m in MODALITIES:
        iteration, mean, sd = race.band(m, SMOOTH)
        ax.plot(iteration, mean, label=f"{m}")
        ax.fill_between(iteration, mean - sd, mean + sd, alpha=0.25)
    for epoch in range(1, EPOCHS):
        ax.axvline(epoch * race.iterations_per_epoch, color="grey", lw=0.3)
    ax.set_xlabel("iteration (grey lines: epochs)")
    ax.set_title(f"{title}\n{race.method}: {race.source}", fontsize=9)
    ax.legend(fontsize=8)
axes[0].set_ylabel("cross-entropy on the training batch")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Figure 1.3.** Each modality's loss during training on emoji, mean ± sample SD over seeds (running
# mean over a few iterations). Left: the losses $L_T^v, L_T^l$ of the unimodal heads of
# `joint_unimodal_heads`, the quantity of BalGrad's Fig. 2b. Right: the loss of each modality's share
# of the fused logits in plain joint training, the kit's stand-in. Look at which curve falls first
# and lowest in each panel, and whether the two panels agree on it.

# %%
halfway = {title: {m: race.halfway(m, SMOOTH) for m in MODALITIES} for title, race in curves.items()}
first = {title: race.first(SMOOTH) for title, race in curves.items()}
heads_title, shares_title = list(curves)


def lag_text(title):
    """weak − dominant halfway iterations, paired, or why it cannot be computed."""
    values = halfway[title]
    if any(h is None for m in MODALITIES for h in values[m]):
        return "not computable: a loss did not fall on some seed"
    return paired_difference(values[weak], values[dominant]).text(0)


def halfway_text(title):
    return "; ".join(f"{m} {['never' if h is None else h for h in halfway[title][m]]}" for m in MODALITIES)


last_epoch = {m: curves[heads_title].last_epoch(m) for m in MODALITIES}
agree = sum(a == b for a, b in zip(first[heads_title], first[shares_title]))
heads_first = first[heads_title].count(dominant)
display(Markdown(box(
    "balgrad-fig2-emoji",
    f"on emoji, where the {dominant} dominates (Section 4). **Unimodal heads** (`joint_unimodal_heads`, the paper's "
    f"quantity): iteration at which each loss made half of its drop, per seed: {halfway_text(heads_title)}; "
    f"{weak} − {dominant}: {lag_text(heads_title)}; the {dominant} first on {heads_first} of {len(SEEDS)} seeds; "
    f"mean loss over the last epoch: {dominant} {summarize(last_epoch[dominant]).text(2)}, "
    f"{weak} {summarize(last_epoch[weak]).text(2)}, {weak} − {dominant} paired "
    f"{paired_difference(last_epoch[weak], last_epoch[dominant]).text(2)}. **Logit shares** of plain joint "
    f"training (the kit's stand-in): {halfway_text(shares_title)}; {weak} − {dominant}: {lag_text(shares_title)}; "
    f"the two measures name the same modality first on {agree} of {len(SEEDS)} seeds.",
    ("the paper's pattern, on the paper's quantity: the dominant modality's head learns first on every seed"
     if heads_first == len(SEEDS) else
     f"the paper's pattern holds on {heads_first} of {len(SEEDS)} seeds only")
    + f" ({len(SEEDS)} seeds: the paired lag's verdict above says whether that is enough)"
    + ("; the stand-in agrees on every seed." if agree == len(SEEDS) else
       f"; the stand-in disagrees on {len(SEEDS) - agree} seed(s), so it is not a substitute for the heads here."),
)))

# %% [markdown]
# ## 7. Who dominates is a *setting*, not a fact about the data
#
# Section 3 printed the mean feature norms: compare EfficientNet's with MiniLM's, which is 1 by
# construction. The first layer of each branch computes $W_m x_m$. Adam moves every weight by
# roughly the learning rate per step, whatever the size of its gradient, so one step changes the
# branch's pre-activations by about $\Delta W_m\, x_m$, which grows with $\|x_m\|$: per step, the
# image branch's output moves further than the text branch's by about the ratio of the two norms.
# (Under plain SGD the gradient $\delta\, x_m^\top$ itself also grows with $\|x_m\|$, so the effect
# is stronger still.) Expect the image to win the race for the training loss before the text branch
# gets going. That suggests three experiments, each changing one thing:
#
# * **preprocessing**: L2-normalise the image features too (`normalize={"image": True}`);
# * **encoder**: replace the pretrained EfficientNet by a small CNN trained from scratch on raw
#   pixels (`encoders={"image": CNN_INPUT}`, 16×16 thumbnails by default);
# * **the encoding of "missing"**: the same trained models, scored with a *white* blank picture
#   (the emoji background: an emoji with nothing drawn) instead of a black one, and with a
#   **zero feature vector** in place of the encoder's output (as if the modality were dropped
#   after encoding; `modbal_lib.dominance.zero_vector_source`).

# %%
normalised = Experiment("emoji", normalize={"image": True})
from_scratch = Experiment("emoji", encoders={"image": CNN_INPUT})
normalised_runs = compare(normalised, ["joint", "unimodal_image"], SEEDS, epochs=EPOCHS, ratios=())
cnn_runs = compare(from_scratch, ["joint", "unimodal_image"], SEEDS, epochs=CNN_EPOCHS, ratios=())

# %% [markdown]
# What the CNN sees: the thumbnails it trains on (its input tensors, drawn back as pictures).

# %%
thumbnails = encode("image", test_data.inputs["image"][shown], CNN_INPUT)
fig, axes = plt.subplots(1, 8, figsize=(14, 1.8))
for ax, picture in zip(axes, thumbnails):
    ax.imshow(picture.permute(1, 2, 0).numpy())
    ax.axis("off")
plt.show()

# %% [markdown]
# **Figure 1.4.** The eight emoji of Figure 1.1 as the from-scratch CNN receives them
# (`CNN_INPUT`, by default 16×16 pixels). Look at how much of each picture survives: the colours and
# the rough shape, little of the detail a pretrained network would pick up at full size.
#
# Now score every trained model with each encoding of "missing". The CNN reads raw pixels in
# [0, 1], so a zero "feature vector" for it *is* the black picture; it gets the black and white
# blanks only.

# %%
settings = {
    "EfficientNet, raw": (default, joint_runs, ("black", "white", "zero")),
    "EfficientNet, L2-normalised": (normalised, normalised_runs["joint"], ("black", "white", "zero")),
    f"CNN from scratch on {CNN_INPUT}": (from_scratch, cnn_runs["joint"], ("black", "white")),
}
dominances = [
    Dominance(f"{name}; missing = {encoding}", rescore_missing(experiment, runs, encoding))
    for name, (experiment, runs, encodings) in settings.items()
    for encoding in encodings
]
rows = [[d.setting, f"**{d.dominant}** ({d.agreeing_seeds}/{len(d.tables)} seeds)", summarize(d.full).text(),
         summarize(d.missing("image")).text(), summarize(d.missing("text")).text(), summarize(d.delta_gap).text()]
        for d in dominances]
display(Markdown(markdown_table(
    ["image features; encoding of missing", "dominant", "Full", "image missing", "text missing", "ΔGap"], rows)))

# %%
fig, ax = plt.subplots(figsize=(8, 0.45 * len(dominances) + 1))
for k, d in enumerate(dominances):
    signed = np.subtract(d.missing("text"), d.missing("image"))  # > 0: losing the image hurts more
    ax.barh(k, signed.mean(), color="tab:blue" if signed.mean() > 0 else "tab:orange", alpha=0.6)
    ax.plot(signed, [k] * len(signed), "k.", ms=5)
ax.axvline(0, color="black", lw=0.8)
ax.set_yticks(range(len(dominances)), [d.setting for d in dominances], fontsize=8)
ax.invert_yaxis()
ax.set_xlabel("S(text missing) − S(image missing), points  (right: image dominates, left: text dominates)")
ax.set_title("bars: mean over seeds; dots: single seeds")
plt.show()

# %% [markdown]
# **Figure 1.5.** For every setting of the table above, the score with the text missing minus the
# score with the image missing: a bar to the right means losing the image hurts more (the image
# dominates), to the left the text. Bars: mean over seeds; dots: single seeds. Look for bars that
# change side, or shrink towards zero, between rows that share the same trained models (same
# features, different encoding of "missing") and between rows with different image features.

# %%
image_settings = {
    "EfficientNet, raw": (ceiling["image"], joint_runs),
    "EfficientNet, L2-normalised": ([run.table.full for run in normalised_runs["unimodal_image"]],
                                    normalised_runs["joint"]),
    f"CNN from scratch on {CNN_INPUT}": ([run.table.full for run in cnn_runs["unimodal_image"]], cnn_runs["joint"]),
}
rows = []
for name, (image_ceiling, runs) in image_settings.items():
    first_counts = Counter(m or "neither" for m in modality_curves(runs).first(SMOOTH))
    rows.append([name, summarize(image_ceiling).text(), summarize(ceiling["text"]).text(),
                 ", ".join(f"{m} {n}/{len(runs)}" for m, n in first_counts.most_common())])
display(Markdown("**Unimodal ceilings and learning speed** (accuracy %, mean ± sample SD; the text model is the "
                 "same in every row; last column: whose loss first makes half of its drop in the joint model, "
                 "measured on the logit shares (the kit's stand-in), over seeds; neither: no loss falls)\n\n"
                 + markdown_table(["image features", "image alone", "text alone",
                                   "first to make half of its loss drop"], rows)))

# %% [markdown]
# The three switches, each compared with the default (raw EfficientNet features, black blank),
# read off the rows above:

# %%
by_setting = {d.setting: d for d in dominances}
baseline = by_setting["EfficientNet, raw; missing = black"]


def change(setting, reference=baseline):
    """How the dominant modality and the ΔGap of ``setting`` compare with those of ``reference``
    (the ΔGaps paired seed by seed: same seeds, and for a change of encoding the same trained models)."""
    d = by_setting[setting]
    moved = "**flips** to" if d.dominant != reference.dominant else "stays with"
    return (f"{moved} the {d.dominant} ({d.agreeing_seeds}/{len(d.tables)} seeds), ΔGap "
            f"{summarize(d.delta_gap).text()} against {summarize(reference.delta_gap).text()}, "
            f"difference {paired_difference(d.delta_gap, reference.delta_gap).text()}")


normalised_black = by_setting["EfficientNet, L2-normalised; missing = black"]
cnn_black = f"CNN from scratch on {CNN_INPUT}; missing = black"
display(Markdown("\n".join([
    f"* Default: the {baseline.dominant} dominates ({baseline.agreeing_seeds}/{len(SEEDS)} seeds).",
    f"* **Preprocessing** (L2-normalised image features): dominance {change(normalised_black.setting)}.",
    f"* **Encoder** (CNN from scratch on {CNN_INPUT}): against the raw EfficientNet features, dominance "
    f"{change(cnn_black)}; against the L2-normalised ones, it {change(cnn_black, normalised_black)}.",
    f"* **Missing = white picture**: dominance {change('EfficientNet, raw; missing = white')}.",
    f"* **Missing = zero feature vector**: dominance {change('EfficientNet, raw; missing = zero')}; on the "
    f"L2-normalised model it {change('EfficientNet, L2-normalised; missing = zero', normalised_black)}.",
])))

# %% [markdown]
# How to read this:
#
# * **Preprocessing.** L2 normalisation changes nothing about the information in the features,
#   only the size of the inputs to the first layer, and with it the step sizes of the two
#   branches. If the dominant modality moves with it, the bias was a property of the
#   optimisation, not of the data.
# * **Encoder.** Compare the CNN's image ceiling with the text ceiling: a modality can dominate
#   a joint model while being the *weaker* one alone. What decides is how fast each branch fits
#   the training set (the last column of the ceilings table), not how far it could go.
# * **Encoding of "missing".** A black square is not an emoji: the model was never trained to
#   read its features as "no picture", so they push the fused logits wherever the nearest
#   training emoji would; a white blank is a plausible "empty emoji"; a zero feature vector
#   silences the branch's input altogether (exercise 3 looks at where each one lands). The rows of one feature setting
#   score the *same* trained models, so any change of ΔGap between them comes from the encoding
#   alone. BalGrad fixes the black picture, so its numbers are comparable across methods; they are
#   a property of model *and* protocol.
#
# So "Food-101 is image-dominant" (BalGrad Table 1) is a statement about ViT [Dosovitskiy et al., 2021]
# and BERT [Devlin et al., 2019] features, their preprocessing, a black blank and an empty string.
# In the table above the emoji data is the same in every row.
#
# > **Paper (BalGrad, Table 1, UPMC Food-101, Baseline column, missing rows):** image missing 12.99,
# > text missing 63.52, ΔGap 50.53 (accuracy %; Full 76.01).

# %%
direction = ("same direction: the image dominates on both" if main_dominance.dominant == "image"
             else "opposite direction: on emoji the text dominates")
display(Markdown(box(
    "balgrad-food101-image",
    f"**a different dataset**: emoji, 9 classes, EfficientNet-Lite0 + MiniLM features, black blank: "
    f"Full {summarize(main_dominance.full).text()}, "
    f"image missing {summarize(main_dominance.missing('image')).text()}, "
    f"text missing {summarize(main_dominance.missing('text')).text()}, "
    f"ΔGap {summarize(main_dominance.delta_gap).text()}; "
    f"dominant: {main_dominance.dominant} ({main_dominance.agreeing_seeds}/{len(SEEDS)} seeds).",
    direction + ". Datasets, encoders and class counts differ (Food-101 [Wang et al., 2015]: ViT + BERT features, "
    "101 classes), so only the direction and the rough size of the gap can be compared, and Section 7 shows that "
    "even the direction depends on the setting.",
)))

# %% [markdown]
# ## 8. Are people modality-biased too? (CREMA-D crowd votes)
#
# CREMA-D [Cao et al., 2014] (chapter 7's audio-visual dataset) comes with a human experiment:
# thousands of raters judged each clip's emotion from the **voice only**, the **face only**, or
# **both**. The file `processedResults/summaryTable.csv` holds the crowd's majority vote per clip and
# mode; `cremad.vote_agreement` counts how often it matches the emotion the actor was asked to play.

# %%
votes_here = os.path.exists(CREMAD_VOTES)
if votes_here:
    agreement = cremad.vote_agreement(cremad.read_votes(CREMAD_VOTES))
    labels = {"voice": "voice only", "face": "face only", "multimodal": "both"}
    fig, ax = plt.subplots(figsize=(5, 2.8))
    ax.bar([labels[mode] for mode in agreement], list(agreement.values()),
           color=["tab:green", "tab:purple", "tab:gray"])
    for k, value in enumerate(agreement.values()):
        ax.text(k, value + 1, f"{value:.1f}%", ha="center")
    ax.set_ylabel("crowd vote = acted emotion (%)")
    ax.set_ylim(0, 100)
    plt.show()
else:
    display(Markdown(
        f"*The CREMA-D crowd votes are not on this machine* (looked for `{CREMAD_VOTES}`), so no figure is drawn. "
        "`python data_scripts/cremad.py` prepares the whole dataset, votes included (see `data_scripts/README.md`); "
        "for the votes alone (450 kB): `python -c \"from modbal_lib import download; "
        f"download.fetch('cremad_summary_table', '{os.path.dirname(CREMAD_VOTES)}')\"`. "
        "Or point the parameter `CREMAD_VOTES` (environment variable `MODBAL_CREMAD_VOTES`) at a copy and rerun."))

# %% [markdown]
# **Figure 1.6.** (Drawn only when the CREMA-D votes are on this machine.) The share of clips whose
# crowd majority vote matches the acted emotion, from the voice only, the face only and both. Look at
# which single modality people read better, and how much the second one adds on top of it.

# %%
if votes_here:
    stronger, weaker = sorted(["voice", "face"], key=agreement.get, reverse=True)
    both_gain = agreement["multimodal"] - agreement[stronger]
    display(Markdown(
        f"**Reading.** Raters recognise the acted emotion from the {stronger} alone in {agreement[stronger]:.1f}% of "
        f"clips, from the {weaker} alone in {agreement[weaker]:.1f}%, and from both in {agreement['multimodal']:.1f}% "
        f"({both_gain:+.1f} points over the {stronger} alone). People have a stronger modality too; the question a "
        "model should be asked is the same as for people: does it still use the weaker one when both are there?"))

# %% [markdown]
# ## Summary
#
# * Dominant modality bias is an asymmetry under BalGrad's missing/noisy protocol (Avg, ΔGap) that
#   becomes a *bias* when the neglected modality is useful alone: compare the joint model left with
#   only that modality against its unimodal ceiling (the shortfall).
# * Which modality dominates is a property of the whole setting (encoder, preprocessing, encoding of
#   "missing"), not of the data alone.
#
# What this chapter measured, printed from the runs above:

# %%
flips = [d.setting for d in dominances if d.dominant != baseline.dominant]
display(Markdown("\n".join([
    f"* **Protocol.** With raw EfficientNet features and a black blank the {dominant} dominates on "
    f"{main_dominance.agreeing_seeds} of {len(SEEDS)} seeds: ΔGap {summarize(main_dominance.delta_gap).text()} "
    f"points, Full {summarize(main_dominance.full).text()}.",
    f"* **Shortfalls.** {weak}: {shortfall_of[weak].text()}; {dominant}: {shortfall_of[dominant].text()} "
    f"(ceiling minus the joint model left with only that modality).",
    f"* **Fig. 2b.** The {dominant}'s unimodal head makes half of its loss drop first on {heads_first} of "
    f"{len(SEEDS)} seeds ({weak} − {dominant}, in iterations: {lag_text(heads_title)}); the logit-share stand-in "
    f"names the same modality on {agree} of {len(SEEDS)} seeds.",
    "* **Settings.** The dominant modality differs from the default's in "
    + (f"{len(flips)} of {len(dominances)} settings: " + ", ".join(f"“{name}”" for name in flips) if flips else
       f"none of the {len(dominances)} settings (the ΔGap still moves: see Figure 1.5)") + ".",
])))

# %% [markdown]
# ## Exercises
#
# 1. **Scale, not normalisation.** Section 7 explained the effect of L2 normalisation by the size
#    of the image features. Test the explanation: instead of L2-normalising, divide the raw
#    EfficientNet features by a constant (train and test alike) and train the joint model again.
#    At which scale does the dominant modality switch, if it does?
#
#    <details><summary>Hint</summary>
#
#    Wrap `default.test_source()` in a function that multiplies `features["image"]` of every
#    `FeatureSet` it returns by the constant (`dataclasses.replace`), do the same to
#    `default.features("train")`, train with `modbal_lib.train.train` and score with
#    `modbal_lib.evaluate.evaluate(model, source, seed=..., ratios=())`. Try constants that bring the
#    mean image norm (printed in Section 3) down towards the text's.
#
#    </details>
# 2. **Do the heads change the model?** Section 6 trained `joint_unimodal_heads` to draw BalGrad's
#    Fig. 2b. The heads' losses also train the branches. Does the model with heads have a different
#    ΔGap, or a different shortfall on the weak modality, than plain joint training?
#
#    <details><summary>Hint</summary>
#
#    Both are already in `main_runs`, trained on the same seeds: compare them seed by seed with
#    `paired_difference`, and the shortfalls with `dominance.shortfalls`.
#
#    </details>
# 3. **The blank as a design choice.** For your own two-modality problem, write down which
#    "missing" encoding matches how the modality would really be absent in deployment (a sensor
#    that outputs zeros? a user who uploads no picture?). Which row of the Section 7 table is the
#    honest one for emoji? Check how far each encoding of a missing image lands from the image
#    features the model was trained on.
#
#    <details><summary>Hint</summary>
#
#    `default.features("test", Impairment("image", "missing", blank="white"))` gives the features of
#    the white blank (every row the same); a zero vector is the third encoding. Compare each one's
#    distance to its nearest training feature with the typical distance between a training feature
#    and its nearest neighbour (`torch.cdist`).
#
#    </details>
# 4. **Harder labels.** The emoji data also has 98 subcategories
#    (`load_dataset("emoji", split, label="subcategory")`, the same samples in the same order).
#    Repeat Sections 4–5 with them: does the joint model still lean on the same modality, and do the
#    ceilings change order?
#
#    <details><summary>Hint</summary>
#
#    The features do not depend on the label: relabel the cached category features
#    (`dataclasses.replace(features, labels=..., class_names=...)`) instead of extracting them again,
#    train `joint` and both unimodal models with `train`, and read the shortfalls with
#    `dominance.shortfall` on the evaluated tables.
#
#    </details>

# %% [markdown]
# ## Solutions
#
# Each solution reuses the chapter's runs or trains a few small models on the chapter's seeds.

# %% [markdown]
# ### Solution to exercise 1
#
# If the image dominates because its features are long (Section 7), shrinking them by a constant
# should slow the image branch and let the text catch up, without changing any information in them.
# The cell trains the joint model at a few scales (the last one brings the mean image norm to the
# text's) and prints, per scale, the dominant modality and the ΔGap; look for the first scale at
# which the dominant modality changes, and whether the ΔGap shrinks on the way.

# %% tags=["solution", "hide-input"]
def scaled(features_for, factor):
    """A feature source whose image features are multiplied by ``factor`` (train and test alike)."""
    def source(impairment=None):
        features = features_for(impairment)
        return replace(features, features={**features.features, "image": features.features["image"] * factor})
    return source


SCALES = [1.0, 1 / 4, 1 / feature_norm["image"]] if FAST else [1.0, 1 / 2, 1 / 4, 1 / 8, 1 / feature_norm["image"]]
scale_rows, scale_dominance = [], {}
for factor in SCALES:
    train_scaled = scaled(lambda impairment: default.features("train", impairment), factor)(None)
    test_scaled = scaled(default.test_source(), factor)
    tables = [evaluate(train(train_scaled, "joint", epochs=EPOCHS, seed=seed, show_progress=False).model,
                       test_scaled, seed=seed, noisy=False, ratios=()) for seed in SEEDS]
    d = scale_dominance[factor] = Dominance(f"image x {factor:.3g}", tables)
    scale_rows.append([f"{factor:.3g}", f"{feature_norm['image'] * factor:.2f}",
                       f"**{d.dominant}** ({d.agreeing_seeds}/{len(SEEDS)})", summarize(d.missing("image")).text(),
                       summarize(d.missing("text")).text(), summarize(d.delta_gap).text()])
switched = [f for f in SCALES if scale_dominance[f].dominant != scale_dominance[1.0].dominant]
display(Markdown(
    markdown_table(["image features x", "mean image norm", "dominant", "image missing", "text missing", "ΔGap"],
                   scale_rows)
    + "\n\n" + (f"The dominant modality first switches (to the {scale_dominance[switched[0]].dominant}) at scale "
                f"{switched[0]:.3g}, mean image norm {feature_norm['image'] * switched[0]:.2f}."
                if switched else "The dominant modality does not switch at these scales; compare the ΔGap column: "
                f"{', '.join(summarize(scale_dominance[f].delta_gap).text() for f in SCALES)}.")))

# %% [markdown]
# ### Solution to exercise 2
#
# The heads add $L_T^v + L_T^l$ to the loss, so each branch is also trained to predict the label on
# its own; that can only help the weak modality's branch, so expect its shortfall (and the ΔGap) to
# be smaller with heads, if anything. The cell compares the two models seed by seed; read the
# verdicts before calling a difference real.

# %% tags=["solution", "hide-input"]
heads_gap = paired_difference(heads_runs, joint_runs, lambda run: run.table.missing_delta_gap)
heads_shortfall = paired_difference(shortfalls(alone_runs[weak], heads_runs, weak),
                                    shortfalls(alone_runs[weak], joint_runs, weak))
display(Markdown(
    f"With heads minus without, seed by seed: ΔGap {heads_gap.text()}; the {weak}'s shortfall "
    f"{heads_shortfall.text()} (the {weak}'s shortfall with heads: "
    f"{shortfall(alone_runs[weak], heads_runs, weak).text()}). "
    + ("The heads change the model measurably: Fig. 2b's curves describe a different model from plain joint "
       "training." if heads_gap.differs or heads_shortfall.differs else
       "No difference that these seeds can show." if WITHIN_NOISE in (heads_gap.verdict, heads_shortfall.verdict)
       else f"Too few seeds to tell ({len(SEEDS)}): rerun the chapter with more seeds before concluding.")))

# %% [markdown]
# ### Solution to exercise 3
#
# In deployment an emoji without a picture is most like an emoji with nothing drawn, i.e. the white
# background, so the white-blank rows are the honest ones for emoji; a black square is a picture no
# user would send, and a zero feature vector is what a pipeline that drops the modality after
# encoding would feed. The cell measures where each encoding lands among the training features: its
# distance to the nearest training feature, in units of the typical distance between a training
# feature and its nearest neighbour, and which training emoji that nearest one is. An encoding that
# lands as close to some emoji as emoji are to each other is read by the model as *that* emoji, not
# as "nothing": look at the categories of the nearest emoji and compare them with the dominant
# modality's behaviour in the Section 7 table.

# %% tags=["solution", "hide-input"]
train_image = train_features.features["image"]
neighbour = torch.cdist(train_image, train_image)
neighbour.fill_diagonal_(float("inf"))
typical = float(neighbour.min(dim=1).values.median())
blanks = {f"{b} picture": default.features("test", Impairment("image", "missing", blank=b)).features["image"][0]
          for b in ("black", "white")}
blanks["zero feature vector"] = torch.zeros_like(train_image[0])
train_data = load_dataset("emoji", "train")
blank_rows = []
for name, vector in blanks.items():
    distances = torch.cdist(vector[None], train_image)[0]
    nearest = int(distances.argmin())
    blank_rows.append([name, f"{float(distances[nearest]) / typical:.1f}",
                       f"{train_data.inputs['text'][nearest]} [{train_data.class_names[train_data.labels[nearest]]}]"])
display(Markdown(markdown_table(["missing image encoded as", "distance to the nearest training feature "
                                 "(in typical nearest-neighbour distances)", "nearest training emoji [category]"],
                                blank_rows)
                 + f"\n\nTypical nearest-neighbour distance between training image features: {typical:.2f}."))

# %% [markdown]
# ### Solution to exercise 4
#
# With 98 subcategories each modality has to tell much finer distinctions: the name often spells the
# subcategory out, the picture only sometimes. The cell relabels the cached features, trains the three
# models on the chapter's seeds and prints the ceilings and the shortfalls; compare them with Section 5's
# and check whether the modality the joint model leans on (by the kit's rule) changes.

# %% tags=["solution", "hide-input"]
subcategory = {split: load_dataset("emoji", split, label="subcategory") for split in ("train", "test")}
assert list(subcategory["test"].inputs["text"]) == list(test_data.inputs["text"]), "same samples, same order"


def relabelled(features, split):
    """The cached category features of ``split`` with the subcategory labels (same samples, same order)."""
    fine = subcategory[split]
    return replace(features, labels=torch.from_numpy(fine.labels), class_names=list(fine.class_names))


fine_train = relabelled(train_features, "train")
fine_source = lambda impairment=None: relabelled(default.features("test", impairment), "test")  # noqa: E731
fine_runs = {method: [evaluate(train(fine_train, method, epochs=EPOCHS, seed=seed, show_progress=False).model,
                               fine_source, seed=seed, noisy=False, ratios=()) for seed in SEEDS]
             for method in ("joint", "unimodal_image", "unimodal_text")}
fine_leaning = leaned_on({m: fine_runs[f"unimodal_{m}"] for m in MODALITIES}, fine_runs["joint"])
display(Markdown(
    f"Subcategories ({len(fine_train.class_names)} classes): ceilings image "
    f"{summarize(t.full for t in fine_runs['unimodal_image']).text()}, text "
    f"{summarize(t.full for t in fine_runs['unimodal_text']).text()}; joint Full "
    f"{summarize(t.full for t in fine_runs['joint']).text()}; shortfalls image "
    f"{fine_leaning.shortfalls['image'].text()}, text {fine_leaning.shortfalls['text'].text()}; "
    + (f"the joint model leans on the **{fine_leaning.modality}** by the kit's rule."
       if fine_leaning.modality else f"the two shortfalls do not differ by the kit's rule "
       f"({fine_leaning.difference.verdict}). On categories (Section 5) the modality with the smaller shortfall "
       f"was the {min(MODALITIES, key=lambda m: shortfall_of[m].mean)}.")))
