r"""Numerical checks of the papers' first-order claims (chapters 3 and 6): models and tensors in, numbers out.

BalGrad (Kim et al. 2025) argues with first-order Taylor expansions of the loss; GOAL's appendix
makes small mathematical claims about its uncertainty measure and its projection. Each function
here puts one of these claims to a measurement, most of them on a real model and batch:

- **Proposition 1** (``proposition1_check``, chapter 3): after the gradient step θ ← θ − λ g on
  every parameter, ΔL = −λ(|g_v|² + |g_l|² + |g_T^v + g_T^l|²) + O(λ²), where the fused-head
  gradient splits by modality, g_T = g_T^v + g_T^l (``classifier_split``). Their cross term
  g_T^v·g_T^l (``cross_term``) is exactly zero under concatenation and not under sum or attention
  fusion. ``proposition1_readings`` compares the printed Eq. 1 read over i in {v, l} (the same
  rate) and over i in {v, l, T} (the classifier twice); ``proposition1_shares`` splits the
  decrease by modality and ``rescaled_branch`` shows that this split depends on the parameters'
  scale, not only on the function.
- **Proposition 2** (``proposition2_check``, chapter 3): the joint step on task and KL losses,
  θ ← θ − λ(G^τ + G^kl), gives ΔL = −λ(‖G^τ‖² + ‖G^kl‖² + 2 G^τ·G^kl) + O(λ²): a conflict
  (G^τ·G^kl < 0) eats into the decrease.
- **GOAL A.3** (``rescaled_total_variance``, ``entropy_variance_gaps``, ``majorizes``, chapter 6):
  normalised entropy and total variance agree to second order near the uniform distribution,
  after an affine rescaling derived below; both are Schur-concave.
- **GOAL A.9** (``orthogonality_check``, chapter 6): after Gradient Orthogonalization two
  modalities' gradients no longer conflict, each orthogonal to the other's original one.
- **GOAL A.14** (``indirect_effect_check``, chapter 6): a step −η Δv of a branch (Δv the fusion
  gradient or GOAL's correction of it, ``goal_correction``) changes its unimodal-loss gradient at
  the next step by ΔG ≈ −η H_s Δv (a Hessian-vector product).

Over seeds (``*_over_seeds``, the claims ledger's intervals): ``briefly_trained`` trains a model per seed,
and each check runs on every seed's model and a batch of the seed's order, returning one row of numbers
per seed (``proposition1_over_seeds``, ``proposition2_over_seeds``, ``entropy_variance_over_seeds``,
``orthogonality_over_seeds``, ``indirect_effect_over_seeds``).

A first-order prediction is wrong by O(λ²), so its residual plotted against λ on log-log axes is a
line of slope 2 (``loglog_slope``); a wrong derivation (a missing or double-counted term) leaves an
O(λ) residual, slope 1. All checks run on a float64 copy of the model, so that round-off (about
1e-16 relative instead of 1e-7) does not swamp residuals of order λ².
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modbal_lib.features import load_features
from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import flatten, loss_grads, rowwise_cosine
from modbal_lib.methods.balgrad import class_distribution_logits, mutual_kl
from modbal_lib.methods.base import Step, task_loss
from modbal_lib.methods.goal import GOAL, normalized_entropy, orthogonalize, total_variance
from modbal_lib.models import LateFusion
from modbal_lib.train import train

STEP_SIZES = np.logspace(-5, -2, 7)  # λ from 1e-5 to 1e-2, two per decade and a bit


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """The p of |y| ≈ c x^p: the median of the slopes of log|y| against log x over all pairs of points.

    The median (Theil–Sen) rather than least squares because ReLU networks are only piecewise
    smooth: a step that happens to switch a unit on or off bends the residual at one or two step
    sizes, and the median of the pairwise slopes is not thrown off by a few such points.
    """
    x, y = np.asarray(x, dtype=float), np.abs(np.asarray(y, dtype=float))
    if len(x) < 2 or (x <= 0).any() or (y <= 0).any():
        raise ValueError(f"loglog_slope: need at least 2 points with x > 0 and y != 0, got x={x}, y={y}")
    log_x, log_y = np.log(x), np.log(y)
    first, second = np.triu_indices(len(x), k=1)
    distinct = log_x[first] != log_x[second]
    if not distinct.any():
        raise ValueError(f"loglog_slope: need at least 2 distinct x, got {x}")
    first, second = first[distinct], second[distinct]
    return float(np.median((log_y[second] - log_y[first]) / (log_x[second] - log_x[first])))


@dataclass
class FirstOrderCheck:
    """Predicted (first-order) and actual loss changes after steps of sizes λ along a fixed direction.

    ``terms`` are the pieces of the prediction's rate: predicted = −λ × (sum of the rate terms).
    """

    step_sizes: np.ndarray
    predicted: np.ndarray
    actual: np.ndarray
    terms: dict[str, float]

    @property
    def residual(self) -> np.ndarray:
        """actual − predicted: O(λ²) when the prediction is the right first-order term."""
        return self.actual - self.predicted

    @property
    def slope(self) -> float:
        """Log-log slope of |residual| against λ (2 for a correct first-order prediction)."""
        return loglog_slope(self.step_sizes, self.residual)

    @property
    def relative_error(self) -> float:
        """|actual − predicted| / |predicted| at the smallest step size: O(λ) for a correct prediction, a
        constant (the share of the rate it gets wrong) for a wrong one."""
        smallest = int(np.argmin(self.step_sizes))
        if self.predicted[smallest] == 0:
            raise ValueError("FirstOrderCheck.relative_error: the prediction is 0 (a zero rate); nothing to compare with")
        return float(abs(self.residual[smallest] / self.predicted[smallest]))


def as_float64(model: LateFusion, inputs: dict[str, Tensor], labels: Tensor):
    """A float64 copy of the model in eval mode, float64 inputs, and labels (float64 unless class indices)."""
    model64 = copy.deepcopy(model).double().eval()
    inputs64 = {m: x.double() for m, x in inputs.items()}
    labels64 = labels if labels.dtype == torch.int64 else labels.double()
    return model64, inputs64, labels64


@torch.no_grad()
def loss_changes(loss_fn: Callable[[], Tensor], params: Sequence[torch.nn.Parameter],
                 direction: Sequence[Tensor], step_sizes: Sequence[float]) -> np.ndarray:
    """Actual ΔL(λ) = L(θ − λ d) − L(θ) for each step size λ; the parameters are restored afterwards."""
    start = float(loss_fn())
    originals = [p.detach().clone() for p in params]
    changes = []
    for step_size in step_sizes:
        for p, p0, d in zip(params, originals, direction):
            p.copy_(p0 - step_size * d)
        changes.append(float(loss_fn()) - start)
    for p, p0 in zip(params, originals):
        p.copy_(p0)
    return np.asarray(changes)


def first_order_check(loss_fn, params, direction, terms: dict[str, float], step_sizes) -> FirstOrderCheck:
    """Compare ΔL after θ ← θ − λ d with the prediction −λ × sum(terms) (the terms are a rate)."""
    step_sizes = np.asarray(step_sizes, dtype=float)
    rate = sum(terms.values())
    actual = loss_changes(loss_fn, params, direction, step_sizes)
    return FirstOrderCheck(step_sizes, -step_sizes * rate, actual, dict(terms))


# --- Proposition 1: the classifier gradient split by modality ---------------------------------

def fusion_terms(model: LateFusion, embeddings: dict[str, Tensor]) -> dict[str, Tensor]:
    """t_m, modality m's additive term in the fused features: f_fus = sum_m t_m  (paper A.1).

        concat:    t_m = (0, .., f_m, .., 0)   f_m in its own block of the fused vector
        sum:       t_m = f_m                   all modalities on the same coordinates
        attention: t_m = a_m f_m               a = softmax over modalities of learned scores of every f_m
    """
    terms = {}
    width, count = model.hidden, len(model.modalities)
    weights = model.modality_weights(embeddings)
    for index, m in enumerate(model.modalities):
        if model.fusion == "concat":
            terms[m] = F.pad(embeddings[m], (index * width, (count - 1 - index) * width))
        elif model.fusion == "sum":
            terms[m] = embeddings[m]
        else:
            terms[m] = embeddings[m] * weights[:, index : index + 1]
    return terms


def classifier_split(model: LateFusion, inputs: dict[str, Tensor], labels: Tensor, task: str) -> dict[str, Tensor]:
    """g_T^m: the part of the fused-head weight gradient that comes through modality m's term.

    With z = W f_fus + b and f_fus = sum_m t_m (``fusion_terms``), the weight gradient is
    dL/dW = sum_i δ_i f_fus,i^T = sum_m (sum_i δ_i t_m,i^T), δ_i = dL/dz_i, so

        g_T^m = sum_i δ_i t_m,i^T,        g_T = sum_m g_T^m       (BalGrad Proposition 1)

    Each g_T^m has the shape of ``model.head.weight``. Under concatenation g_T^m is zero outside
    modality m's block of columns. The head bias's gradient sum_i δ_i belongs to no modality and is
    not split.
    """
    output = model(inputs)
    loss = task_loss(task, output.logits, labels)
    (delta,) = torch.autograd.grad(loss, output.logits)
    return {m: (delta.T @ term).detach() for m, term in fusion_terms(model, output.embeddings).items()}


def cross_term(split: dict[str, Tensor]) -> dict[str, float]:
    """The cross term sum_{a<b} g_T^a·g_T^b of the split classifier gradient (g_T^v·g_T^l for two).

    Returns ``absolute`` (the dot product) and ``relative`` (divided by sum_{a<b} |g_T^a||g_T^b|,
    i.e. the cosine for two modalities; 0 when a gradient is zero). Exactly 0 under concatenation,
    where the g_T^m live in disjoint blocks; generally non-zero under sum and attention fusion.
    """
    names = list(split)
    if len(names) < 2:
        raise ValueError(f"cross_term: need the split of at least 2 modalities, got {names}")
    dot, scale = 0.0, 0.0
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            dot += float((split[a].double() * split[b].double()).sum())
            scale += float(split[a].double().norm() * split[b].double().norm())
    return {"absolute": dot, "relative": dot / scale if scale > 0 else 0.0}


def proposition1_check(model: LateFusion, inputs: dict[str, Tensor], labels: Tensor, task: str,
                       step_sizes: Sequence[float] = STEP_SIZES) -> FirstOrderCheck:
    r"""BalGrad Proposition 1, checked: ΔL of the task loss after θ_i ← θ_i − λ g_i for every parameter.

    First-order Taylor: L(θ − λ g) = L(θ) − λ ∇L·g + O(λ²) = L(θ) − λ‖g‖² + O(λ²), and ‖g‖²
    splits over the parameter blocks: the branches h_m, the fused-head weight, whose gradient is
    g_T = sum_m g_T^m (``classifier_split``), and the rest (the head bias and, under attention, the
    attention scorer), which belongs to no modality:

        ΔL ≈ −λ (sum_m |g_m|² + |sum_m g_T^m|² + |g_other|²)
           = −λ (sum_m |g_m|² + sum_m |g_T^m|² + 2 sum_{a<b} g_T^a·g_T^b + |g_other|²)

    For two modalities without bias this is the corrected Proposition 1,
    −λ(|g_v|² + |g_l|² + |g_T^v + g_T^l|²). ``terms``: ``branch_<m>`` = |g_m|², ``head_<m>`` =
    |g_T^m|², ``head_cross`` = 2 sum g_T^a·g_T^b, ``other`` = |g_other|²; they sum to ‖g‖².
    Runs on a float64 copy; the model is not changed.
    """
    model, inputs, labels = as_float64(model, inputs, labels)
    params = list(model.parameters())
    grads = loss_grads(task_loss(task, model(inputs).logits, labels), params)
    grad_of = {id(p): g for p, g in zip(params, grads)}
    terms = {}
    owned = {id(model.head.weight)}
    for m in model.modalities:
        branch = model.branch_parameters(m)
        owned |= {id(p) for p in branch}
        terms[f"branch_{m}"] = float(flatten([grad_of[id(p)] for p in branch]).pow(2).sum())
    split = classifier_split(model, inputs, labels, task)
    for m, g in split.items():
        terms[f"head_{m}"] = float(g.pow(2).sum())
    terms["head_cross"] = 2 * cross_term(split)["absolute"]
    terms["other"] = sum(float(g.pow(2).sum()) for p, g in zip(params, grads) if id(p) not in owned)

    def loss_fn() -> Tensor:
        return task_loss(task, model(inputs).logits, labels)

    return first_order_check(loss_fn, params, grads, terms, step_sizes)


def proposition1_readings(check: FirstOrderCheck) -> dict[str, FirstOrderCheck]:
    r"""The same measured steps against the corrected Proposition 1 and the two readings of the printed Eq. 1.

    BalGrad's Eq. 1 (Section 3.1, proved in Appendix A.1) prints

        ΔL = −2λ g_T^v·g_T^l − λ sum_{i in {v, l, T}} (g_i·g_i + g_T^i·g_T^i) + O(λ²),

    the cross term outside the sum. With c = g_T^v·g_T^l (so ``terms["head_cross"]`` = 2c), the
    branches' sum B = sum_m |g_m|² and the heads' sum S = sum_m |g_T^m|², each reading predicts a rate
    (ΔL ≈ −λ × rate) from the measured ``proposition1_check`` terms:

    - ``corrected``: the proof's last correct line, |g_v|² + |g_l|² + |g_T^v + g_T^l|² = B + S + 2c (‖g‖²);
    - ``over_v_l``: Eq. 1 with i in {v, l}: 2c + B + S, the corrected rate term by term;
    - ``literal``: Eq. 1 with i = T included and the undefined g_T^T taken as 0: 2c + B + S + |g_T|²
      = B + 2S + 4c, i.e. branches + 2·heads + 2·head_cross: the classifier counted twice.

    The gradient of the head bias (and, under attention, of the attention scorer) belongs to no
    modality; it is outside the paper's split and enters every reading once (``terms["other"]``).
    A reading whose rate is off by Δ leaves a residual −λΔ, slope 1 instead of 2.
    """
    rates = proposition1_rates(check.terms)
    return {name: FirstOrderCheck(check.step_sizes, -check.step_sizes * rate, check.actual, {"rate": rate})
            for name, rate in rates.items()}


def proposition1_rates(terms: dict[str, float]) -> dict[str, float]:
    """The rates (ΔL ≈ −λ × rate) of the readings of ``proposition1_readings``, from the terms of
    ``proposition1_check``."""
    missing = {"head_cross", "other"} - set(terms)
    if missing or not any(k.startswith("branch_") for k in terms) or not any(k.startswith("head_") for k in terms):
        raise ValueError("proposition1_rates: need the terms of proposition1_check (branch_<m>, head_<m>, "
                         f"head_cross, other), got {sorted(terms)}")
    branches = sum(v for k, v in terms.items() if k.startswith("branch_"))
    heads = sum(v for k, v in terms.items() if k.startswith("head_") and k != "head_cross")
    cross, other = terms["head_cross"], terms["other"]   # cross = 2 g_T^v·g_T^l, Eq. 1's term outside the sum
    return {
        "corrected": branches + (heads + cross) + other,      # |g_v|² + |g_l|² + |g_T^v + g_T^l|²
        "over_v_l": cross + (branches + heads) + other,       # Eq. 1, i in {v, l}
        "literal": cross + (branches + heads) + (heads + cross) + other,  # Eq. 1, i in {v, l, T}: + |g_T|², g_T^T = 0
    }


def proposition1_shares(check: FirstOrderCheck) -> dict[str, float]:
    """How the first-order decrease ‖g‖² splits: each modality's blocks (|g_m|² + |g_T^m|²), the
    cross term 2 sum g_T^a·g_T^b and the unsplit rest, as shares that sum to 1.

    Under concatenation the cross term is exactly 0 and every share is ≥ 0. The split is a
    bookkeeping of the step: it depends on how the parameters are scaled (``rescaled_branch``), not
    only on the function the model computes.
    """
    terms = check.terms
    total = sum(terms.values())
    if not total > 0:
        raise ValueError(f"proposition1_shares: the squared gradient norm is {total}; nothing to split")
    modalities = [k[len("branch_"):] for k in terms if k.startswith("branch_")]
    shares = {m: (terms[f"branch_{m}"] + terms[f"head_{m}"]) / total for m in modalities}
    shares["cross"] = terms["head_cross"] / total
    shares["other"] = terms["other"] / total
    return shares


def rescaled_branch(model: LateFusion, modality: str, factor: float) -> LateFusion:
    r"""A copy of a concatenation model computing the same function, with branch m's scale moved.

    Branch h_m = ReLU(W x + b) is positively homogeneous: ReLU(c W x + c b) = c ReLU(W x + b) for
    c > 0. Multiplying W, b by c and dividing the columns of the fused head that read e_m (and the
    weight of m's unimodal head) by c leaves every output unchanged, while the gradients become
    g_m / c on the branch and c g_T^m on the head block. So the per-modality split of
    Proposition 1 (``proposition1_shares``) moves although the model is the same function.
    """
    if model.fusion != "concat":
        raise ValueError(f"rescaled_branch: needs fusion='concat' (the head block of e_m), got {model.fusion!r}")
    if modality not in model.modalities:
        raise ValueError(f"rescaled_branch: modality {modality!r} is not one of {model.modalities}")
    branch = model.branches[modality]
    if not (isinstance(branch, nn.Sequential) and len(branch) == 2 and isinstance(branch[0], nn.Linear)
            and isinstance(branch[1], nn.ReLU)):
        raise ValueError(f"rescaled_branch: needs a Linear + ReLU branch, got {branch}")
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"rescaled_branch: factor must be a finite positive number, got {factor}")
    copy_ = copy.deepcopy(model)
    index, width = model.modalities.index(modality), model.hidden
    with torch.no_grad():
        copy_.branches[modality][0].weight.mul_(factor)
        copy_.branches[modality][0].bias.mul_(factor)
        copy_.head.weight[:, index * width : (index + 1) * width].div_(factor)
        if copy_.unimodal_heads is not None:
            copy_.unimodal_heads[modality].weight.div_(factor)
    return copy_


# --- Proposition 2: task and KL gradients ------------------------------------------------------

def task_and_kl_losses(model: LateFusion, inputs: dict[str, Tensor], labels: Tensor,
                       task: str) -> tuple[Tensor, Tensor]:
    """(L_T, L_kl) of Proposition 2: the task loss and KL(p^v‖p^l) + KL(p^l‖p^v) of the two unimodal heads,
    with the KL targets NOT detached, so that their gradients are the true gradients of the losses."""
    output = model(inputs)
    first, second = model.modalities
    logits = [class_distribution_logits(task, output.unimodal_logits[m]) for m in (first, second)]
    kl_first, kl_second = mutual_kl(*logits, detach_target=False)
    return task_loss(task, output.logits, labels), kl_first + kl_second


def proposition2_check(model: LateFusion, inputs: dict[str, Tensor], labels: Tensor, task: str,
                       step_sizes: Sequence[float] = STEP_SIZES) -> tuple[FirstOrderCheck, FirstOrderCheck]:
    r"""BalGrad Proposition 2, checked: the joint step θ ← θ − λ(G^τ + G^kl) on task and KL losses.

    G^τ = ∇L_T (on h_v, h_l, f_T; zero on the unimodal heads) and G^kl = ∇L_kl with
    L_kl = KL(p^v‖p^l) + KL(p^l‖p^v) from ``mutual_kl`` on the unimodal heads' predictions
    (non-zero on h_v, h_l and the unimodal heads, zero on f_T). Two first-order predictions:

    1. the joint loss L = L_T + L_kl (Proposition 2):
       ΔL ≈ −λ ∇L·(G^τ + G^kl) = −λ(‖G^τ‖² + ‖G^kl‖² + 2 G^τ·G^kl);
       terms ``task`` = ‖G^τ‖², ``kl`` = ‖G^kl‖², ``inner`` = 2 G^τ·G^kl.
    2. the task loss alone: ΔL_T ≈ −λ ∇L_T·(G^τ + G^kl) = −λ(‖G^τ‖² + G^τ·G^kl);
       terms ``task`` and ``inner`` = G^τ·G^kl. A conflict (G^τ·G^kl < 0) slows the task loss
       directly, and if G^τ·G^kl < −‖G^τ‖² the step raises it.

    For the first to be a Taylor expansion, G^kl must be the true gradient of L_kl, so the KL
    targets are NOT detached here (``mutual_kl(..., detach_target=False)``), unlike BalGrad's
    default training; the second holds for any direction. The inner product lives on the branches
    only, where both gradients are non-zero. Needs a two-modality model with unimodal heads;
    runs on a float64 copy. Returns (joint check, task-only check).
    """
    if model.unimodal_heads is None or len(model.modalities) != 2:
        raise ValueError("proposition2_check: needs a model with two modalities and unimodal heads "
                         f"(LateFusion(..., unimodal_heads=True)); got modalities {model.modalities}, "
                         f"unimodal heads {model.unimodal_heads is not None}")
    model, inputs, labels = as_float64(model, inputs, labels)

    def task_and_kl() -> tuple[Tensor, Tensor]:
        return task_and_kl_losses(model, inputs, labels, task)

    params = list(model.parameters())
    task_value, kl_value = task_and_kl()
    task_grads, kl_grads = loss_grads(task_value, params), loss_grads(kl_value, params)
    task_grad, kl_grad = flatten(task_grads), flatten(kl_grads)
    inner = float(task_grad @ kl_grad)
    direction = [t + k for t, k in zip(task_grads, kl_grads)]
    joint_terms = {"task": float(task_grad @ task_grad), "kl": float(kl_grad @ kl_grad), "inner": 2 * inner}
    task_terms = {"task": float(task_grad @ task_grad), "inner": inner}
    joint = first_order_check(lambda: sum(task_and_kl()), params, direction, joint_terms, step_sizes)
    task_only = first_order_check(lambda: task_and_kl()[0], params, direction, task_terms, step_sizes)
    return joint, task_only


# --- GOAL A.3: normalised entropy and total variance -----------------------------------------

def entropy_of(probs: Tensor) -> Tensor:
    """Normalised entropy u(p) of probability vectors (``goal.normalized_entropy`` on log p; 0 log 0 = 0)."""
    return normalized_entropy(probs.clamp_min(torch.finfo(probs.dtype).tiny).log())


def rescaled_total_variance(probs: Tensor) -> Tensor:
    r"""The affine rescaling of V(p) = 1 − sum p_k² that agrees with u(p) to second order at uniform.

    Write p_k = (1 + x_k)/K with sum x_k = 0. Expanding (1 + x) log(1 + x) = x + x²/2 − x³/6 + ..:

        u(p) = H(p)/log K = 1 − sum x_k² / (2K log K) + sum x_k³ / (6K log K) + O(x⁴)
        V(p) = 1 − 1/K − sum x_k² / K²                                  (exact)

    so both fall from their maximum by a multiple of sum x_k², and matching the multiples gives

        Ṽ(p) = 1 − K/(2 log K) · (1 − 1/K − V(p)),    u(p) − Ṽ(p) = sum x_k³ / (6K log K) + O(x⁴).

    Only normalising V by its maximum, V/(1 − 1/K), is not enough: its deficit 1 − V/(1 − 1/K) =
    sum x_k² / (K(K−1)) differs from u's by the factor (K−1)/(2 log K) (0.72 for K = 2, 1.82 for
    K = 9; never 1 for an integer K), so the two disagree already at second order.
    """
    num_classes = probs.shape[-1]
    return 1 - num_classes / (2 * math.log(num_classes)) * (1 - 1 / num_classes - total_variance(probs))


def entropy_variance_gaps(direction: Tensor, epsilons: Sequence[float], rescaled: bool = True) -> np.ndarray:
    r"""u(p) − Ṽ(p) at p = uniform + ε d for each ε (``rescaled_total_variance``; float64).

    ``direction`` d must sum to 0 (p stays a distribution) and uniform + ε d must be positive.
    With x = K ε d the gap is K² ε³ sum d_k³ / (6 log K) + O(ε⁴) (``predicted_gap_coefficient``
    gives the ε³ coefficient): third order in general, fourth order when sum d_k³ = 0
    (e.g. d = (1, −1, 0, ..)). ``rescaled=False`` gives u(p) − V(p)/(1 − 1/K) instead, V normalised by its
    maximum only: second order, the two parting already in curvature.
    """
    direction = torch.as_tensor(direction, dtype=torch.float64)
    if abs(float(direction.sum())) > 1e-12:
        raise ValueError(f"entropy_variance_gaps: direction must sum to 0, sums to {float(direction.sum())}")
    uniform = torch.full_like(direction, 1 / len(direction))
    probs = torch.stack([uniform + eps * direction for eps in epsilons])
    if (probs <= 0).any():
        raise ValueError("entropy_variance_gaps: uniform + eps * direction has non-positive entries; use smaller eps")
    variance = rescaled_total_variance(probs) if rescaled else total_variance(probs) / (1 - 1 / len(direction))
    return (entropy_of(probs) - variance).numpy()


def predicted_gap_coefficient(direction: Tensor) -> float:
    """The ε³ coefficient of u − Ṽ at uniform + ε d: K² sum d_k³ / (6 log K)."""
    direction = torch.as_tensor(direction, dtype=torch.float64)
    num_classes = len(direction)
    return float(num_classes**2 * direction.pow(3).sum() / (6 * math.log(num_classes)))


def majorizes(p: Tensor, q: Tensor, tol: float = 1e-12) -> bool:
    """p ≻ q: every partial sum of p sorted in decreasing order is ≥ q's (equal totals).

    A Schur-concave φ (normalised entropy, total variance) has φ(p) ≤ φ(q) whenever p ≻ q: the
    more concentrated distribution is the less uncertain one. Moving probability from a smaller to
    a larger entry (a 'reverse Robin Hood' transfer) gives a distribution that majorises the old one.
    """
    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    if p.shape != q.shape or abs(float(p.sum() - q.sum())) > tol:
        raise ValueError(f"majorizes: need two distributions of one shape and total, got {p.tolist()}, {q.tolist()}")
    partial_p = p.sort(descending=True).values.cumsum(0)
    partial_q = q.sort(descending=True).values.cumsum(0)
    return bool((partial_p >= partial_q - tol).all())


# --- GOAL A.9: orthogonality after projection ------------------------------------------------

def orthogonality_check(model: LateFusion, inputs: dict[str, Tensor], labels: Tensor, task: str) -> dict:
    r"""GOAL appendix A.9, checked on per-sample feature gradients g^(m) = dL/df_m of a model.

    For two modalities, GO (``goal.orthogonalize``) projects each conflicting g_i away from the
    other's original g_j, so afterwards g_i''·g_j = 0 and g_1''·g_2'' ≥ 0 (Cauchy–Schwarz): no
    conflict remains. AL's weights are positive scalars and change neither sign nor orthogonality,
    so they are left out. Float64 copy. Returns:

    - ``conflict_before``, ``conflict_after``: share of samples with g_1·g_2 < 0 before and after;
    - ``max_abs_cos_to_other``: max over conflicting samples and both i of |cos(g_i'', g_j)|
      (0 up to round-off if A.9 holds; 0 when no sample conflicts);
    - ``cos_before``, ``cos_after``: per-sample cosines (numpy arrays) for histograms.
    """
    if len(model.modalities) != 2:
        raise ValueError(f"orthogonality_check: A.9 is about two modalities, the model has {model.modalities}")
    model, inputs, labels = as_float64(model, inputs, labels)
    output = model(inputs)
    embeddings = [output.embeddings[m] for m in model.modalities]
    feature_grads = [g.detach() for g in loss_grads(task_loss(task, output.logits, labels), embeddings)]
    projected = orthogonalize(feature_grads, eps=0.0)
    cos_before = rowwise_cosine(*feature_grads)
    cos_after = rowwise_cosine(*projected)
    conflicting = cos_before < 0
    to_other = torch.stack([rowwise_cosine(projected[0], feature_grads[1]), rowwise_cosine(projected[1], feature_grads[0])])
    residual = to_other[:, conflicting].abs()
    return {
        "conflict_before": float(conflicting.double().mean()),
        "conflict_after": float((cos_after < 0).double().mean()),
        "max_abs_cos_to_other": float(residual.max()) if residual.numel() else 0.0,
        "cos_before": cos_before.cpu().numpy(),
        "cos_after": cos_after.cpu().numpy(),
    }


# --- GOAL A.14: the indirect effect on the next unimodal gradient ----------------------------

def relu_pattern(module: nn.Module, run: Callable[[], Tensor]) -> Tensor:
    """Which ReLU units inside ``module`` are active (output > 0) during ``run()``: one flat bool tensor.

    A gradient of a ReLU network jumps where a unit switches on or off, so a Taylor prediction of
    the gradient holds only for steps that leave this pattern unchanged.
    """
    masks = []
    hooks = [layer.register_forward_hook(lambda _layer, _inputs, out: masks.append((out > 0).flatten()))
             for layer in module.modules() if isinstance(layer, nn.ReLU)]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(masks) if masks else torch.zeros(0, dtype=torch.bool)


@dataclass
class IndirectEffectCheck:
    """Predicted (−η H_s Δv) and actual change ΔG of a branch's unimodal-loss gradient, per step size η."""

    step_sizes: np.ndarray
    relative_error: np.ndarray   # ‖ΔG − (−η H_s Δv)‖ / ‖ΔG‖
    cosine: np.ndarray           # cos(ΔG, −η H_s Δv)
    actual_norm: np.ndarray      # ‖ΔG‖
    flipped: np.ndarray          # ReLU units (sample x unit) of the branch switched on or off by the step

    @property
    def smooth(self) -> np.ndarray:
        """Step sizes whose step switches no ReLU unit: where the loss is smooth along the step."""
        return self.flipped == 0

    @property
    def taylor_regime(self) -> np.ndarray:
        """Step sizes above the one with the smallest error and below the first ReLU switch: where the
        O(η²) remainder dominates (the step sizes must be increasing).

        Three regimes, from small to large η: round-off in G(v − ηΔv) − G(v) (relative error ∝ 1/η),
        the Taylor remainder (∝ η), and, once a ReLU switches, the gradient's jump (error ~ 1).
        """
        switched = np.flatnonzero(~self.smooth)
        before_switch = np.arange(switched[0] if len(switched) else len(self.step_sizes))
        regime = np.zeros(len(self.step_sizes), dtype=bool)
        if len(before_switch):
            regime[before_switch[before_switch > np.argmin(self.relative_error[before_switch])]] = True
        return regime

    @property
    def slope(self) -> float:
        """Log-log slope of the relative error against η in the Taylor regime (1: an O(η²) error on an
        O(η) change)."""
        regime = self.taylor_regime
        if regime.sum() < 2:
            raise ValueError("IndirectEffectCheck.slope: fewer than 2 step sizes between the round-off floor and "
                             f"the first ReLU switch (errors {self.relative_error.tolist()}, switches "
                             f"{self.flipped.tolist()}); use a finer grid of step sizes")
        return loglog_slope(self.step_sizes[regime], self.relative_error[regime])


