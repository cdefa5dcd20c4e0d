"""The evidence CGGM rests on, reproduced on the kit's data (used in chapter 5 and by the claims ledger).

Paper: Guo, Jin, Chen, Zhao, "Classifier-guided Gradient Modulation for Enhanced Multimodal Learning",
NeurIPS 2024, arXiv 2411.01409. Its figures and result tables are images in our copy, so what each one
plots is read from its caption and from Sections 3.2, 3.3.2 and 4.3-4.5; where that leaves a choice,
the function's docstring says which reading this module implements.

- **Fig. 2 and Fig. 3** (Section 3.2; Section 4.3, "Effectiveness of CGGM"): over training, (a) the
  accuracy of each modality's classifier and of the fusion, (b) the Euclidean norm of each encoder's
  gradient, (c) the cosine between the fused head's gradient and each classifier's gradient; under
  joint training with the classifiers beside it (Fig. 2) and under CGGM (Fig. 3). ``train`` records
  (b); ``TracedCGGM`` adds (a)'s fusion accuracy and (c). ``trajectories``, ``trajectory_figure``;
  the paper's "the gradient magnitude of the dominant modality increases fast while the others remain
  stable" is read as ``gradient_growth`` / ``growth_reading``, Fig. 3(b)'s "decreases at first" as
  ``early_norm_ratio``.
- **Fig. 4** (Sections 3.3.2 and 4.4, the method's key assumption): per batch, the classifier's gradient
  (CGGM's stand-in) against the true unimodal gradient: ``gradient_pairs``, ``stand_in_cosines``,
  ``stand_in_summaries``, ``tsne_points``, ``stand_in_figure``.
- **Table 5** (Section 4.4): each classifier's test accuracy after unimodal training, joint training and
  CGGM: ``table5_accuracies``, ``table5_markdown``.
- **Table 6** (Section 4.5): magnitude only / direction only / both (CGGM's ``magnitude`` and
  ``direction`` options): ``TABLE6``, ``table6_runs``.
- ``*_parts(runs, dataset)`` (``fig2_magnitude_parts`` ... ``table6_parts``): the paired differences
  (``stats.paired_difference``) a claim reads, as ``{part: Part(difference, expect, what)}``, from runs a
  caller trained (chapter 5); ``check_*(ledger)``: the same parts on the ledger's runs. ``claims`` turns a
  part into a verdict with ``directional(*part)`` and several parts into one with ``combined``. This
  module does not import ``claims`` (the ledger imports it).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from torch import Tensor, nn

from modbal_lib import stats
from modbal_lib.evaluate import predict
from modbal_lib.experiments import Experiment, Run, compare
from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import loss_grads, rowwise_cosine, to_floats
from modbal_lib.methods import option_hints
from modbal_lib.methods.base import Step, task_loss
from modbal_lib.methods.cggm import CGGM, METRIC_NAMES, batch_metric, head_blocks
from modbal_lib.metrics import higher_is_better, score
from modbal_lib.models import LateFusion
from modbal_lib.plots import _band, _style
from modbal_lib.train import TrainResult, train

FIG2 = {"magnitude": False, "direction": False}  # joint training; CGGM's classifiers only watch (Fig. 2)
FIG3: dict = {}                                   # CGGM with the kit's defaults (Fig. 3)
PANELS = ("accuracy", "gradient norm", "cosine")
COSINE_KEY = "cos_fused_clf_"
EXACT_TSNE_POINTS = 1000
SHARE = 0.2  # the early and the late window of training: its first and last fifth


class Part(NamedTuple):
    """One part of a claim: a paired difference, the sign the paper expects (+1 or -1), what it measures.
    ``claims.directional(*part)`` gives its verdict."""

    difference: stats.Difference
    expect: int
    what: str


# --- the gradients CGGM compares (Eqs. 9-12 and Appendix A) ---------------------------------------------

def head_gradient_blocks(model: LateFusion, loss: Tensor) -> list[Tensor]:
    """∇_{θ^F} loss, the fused head's last-layer gradient (CGGM Eq. 10), cut into the block that matches each
    classifier's last layer (``cggm.head_blocks``: W_i of a concat head, the whole head for sum/attention).
    Taken with ``autograd.grad`` (the graph is kept, nothing is written into ``.grad``)."""
    (grad,) = loss_grads(loss, [model.head.weight])
    return head_blocks(model, grad)


def classifier_gradient(classifier: nn.Sequential, embedding: Tensor, labels: Tensor, task: str) -> Tensor:
    """∇_{θ^{f_i}} L: the gradient of classifier f_i's task loss on one batch with respect to its last layer's
    weight (CGGM Eq. 9 and Appendix A; the layer that ``CGGM``'s L_gm compares). The embedding h_i is
    detached, as in training."""
    logits = classifier(embedding.detach().float())
    (grad,) = loss_grads(task_loss(task, logits, labels), [classifier[-1].weight], retain_graph=False)
    return grad


def unimodal_gradient(model: LateFusion, embeddings: dict[str, Tensor], modality: str, labels: Tensor,
                      task: str) -> Tensor:
    """The true unimodal gradient of ``modality`` on one batch (CGGM Sections 3.3.2 and 4.4: "we input h_i of
    only one modality into the fusion module Ω to get the unimodal gradients"): only h_i goes into the fusion,
    the other embeddings are replaced by 0 (the kit's reading: the paper does not say what stands in for the
    others), and the task loss of the fused head is differentiated with respect to its last layer; returned is
    the block that matches f_i's last layer (``head_gradient_blocks``), so it has f_i's shape."""
    masked = {m: e if m == modality else torch.zeros_like(e) for m, e in embeddings.items()}
    logits = model.head(model.fuse(masked))
    return head_gradient_blocks(model, task_loss(task, logits, labels))[model.modalities.index(modality)]


class TracedCGGM(CGGM):
    """CGGM (same options, same training) that also records what CGGM's Figs. 2 and 3 plot, per step:

    - ``cos_fused_clf_<m>``: cos(∇_{θ^F} L_task, ∇_{θ^{f_m}} L_m), the cosine of Eq. 11/12 between the fused
      head's gradient (its block W_m for a concat head) and classifier f_m's last-layer gradient, both
      of this batch's task losses before any modulation (the pair L_gm compares);
    - ``<metric>_fused``: the fused head's batch metric (``cggm.batch_metric``: accuracy for multiclass).

    The classifiers' batch metric ``<metric>_clf_<m>`` is CGGM's own record and ``grad_norm_<m>`` the trainer's.
    The extra gradients are taken with ``autograd.grad``: nothing is written into ``.grad`` and no random
    number is drawn, so the model, B and every other record equal those of ``CGGM`` with the same seed.
    With ``magnitude=False, direction=False`` (``FIG2``) the classifiers only watch, and the model is that
    of joint training with the same seed.
    """

    def backward(self, step: Step, losses: dict[str, Tensor]) -> dict[str, float]:
        model = step.model
        fused = head_gradient_blocks(model, losses["task"])  # before CGGM's backward frees the graph
        classifier_grads = [classifier_gradient(self.classifiers[m], step.output.embeddings[m], step.labels, step.task)
                            for m in model.modalities]  # before CGGM's backward steps the classifiers
        scalars = super().backward(step, losses)
        traced = {f"{COSINE_KEY}{m}": rowwise_cosine(fused[i].flatten(), classifier_grads[i].flatten())
                  for i, m in enumerate(model.modalities)}
        traced[f"{METRIC_NAMES[step.task]}_fused"] = batch_metric(step.task, step.output.logits, step.labels)
        return {**scalars, **to_floats(traced)}


def train_traced(features: FeatureSet, seeds, epochs: int, **options) -> list[TrainResult]:
    """``TracedCGGM`` on ``features``, one ``TrainResult`` per seed; ``options`` are CGGM's (``FIG2`` for Fig. 2)
    and ``train``'s (lr, batch_size, fusion, ...)."""
    method_names = set(option_hints("cggm"))
    method_options = {k: v for k, v in options.items() if k in method_names}
    train_options = {k: v for k, v in options.items() if k not in method_names}
    return [train(features, TracedCGGM(**method_options), epochs=epochs, seed=seed, show_progress=False,
                  **train_options) for seed in seeds]


def traced_runs(ledger, dataset: str, **options) -> list[TrainResult]:
    """``train_traced`` on ``dataset``'s training split with the ledger's seeds and epochs, trained once per
    ledger (kept in ``ledger.cache``, beside the runs of ``Ledger.runs``)."""
    key = ("cggm_evidence.traced", dataset, tuple(sorted(options.items())))
    if key not in ledger.cache:
        features = Experiment(dataset).features("train")
        ledger.cache[key] = train_traced(features, ledger.seeds, ledger.epochs[dataset], **options)
    return ledger.cache[key]


# --- Figs. 2 and 3: over training ------------------------------------------------------------------------

def history_modalities(result: TrainResult) -> list[str]:
    """The modalities of a run, from its ``grad_norm_<m>`` records."""
    return [key.removeprefix("grad_norm_") for key in result.history if key.startswith("grad_norm_")]


def trajectories(result: TrainResult, smooth: int = 1) -> dict[str, dict[str, np.ndarray]]:
    """What CGGM's Fig. 2 (joint training) and Fig. 3 (CGGM) plot, per training iteration, from a
    ``TracedCGGM`` run: ``{"accuracy": {m: ..., "fusion": ...}, "gradient norm": {m: ...}, "cosine": {m: ...}}``.

    - (a) "Accuracy of each modality and the fusion": classifier f_m's and the fused head's metric on each
      training batch (CGGM's batch metric: accuracy for multiclass, micro-F1 multilabel, MAE regression).
      Reading: the paper does not say whether on training batches or held-out data; the kit uses the
      training batches, the values CGGM's B is computed from.
    - (b) "Gradient magnitude of each modality ... the Euclidean norm of the gradient vector": the norm of
      the gradient reaching encoder h_m, after the method's edits (``train``'s ``grad_norm_<m>``).
      Reading: Section 3.2 ties it to the encoder's update (Eq. 4: "the encoder of the dominant modality
      will be updated much faster"), and Fig. 3(b) shows CGGM's scaling by B_m, so the gradient after the
      scaling.
    - (c) "Gradient direction between each modality and their fusion": ``cos_fused_clf_<m>`` (``TracedCGGM``).
      Reading: Section 3.3.2 calls ∇_{θ^{f_i}} L "the unimodal gradients" and ∇_{θ^F} L "the fusion
      gradients" (Eqs. 9-12); the encoders' gradient (Eq. 4) and the fusion module's (Eq. 3) live in
      different parameter spaces, where a cosine is not defined.

    ``smooth`` > 1: running mean over that many iterations (``TrainResult.curve``).
    """
    history = result.history
    metric = next((name for name in METRIC_NAMES.values() if f"{name}_fused" in history), "acc")
    modalities = history_modalities(result)
    keys = {"accuracy": {**{m: f"{metric}_clf_{m}" for m in modalities}, "fusion": f"{metric}_fused"},
            "gradient norm": {m: f"grad_norm_{m}" for m in modalities},
            "cosine": {m: f"{COSINE_KEY}{m}" for m in modalities}}
    missing = [key for series in keys.values() for key in series.values() if key not in history]
    if missing or not modalities:
        raise ValueError(f"trajectories: the run of {result.method.name!r} has no {missing or 'grad_norm_<m>'} in its "
                         "history; train it with cggm_evidence.TracedCGGM (FIG2 for joint training, FIG3 for CGGM)")
    if smooth < 1 or smooth > len(history["loss"]):
        raise ValueError(f"trajectories: smooth={smooth}; expected 1 to the run's {len(history['loss'])} iterations")
    return {panel: {name: result.curve(key, smooth) for name, key in series.items()} for panel, series in keys.items()}


def seed_band(curves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample SD over seeds at each iteration (``stats.summarize`` point by point)."""
    if len({len(curve) for curve in curves}) != 1:
        raise ValueError(f"seed_band: the seeds' curves have lengths {[len(c) for c in curves]}; expected equal")
    summaries = [stats.summarize(column) for column in np.stack(curves).T]
    return np.array([s.mean for s in summaries]), np.array([s.sd for s in summaries])


def trajectory_figure(configs: dict[str, list[TrainResult]], smooth: int = 5, title: str = "") -> Figure:
    """CGGM's Figs. 2 and 3 side by side: a row per configuration (e.g. ``{"joint training (Fig. 2)": ...,
    "CGGM (Fig. 3)": ...}``, ``TracedCGGM`` runs, one per seed), columns (a) accuracy, (b) gradient norm,
    (c) cosine with the fused gradient; each line the mean over seeds with a ± sample SD band."""
    if not configs or any(not results for results in configs.values()):
        raise ValueError("trajectory_figure: expected {label: [TracedCGGM run per seed]} with at least one run each")
    figure = Figure(figsize=(12.5, 3.0 * len(configs) + 0.6), layout="constrained")
    axes = figure.subplots(len(configs), len(PANELS), sharex=True, sharey="col", squeeze=False)
    for row, (label, results) in enumerate(configs.items()):
        per_seed = [trajectories(result, smooth) for result in results]
        iterations_per_epoch = len(results[0].history["loss"]) / results[0].config["epochs"]
        for column, panel in enumerate(PANELS):
            axis = axes[row, column]
            for number, name in enumerate(per_seed[0][panel]):
                means, sds = seed_band([curves[panel][name] for curves in per_seed])
                x = (np.arange(len(means)) + (smooth + 1) / 2) / iterations_per_epoch
                _band(axis, x, means, sds, name, _style(number))
            axis.set_title(f"{label}: ({'abc'[column]}) {panel}", fontsize="medium")
            axis.grid(alpha=0.3)
            if column == 2:
                axis.axhline(0, color="gray", linewidth=0.6)
        axes[row, 0].legend(fontsize="small")
    for axis in axes[-1]:
        axis.set_xlabel("epoch")
    axes[0, 0].set_ylabel("batch metric")
    axes[0, 1].set_ylabel("‖∇ encoder‖")
    axes[0, 2].set_ylabel("cos(fused, classifier)")
    n = sorted({len(results) for results in configs.values()})
    figure.suptitle((title + ": " if title else "") + f"CGGM Figs. 2 and 3 (mean ± sample SD over n = "
                    f"{', '.join(map(str, n))} seeds, running mean over {smooth} iterations)")
    return figure


def window_mean(series: np.ndarray, part: str, share: float = SHARE) -> float:
    """Mean of ``series`` over its first (``part="early"``) or last (``"late"``) ``share`` of training."""
    if not 0 < share <= 0.5 or part not in ("early", "late"):
        raise ValueError(f"window_mean: expected part 'early' or 'late' and 0 < share <= 0.5, got {part!r}, {share}")
    width = max(1, int(len(series) * share))
    return float(np.mean(series[:width] if part == "early" else series[-width:]))


def dominant_by_classifier(result: TrainResult, share: float = SHARE) -> str:
    """The dominant modality of one run: the one whose classifier's batch metric ``<metric>_clf_<m>`` is best
    over the last ``share`` of training (highest accuracy or F1, lowest MAE); CGGM's Fig. 2(a) reading of
    dominance. Any CGGM run has these records."""
    modalities = history_modalities(result)
    metric = next((name for name in METRIC_NAMES.values()
                   if modalities and f"{name}_clf_{modalities[0]}" in result.history), None)
    if metric is None:
        raise ValueError(f"dominant_by_classifier: the run has no classifier records <metric>_clf_<m> (its history: "
                         f"{sorted(result.history)}); train cggm or cggm_evidence.TracedCGGM")
    sign = -1.0 if metric == "mae" else 1.0
    late = {m: sign * window_mean(result.curve(f"{metric}_clf_{m}"), "late", share) for m in modalities}
    return max(late, key=late.get)


def gradient_growth(result: TrainResult, modality: str, share: float = SHARE) -> float:
    """The kit's reading of "the gradient magnitude ... increases" (CGGM Section 3.2 and 3.3.1): the mean
    gradient norm reaching encoder h_m over the last ``share`` of training divided by its mean over the first
    ``share``. 1 is stable, above 1 growing. Works on any run (``grad_norm_<m>`` is always recorded)."""
    key = f"grad_norm_{modality}"
    if key not in result.history:
        raise ValueError(f"gradient_growth: the run has no {key!r}; its modalities: {history_modalities(result)}")
    norms = result.curve(key)
    early = window_mean(norms, "early", share)
    if early <= 0:
        raise ValueError(f"gradient_growth: no gradient reached the {modality!r} branch in the first {share:.0%} "
                         "of training; the growth is undefined")
    return window_mean(norms, "late", share) / early


def growth_reading(result: TrainResult, dominant: str | None = None, share: float = SHARE) -> tuple[float, float]:
    """One seed's number for "the gradient magnitude of the dominant modality increases fast while the others
    remain stable" (CGGM Section 3.2): (log growth of the dominant modality, mean log growth of the others),
    growth as in ``gradient_growth``. The claim reads: the first > 0 and the first > the second. ``dominant``
    defaults to ``dominant_by_classifier``."""
    dominant = dominant or dominant_by_classifier(result, share)
    modalities = history_modalities(result)
    if dominant not in modalities:
        raise ValueError(f"growth_reading: dominant={dominant!r} is not among the run's modalities {modalities}")
    logs = {m: math.log(gradient_growth(result, m, share)) for m in modalities}
    others = [value for m, value in logs.items() if m != dominant]
    return logs[dominant], float(np.mean(others))


# --- Fig. 4: the classifiers' gradients as a stand-in for the unimodal gradients -------------------------

def gradient_pairs(result: TrainResult, features: FeatureSet, batch_size: int = 128, seed: int = 0,
                   max_batches: int | None = None) -> dict[str, tuple[Tensor, Tensor]]:
    """Per modality, the two sets of per-batch gradient vectors CGGM's Fig. 4 shows (Section 4.4: "for every
    batch of data, we input them into the model to get representations h_i which are then fed into the
    classifiers f_i ... Then we input h_i of only one modality into the fusion module"):
    ``{m: (classifier gradients [batches, D], unimodal gradients [batches, D])}``, D = f_m's last-layer size.

    Classifier gradient: ``classifier_gradient`` (∇ of f_m's loss w.r.t. its last layer). Unimodal gradient:
    ``unimodal_gradient`` (the fused head's gradient with only h_m fed in, the others 0). Both are taken on
    the trained model and classifiers of a CGGM run (any variant), on ``features`` in batches of
    ``batch_size`` in a seeded random order. Reading: the paper does not say at which point of training; the
    kit uses the end of training. With ``classifier="linear"`` both gradients are (p − y)ᵀ h_m / N with
    different predictions p, so their agreement is partly built in; ``"mlp"`` classifiers read another layer.
    """
    classifiers = getattr(result.method, "classifiers", None)
    if classifiers is None:
        raise ValueError(f"gradient_pairs: the run of {result.method.name!r} has no classifiers f_i; "
                         "Fig. 4 needs a CGGM run (cggm or cggm_evidence.TracedCGGM)")
    model = result.model
    missing = [m for m in model.modalities if m not in features.features]
    if missing or batch_size < 1 or (max_batches is not None and max_batches < 1):
        raise ValueError(f"gradient_pairs: expected features with the modalities {model.modalities}, batch_size >= 1 "
                         f"and max_batches >= 1 or None; got features of {features.modalities}, "
                         f"batch_size={batch_size}, max_batches={max_batches}")
    model.eval()
    device = next(model.parameters()).device
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))
    pairs: dict[str, tuple[list, list]] = {m: ([], []) for m in model.modalities}
    for start in range(0, len(features), batch_size)[:max_batches]:
        index = order[start : start + batch_size]
        labels = features.labels[index].to(device)
        with torch.no_grad():
            embeddings = model.embed({m: features.features[m][index].to(device) for m in model.modalities})
        for m in model.modalities:
            pairs[m][0].append(classifier_gradient(classifiers[m], embeddings[m], labels, features.task).flatten())
            pairs[m][1].append(unimodal_gradient(model, embeddings, m, labels, features.task).flatten())
    return {m: (torch.stack(clf).cpu(), torch.stack(uni).cpu()) for m, (clf, uni) in pairs.items()}


def stand_in_cosines(pairs: dict[str, tuple[Tensor, Tensor]]) -> dict[str, dict[str, np.ndarray]]:
    """Per modality and batch, cos(classifier gradient, unimodal gradient) of the same batch (``"matched"``),
    and, as the chance level of the pairing, of the next batch in the order (``"other batch"``, a cyclic
    shift): a faithful stand-in tracks its own batch, so matched > other batch."""
    cosines = {}
    for m, (clf, uni) in pairs.items():
        if clf.shape != uni.shape or clf.dim() != 2 or len(clf) < 2:
            raise ValueError(f"stand_in_cosines: modality {m!r} has gradient sets of shapes {tuple(clf.shape)} and "
                             f"{tuple(uni.shape)}; expected two equal [batches >= 2, D]")
        cosines[m] = {"matched": rowwise_cosine(clf, uni).numpy(),
                      "other batch": rowwise_cosine(clf, uni.roll(1, dims=0)).numpy()}
    return cosines


def stand_in_summaries(pairs_per_seed: list[dict[str, tuple[Tensor, Tensor]]]) -> dict[str, dict[str, stats.Summary]]:
    """Per modality, the mean per-batch cosine (``"matched"`` and ``"other batch"``) of each seed, summarised
    over seeds (``stats.summarize``): the number for CGGM's Fig. 4."""
    per_seed = [stand_in_cosines(pairs) for pairs in pairs_per_seed]
    return {m: {kind: stats.summarize([float(np.mean(c[m][kind])) for c in per_seed]) for kind in per_seed[0][m]}
            for m in per_seed[0]}


def tsne_points(pairs: dict[str, tuple[Tensor, Tensor]], seed: int = 0) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """CGGM's Fig. 4 view: t-SNE (scikit-learn, cosine metric, random init seeded by ``seed``) of every
    per-batch gradient vector of ``pairs`` together. Returns the points [2 · M · batches, 2] and for each its
    (modality, "classifier" or "unimodal"). Exact t-SNE up to ``EXACT_TSNE_POINTS`` points, Barnes-Hut above."""
    vectors, labels = [], []
    for m, (clf, uni) in pairs.items():
        for kind, block in (("classifier", clf), ("unimodal", uni)):
            vectors.append(block.numpy())
            labels += [(m, kind)] * len(block)
    if len(labels) < 5 or len({v.shape[1] for v in vectors}) != 1:
        raise ValueError(f"tsne_points: expected at least 5 gradient vectors of one length, got {len(labels)} of "
                         f"lengths {sorted({v.shape[1] for v in vectors})}")
    perplexity = min(30.0, (len(labels) - 1) / 3)
    method = "exact" if len(labels) <= EXACT_TSNE_POINTS else "barnes_hut"  # exact is faster on few points
    embedding = TSNE(n_components=2, metric="cosine", init="random", perplexity=perplexity, random_state=seed,
                     method=method)
    return embedding.fit_transform(np.concatenate(vectors).astype(np.float64)), labels


def stand_in_figure(pairs: dict[str, tuple[Tensor, Tensor]], seed: int = 0, title: str = "") -> Figure:
    """CGGM's Fig. 4 for one run: left, the t-SNE of the per-batch classifier gradients (dots) and unimodal
    gradients (crosses), a colour per modality; right, the per-batch cosines, matched and with another
    batch (``stand_in_cosines``)."""
    points, labels = tsne_points(pairs, seed)
    cosines = stand_in_cosines(pairs)
    figure = Figure(figsize=(11.0, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    for number, m in enumerate(pairs):
        for kind, marker in (("classifier", "o"), ("unimodal", "x")):
            chosen = [i for i, label in enumerate(labels) if label == (m, kind)]
            left.scatter(points[chosen, 0], points[chosen, 1], marker=marker, color=_style(number)["color"],
                         label=f"{m}: {kind} gradient", s=22)
    left.set(title="t-SNE of per-batch gradients (CGGM Fig. 4)", xticks=[], yticks=[])
    left.legend(fontsize="small")
    data = [cosines[m][kind] for m in pairs for kind in ("matched", "other batch")]
    right.boxplot(data, tick_labels=[f"{m}\n{kind}" for m in pairs for kind in ("matched", "other batch")])
    right.axhline(0, color="gray", linewidth=0.6)
    right.set(title="cos(classifier gradient, unimodal gradient) per batch", ylim=(-1.05, 1.05))
    right.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure


# --- Table 5: the classifiers' accuracy ------------------------------------------------------------------

@torch.no_grad()
def classifier_scores(result: TrainResult, features: FeatureSet, metric: str = "accuracy",
                      batch_size: int = 2048) -> dict[str, float]:
    """Each classifier f_m of a CGGM run scored on ``features`` (e.g. the test split): f_m applied to the trained
    model's embedding h_m (CGGM Table 5's "f_1, f_2, f_3"), in ``metrics.score``'s units (percent)."""
    classifiers = getattr(result.method, "classifiers", None)
    if classifiers is None:
        raise ValueError(f"classifier_scores: the run of {result.method.name!r} has no classifiers f_i; Table 5 reads "
                         "CGGM's (train cggm; with magnitude=False, direction=False for joint training)")
    model = result.model.eval()
    device = next(model.parameters()).device
    logits: dict[str, list[Tensor]] = {m: [] for m in model.modalities}
    for start in range(0, len(features), batch_size):
        embeddings = model.embed({m: features.features[m][start : start + batch_size].to(device)
                                  for m in model.modalities})
        for m in model.modalities:
            logits[m].append(classifiers[m](embeddings[m].float()).cpu())
    scores = {m: score(features.task, torch.cat(parts), features.labels) for m, parts in logits.items()}
    return {m: _pick(values, metric) for m, values in scores.items()}


def _pick(values: dict[str, float], metric: str) -> float:
    if metric not in values:
        raise ValueError(f"metric {metric!r} is not among this task's metrics {sorted(values)}")
    return values[metric]


def table5_accuracies(unimodal: dict[str, list[TrainResult]], joint: list[TrainResult], cggm: list[TrainResult],
                      test: FeatureSet, metric: str = "accuracy") -> dict[str, dict[str, list[float]]]:
    """CGGM Table 5 per seed: ``{"unimodal training" | "joint training" | "CGGM": {m: [score per seed]}}``.

    Unimodal training: the test score of the model trained on modality m alone (``unimodal`` maps m to its
    runs, the paper's "three separate models"). Joint training and CGGM: ``classifier_scores`` of f_m on the
    test split after ``cggm`` with ``FIG2`` (the classifiers only watch) and after ``cggm``. Seeds in the same
    order in every list (the kit pairs them)."""
    missing = [m for m in test.modalities if m not in unimodal]
    if missing or not joint or len(joint) != len(cggm):
        raise ValueError(f"table5_accuracies: expected unimodal runs for {list(test.modalities)} (missing {missing}) "
                         f"and as many joint as CGGM runs (got {len(joint)} and {len(cggm)})")
    table = {"unimodal training": {m: [] for m in test.modalities}, "joint training": {}, "CGGM": {}}
    for m in test.modalities:
        for result in unimodal[m]:
            scores = score(test.task, predict(result.model, test), test.labels)
            table["unimodal training"][m].append(_pick(scores, metric))
    for column, results in (("joint training", joint), ("CGGM", cggm)):
        per_seed = [classifier_scores(result, test, metric) for result in results]
        table[column] = {m: [scores[m] for scores in per_seed] for m in test.modalities}
    return table


def table5_markdown(accuracies: dict[str, dict[str, list[float]]], digits: int = 1) -> str:
    """``table5_accuracies`` as CGGM's Table 5: a row per classifier f_m, a column per training, each cell
    mean ± sample SD (n) over seeds (``stats.summarize``)."""
    columns = list(accuracies)
    modalities = list(accuracies[columns[0]])
    rows = [[f"f ({m})"] + [stats.summarize(accuracies[c][m]).text(digits) for c in columns] for m in modalities]
    return stats.markdown_table(["classifier"] + columns, rows) + f"\nCells: {stats.SD_NOTE}.\n"


# --- Table 6: magnitude only / direction only / both ---------------------------------------------------------

TABLE6 = {"neither": FIG2, "magnitude only": {"direction": False}, "direction only": {"magnitude": False},
          "both": FIG3}


def table6_runs(experiment: Experiment | str, seeds: list[int], trained: dict[str, list[Run]] | None = None,
                **train_options) -> dict[str, list[Run]]:
    """CGGM Table 6 through ``experiments.compare``: CGGM with neither modulation, the magnitude only (B scales
    the encoders' gradients), the direction only (L_gm) and both, on the same seeds, in ``TABLE6``'s order;
    ``experiments.run_tables`` of the result is the input of ``stats.table1``.

    ``trained``: runs a caller already has for some of ``TABLE6``'s labels (e.g. ``{"both": runs["cggm"]}``),
    trained with that label's options and the same ``train_options``; they are taken as they are (their seeds
    must be ``seeds``, in order) and only the other labels are trained."""
    trained = trained or {}
    unknown = sorted(set(trained) - set(TABLE6))
    wrong_seeds = {label: [run.seed for run in runs] for label, runs in trained.items()
                   if [run.seed for run in runs] != list(seeds)}
    if unknown or wrong_seeds:
        raise ValueError(f"table6_runs: trained runs must be keyed by {list(TABLE6)} and have the seeds "
                         f"{list(seeds)}; got the labels {unknown} and the seeds {wrong_seeds}")
    labels = [label for label in TABLE6 if label not in trained]
    new = compare(experiment, [f"{label}=cggm" for label in labels], seeds,
                  method_options={label: TABLE6[label] for label in labels}, **train_options) if labels else {}
    return {label: trained[label] if label in trained else new[label] for label in TABLE6}


def table6_ledger_runs(ledger, dataset: str) -> dict[str, list[Run]]:
    """``TABLE6``'s runs through ``ledger.runs`` (shared with every other claim that trains them)."""
    return {label: ledger.runs(dataset, "cggm", **options) for label, options in TABLE6.items()}


# --- the readings as parts: {part: Part} (the chapter calls these on its runs, the ledger's checks on its own) ---

def fig2_magnitude_parts(joint: list[TrainResult], dataset: str) -> dict[str, Part]:
    """CGGM Section 3.2 / Fig. 2(b): under joint training (``FIG2`` runs, one per seed) the dominant modality's
    gradient norm grows (log growth > 0) and grows faster than the others' (``growth_reading``, seed by seed)."""
    readings = [growth_reading(result) for result in joint]
    dominant, others = [r[0] for r in readings], [r[1] for r in readings]
    return {"the dominant modality's gradient grows": Part(
                stats.against(dominant), +1,
                f"log(late / early gradient norm) of the dominant modality, joint, {dataset}"),
            "faster than the others'": Part(
                stats.paired_difference(dominant, others), +1,
                f"log growth, dominant − other modalities, joint, {dataset}")}


def early_norm_ratio(cggm: TrainResult, joint: TrainResult, modality: str, share: float = SHARE) -> float:
    """log(mean gradient norm of encoder h_m under CGGM / under joint training) over the first ``share`` of
    training, same seed: below 0 where CGGM slows the modality down early, above 0 where it speeds it up."""
    early = [window_mean(result.curve(f"grad_norm_{modality}"), "early", share) for result in (cggm, joint)]
    if min(early) <= 0:
        raise ValueError(f"early_norm_ratio: no gradient reached the {modality!r} branch early in one of the runs")
    return math.log(early[0] / early[1])


def _paired_runs(cggm: list[TrainResult], joint: list[TrainResult], what: str) -> None:
    if not cggm or len(cggm) != len(joint):
        raise ValueError(f"{what}: expected as many CGGM as joint runs, paired by seed (got {len(cggm)} and "
                         f"{len(joint)})")


def fig3_magnitude_parts(cggm: list[TrainResult], joint: list[TrainResult], dataset: str) -> dict[str, Part]:
    """CGGM Section 4.3 / Fig. 3(b) against Fig. 2(b): "the gradient magnitude of the text [dominant] modality
    decreases at first, indicating that CGGM slows down its optimization and accelerates other modalities'":
    over the first fifth of training, the dominant modality's gradient norm is smaller under CGGM than under
    joint training and the others' larger (``early_norm_ratio``; dominant from the joint run of the same seed).
    ``cggm`` (``FIG3``) and ``joint`` (``FIG2``) runs paired by seed."""
    _paired_runs(cggm, joint, "fig3_magnitude_parts")
    slowed, sped_up = [], []
    for a, b in zip(cggm, joint):
        dominant = dominant_by_classifier(b)
        slowed.append(early_norm_ratio(a, b, dominant))
        sped_up.append(float(np.mean([early_norm_ratio(a, b, m) for m in history_modalities(b) if m != dominant])))
    return {"CGGM slows the dominant modality early": Part(
                stats.against(slowed), -1,
                f"log early gradient norm of the dominant modality, CGGM / joint, {dataset}"),
            "and speeds up the others": Part(
                stats.against(sped_up), +1,
                f"log early gradient norm of the other modalities, CGGM / joint, {dataset}")}


def fig2_direction_parts(joint: list[TrainResult], dataset: str) -> dict[str, Part]:
    """CGGM Section 3.2 / Fig. 2(c): under joint training (``FIG2`` runs) the weaker modalities' classifier
    gradients point against the fused gradient (mean cosine over training < 0), and the dominant one's cosine
    rises (last fifth of training − first fifth > 0)."""
    weak, rise = [], []
    for result in joint:
        dominant, cosine = dominant_by_classifier(result), trajectories(result)["cosine"]
        weak.append(float(np.mean([np.mean(c) for m, c in cosine.items() if m != dominant])))
        rise.append(window_mean(cosine[dominant], "late") - window_mean(cosine[dominant], "early"))
    return {"the weaker modality opposes the fusion": Part(
                stats.against(weak), -1, f"mean cos(fused, classifier) of the weaker modality, joint, {dataset}"),
            "the dominant modality's cosine rises": Part(
                stats.against(rise), +1,
                f"cos(fused, classifier) of the dominant modality, late − early, joint, {dataset}")}


def fig3_direction_parts(cggm: list[TrainResult], joint: list[TrainResult], dataset: str) -> dict[str, Part]:
    """CGGM Section 4.3 / Fig. 3(c) against Fig. 2(c): under CGGM the fused gradient agrees more with every
    modality's classifier gradient: mean cosine over training, CGGM − joint > 0, per modality (runs paired by
    seed)."""
    _paired_runs(cggm, joint, "fig3_direction_parts")
    a, b = ([{m: float(np.mean(c)) for m, c in trajectories(result)["cosine"].items()} for result in results]
            for results in (cggm, joint))
    return {m: Part(stats.paired_difference([x[m] for x in a], [x[m] for x in b]), +1,
                    f"mean cos(fused, {m} classifier), CGGM − joint, {dataset}") for m in a[0]}


def fig4_parts(pairs_per_seed: list[dict[str, tuple[Tensor, Tensor]]], dataset: str) -> dict[str, Part]:
    """CGGM Sections 3.3.2 and 4.4 / Fig. 4: the classifier gradient is a faithful stand-in for the unimodal
    gradient, per modality: it points the same way (mean per-batch cosine > 0) and tracks its own batch
    (matched − other-batch cosine > 0); ``gradient_pairs`` of one CGGM run per seed."""
    per_seed = [stand_in_cosines(pairs) for pairs in pairs_per_seed]
    parts = {}
    for m in per_seed[0]:
        matched = [float(np.mean(c[m]["matched"])) for c in per_seed]
        other = [float(np.mean(c[m]["other batch"])) for c in per_seed]
        parts[f"{m}: same direction"] = Part(stats.against(matched), +1,
                                             f"mean cos(classifier, unimodal gradient) of {m}, {dataset}")
        parts[f"{m}: tracks its batch"] = Part(stats.paired_difference(matched, other), +1,
                                               f"cos of {m}, same batch − another batch, {dataset}")
    return parts


def table5_cggm_parts(table: dict[str, dict[str, list[float]]], dataset: str) -> dict[str, Part]:
    """CGGM Section 4.4 / Table 5 (``table5_accuracies``): under CGGM every classifier f_m is more accurate than
    under joint training."""
    return {m: Part(stats.paired_difference(table["CGGM"][m], table["joint training"][m]), +1,
                    f"test accuracy of f ({m}), CGGM − joint, {dataset}") for m in table["CGGM"]}


def table5_joint_parts(table: dict[str, dict[str, list[float]]], joint: list[TrainResult],
                       dataset: str) -> dict[str, Part]:
    """CGGM Section 4.4 / Table 5: joint training under-uses the weaker modalities (their classifier is less
    accurate than the model trained on that modality alone) while the dominant one gains a little; dominant
    per seed by ``dominant_by_classifier`` on the joint run (``FIG2``, the reading of Fig. 2), seeds in the
    table's order."""
    dominants = [dominant_by_classifier(result) for result in joint]
    joint_scores, unimodal = table["joint training"], table["unimodal training"]
    if any(len(scores) != len(dominants) for scores in joint_scores.values()):
        raise ValueError(f"table5_joint_parts: {len(dominants)} joint runs against a table of "
                         f"{sorted({len(s) for s in joint_scores.values()})} seeds; pass the table's joint runs")
    gain = [joint_scores[d][s] - unimodal[d][s] for s, d in enumerate(dominants)]
    weak = [float(np.mean([joint_scores[m][s] - unimodal[m][s] for m in joint_scores if m != d]))
            for s, d in enumerate(dominants)]
    return {"the dominant modality's classifier gains": Part(
                stats.against(gain), +1,
                f"test accuracy of the dominant modality's f, joint − unimodal training, {dataset}"),
            "the weaker modalities' classifiers lose": Part(
                stats.against(weak), -1,
                f"test accuracy of the weaker modalities' f, joint − unimodal training, {dataset}")}


def table6_parts(runs: dict[str, list[Run]], dataset: str) -> dict[str, Part]:
    """CGGM Section 4.5 / Table 6 (``table6_runs``): the magnitude alone and the direction alone each improve the
    Full score over neither, and the magnitude more than the direction (the sign follows the metric: MAE lower
    is better)."""
    missing = [label for label in TABLE6 if label not in runs]
    if missing:
        raise ValueError(f"table6_parts: no runs for {missing}; expected table6_runs' labels {list(TABLE6)}")
    sign = 1 if higher_is_better(runs["both"][0].table.metric) else -1
    full = {label: [run.table.full for run in label_runs] for label, label_runs in runs.items()}
    pairs = {"magnitude helps": ("magnitude only", "neither"), "direction helps": ("direction only", "neither"),
             "magnitude more than direction": ("magnitude only", "direction only")}
    return {part: Part(stats.paired_difference(full[a], full[b]), sign, f"Full, {a} − {b}, {dataset}")
            for part, (a, b) in pairs.items()}


# --- the ledger's checks: the parts above on the ledger's runs ------------------------------------------------

def check_fig2_magnitude(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``fig2_magnitude_parts`` on the ledger's traced joint runs."""
    return fig2_magnitude_parts(traced_runs(ledger, dataset, **FIG2), dataset)


def check_fig3_magnitude(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``fig3_magnitude_parts`` on the ledger's traced CGGM and joint runs."""
    return fig3_magnitude_parts(traced_runs(ledger, dataset, **FIG3), traced_runs(ledger, dataset, **FIG2), dataset)


def check_fig2_direction(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``fig2_direction_parts`` on the ledger's traced joint runs."""
    return fig2_direction_parts(traced_runs(ledger, dataset, **FIG2), dataset)


def check_fig3_direction(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``fig3_direction_parts`` on the ledger's traced CGGM and joint runs."""
    return fig3_direction_parts(traced_runs(ledger, dataset, **FIG3), traced_runs(ledger, dataset, **FIG2), dataset)


def check_fig4_stand_in(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``fig4_parts`` on the ledger's CGGM runs, gradients on the training split."""
    features = Experiment(dataset).features("train")
    return fig4_parts([gradient_pairs(run.result, features, seed=run.seed)
                       for run in ledger.runs(dataset, "cggm", **FIG3)], dataset)


def _table5(ledger, dataset: str) -> tuple[dict[str, dict[str, list[float]]], list[TrainResult]]:
    test = Experiment(dataset).features("test")
    unimodal = {m: [run.result for run in ledger.runs(dataset, f"unimodal_{m}")] for m in test.modalities}
    joint = [run.result for run in ledger.runs(dataset, "cggm", **FIG2)]
    cggm = [run.result for run in ledger.runs(dataset, "cggm", **FIG3)]
    return table5_accuracies(unimodal, joint, cggm, test), joint


def check_table5_cggm(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``table5_cggm_parts`` on the ledger's runs."""
    return table5_cggm_parts(_table5(ledger, dataset)[0], dataset)


def check_table5_joint(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``table5_joint_parts`` on the ledger's runs."""
    return table5_joint_parts(*_table5(ledger, dataset), dataset)


def check_table6(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``table6_parts`` on the ledger's runs."""
    return table6_parts(table6_ledger_runs(ledger, dataset), dataset)
