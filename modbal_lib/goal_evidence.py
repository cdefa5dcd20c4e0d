"""The evidence GOAL's appendix rests on, reproduced on the kit's data (used in chapter 6 and by the claims ledger).

Paper: "Balance Multimodal Learning with Gradient Orthogonalization and Adaptive Leveraging", anonymous
ICLR 2026 submission. Its figures are images in our copy (A.16's section is a figure alone), so what each
one shows is read from the text; where that leaves a choice, the function's docstring says which reading
this module implements (the kit's reading).

- **A.7** (AL's premise, after Wei et al. 2025): a modality should contribute in inverse proportion to
  the variance of its prediction, and the entropy measures that variance. ``logit_spread``,
  ``prediction_variance``, ``entropy_spread_correlation``, ``a7_weights``, ``al_weights``, ``a7_reading``.
- **A.12** (Table 9): clustering quality of the fused features, GOAL against the baseline:
  ``fused_features``, ``clustering_scores``.
- **A.15** (Fig. 8): alignment of g^(m) (the fusion loss's gradient on branch m) and G^(m) (the
  unimodal loss's): on the final model (the paper's letter, ``branch_gradient_cosines``) and over
  training (``TracedGOAL``, ``TracedHeads``, ``alignment_curves``, ``alignment_change``,
  ``alignment_figure``).
- **A.16**: convergence speed: ``convergence_epoch`` (the kit's one measure of learning speed,
  ``dominance.halfway_iteration``, on the fused loss), ``convergence_figure``.
- **Table 3** (and A.8): three modalities, on SeeSaw with ``num_modalities=3``: ``table3_runs``.
- **Fig. 2c**: GO as a plug-in on other methods (``methods.plus_go``, names ``<method>+go``):
  ``fig2c_runs``, ``fig2c_figure``.
- ``*_parts(runs, ...)`` (``a7_parts`` ... ``fig2c_parts``): the paired differences (``stats.paired_difference``)
  a claim reads, as ``{part: Part(difference, expect, what)}`` (``cggm_evidence.Part``), from runs a caller
  trained (chapter 6); ``check_*(ledger)``: the same parts on the ledger's runs. ``claims`` turns a part into
  a verdict with ``directional(*part)`` and several parts into one with ``combined``. This module does not
  import ``claims`` (the ledger imports it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.stats import spearmanr
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, normalized_mutual_info_score, silhouette_score
from torch import Tensor

from modbal_lib import stats
from modbal_lib.cggm_evidence import SHARE, Part, seed_band, window_mean
from modbal_lib.dominance import halfway_iteration
from modbal_lib.experiments import Experiment, Run, compare
from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import flatten, loss_grads, rowwise_cosine, to_floats
from modbal_lib.methods import option_hints
from modbal_lib.methods.base import Step, task_loss
from modbal_lib.methods.goal import GOAL, adaptive_weights, normalized_entropy
from modbal_lib.methods.joint import JointUnimodalHeads
from modbal_lib.methods.plus_go import SUFFIX as GO
from modbal_lib.models import LateFusion
from modbal_lib.plots import _band, _style
from modbal_lib.train import TrainResult, train

LOGIT_SOURCES = ("heads", "shares")
CLUSTER_METRICS = {"silhouette": +1, "davies_bouldin": -1, "nmi": +1, "ari": +1}  # the better direction of each
ALIGNMENT_KEY = "cos_gG_"
TABLE3_EXPERIMENT = Experiment("seesaw", dataset_options={"num_modalities": 3})
FIG2C_BASES = {"OGM-GE": "ogm_ge", "MSLR": "mslr", "joint + heads": "joint_unimodal_heads"}

def _multiclass(features: FeatureSet, what: str) -> None:
    if features.task != "multiclass":
        raise ValueError(f"{what}: needs a multiclass task (one label per sample), got {features.task!r}")


# --- A.7: entropy and prediction variance ---------------------------------------------------------------

@torch.no_grad()
def modality_logits(model: LateFusion, features: FeatureSet, source: str = "heads",
                    batch_size: int = 2048) -> dict[str, Tensor]:
    """Each modality's own logits on ``features``, [N, K] per modality, on the CPU in float32.

    ``source="heads"``: z^(m), the unimodal head's logits (GOAL Eq. 3), what AL's entropy reads (Eq. 6).
    ``source="shares"``: s^m, the modality's additive share of the fused logits (``LateFusion.probe_logits``;
    for concatenation W_m f_m + b/M), A.7's "logit output of modality m"."""
    if source not in LOGIT_SOURCES:
        raise ValueError(f"modality_logits: source must be one of {LOGIT_SOURCES}, got {source!r}")
    if source == "heads" and model.unimodal_heads is None:
        raise ValueError("modality_logits: the model has no unimodal heads; use source='shares' or a method with "
                         "heads (goal, joint_unimodal_heads)")
    missing = [m for m in model.modalities if m not in features.features]
    if missing:
        raise ValueError(f"modality_logits: the features lack the model's modalities {missing}")
    model = model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list[Tensor]] = {m: [] for m in model.modalities}
    for start in range(0, len(features), batch_size):
        output = model({m: features.features[m][start : start + batch_size].to(device) for m in model.modalities})
        logits = output.unimodal_logits if source == "heads" else model.probe_logits(output.embeddings)
        for m in model.modalities:
            parts[m].append(logits[m].float().cpu())
    return {m: torch.cat(chunks) for m, chunks in parts.items()}