def goal_correction(model: LateFusion, inputs: dict[str, Tensor], labels: Tensor, task: str, output,
                    fusion_loss: Tensor, modality: str, T: float = 1.0) -> list[Tensor]:
    """Δv = g̃^(m) − g^(m) on branch m's parameters: GOAL's edit (AL then GO, ``GOAL.edit``, feature variant) of
    the per-sample fusion-loss feature gradients, minus the unedited ones, back-propagated into the branch."""
    embeddings = [output.embeddings[m] for m in model.modalities]
    feature_grads = list(torch.autograd.grad(fusion_loss, embeddings, retain_graph=True))
    step = Step(model, inputs, labels, task, output, iteration=0, epoch=0, iterations_per_epoch=1, total_iterations=1)
    _, _, edited = GOAL(T=T).edit(step, feature_grads)
    index = model.modalities.index(modality)
    correction = (edited[index] - feature_grads[index]).detach()
    return list(torch.autograd.grad(output.embeddings[modality], model.branch_parameters(modality),
                                    grad_outputs=correction))


INDIRECT_EDITS = ("fusion", "goal")


def indirect_effect_check(model: LateFusion, inputs: dict[str, Tensor], labels: Tensor, task: str,
                          modality: str, step_sizes: Sequence[float] = np.logspace(-7, -2, 21),
                          edit: str = "fusion", T: float = 1.0) -> IndirectEffectCheck:
    r"""GOAL appendix A.14, checked with a Hessian-vector product.

    Let v be branch h_m's parameters, L^(m) its unimodal loss (through the unimodal head, kept
    fixed) and G(v) = ∇_v L^(m). A.14 compares the next step's G after GOAL's step and after the
    baseline's; the two steps differ by −η Δv with Δv = g̃^(m) − g^(m), GOAL's correction of the
    fusion-loss gradient, so to first order the difference is the change a step −η Δv alone makes:

        ΔG = G(v − η Δv) − G(v) = −η H_s Δv + O(η²),     H_s = ∇²_v L^(m),

    i.e. editing g^(m) has an indirect effect on G^(m) one step later. ``edit`` chooses Δv:
    ``"fusion"`` the fusion-loss gradient g^(m) = ∇_v L_mm itself, ``"goal"`` A.14's correction
    g̃^(m) − g^(m) made by ``GOAL(T=T).edit`` (AL and GO on the per-sample feature gradients, the
    kit's default reading), carried into the branch parameters by the chain rule. H_s Δv is computed by double
    backward (the gradient of G·Δv), never forming H_s. The expansion assumes a smooth loss; a ReLU
    branch is smooth only between activation switches, so the check also counts the ReLU units
    each step switches (``flipped``): once one does, ΔG jumps and the prediction fails. At the
    smallest η the round-off of the difference G(v − ηΔv) − G(v) dominates instead
    (``IndirectEffectCheck.taylor_regime`` separates the regimes). Float64 copy; the model is not
    changed. The default step sizes run over quarter decades from 1e-7 to 1e-2.
    """
    if model.unimodal_heads is None or modality not in model.modalities:
        raise ValueError(f"indirect_effect_check: needs a model with unimodal heads and modality {modality!r}; "
                         f"got modalities {model.modalities}, unimodal heads {model.unimodal_heads is not None}")
    if edit not in INDIRECT_EDITS:
        raise ValueError(f"indirect_effect_check: edit must be one of {INDIRECT_EDITS}, got {edit!r}")
    model, inputs, labels = as_float64(model, inputs, labels)
    branch, params = model.branches[modality], model.branch_parameters(modality)

    def unimodal_loss() -> Tensor:
        return task_loss(task, model.unimodal_heads[modality](branch(inputs[modality])), labels)

    output = model(inputs)
    fusion_loss = task_loss(task, output.logits, labels)
    if edit == "fusion":
        direction = loss_grads(fusion_loss, params)
    else:
        direction = goal_correction(model, inputs, labels, task, output, fusion_loss, modality, T)
    gradient = torch.autograd.grad(unimodal_loss(), params, create_graph=True)
    hessian_direction = flatten(torch.autograd.grad(flatten(gradient) @ flatten(direction).detach(), params))
    start, start_pattern = flatten(gradient).detach(), relu_pattern(branch, unimodal_loss)
    originals = [p.detach().clone() for p in params]
    errors, cosines, norms, flipped = [], [], [], []
    for step_size in step_sizes:
        with torch.no_grad():
            for p, p0, d in zip(params, originals, direction):
                p.copy_(p0 - step_size * d)
        actual = flatten(loss_grads(unimodal_loss(), params)) - start
        predicted = -step_size * hessian_direction
        errors.append(float((actual - predicted).norm() / actual.norm()))
        cosines.append(float(actual @ predicted / (actual.norm() * predicted.norm())))
        norms.append(float(actual.norm()))
        flipped.append(int((relu_pattern(branch, unimodal_loss) != start_pattern).sum()))
    with torch.no_grad():
        for p, p0 in zip(params, originals):
            p.copy_(p0)
    return IndirectEffectCheck(np.asarray(step_sizes, dtype=float), np.asarray(errors), np.asarray(cosines),
                               np.asarray(norms), np.asarray(flipped))


