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
# modality alone would have been enough for a decent answer. BalGrad calls this **dominant
# modality bias**. This chapter defines it, measures it with BalGrad's protocol on a small real
# dataset, watches it appear during training, and then shows that *which* modality dominates is
# not a property of the data alone: one preprocessing switch, the choice of image encoder or the
# way "missing" is encoded moves it.
#
# **You will learn:** what dominant modality bias is and how BalGrad measures it (missing and
# noisy modalities at test time, Avg and DeltaGap); how to compare a joint model with its
# unimodal ceilings and check for negative transfer; how the per-modality losses reveal the
# dominant modality while training; and why a claim "modality X dominates" must name the
# encoder, the preprocessing and the encoding of a missing input.
#
# **Paper sections:** BalGrad (Kwon, Kim, Lee, Choi, Kim; NAACL 2025, arXiv 2503.13834)
# Section 1 and Fig. 2 (dominant modality bias, per-modality losses), Section 4.1 and Table 1
# (the impairment protocol and DeltaGap). For the "multimodal is worse than unimodal" check:
# Wang, Tran and Feiszli, *What makes training multi-modal classification networks hard?*
# (CVPR 2020).

# %%
import os
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import modbal_lib
from modbal_lib.claims import paper_vs_measured
from modbal_lib.data import cremad
from modbal_lib.data import load as load_dataset
from modbal_lib.dominance import Dominance, halfway_iteration, learns_first, rescore_missing
from modbal_lib.encoders import encode
from modbal_lib.experiments import Experiment, compare
from modbal_lib.stats import WITHIN_NOISE, markdown_table, paired_difference, summarize, table1
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
print(f"mode: {'fast' if FAST else 'full'}; seeds {SEEDS}; {EPOCHS} epochs on features, "
      f"{CNN_EPOCHS} epochs for the CNN on {CNN_INPUT}")

# %% [markdown]
# ## 1. The definition
#
# A model $f(x^v, x^l)$ is trained on an image $x^v$ and a text $x^l$. Write $S(\cdot)$ for its
# test score (accuracy here) when
#
# * both modalities are given: $S_\text{full}$;
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
# | impairment | image | text |
# |---|---|---|
# | missing | an all-black picture (zeros) | the empty string |
# | noisy | salt-and-pepper noise on 30 % of the pixels | each word deleted with probability 0.15 |
#
# and report, for missing and for noisy separately,
#
# $$\text{Avg} = \tfrac12\,(S_{\neg v} + S_{\neg l}), \qquad
#   \Delta\text{Gap} = |S_{\neg v} - S_{\neg l}| \ \text{(percentage points)}.$$
#
# A small DeltaGap means the model degrades about equally whichever modality it loses: less
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
# The default encoders are frozen and pretrained: EfficientNet-Lite0 (ImageNet) gives a 1280-d
# image feature, all-MiniLM-L6-v2 a 384-d sentence embedding. Features are computed once and
# cached. Look at their **sizes**: MiniLM's output is L2-normalised (as sentence-transformers
# does), EfficientNet's pooled feature is not. This detail comes back in Section 7.

# %%
default = Experiment("emoji")
train_features = default.features("train")
for m in MODALITIES:
    x = train_features.features[m]
    print(f"{m:>5}: {len(x)} training samples x {x.shape[1]} dims, mean feature norm {x.norm(dim=1).mean():.2f}")

# %% [markdown]
# ## 4. Joint training under the protocol
#
# The model (BalGrad's architecture, on frozen features): a trainable embedding layer
# $h_m$ (linear + ReLU, 128-d) per modality, concatenation, and a linear classifier; Adam,
# cross-entropy on the fused logits only ("joint training"). Beside it, the two unimodal models
# (`unimodal_image`, `unimodal_text`): the same branch and a classifier on one modality.

# %%
main_runs = compare(default, ["joint", "unimodal_image", "unimodal_text"], SEEDS, epochs=EPOCHS, ratios=())
joint_runs = main_runs["joint"]
display(Markdown(f"**Joint training on emoji, accuracy (%), BalGrad's Table 1 layout**\n\n"
                 + table1({"joint": [run.table for run in joint_runs]}, marks=False)))

# %% [markdown]
# `Dominance` (in `modbal_lib.dominance`) collects these tables over seeds and names the modality
# whose absence costs most, on average and seed by seed.