def logit_spread(logits: Tensor) -> Tensor:
    """Each sample's term of A.7's prediction variance, [N]: d_i = ||s_i - s_bar||^2, s_bar the mean logit
    vector over the N samples.

    A.7 writes Var(f(x)) = E[f(x)^2] - E[f(x)]^2 with E the mean over the samples, for a logit VECTOR; the kit
    reads the square as the squared norm (the sum over the K classes of each class's variance), so the mean
    of d_i over the samples is A.7's Var(s) (``prediction_variance``). A.7's variance belongs to a set of
    samples, not to one sample; d_i is one sample's share of it (the kit's reading)."""
    if logits.dim() != 2 or len(logits) < 2:
        raise ValueError(f"logit_spread: expected logits [samples >= 2, classes], got {tuple(logits.shape)}")
    centred = logits.double() - logits.double().mean(0)
    return centred.pow(2).sum(1)


def prediction_variance(logits: Tensor) -> float:
    """A.7's Var(s) = E[||s||^2] - ||E[s]||^2 over the samples (population variance, summed over classes)."""
    return float(logit_spread(logits).mean())


def spearman(a, b, what: str = "spearman") -> float:
    """Spearman's rank correlation of two equally long series (``scipy.stats.spearmanr``); a constant series
    has none, which is an error, not a NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 3:
        raise ValueError(f"{what}: expected two series of one length >= 3, got shapes {a.shape} and {b.shape}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise ValueError(f"{what}: a constant series has no rank correlation")
    return float(spearmanr(a, b).statistic)


def entropy_spread_correlation(logits: Tensor) -> float:
    """Does the entropy track A.7's variance across samples? Spearman's rank correlation between each
    sample's normalised entropy u_i (Eq. 6, ``goal.normalized_entropy``) and its share of A.7's variance
    d_i (``logit_spread``). AL's premise ("if E^(m) produces a prediction with high entropy, the prediction
    variance for that modality is also high", Section 3.3) predicts a positive correlation."""
    return spearman(normalized_entropy(logits).numpy(), logit_spread(logits).numpy(), "entropy_spread_correlation")


def a7_weights(variances: dict[str, float]) -> dict[str, float]:
    """A.7's optimal contributions: w_m = (1 / Var_m) / sum_m' (1 / Var_m'); for two modalities
    w_0 = Var_1 / (Var_0 + Var_1), A.7's solution. For M > 2 the same inverse-variance rule (the kit's
    generalisation)."""
    if len(variances) < 2 or not all(math.isfinite(v) and v > 0 for v in variances.values()):
        raise ValueError(f"a7_weights: expected at least 2 finite positive variances, got {variances}")
    inverse = {m: 1 / v for m, v in variances.items()}
    return {m: value / sum(inverse.values()) for m, value in inverse.items()}