# --- the checks over seeds: per-seed numbers for the claims ledger's intervals ---------------------

@dataclass
class Trained:
    """One seed's setting for a check: a model trained briefly on ``features`` with that seed, and the seed's
    shuffled order of the samples, cut into batches of ``batch_size`` (seed 0's first batch is the one
    chapters 3 and 6 check on)."""

    seed: int
    model: LateFusion
    features: FeatureSet
    batch_size: int

    @property
    def batches(self) -> int:
        """How many whole batches the seed's order holds."""
        return len(self.features) // self.batch_size

    def batch(self, index: int = 0) -> tuple[dict[str, Tensor], Tensor]:
        """The inputs and labels of batch ``index`` in the seed's shuffled order of the samples."""
        if not 0 <= index < self.batches:
            raise ValueError(f"Trained.batch: index must be in 0..{self.batches - 1} ({len(self.features)} samples, "
                             f"batches of {self.batch_size}), got {index}")
        order = torch.randperm(len(self.features), generator=torch.Generator().manual_seed(self.seed))
        rows = order[index * self.batch_size : (index + 1) * self.batch_size]
        return {m: x[rows] for m, x in self.features.features.items()}, self.features.labels[rows]


def briefly_trained(data: FeatureSet | str, seeds: Sequence[int], method: str = "joint_unimodal_heads", *,
                    epochs: int = 1, batch_size: int = 256, fusion: str = "concat") -> list[Trained]:
    """Per seed, ``method`` trained for ``epochs`` on ``data`` (a FeatureSet, or a dataset name: its training
    split) with that seed: the models the ``*_over_seeds`` checks measure, as chapters 3 and 6 do on seed 0.
    Everything is checked before anything trains."""
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(set(seeds)) < len(seeds):
        raise ValueError(f"briefly_trained: seeds must be distinct integers, at least one; got {seeds}")
    for name, value, least in (("epochs", epochs, 1), ("batch_size", batch_size, 2)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"briefly_trained: {name} must be an integer >= {least}, got {value!r}")
    features = load_features(data, "train") if isinstance(data, str) else data
    if batch_size > len(features):
        raise ValueError(f"briefly_trained: batch_size {batch_size} is larger than the {len(features)} samples")
    return [Trained(seed, train(features, method, epochs=epochs, fusion=fusion, seed=seed, record=False,
                                show_progress=False).model, features, batch_size)
            for seed in seeds]


