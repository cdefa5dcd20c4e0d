"""BalGrad: balance the vision and language modalities by reshaping gradients.

Paper: Kim, Lee, Choi, Kim, "See-Saw Modality Balance: See Gradient, and Sew Impaired
Vision-Language Balance to Mitigate Dominant Modality Bias", arXiv 2503.13834 (2025).

The model (paper Fig. 3): frozen encoders, trainable embedding layers h_v and h_l, a fused
classifier f_T on their concatenation, and unimodal heads f_v, f_l on the embeddings.
BalGrad adds three things to plain joint training:

1. a mutual KL divergence between the unimodal predictions p^v = softmax(z_v) and
   p^l = softmax(z_l), so each modality learns from the other (``mutual_kl``);
2. inter-modality reweighting: each KL term is weighted by its modality's share of the
   unimodal task loss, so the lagging modality (higher loss) is pulled harder
   (``kl_weights``, Eq. 3), and a schedule that grows the KL influence over training
   (``kl_schedule``, Eq. 4);
3. inter-task projection: when the task gradient g_T conflicts with the KL gradient g_kl
   (negative dot product), the conflicting component is removed from g_T
   (``project_conflicting``, Eq. 6). Only the projected g_T reaches f_T; the embedding
   layers get it plus the unimodal and reweighted KL gradients.

Notation: v = vision (image), l = language (text); L_T is the fused task loss, L_T^v and
L_T^l the unimodal task losses, L_kl^v and L_kl^l the two KL terms, t the schedule's time
(the paper writes "iteration t"; ``BalGrad.schedule_unit`` says what the kit counts).

The first functions below are the paper's equations, tensors in and tensors out. Then come
their generalisation to M >= 2 modalities (``modality_kl_terms``, ``modality_kl_weights``;
exactly the paper's for M = 2) and the training method ``BalGrad`` (method name "balgrad"),
which applies them at every step as Fig. 3 draws it. Its options say how it reads what the
paper leaves open or where the kit deviates (what t counts, the KL's fixed target, the
projection's scope) and switch reweighting and projection off for the rows of the paper's
ablation (Table 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from modbal_lib import grads
from modbal_lib.featureset import FeatureSet
from modbal_lib.methods.base import Step, Method
from modbal_lib.models import LateFusion


def mutual_kl(
    logits_v: torch.Tensor, logits_l: torch.Tensor, *, detach_target: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two mutual KL terms whose gradients g_kl^v, g_kl^l enter paper Eq. 4.

    With p^v = softmax(logits_v) and p^l = softmax(logits_l) over the last dimension:

        L_kl^l = KL(p^l || p^v) = sum_k p^l_k log(p^l_k / p^v_k)     ("from p^l to p^v")
        L_kl^v = KL(p^v || p^l) = sum_k p^v_k log(p^v_k / p^l_k)

    each averaged over the batch. L_kl^l is the pull on the language branch towards the
    vision prediction, L_kl^v the pull on the vision branch towards the language one.

    The direction is the paper's Eq. 2, L_kl^l = -sum_i p^l_i log(p^v_i / p^l_i), with the
    pulled modality's own distribution first. Deep Mutual Learning (Zhang et al. 2018), which
    the paper cites, trains a network with KL(p_peer || p_self), the other direction.

    ``detach_target`` (default True) is the kit's assumption, not the paper's: the paper writes
    g_kl^l = grad L_kl^l without saying whether the other modality's distribution is a fixed
    target. Detached, L_kl^l moves only the language branch and L_kl^v only the vision branch;
    only then does the reweighting (``kl_weights``) mean what Section 3.2.1 says, that the weak
    modality is pulled more towards the dominant one's prediction. (Deep Mutual Learning also
    treats the peer's prediction as a constant in each update.) With ``detach_target=False``
    both terms send gradient into both branches.

    Returns ``(kl_v, kl_l)``, two scalar tensors.
    """
    if logits_v.shape != logits_l.shape:
        raise ValueError(
            f"mutual_kl: logits_v has shape {tuple(logits_v.shape)} but logits_l has {tuple(logits_l.shape)}; "
            "expected the same [batch, classes] shape"
        )
    log_p_v = F.log_softmax(logits_v, dim=-1)
    log_p_l = F.log_softmax(logits_l, dim=-1)
    target_v = log_p_v.detach() if detach_target else log_p_v
    target_l = log_p_l.detach() if detach_target else log_p_l
    kl_l = (log_p_l.exp() * (log_p_l - target_v)).sum(-1).mean()
    kl_v = (log_p_v.exp() * (log_p_v - target_l)).sum(-1).mean()
    return kl_v, kl_l