def al_weights(logits: dict[str, Tensor], T: float = 1.0) -> dict[str, float]:
    """AL's weights (Eqs. 6-7, ``goal.adaptive_weights``) with all the given samples as one batch."""
    stacked = torch.stack([logits[m] for m in logits], dim=1)
    return dict(zip(logits, adaptive_weights(stacked, T).tolist()))


def a7_reading(model: LateFusion, features: FeatureSet, source: str = "heads") -> dict[str, dict[str, float]]:
    """A.7 on one trained model and a split, per modality: ``spearman`` (``entropy_spread_correlation``),
    ``variance`` (A.7's Var), ``mean_entropy`` (mean u_i), ``a7_weight`` (``a7_weights``), ``al_weight``
    (``al_weights``). AL agrees with A.7 when the modality of smaller variance gets the larger AL weight."""
    _multiclass(features, "a7_reading")
    logits = modality_logits(model, features, source)
    variances = {m: prediction_variance(z) for m, z in logits.items()}
    optimal, leveraged = a7_weights(variances), al_weights(logits)
    return {m: {"spearman": entropy_spread_correlation(z), "variance": variances[m],
                "mean_entropy": float(normalized_entropy(z).mean()), "a7_weight": optimal[m],
                "al_weight": leveraged[m]} for m, z in logits.items()}


def a7_parts(goal: list[Run], test: FeatureSet, dataset: str) -> dict[str, Part]:
    """GOAL A.7 / Section 3.3 on GOAL's trained models (one run per seed) and a test split: per modality, the
    entropy tracks A.7's variance across samples (Spearman > 0); and AL gives the larger weight to the
    modality A.7 favours (the AL weight of the smaller-variance modality above 1/M, in percentage points)."""
    readings = [a7_reading(run.result.model, test) for run in goal]
    parts = {f"{m}: entropy tracks variance": Part(
        stats.against([r[m]["spearman"] for r in readings]), +1,
        f"Spearman(u_i, d_i) of {m}, GOAL, {dataset} test") for m in readings[0]}
    favoured = [100 * (r[min(r, key=lambda m: r[m]["variance"])]["al_weight"] - 1 / len(r)) for r in readings]
    parts["AL favours A.7's modality"] = Part(
        stats.against(favoured), +1,
        f"AL weight of the smaller-variance modality − 1/M (percentage points), GOAL, {dataset} test")
    return parts