def _settings(trained: Sequence[Trained], what: str) -> list[Trained]:
    trained = list(trained)
    if not trained or not all(isinstance(t, Trained) for t in trained):
        raise ValueError(f"{what}: expected a non-empty list of Trained (one per seed, from briefly_trained)")
    return trained


@dataclass(frozen=True)
class Proposition1Seed:
    """Proposition 1 on one seed's model and first batch (``proposition1_check``, ``proposition1_readings``)."""

    seed: int
    corrected_slope: float   # residual slope of the corrected statement, = Eq. 1 over i in {v, l} (2: first order)
    literal_slope: float     # residual slope of Eq. 1 read with i in {v, l, T} (1: its rate is wrong)
    corrected_error: float   # relative error at the smallest step, corrected statement
    literal_error: float     # relative error at the smallest step, literal reading
    literal_excess: float    # literal rate / corrected rate − 1: how much the classifier counted twice adds


def proposition1_over_seeds(trained: Sequence[Trained], step_sizes: Sequence[float] = STEP_SIZES
                            ) -> list[Proposition1Seed]:
    """BalGrad Proposition 1 (Section 3.1, Eq. 1) checked on each seed's model and first batch, as chapter 3
    checks it on seed 0: the residual slope and relative error of the corrected statement and of the literal
    reading of the printed equation."""
    rows = []
    for setting in _settings(trained, "proposition1_over_seeds"):
        inputs, labels = setting.batch()
        readings = proposition1_readings(proposition1_check(setting.model, inputs, labels, setting.features.task,
                                                            step_sizes))
        corrected, literal = readings["corrected"], readings["literal"]
        rows.append(Proposition1Seed(setting.seed, corrected.slope, literal.slope, corrected.relative_error,
                                     literal.relative_error, literal.terms["rate"] / corrected.terms["rate"] - 1))
    return rows