# %%
OTHER = {"image": "text", "text": "image"}
main_dominance = Dominance("EfficientNet, raw features", [run.table for run in joint_runs])
dominant, weak = main_dominance.dominant, OTHER[main_dominance.dominant]
noisy = {m: [run.table.noisy[m] for run in joint_runs] for m in MODALITIES}
noisy_vs_missing = paired_difference(noisy[dominant], main_dominance.missing(dominant))
display(Markdown(
    f"**Reading.** The {dominant} dominates on {main_dominance.agreeing_seeds} of {len(SEEDS)} seeds. Left with only "
    f"the {weak} ({dominant} missing) the joint model scores {summarize(main_dominance.missing(dominant)).text()}, "
    f"against {summarize(main_dominance.full).text()} with both; left with only the {dominant} it scores "
    f"{summarize(main_dominance.missing(weak)).text()}. The DeltaGap, {summarize(main_dominance.delta_gap).text()} "
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
#    one missing) with the model trained on m alone, seed by seed (the kit's paired difference,
#    `modbal_lib.stats`, explained in chapter 0). A big shortfall means the joint model never
#    learned to use m on its own.
# 2. **Negative transfer.** In BalGrad's sense: removing a modality *raises* the score
#    (`ImpairmentTable.negative_transfer`). In Wang et al.'s sense: the joint model is worse
#    than the best unimodal model.

# %%
ceiling = {m: [run.table.full for run in main_runs[f"unimodal_{m}"]] for m in MODALITIES}
left_with = {m: [run.table.missing[OTHER[m]] for run in joint_runs] for m in MODALITIES}
shortfall = {m: paired_difference(ceiling[m], left_with[m]) for m in MODALITIES}
rows = [[f"{m} only", summarize(ceiling[m]).text(), summarize(left_with[m]).text(), shortfall[m].text()]
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

# %%
joint_full = [run.table.full for run in joint_runs]
joint_gain = paired_difference(joint_full, np.maximum(ceiling["image"], ceiling["text"]))
flagged = Counter(m for run in joint_runs for m in run.table.negative_transfer)
ceilings_compared = paired_difference(ceiling[weak], ceiling[dominant])
weak_alone = ""
if ceilings_compared.differs:
    weak_alone = f": the neglected modality is the {'stronger' if ceilings_compared.mean > 0 else 'weaker'} one alone"
gain_reading = ""
if joint_gain.differs:
    gain_reading = ": the joint model is worse than the best unimodal one" if joint_gain.mean < 0 else ": fusing helps"
elif joint_gain.verdict == WITHIN_NOISE:
    gain_reading = ": no gain or loss from fusing that these seeds can show"
display(Markdown(
    f"**Reading** (differences in percentage points). The {weak} alone reaches {summarize(ceiling[weak]).text()}, "
    f"the {dominant} alone {summarize(ceiling[dominant]).text()} ({weak} − {dominant}, paired: "
    f"{ceilings_compared.text()}{weak_alone}). The joint model left with only the {weak} reaches "
    f"{summarize(left_with[weak]).text()}: a shortfall of {shortfall[weak].text()} (for the {dominant}: "
    f"{shortfall[dominant].text()}). Joint minus best unimodal model, seed by seed: {joint_gain.text()}"
    f"{gain_reading}. "
    "Removing a modality raised the score (BalGrad's negative transfer) on "
    + (", ".join(f"{n} seed(s) for the {m}" for m, n in flagged.items()) if flagged else "no seed") + "."))

# %% [markdown]
# A large shortfall for one modality and a small one for the other is dominant modality bias in
# one figure: the joint model treats the neglected branch as a small correction to the dominant
# one. On emoji the two modalities largely carry the same information (both name the
# category), so fusing them can gain little over the best single modality even when nothing is
# impaired; the price of the bias is paid only when the dominant modality goes missing.
#
# ## 6. Watching it happen: per-modality losses during training (BalGrad Fig. 2b)
#
# The joint model has no unimodal heads, but its fused logits split exactly into one share per
# modality: with concatenation, $z = W_v f_v + W_l f_l + b$, so modality m's share is
# $z_m = W_m f_m + b/2$ (`LateFusion.probe_logits`). The trainer records the cross-entropy of each
# share at every iteration (`history["loss_uni_image"]`, `history["loss_uni_text"]`): how well
# each modality's part of the model predicts the label on its own. BalGrad's Fig. 2b shows the
# pattern for its baseline: the dominant modality's loss falls first and fastest, the other lags.
# The kit's one measure of how fast a loss falls is `dominance.halfway_iteration`: the iteration at
# which the smoothed loss has made half of its drop.

# %%
SMOOTH = 5  # running mean over iterations


def learns_first_per_seed(runs):
    """Per run: the modality whose probe loss first makes half of its drop (``learns_first``), or None."""
    return [learns_first({m: run.result.history[f"loss_uni_{m}"] for m in MODALITIES}, SMOOTH) for run in runs]


fig, ax = plt.subplots(figsize=(7, 3.5))
for m in MODALITIES:
    curves = np.array([run.result.curve(f"loss_uni_{m}", SMOOTH) for run in joint_runs])
    points = [summarize(column) for column in curves.T]
    mean, sd = np.array([p.mean for p in points]), np.array([p.sd for p in points])
    ax.plot(mean, label=f"{m} share of the fused logits")
    ax.fill_between(np.arange(len(mean)), mean - sd, mean + sd, alpha=0.25)
iterations_per_epoch = len(joint_runs[0].result.history["loss"]) // EPOCHS
for epoch in range(1, EPOCHS):
    ax.axvline(epoch * iterations_per_epoch, color="grey", lw=0.3)
ax.set_xlabel("iteration (grey lines: epochs)")
ax.set_ylabel("cross-entropy")
ax.set_title(f"joint training on emoji, mean ± sample SD over {len(SEEDS)} seeds")
ax.legend()
plt.show()

halfway = {m: ["never" if h is None else h
               for h in (halfway_iteration(run.result.history[f"loss_uni_{m}"], SMOOTH) for run in joint_runs)]
           for m in MODALITIES}
first = learns_first_per_seed(joint_runs)
display(Markdown(paper_vs_measured(
    "Under plain joint training the dominant modality's unimodal loss falls faster than the other's (Fig. 2b).",
    "a figure without numbers: the dominant modality's loss curve drops first and lowest.",
    f"on emoji the {dominant} dominates (Section 4) and is the first to make half of its loss drop on "
    f"{first.count(dominant)} of {len(SEEDS)} seeds; iteration at which each loss has made half of its drop, "
    "per seed: " + "; ".join(f"{m} {halfway[m]}" for m in MODALITIES) + ".",
    "same pattern" if first.count(dominant) == len(SEEDS) else "the pattern holds on some seeds only",
)))

# %% [markdown]
# ## 7. Who dominates is a *setting*, not a fact about the data
#
# Section 3 printed the feature sizes: EfficientNet's raw features have a norm in the tens,
# MiniLM's a norm of 1. The first layer of each branch computes $W_m x_m$. Adam moves every weight
# by roughly the learning rate per step, whatever the size of its gradient, so one step changes
# the branch's pre-activations by about $\Delta W_m\, x_m$, which grows with $\|x_m\|$: per step,
# the image branch's output moves many times further than the text branch's. (Under plain SGD the
# gradient $\delta\, x_m^\top$ itself also grows with $\|x_m\|$, so the effect is stronger still.)
# Expect the image to win the race for the training loss before the text branch gets going.
# That suggests three experiments, each changing one thing:
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
    ["image features; encoding of missing", "dominant", "Full", "image missing", "text missing", "DeltaGap"], rows)))

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