def check_a7(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``a7_parts`` on the ledger's GOAL runs and ``dataset``'s test split."""
    return a7_parts(ledger.runs(dataset, "goal"), Experiment(dataset).features("test"), dataset)


# --- A.12: clustering quality of the fused features -------------------------------------------------------

@torch.no_grad()
def fused_features(model: LateFusion, features: FeatureSet, batch_size: int = 2048) -> np.ndarray:
    """f^fus = C(f^(1), ..., f^(M)) (GOAL Eq. 2) of every sample, [N, d_c]: what Figs. 3 and 6 plot."""
    model = model.eval()
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(features), batch_size):
        inputs = {m: features.features[m][start : start + batch_size].to(device) for m in model.modalities}
        parts.append(model.fuse(model.embed(inputs)).float().cpu())
    return torch.cat(parts).numpy()


def clustering_scores(points: np.ndarray, labels, seed: int = 0) -> dict[str, float]:
    """GOAL A.12's four indicators (Table 9) of points with class labels (scikit-learn):

    - ``silhouette`` (↑) and ``davies_bouldin`` (↓) of the points grouped by their TRUE class (the kit's
      reading: Figs. 3 and 6 colour the points by class; the appendix does not say which clustering);
    - ``nmi`` and ``ari`` (↑): KMeans with as many clusters as classes (10 starts, ``seed``) against the
      true classes ("consistency between clustering and true labels").
    """
    points, labels = np.asarray(points, dtype=float), np.asarray(labels)
    if points.ndim != 2 or labels.shape != (len(points),):
        raise ValueError(f"clustering_scores: expected points [N, D] and labels [N], got {points.shape} and "
                         f"{labels.shape}")
    if not np.isfinite(points).all():
        raise ValueError("clustering_scores: the points hold inf or NaN")
    classes = len(np.unique(labels))
    if not 2 <= classes < len(points):
        raise ValueError(f"clustering_scores: need 2 <= classes < samples, got {classes} classes, {len(points)} samples")
    clusters = KMeans(n_clusters=classes, n_init=10, random_state=seed).fit_predict(points)
    return {"silhouette": float(silhouette_score(points, labels)),
            "davies_bouldin": float(davies_bouldin_score(points, labels)),
            "nmi": float(normalized_mutual_info_score(labels, clusters)),
            "ari": float(adjusted_rand_score(labels, clusters))}


def run_clustering(runs: list[Run], features: FeatureSet) -> list[dict[str, float]]:
    """``clustering_scores`` of each run's fused features on ``features`` (KMeans seeded with the run's seed)."""
    _multiclass(features, "run_clustering")
    return [clustering_scores(fused_features(run.result.model, features), features.labels.numpy(), run.seed)
            for run in runs]


def a12_parts(goal: list[Run], joint: list[Run], test: FeatureSet, dataset: str) -> dict[str, Part]:
    """GOAL A.12 / Table 9: on a test split, GOAL's fused features cluster better than the baseline's (joint
    training, concatenation) on all four indicators, each in its better direction (runs paired by seed)."""
    a, b = run_clustering(goal, test), run_clustering(joint, test)
    return {name: Part(stats.paired_difference([s[name] for s in a], [s[name] for s in b]), sign,
                       f"{name}, GOAL − joint, {dataset} test") for name, sign in CLUSTER_METRICS.items()}


def check_a12(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``a12_parts`` on the ledger's GOAL and joint runs and ``dataset``'s test split."""
    return a12_parts(ledger.runs(dataset, "goal"), ledger.runs(dataset, "joint"), Experiment(dataset).features("test"),
                     dataset)


# --- A.15: alignment of g and G ------------------------------------------------------------------------------

def step_alignment(model: LateFusion, losses: dict[str, Tensor]) -> dict[str, Tensor]:
    """cos(g^(m), G^(m)) of one batch per modality, ``{"cos_gG_<m>": 0-dim tensor}``: g^(m) the gradient of the
    fusion loss (``losses["task"]``) and G^(m) that of the modality's unimodal loss (``losses["uni_<m>"]``) on
    branch m's parameters, flattened (GOAL Eq. 5). Taken with ``autograd.grad`` (the graph is kept, nothing is
    written into ``.grad``)."""
    missing = [m for m in model.modalities if f"uni_{m}" not in losses]
    if missing:
        raise ValueError(f"step_alignment: no unimodal loss for {missing}; G^(m) needs unimodal heads "
                         "(goal, joint_unimodal_heads)")
    cosines = {}
    for m in model.modalities:
        params = model.branch_parameters(m)
        g, G = flatten(loss_grads(losses["task"], params)), flatten(loss_grads(losses[f"uni_{m}"], params))
        cosines[f"{ALIGNMENT_KEY}{m}"] = rowwise_cosine(g.float(), G.float())
    return cosines


def branch_gradient_cosines(model: LateFusion, features: FeatureSet, batch_size: int = 128,
                            seed: int = 0) -> dict[str, np.ndarray]:
    """GOAL A.15 / Fig. 8 as written: "the final model used to compute the loss and the corresponding gradients
    g and G on the training set": per batch of ``features`` (a ``seed``-ed order), ``step_alignment``'s cosine
    per modality, ``{m: [batches]}``. g is the trained model's raw fusion-loss gradient (no AL or GO applied).
    Reading: the paper does not say whether per sample, per batch or over the whole set; the kit uses
    batches of the training batch size."""
    if model.unimodal_heads is None:
        raise ValueError("branch_gradient_cosines: the model has no unimodal heads, so no G^(m); compare GOAL with "
                         "joint_unimodal_heads")
    device = next(model.parameters()).device
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))
    per_batch: dict[str, list[float]] = {m: [] for m in model.modalities}
    for start in range(0, len(features), batch_size):
        index = order[start : start + batch_size]
        inputs = {m: features.features[m][index].to(device) for m in model.modalities}
        labels = features.labels[index].to(device)
        output = model(inputs)
        losses = {"task": task_loss(features.task, output.logits, labels)}
        losses.update({f"uni_{m}": task_loss(features.task, z, labels) for m, z in output.unimodal_logits.items()})
        for key, value in to_floats(step_alignment(model, losses)).items():
            per_batch[key.removeprefix(ALIGNMENT_KEY)].append(value)
    return {m: np.array(values) for m, values in per_batch.items()}