def kl_weights(loss_v: torch.Tensor, loss_l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inter-modality reweighting by the unimodal task losses (the weights W^v, W^l of paper Eq. 4).

        W^v = L_T^v / (L_T^v + L_T^l),   W^l = L_T^l / (L_T^v + L_T^l)

    The modality with the higher loss (the lagging one) gets the larger weight on its own
    KL term. The weights are constants: they are computed from detached losses, so no
    gradient flows through them. If both losses are exactly zero the weights are 1/2 each.
    Returns ``(w_v, w_l)`` as scalar tensors summing to 1.
    """
    loss_v = torch.as_tensor(loss_v).detach()
    loss_l = torch.as_tensor(loss_l).detach()
    if loss_v < 0 or loss_l < 0:
        raise ValueError(f"kl_weights: losses must be non-negative, got L_v={loss_v.item()}, L_l={loss_l.item()}")
    total = loss_v + loss_l
    if total == 0:
        return torch.tensor(0.5), torch.tensor(0.5)
    return loss_v / total, loss_l / total


def kl_schedule(t: float, gamma: float = 0.5) -> float:
    """Schedule factor that grows the KL influence over training (paper Eq. 4).

        s(t) = gamma + gamma / (1 + e^(-t)),   g_kl = s(t) (W^l g_kl^l + W^v g_kl^v)

    s(0) = 1.5 * gamma (0.75 for the paper's gamma = 1/2) and s(t) -> 2 * gamma as t grows;
    s(t) is within 1 % of 2 * gamma from t = ln 49 (about 3.9) on. The paper grows the factor
    "as iteration t progresses" (Section 3.2.1); counted in raw iterations the ramp is over
    after four steps. The training method chooses what t counts (``BalGrad.schedule_unit``)
    and passes it here. t must be non-negative.
    """
    if t < 0:
        raise ValueError(f"kl_schedule: t counts training progress and must be >= 0, got {t}")
    return gamma + gamma / (1.0 + math.exp(-t))


def project_conflicting(g: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Inter-task projection of g away from ref when they conflict (paper Eq. 6).

        g_perp = g - (g . ref / ||ref||^2) ref    if g . ref < 0
        g_perp = g                                 otherwise

    In BalGrad g is the task gradient g_T and ref the KL gradient g_kl, both flattened to
    1-D. After a projection g_perp . ref = 0: the part of g that would undo the KL step is
    gone, the rest of g is kept. This is PCGrad's projection, ``modbal_lib.grads.project_conflicting``,
    applied one-sided (only g_T moves). A zero ref leaves g unchanged.
    """
    if g.dim() != 1 or g.shape != ref.shape:
        raise ValueError(
            "project_conflicting: expected two 1-D tensors of the same length, "
            f"got {tuple(g.shape)} and {tuple(ref.shape)}"
        )
    return grads.project_conflicting(g, ref)


# --- more than two modalities -------------------------------------------------------------
# The paper is written for v and l. With M modalities we keep its pairwise KL term and its
# loss-share weights, and average over the other modalities; for M = 2 both reduce exactly
# to ``mutual_kl`` and ``kl_weights`` (tests pin this).


def modality_kl_terms(logits: dict[str, torch.Tensor], *, detach_target: bool = True) -> dict[str, torch.Tensor]:
    """The KL pull on each modality, for any number M >= 2 of modalities.

        L_kl^m = 1/(M-1) sum_{k != m} KL(p^m || p^k)

    Each pairwise term is the paper's (``mutual_kl``: L_kl^l = KL(p^l || p^v) is the pull on l
    toward v), so for M = 2 this is exactly (L_kl^v, L_kl^l). For M >= 3 every modality is pulled
    toward every other one with equal share, the rule Deep Mutual Learning (Zhang et al. 2018)
    uses for more than two networks. Returns ``{modality: scalar tensor}``.
    """
    names = list(logits)
    if len(names) < 2:
        raise ValueError(f"modality_kl_terms: mutual KL needs at least two modalities, got {names}")
    pulls: dict[str, list[torch.Tensor]] = {m: [] for m in names}
    for i, m in enumerate(names):
        for k in names[i + 1 :]:
            kl_m, kl_k = mutual_kl(logits[m], logits[k], detach_target=detach_target)
            pulls[m].append(kl_m)
            pulls[k].append(kl_k)
    return {m: torch.stack(terms).mean() for m, terms in pulls.items()}


def modality_kl_weights(unimodal_losses: torch.Tensor) -> torch.Tensor:
    """The reweighting of Eq. 4 for M modalities: W^m = L_T^m / sum_k L_T^k.

    ``unimodal_losses`` is a 1-D tensor [M]; for M = 2 the result is exactly ``kl_weights``.
    The weights are constants (detached), sum to 1, and are 1/M each when all losses are zero.
    Negative losses are refused (``loss_shares`` is the unchecked form a training step uses).
    """
    losses = unimodal_losses.detach()
    if losses.dim() != 1 or (losses < 0).any():
        raise ValueError(f"modality_kl_weights: expected a 1-D tensor of non-negative losses, got {losses.tolist()}")
    return loss_shares(losses)


def loss_shares(losses: torch.Tensor) -> torch.Tensor:
    """L^m / sum_k L^k of non-negative losses [M] (1/M each when all are zero), detached. No check and no
    Python branch on a value, so a training step never waits for the device here (``modality_kl_weights``
    checks its input first)."""
    losses = losses.detach()
    total = losses.sum()
    return torch.where(total > 0, losses / total.clamp_min(torch.finfo(losses.dtype).tiny), 1.0 / len(losses))


def class_distribution_logits(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax over the last dimension is the head's predicted distribution.

    multiclass: the logits themselves. multilabel (MM-IMDb in the paper, which does not say how
    its KL treats labels; this is our reading): one Bernoulli per label, written as two-way
    logits [0, z] (softmax([0, z]) = (1 - sigmoid(z), sigmoid(z))), so ``mutual_kl`` gives the
    KL between the label-wise Bernoullis, averaged over samples and labels.
    """
    if task == "multiclass":
        return logits
    if task == "multilabel":
        return torch.stack([torch.zeros_like(logits), logits], dim=-1)
    raise ValueError(f"BalGrad's mutual KL needs predicted class probabilities; task {task!r} has none "
                     "(expected multiclass or multilabel)")


# --- the training method (paper Fig. 3) ---------------------------------------------------

SCHEDULE_UNITS = ("epoch", "iteration", "progress")
PROJECTION_SCOPES = ("flat", "per_tensor")


class BalGrad(Method):
    """BalGrad (Fig. 3): unimodal heads, reweighted and scheduled mutual KL (Eqs. 2-4), and the task
    gradient on the embedding layers h projected off a conflicting KL gradient (Eq. 6).

    Options:
        gamma [0.5]: gamma of the schedule s(t) = gamma + gamma / (1 + e^-t) (Eq. 4; paper 1/2).
        schedule_unit ["epoch"]: what t of Eq. 4 counts. "iteration" is the paper's literal wording
            ("as iteration t progresses", Section 3.2.1), but s(t) then saturates within four steps;
            "epoch" (fractional epochs, the default) is the kit's deviation that keeps the paper's
            stated purpose, a warm-up in which each modality first learns the task on its own;
            "progress" (share of training done, in [0, 1)) is a third reading.
        projection_scope ["flat"]: Eq. 6 on the flattened h ("flat") or on each tensor ("per_tensor").
        reweighting [True]: W^m from the unimodal losses (Eq. 3); False: equal weights 1/M.
        projection [True]: apply Eq. 6. Both switches off = Table 2's baseline.
        detach_target [True]: the peer's prediction is a fixed target in the KL (the kit's assumption;
            the paper does not say).

    Records per step: cos_task_kl, conflict, kl_scale, w_<m>. Where each gradient goes, the
    schedule unit, the projection scope and the cost: chapter 4, sections 1 and 6-8.
    """

    name = "balgrad"
    unimodal_heads = True

    def __init__(
        self,
        gamma: float = 0.5,
        schedule_unit: str = "epoch",
        projection_scope: str = "flat",
        reweighting: bool = True,
        projection: bool = True,
        detach_target: bool = True,
    ):
        if schedule_unit not in SCHEDULE_UNITS:
            raise ValueError(f"BalGrad: schedule_unit must be one of {SCHEDULE_UNITS}, got {schedule_unit!r}")
        if projection_scope not in PROJECTION_SCOPES:
            raise ValueError(f"BalGrad: projection_scope must be one of {PROJECTION_SCOPES}, got {projection_scope!r}")
        if gamma < 0:
            raise ValueError(f"BalGrad: gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        self.schedule_unit = schedule_unit
        self.projection_scope = projection_scope
        self.reweighting = reweighting
        self.projection = projection
        self.detach_target = detach_target

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        if len(model.modalities) < 2:
            raise ValueError(f"BalGrad needs at least two modalities, the model has {model.modalities}")
        class_distribution_logits(features.task, torch.zeros(1))  # fails early on regression

    def schedule_time(self, step: Step) -> float:
        """t of Eq. 4 in the chosen unit."""
        if self.schedule_unit == "epoch":
            return step.iteration / step.iterations_per_epoch
        if self.schedule_unit == "iteration":
            return float(step.iteration)
        return step.progress

    def losses(self, step: Step) -> dict[str, torch.Tensor]:
        losses = super().losses(step)
        logits = {m: class_distribution_logits(step.task, z) for m, z in step.output.unimodal_logits.items()}
        for m, kl in modality_kl_terms(logits, detach_target=self.detach_target).items():
            losses[f"kl_{m}"] = kl
        return losses

    def step_kl_weights(self, losses: dict[str, torch.Tensor], modalities: tuple[str, ...]) -> torch.Tensor:
        """W^m (reweighting on) or 1/M each (off), one per modality."""
        unimodal = torch.stack([losses[f"uni_{m}"].detach().float() for m in modalities])
        if not self.reweighting:
            return torch.full_like(unimodal, 1.0 / len(modalities))
        return loss_shares(unimodal)

    def project(self, g_task: torch.Tensor, g_kl: torch.Tensor, like: list[torch.Tensor]) -> torch.Tensor:
        """Eq. 6 on the flat branch gradients: over the whole vector, or on each parameter tensor's segment."""
        if self.projection_scope == "flat":
            return project_conflicting(g_task, g_kl)
        segments = zip(grads.unflatten(g_task, like), grads.unflatten(g_kl, like))
        return grads.flatten(project_conflicting(t.reshape(-1), ref.reshape(-1)) for t, ref in segments)

    def backward(self, step: Step, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model, modalities = step.model, step.model.modalities
        embeddings = [step.output.embeddings[m] for m in modalities]
        scale = kl_schedule(self.schedule_time(step), self.gamma)
        weights = self.step_kl_weights(losses, modalities)
        kl_loss = scale * sum(w * losses[f"kl_{m}"] for w, m in zip(weights, modalities))
        unimodal = torch.stack([losses[f"uni_{m}"] for m in modalities]).sum()

        # g_T and g_kl on h through their dot products: the Gram matrix [[g_T.g_T, g_T.g_kl], [g_kl.g_T, g_kl.g_kl]]
        # from both losses' gradients at the embeddings f_m (no parameter gradient is formed for it)
        at_embeddings = grads.losses_grads([losses["task"], kl_loss], embeddings)  # per modality [2, B, hidden]
        gram = grads.parameter_gram([model.branches[m] for m in modalities], [step.inputs[m] for m in modalities],
                                    embeddings, at_embeddings)
        cos_task_kl = grads.cosine_from_gram(gram, 0, 1)
        scalars = {"cos_task_kl": cos_task_kl, "conflict": (cos_task_kl < 0).float(), "kl_scale": scale}
        scalars.update({f"w_{m}": w for m, w in zip(modalities, weights)})

        # Eq. 6 over the flat h: g_T <- g_T - c g_kl with c = min(g_T.g_kl, 0) / |g_kl|^2, added at the embeddings
        flat = self.projection and self.projection_scope == "flat"
        c = grads.conflict_coefficient(gram[0, 1], gram[1, 1]).float() if flat else 0.0
        change_at_embeddings = [-c * g[1] for g in at_embeddings]
        change_per_tensor = self.per_tensor_change(step, losses["task"], kl_loss) if self.projection and not flat else None
        # one backward pass: f_T receives g_T, each unimodal head its CE and KL gradients, h receives
        # g_T + g_kl + g_uni plus the projection's change -c g_kl
        total = losses["task"] + kl_loss + unimodal
        torch.autograd.backward([total, *embeddings], [torch.ones_like(total), *change_at_embeddings])
        if change_per_tensor is not None:
            branches = [p for m in modalities for p in model.branch_parameters(m)]
            grads.write_grads(branches, change_per_tensor, accumulate=True)
        return scalars

    def per_tensor_change(self, step: Step, task: torch.Tensor, kl_loss: torch.Tensor) -> list[torch.Tensor]:
        """Eq. 6 on each parameter tensor of h (``projection_scope="per_tensor"``): the change of g_T per tensor,
        from g_T and g_kl formed explicitly (one vectorised backward pass)."""
        branches = [p for m in step.model.modalities for p in step.model.branch_parameters(m)]
        g_task, g_kl = (grads.flatten(g[k] for g in grads.losses_grads([task, kl_loss], branches)) for k in (0, 1))
        return grads.unflatten(self.project(g_task, g_kl, branches) - g_task, branches)