# %%
image_settings = {
    "EfficientNet, raw": (ceiling["image"], joint_runs),
    "EfficientNet, L2-normalised": ([run.table.full for run in normalised_runs["unimodal_image"]],
                                    normalised_runs["joint"]),
    f"CNN from scratch on {CNN_INPUT}": ([run.table.full for run in cnn_runs["unimodal_image"]], cnn_runs["joint"]),
}
rows = []
for name, (image_ceiling, runs) in image_settings.items():
    first_counts = Counter(m or "neither" for m in learns_first_per_seed(runs))
    rows.append([name, summarize(image_ceiling).text(), summarize(ceiling["text"]).text(),
                 ", ".join(f"{m} {n}/{len(runs)}" for m, n in first_counts.most_common())])
display(Markdown("**Unimodal ceilings and learning speed** (accuracy %, mean ± sample SD; the text model is the "
                 "same in every row; last column: whose probe loss first makes half of its drop in the joint model, "
                 "over seeds; neither: no loss falls)\n\n"
                 + markdown_table(["image features", "image alone", "text alone",
                                   "first to make half of its loss drop"], rows)))

# %% [markdown]
# The three switches, each compared with the default (raw EfficientNet features, black blank),
# read off the rows above:

# %%
by_setting = {d.setting: d for d in dominances}
baseline = by_setting["EfficientNet, raw; missing = black"]