class AlignmentTrace:
    """Adds ``cos_gG_<m>`` (``step_alignment``, before the method edits anything) to a method's records.
    The extra gradients change nothing: the model and every other record equal the untraced method's."""

    def backward(self, step: Step, losses: dict[str, Tensor]) -> dict[str, float]:
        cosines = step_alignment(step.model, losses)  # before the method's backward frees the graph
        return {**super().backward(step, losses), **to_floats(cosines)}


class TracedGOAL(AlignmentTrace, GOAL):
    """GOAL (same options, same training) recording cos(g^(m), G^(m)) per step (A.15 over training)."""


class TracedHeads(AlignmentTrace, JointUnimodalHeads):
    """Joint training with unimodal heads (A.15's baseline: it has both g and G) recording cos(g^(m), G^(m))."""


TRACED = {"goal": TracedGOAL, "joint_unimodal_heads": TracedHeads}


def train_traced(features: FeatureSet, method: str, seeds, epochs: int, **options) -> list[TrainResult]:
    """``TRACED[method]`` on ``features``, one ``TrainResult`` per seed; ``options`` are GOAL's or ``train``'s."""
    if method not in TRACED:
        raise ValueError(f"train_traced: method must be one of {tuple(TRACED)}, got {method!r}")
    method_names = set(option_hints(method))
    method_options = {k: v for k, v in options.items() if k in method_names}
    train_options = {k: v for k, v in options.items() if k not in method_names}
    return [train(features, TRACED[method](**method_options), epochs=epochs, seed=seed, show_progress=False,
                  **train_options) for seed in seeds]


def traced_runs(ledger, dataset: str, method: str) -> list[TrainResult]:
    """``train_traced`` on ``dataset``'s training split with the ledger's seeds and epochs, once per ledger."""
    key = ("goal_evidence.traced", dataset, method)
    if key not in ledger.cache:
        features = Experiment(dataset).features("train")
        ledger.cache[key] = train_traced(features, method, ledger.seeds, ledger.epochs[dataset])
    return ledger.cache[key]


def alignment_curves(result: TrainResult, smooth: int = 1) -> dict[str, np.ndarray]:
    """cos(g^(m), G^(m)) per iteration of a traced run, ``{m: curve}`` (running mean over ``smooth``)."""
    keys = [key for key in result.history if key.startswith(ALIGNMENT_KEY)]
    if not keys:
        raise ValueError(f"alignment_curves: the run of {result.method.name!r} has no {ALIGNMENT_KEY}<m> records; "
                         "train it with goal_evidence.TracedGOAL or TracedHeads")
    if not 1 <= smooth <= len(result.history[keys[0]]):
        raise ValueError(f"alignment_curves: smooth={smooth}; expected 1 to {len(result.history[keys[0]])}")
    return {key.removeprefix(ALIGNMENT_KEY): result.curve(key, smooth) for key in keys}


def alignment_change(result: TrainResult, share: float = SHARE) -> dict[str, float]:
    """One number per modality for one seed: mean cos(g^(m), G^(m)) over the last ``share`` of training minus
    over the first (above 0: g and G come to agree as training goes on)."""
    return {m: window_mean(curve, "late", share) - window_mean(curve, "early", share)
            for m, curve in alignment_curves(result).items()}


def _epochs_axis(result: TrainResult, key: str, length: int, smooth: int) -> np.ndarray:
    """The epoch of each point of a running mean (over ``smooth``) of the record ``key``: its window's centre."""
    iterations_per_epoch = len(result.history[key]) / result.config["epochs"]
    return (np.arange(length) + (smooth + 1) / 2) / iterations_per_epoch