@dataclass(frozen=True)
class Proposition2Seed:
    """Proposition 2 on one seed's model and a batch where the task and KL gradients conflict."""

    seed: int
    batch: int                 # which batch of the seed's order was checked
    inner: float               # 2 G^τ·G^kl (negative: the two gradients conflict)
    slope: float               # residual slope of Eq. 5's prediction of the joint loss change (2: first order)
    rate_without_inner: float  # ‖G^τ‖² + ‖G^kl‖²: the decrease per unit step if the two did not interact
    measured_rate: float       # −ΔL/η at the smallest step: the decrease per unit step the step actually made

    @property
    def conflict(self) -> bool:
        return self.inner < 0


def proposition2_over_seeds(trained: Sequence[Trained], step_sizes: Sequence[float] = STEP_SIZES,
                            tries: int = 10) -> list[Proposition2Seed]:
    """BalGrad Proposition 2 (Eq. 5) checked on each seed's model (``proposition2_check``; it needs unimodal
    heads), on the first of the seed's batches (at most ``tries``) where G^τ·G^kl < 0: a conflict should eat
    into the decrease, so the measured rate falls short of ‖G^τ‖² + ‖G^kl‖² by about |2 G^τ·G^kl|. A seed
    with no conflicting batch among those tried keeps its last batch (``conflict`` False)."""
    if not isinstance(tries, int) or tries < 1:
        raise ValueError(f"proposition2_over_seeds: tries must be an integer >= 1, got {tries!r}")
    rows = []
    for setting in _settings(trained, "proposition2_over_seeds"):
        for index in range(min(tries, setting.batches)):
            joint, _ = proposition2_check(setting.model, *setting.batch(index), setting.features.task, step_sizes)
            if joint.terms["inner"] < 0:
                break
        smallest = int(np.argmin(joint.step_sizes))
        rows.append(Proposition2Seed(setting.seed, index, joint.terms["inner"], joint.slope,
                                     joint.terms["task"] + joint.terms["kl"],
                                     float(-joint.actual[smallest] / joint.step_sizes[smallest])))
    return rows