def change(setting, reference=baseline):
    """How the dominant modality and the DeltaGap of ``setting`` compare with those of ``reference``
    (the DeltaGaps paired seed by seed: same seeds, and for a change of encoding the same trained models)."""
    d = by_setting[setting]
    moved = "**flips** to" if d.dominant != reference.dominant else "stays with"
    return (f"{moved} the {d.dominant} ({d.agreeing_seeds}/{len(d.tables)} seeds), DeltaGap "
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
# * **Encoding of "missing".** A black square is far from every training picture, so its
#   features can push the fused logits anywhere; a white blank is a plausible "empty emoji"; a
#   zero feature vector silences the branch's input altogether. Scored on the *same* trained
#   models, the DeltaGap can change a lot between encodings. BalGrad fixes the black picture, so
#   its numbers are comparable across methods; they are a property of model *and* protocol.
#
# So "Food-101 is image-dominant" (BalGrad Table 1) is a statement about ViT/BERT features, their
# preprocessing, a black blank and an empty string. In the table above the emoji data is the
# same in every row.

# %%
food101_image_missing, food101_text_missing = 12.99, 63.52  # BalGrad Table 1, Food-101, baseline row
direction = ("same direction: the image dominates on both" if main_dominance.dominant == "image"
             else "opposite direction: on emoji the text dominates")
display(Markdown(paper_vs_measured(
    "Joint training leans on one modality; on UPMC Food-101 (ViT + BERT features, 101 classes) it is the image.",
    f"Food-101 baseline: image missing {food101_image_missing}, text missing {food101_text_missing}, "
    f"DeltaGap {abs(food101_text_missing - food101_image_missing):.2f} (accuracy %).",
    f"**a different dataset**: emoji, 9 classes, EfficientNet-Lite0 + MiniLM features, black blank: "
    f"image missing {summarize(main_dominance.missing('image')).text()}, "
    f"text missing {summarize(main_dominance.missing('text')).text()}, "
    f"DeltaGap {summarize(main_dominance.delta_gap).text()}; "
    f"dominant: {main_dominance.dominant} ({main_dominance.agreeing_seeds}/{len(SEEDS)} seeds).",
    direction + ". Datasets, encoders and class counts differ, so only the direction and the rough size of the "
    "gap can be compared, and Section 7 shows that even the direction depends on the setting.",
)))

# %% [markdown]
# ## 8. Are people modality-biased too? (CREMA-D crowd votes)
#
# CREMA-D (chapter 7's audio-visual dataset) comes with a human experiment: thousands of raters
# judged each clip's emotion from the **voice only**, the **face only**, or **both**. The file
# `processedResults/summaryTable.csv` holds the crowd's majority vote per clip and mode;
# `cremad.vote_agreement` counts how often it matches the emotion the actor was asked to play.

# %%
if os.path.exists(CREMAD_VOTES):
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
    stronger, weaker = sorted(["voice", "face"], key=agreement.get, reverse=True)
    both_gain = agreement["multimodal"] - agreement[stronger]
    display(Markdown(
        f"**Reading.** Raters recognise the acted emotion from the {stronger} alone in {agreement[stronger]:.1f}% of "
        f"clips, from the {weaker} alone in {agreement[weaker]:.1f}%, and from both in {agreement['multimodal']:.1f}% "
        f"({both_gain:+.1f} points over the {stronger} alone). People have a stronger modality too; the question a "
        "model should be asked is the same as for people: does it still use the weaker one when both are there?"))
else:
    display(Markdown(
        f"*The CREMA-D crowd votes are not on this machine* (looked for `{CREMAD_VOTES}`). "
        "`python data_scripts/cremad.py` prepares the whole dataset, votes included (see `data_scripts/README.md`); "
        "for the votes alone (450 kB): `python -c \"from modbal_lib import download; "
        f"download.fetch('cremad_summary_table', '{os.path.dirname(CREMAD_VOTES)}')\"`. "
        "Or point the parameter `CREMAD_VOTES` (environment variable `MODBAL_CREMAD_VOTES`) at a copy and rerun."))

# %% [markdown]
# ## Exercises
#
# 1. **Scale, not normalisation.** Section 7 explained the flip by the size of the image
#    features. Test the explanation: instead of L2-normalising, divide the raw EfficientNet
#    features by a constant (build a `FeatureSet` by hand from `default.features("train")`, train
#    with `modbal_lib.train.train`). At which scale does the dominant modality switch?
# 2. **Unimodal heads.** Rerun Section 6 with `compare(default, ["joint_unimodal_heads"], ...)`:
#    each branch now also gets its own classifier and loss. Do the recorded `loss_uni_*` curves
#    still show one modality racing ahead? Does the DeltaGap shrink?
# 3. **The blank as a design choice.** For your own two-modality problem, write down which
#    "missing" encoding matches how the modality would really be absent in deployment (a sensor
#    that outputs zeros? a user who uploads no picture?). Which row of the Section 7 table is the
#    honest one for emoji?
# 4. **Harder labels.** Load the emoji data with `dataset_options={"label": "subcategory"}`
#    (98 classes) and repeat Sections 4–5. The reference notes report that the image leads at
#    subcategory level with logistic regression; does the joint model's dominance follow?