def alignment_figure(configs: dict[str, list[TrainResult]], smooth: int = 5, title: str = "") -> Figure:
    """A.15 over training: a panel per modality, a line per configuration (e.g. ``{"GOAL": TracedGOAL runs,
    "joint + heads": TracedHeads runs}``), mean cos(g^(m), G^(m)) over seeds with a ± sample SD band."""
    if not configs or any(not results for results in configs.values()):
        raise ValueError("alignment_figure: expected {label: [traced run per seed]} with at least one run each")
    modalities = list(alignment_curves(next(iter(configs.values()))[0]))
    figure = Figure(figsize=(4.6 * len(modalities) + 0.6, 3.6), layout="constrained")
    axes = figure.subplots(1, len(modalities), sharey=True, squeeze=False)[0]
    for number, (label, results) in enumerate(configs.items()):
        for axis, m in zip(axes, modalities):
            means, sds = seed_band([alignment_curves(result, smooth)[m] for result in results])
            x = _epochs_axis(results[0], ALIGNMENT_KEY + m, len(means), smooth)
            _band(axis, x, means, sds, label, _style(number))
    for axis, m in zip(axes, modalities):
        axis.axhline(0, color="gray", linewidth=0.6)
        axis.set(title=f"{m}: cos(g, G)", xlabel="epoch")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    n = sorted({len(results) for results in configs.values()})
    figure.suptitle((title + ": " if title else "") + "GOAL A.15, cos(g^(m), G^(m)) on the branch parameters\n"
                    f"(mean ± sample SD over n = {', '.join(map(str, n))} seeds, running mean over {smooth} iterations)",
                    fontsize="medium")
    return figure


def mean_alignment(runs: list[Run], features: FeatureSet) -> list[dict[str, float]]:
    """Per run, the mean over batches of ``branch_gradient_cosines`` per modality (batches in the run's seed order)."""
    return [{m: float(np.mean(c)) for m, c in branch_gradient_cosines(run.result.model, features, seed=run.seed).items()}
            for run in runs]


def a15_parts(goal: list[Run], heads: list[Run], train_set: FeatureSet, dataset: str) -> dict[str, Part]:
    """GOAL A.15 / Fig. 8 as written (the final model, the training set): per modality, in GOAL's model g and G
    agree (mean per-batch cosine > 0) and agree more than in the baseline's (``heads``: joint training with
    unimodal heads, which has both g and G; runs paired by seed)."""
    a, b = mean_alignment(goal, train_set), mean_alignment(heads, train_set)
    parts = {}
    for m in a[0]:
        parts[f"{m}: aligned under GOAL"] = Part(stats.against([s[m] for s in a]), +1,
                                                 f"mean cos(g, G) of {m}, final GOAL model, {dataset} train")
        parts[f"{m}: more than the baseline"] = Part(
            stats.paired_difference([s[m] for s in a], [s[m] for s in b]), +1,
            f"mean cos(g, G) of {m}, GOAL − joint + heads, {dataset} train")
    return parts