@dataclass(frozen=True)
class EntropyVarianceSeed:
    """GOAL A.3's local agreement along one seed's model's predictions (medians over the predictions)."""

    seed: int
    rescaled_slope: float  # log-log slope of u − Ṽ near uniform (3: they agree to second order)
    plain_slope: float     # the same for u − V/(1 − 1/K) (2: without A.3's affine map they part at second order)
    directions: int        # predictions measured


def entropy_variance_over_seeds(trained: Sequence[Trained], epsilons: Sequence[float] = np.logspace(-2, -4, 5),
                                samples: int = 32) -> list[EntropyVarianceSeed]:
    """GOAL A.3 along the directions a trained model's predictions point to: for the first ``samples`` rows of
    each seed's first batch and each modality's unimodal head (the predictions AL takes the entropy of), d =
    p − uniform, and the gaps of ``entropy_variance_gaps`` at uniform + ε d/max|d| for each ε. A prediction
    that is uniform (d = 0) points nowhere and is skipped. Needs unimodal heads and a multiclass task."""
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"entropy_variance_over_seeds: samples must be an integer >= 1, got {samples!r}")
    rows = []
    for setting in _settings(trained, "entropy_variance_over_seeds"):
        if setting.model.unimodal_heads is None or setting.features.task != "multiclass":
            raise ValueError("entropy_variance_over_seeds: needs a model with unimodal heads on a multiclass task "
                             f"(predicted distributions); got heads {setting.model.unimodal_heads is not None}, "
                             f"task {setting.features.task!r}")
        model, inputs, labels = as_float64(setting.model, *setting.batch())
        with torch.no_grad():
            logits = model(inputs).unimodal_logits
        directions = [p - 1 / p.numel() for m in model.modalities for p in logits[m][:samples].softmax(-1)]
        directions = [d - d.mean() for d in directions if float(d.abs().max()) > 1e-8]  # sums to 0 to round-off
        if not directions:
            raise ValueError(f"entropy_variance_over_seeds: every prediction of seed {setting.seed} is uniform")
        slopes = {rescaled: float(np.median([
            loglog_slope(epsilons, entropy_variance_gaps(d, np.asarray(epsilons) / float(d.abs().max()), rescaled))
            for d in directions])) for rescaled in (True, False)}
        rows.append(EntropyVarianceSeed(setting.seed, slopes[True], slopes[False], len(directions)))
    return rows