def check_a15(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``a15_parts`` on the ledger's GOAL and joint + heads runs and ``dataset``'s training split."""
    return a15_parts(ledger.runs(dataset, "goal"), ledger.runs(dataset, "joint_unimodal_heads"),
                     Experiment(dataset).features("train"), dataset)


def a15_over_training_parts(traced_goal: list[TrainResult], dataset: str) -> dict[str, Part]:
    """A.15 over training (``TracedGOAL`` runs, one per seed): per modality, cos(g, G) rises under GOAL
    (late − early mean > 0, ``alignment_change``)."""
    changes = [alignment_change(result) for result in traced_goal]
    return {m: Part(stats.against([c[m] for c in changes]), +1, f"cos(g, G) of {m}, late − early, GOAL, {dataset}")
            for m in changes[0]}


def check_a15_over_training(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``a15_over_training_parts`` on traced GOAL runs trained beside the ledger's (``traced_runs``)."""
    return a15_over_training_parts(traced_runs(ledger, dataset, "goal"), dataset)


# --- A.16: convergence speed -----------------------------------------------------------------------------------

def convergence_epoch(result: TrainResult, key: str = "loss_task", smooth: int = 10) -> float:
    """How fast a run's training loss falls, in epochs: ``dominance.halfway_iteration`` (the first iteration at
    which the running mean over ``smooth`` iterations has made half of its drop) of the recorded ``key`` (the
    fused loss L_mm by default, the same quantity for every method) divided by the iterations per epoch. A
    curve that does not fall never gets there: its whole length (censored). The kit's reading of A.16,
    whose text is a figure only."""
    if key not in result.history:
        raise ValueError(f"convergence_epoch: the run has no {key!r}; its records: {sorted(result.history)}")
    curve = result.history[key]
    iteration = halfway_iteration(curve, smooth)
    iterations_per_epoch = len(curve) / result.config["epochs"]
    return (len(curve) if iteration is None else iteration) / iterations_per_epoch


def convergence_figure(configs: dict[str, list[TrainResult]], key: str = "loss_task", smooth: int = 10,
                       title: str = "") -> Figure:
    """A.16: the fused training loss over epochs per configuration (mean ± sample SD over seeds), with a dotted
    line at each configuration's mean ``convergence_epoch``."""
    if not configs or any(not results for results in configs.values()):
        raise ValueError("convergence_figure: expected {label: [TrainResult per seed]} with at least one run each")
    figure = Figure(figsize=(7.4, 3.8), layout="constrained")
    axis = figure.subplots()
    for number, (label, results) in enumerate(configs.items()):
        means, sds = seed_band([result.curve(key, smooth) for result in results])
        style = _style(number)
        _band(axis, _epochs_axis(results[0], key, len(means), smooth), means, sds, label, style)
        halfway = stats.summarize([convergence_epoch(result, key, smooth) for result in results])
        axis.axvline(halfway.mean, color=style["color"], linestyle=":", linewidth=1.2)
    n = sorted({len(results) for results in configs.values()})
    axis.set(xlabel="epoch", ylabel=key, title=(title + ": " if title else "") + "GOAL A.16, convergence\n"
             f"(mean ± sample SD, n = {', '.join(map(str, n))}; running mean over {smooth} iterations; "
             "dotted: half of the drop)")
    axis.title.set_fontsize("medium")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    return figure


def a16_parts(goal: list[TrainResult], joint: list[TrainResult], dataset: str) -> dict[str, Part]:
    """GOAL A.16: GOAL's fused loss makes half of its drop in fewer epochs than joint training's (paired by seed)."""
    return {"GOAL converges faster": Part(stats.paired_difference([convergence_epoch(r) for r in goal],
                                                                  [convergence_epoch(r) for r in joint]), -1,
                                          f"epochs to half of the fused loss's drop, GOAL − joint, {dataset}")}


def check_a16(ledger, dataset: str = "emoji") -> dict[str, Part]:
    """``a16_parts`` on the ledger's GOAL and joint runs."""
    return a16_parts(*([run.result for run in ledger.runs(dataset, name)] for name in ("goal", "joint")), dataset)


# --- Table 3: three modalities -----------------------------------------------------------------------------------

def table3_runs(seeds: list[int], methods: tuple[str, ...] = ("joint", "goal"),
                experiment: Experiment = TABLE3_EXPERIMENT, **train_options) -> dict[str, list[Run]]:
    """GOAL Table 3's shape on SeeSaw with three modalities (easy, medium, hard): ``compare`` on ``experiment``
    (``TABLE3_EXPERIMENT``); ``experiments.run_tables`` of the result is the input of ``stats.table1``.
    GOAL with M = 3: Eq. 7's softmax runs over the three modalities (the paper's sum over m = 1..2, widened)
    and GO projects each g^(m) against the two others in turn (``goal.orthogonalize``)."""
    return compare(experiment, list(methods), seeds, **train_options)


def table3_ledger_runs(ledger, method: str) -> list[Run]:
    """``table3_runs`` of one method with the ledger's seeds and SeeSaw epochs, trained once per ledger."""
    key = ("goal_evidence.table3", method)
    if key not in ledger.cache:
        ledger.cache[key] = table3_runs(list(ledger.seeds), (method,), epochs=ledger.epochs["seesaw"])[method]
    return ledger.cache[key]


def table3_parts(goal: list[Run], joint: list[Run]) -> dict[str, Part]:
    """GOAL Table 3: with three modalities GOAL's Full score is above joint training's (SeeSaw, 3 modalities)."""
    return {"GOAL beats joint with 3 modalities": Part(
        stats.paired_difference(goal, joint, lambda run: run.table.full), +1,
        "Full, GOAL − joint, SeeSaw with 3 modalities")}


def check_table3(ledger) -> dict[str, Part]:
    """``table3_parts`` on ``table3_ledger_runs``."""
    return table3_parts(table3_ledger_runs(ledger, "goal"), table3_ledger_runs(ledger, "joint"))


# --- Fig. 2c: GO as a plug-in ---------------------------------------------------------------------------------

def fig2c_runs(experiment: Experiment | str, seeds: list[int], bases: dict[str, str] = FIG2C_BASES,
               **train_options) -> dict[str, list[Run]]:
    """Fig. 2c through ``experiments.compare``: each base method of ``bases`` and the same with GO
    (``<method>+go``), on the same seeds; keys are the method names."""
    names = [name for base in bases.values() for name in (base, base + GO)]
    return compare(experiment, names, seeds, **train_options)


def fig2c_figure(runs: dict[str, list[Run]], bases: dict[str, str] = FIG2C_BASES, title: str = "") -> Figure:
    """GOAL Fig. 2c: for each base method the Full score without and with GO (bars: mean over seeds, whiskers:
    sample SD), from runs keyed by method name (``fig2c_runs``)."""
    missing = [name for base in bases.values() for name in (base, base + GO) if name not in runs]
    if missing:
        raise ValueError(f"fig2c_figure: no runs of {missing}; run fig2c_runs with these bases")
    figure = Figure(figsize=(1.9 * len(bases) + 2.4, 3.8), layout="constrained")
    axis = figure.subplots()
    positions = np.arange(len(bases))
    for offset, (suffix, label) in enumerate((("", "without GO"), (GO, "with GO"))):
        summaries = [stats.summarize(runs[base + suffix], lambda run: run.table.full) for base in bases.values()]
        axis.bar(positions + (offset - 0.5) * 0.38, [s.mean for s in summaries], 0.38,
                 yerr=[s.sd for s in summaries], capsize=3, label=label, color=_style(offset)["color"])
    metric = next(iter(runs.values()))[0].table.metric
    n = sorted({len(runs[name]) for base in bases.values() for name in (base, base + GO)})
    axis.set(xticks=positions, xticklabels=list(bases), ylabel=f"Full {metric}",
             title=(title + ": " if title else "") + f"GOAL Fig. 2c, GO as a plug-in (mean ± sample SD, "
                                                     f"n = {', '.join(map(str, n))})")
    low = min(stats.summarize(r, lambda run: run.table.full).mean for r in runs.values())
    axis.set_ylim(bottom=max(0.0, low - 10))
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize="small")
    return figure


def fig2c_parts(runs: dict[str, list[Run]], dataset: str, bases: dict[str, str] = FIG2C_BASES) -> dict[str, Part]:
    """GOAL Fig. 2c / Sections 3.2 and 4.3: adding GO to each base method raises its Full score (runs keyed by
    method name, as ``fig2c_runs`` returns them)."""
    return {f"{label} + GO": Part(stats.paired_difference(runs[base + GO], runs[base], lambda run: run.table.full),
                                  +1, f"Full, {label} + GO − {label}, {dataset}") for label, base in bases.items()}


def check_fig2c(ledger, dataset: str = "emoji", bases: dict[str, str] = FIG2C_BASES) -> dict[str, Part]:
    """``fig2c_parts`` on the ledger's runs of each base and base + GO."""
    runs = {name: ledger.runs(dataset, name) for base in bases.values() for name in (base, base + GO)}
    return fig2c_parts(runs, dataset, bases)