@dataclass(frozen=True)
class OrthogonalitySeed:
    """GOAL A.9 on one seed's model and first batch (``orthogonality_check``)."""

    seed: int
    conflict_before: float       # share of samples whose two feature gradients conflict before GO
    conflict_after: float        # the same after GO (0 if A.9 holds)
    max_abs_cos_to_other: float  # max |cos(g_i'', g_j)| over conflicting samples (0 up to round-off)


def orthogonality_over_seeds(trained: Sequence[Trained]) -> list[OrthogonalitySeed]:
    """GOAL A.9 (Eqs. 9–10) on each seed's model and first batch, as chapter 6 checks it on seed 0."""
    rows = []
    for setting in _settings(trained, "orthogonality_over_seeds"):
        result = orthogonality_check(setting.model, *setting.batch(), setting.features.task)
        rows.append(OrthogonalitySeed(setting.seed, result["conflict_before"], result["conflict_after"],
                                      result["max_abs_cos_to_other"]))
    return rows


@dataclass(frozen=True)
class IndirectEffectSeed:
    """GOAL A.14 on one seed's model, first batch and one branch (``indirect_effect_check``)."""

    seed: int
    modality: str
    slope: float | None       # relative-error slope in the Taylor regime (1: ΔG = −η H_s Δv + O(η²));
    min_cosine: float | None  # smallest cos(ΔG, −η H_s Δv) there; both None when the regime has < 2 step sizes


def indirect_effect_over_seeds(trained: Sequence[Trained], step_sizes: Sequence[float] = np.logspace(-7, -2, 21),
                               edit: str = "goal", T: float = 1.0) -> list[IndirectEffectSeed]:
    """GOAL A.14 on each seed's model and first batch, for every branch: one row per seed and modality.
    A branch whose Taylor regime (between round-off and the first ReLU switch) holds fewer than two step
    sizes has no slope to read (None); a finer grid of ``step_sizes`` may find one."""
    rows = []
    for setting in _settings(trained, "indirect_effect_over_seeds"):
        inputs, labels = setting.batch()
        for m in setting.model.modalities:
            check = indirect_effect_check(setting.model, inputs, labels, setting.features.task, m, step_sizes,
                                          edit, T)
            regime = check.taylor_regime
            readable = regime.sum() >= 2
            rows.append(IndirectEffectSeed(setting.seed, m, check.slope if readable else None,
                                           float(check.cosine[regime].min()) if readable else None))
    return rows
