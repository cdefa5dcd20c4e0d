"""CGGM: classifier-guided gradient modulation.

Paper: Guo, Jin, Chen, Zhao, "Classifier-guided Gradient Modulation for Enhanced Multimodal
Learning", NeurIPS 2024, arXiv 2411.01409. Official code: github.com/zrguo/CGGM.

Each of the M modalities gets an extra classifier f_i on its (detached) encoder output h_i,
trained only to measure how fast that modality is learning. From the classifiers CGGM
takes two signals:

1. magnitude: the improvement d_i of each classifier's task metric since the previous
   iteration (``metric_improvements``) gives a balancing term B_i (``balance_terms``,
   Eq. 7). A modality that improves faster than the others gets a small B_i; the encoder
   gradient of modality i is multiplied by B_i, so the fast modality is slowed down and a
   lagging one is sped up;
2. direction: a loss L_gm that is smallest when the fused head's gradient points along
   the B-weighted gradients of the unimodal classifiers (``direction_loss``, Eq. 12),
   added to the task loss with a weight lambda.

Notation: M modalities i = 1..M; eps_i(t) the task metric of classifier f_i at iteration t
(accuracy for classification, MAE for regression); d_i(t) = eps_i(t) - eps_i(t-1) its
improvement; rho the scale of the balancing terms (about 1.2-1.3 in the paper);
theta_F the fused head's parameters, theta_{f_i} those of classifier f_i.

The first functions below are the paper's equations, tensors in and tensors out. The
training method ``CGGM`` (name "cggm") puts them into the trainer's step: the classifiers
(their own Adam), B from their batch metrics, the scaling of each branch's gradient by B_i,
and L_gm in two variants:

- "paper": Eq. 12 as written (cosine of the heads' last-layer GRADIENTS, weighted by B_i), added
  to the loss of the SAME iteration through a double backward. The same-iteration timing is this
  kit's construction, not the paper's loop: Algorithm 1 computes L_gm^t after the backward pass
  (line 14) and adds it to the next iteration's loss (lines 13 and 15).
- "official": the released code, cosine of the last-layer WEIGHTS with B_i / rho, computed at
  iteration t and added to the loss of t + 1 (one step stale). The timing is Algorithm 1's; the
  weight cosine and B / rho are code-only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import loss_grads, scale_grads
from modbal_lib.methods.base import Step, Method, task_loss
from modbal_lib.models import LateFusion

GUARDS = ("robust", "official")


def metric_improvements(
    current: torch.Tensor, previous: torch.Tensor, *, higher_is_better: bool = True
) -> torch.Tensor:
    """Per-modality improvement of the classifiers' metric, the d_i of paper Eq. 7.

        d_i(t) = eps_i(t) - eps_i(t-1)        (accuracy: higher is better)
        d_i(t) = eps_i(t-1) - eps_i(t)        (MAE: lower is better, so a drop is progress)

    ``current`` and ``previous`` hold one metric value per modality. The paper starts from
    eps_i(0) = 0, which suits accuracy; for MAE a start of 0 would make the first
    "improvement" negative, so pass the first batch's values as ``previous`` instead.
    """
    current = torch.as_tensor(current, dtype=torch.float32)
    previous = torch.as_tensor(previous, dtype=torch.float32)
    if current.shape != previous.shape or current.dim() != 1:
        raise ValueError(
            f"metric_improvements: expected two 1-D tensors [M] of the same length, "
            f"got {tuple(current.shape)} and {tuple(previous.shape)}"
        )
    change = current - previous
    return change if higher_is_better else -change


def balance_terms(
    improvements: torch.Tensor, rho: float, *, guard: str = "robust", eps: float = 1e-6
) -> torch.Tensor:
    """Balancing terms from the metric improvements (paper Eq. 7).

        B_i = rho * (sum_{k != i} d_k) / (sum_k d_k) = rho * (1 - d_i / sum_k d_k)

    d_i / sum_k d_k is modality i's share of this iteration's total progress, so the
    fastest-improving modality gets the smallest B_i (it is slowed down) and a modality
    that made no progress gets B_i = rho. With every d_k >= 0 each B_i lies in [0, rho],
    and equal improvements give every modality the neutral value rho * (M - 1) / M.

    The formula breaks when the total progress is about zero or negative, which happens
    often because the metric is measured on one training batch. ``guard`` chooses what
    to do:

    - ``"robust"`` (default): a modality whose metric got worse counts as having made no
      progress (d_k is clipped at 0). If the clipped total is below ``eps`` (nobody
      improved), every B_i is the neutral rho * (M - 1) / M. Otherwise Eq. 7 is applied to
      the clipped improvements. So B_i always lies in [0, rho]: no sign flips, no blow-ups,
      and wherever every d_k >= 0 and sum d_k >= eps the result equals Eq. 7 exactly.
    - ``"official"``: exactly what the released code does,
      B_i = rho * (S - d_i) / S with S = sum_k d_k + 1e-8 and no clipping. B_i becomes
      negative (flipping the sign of that encoder's gradient) when improvements have mixed
      signs, and huge when S is about 0.

    Returns a float tensor [M].
    """
    d = torch.as_tensor(improvements, dtype=torch.float32)
    if d.dim() != 1 or len(d) < 2:
        raise ValueError(f"balance_terms: expected improvements of shape [M] with M >= 2, got {tuple(d.shape)}")
    if guard == "official":
        total = d.sum() + 1e-8
        return rho * (total - d) / total
    if guard != "robust":
        raise ValueError(f"balance_terms: guard must be one of {GUARDS}, got {guard!r}")
    progress = d.clamp_min(0)
    total = progress.sum()
    neutral = torch.full_like(d, rho * (len(d) - 1) / len(d))
    # torch.where, not an if: no Python branch on a value, so the step never waits for the GPU here
    return torch.where(total < eps, neutral, rho * (total - progress) / total.clamp_min(eps))


def direction_loss(
    fused_grad: torch.Tensor | Sequence[torch.Tensor], unimodal_grads: Sequence[torch.Tensor], B: torch.Tensor
) -> torch.Tensor:
    """Gradient-direction loss L_gm (paper Eq. 12).

        L_gm = (1/M) sum_i ( |B_i| - B_i * cos(grad_{theta_F} L, grad_{theta_{f_i}} L) )

    ``fused_grad`` is the gradient of the fused head (its last layer) and
    ``unimodal_grads[i]`` that of classifier f_i, same number of elements; both are
    flattened before the cosine. ``fused_grad`` may also be a list of M tensors, the i-th
    compared with classifier i (the concat head's block W_i, ``head_blocks``). Each term is 0
    when the cosine equals sign(B_i) and at most 2 |B_i|, so minimising L_gm turns the fused
    gradient towards the classifiers with positive B_i (the lagging modalities weigh most).

    The loss is differentiable with respect to ``fused_grad`` (build it with
    ``create_graph=True`` to train the fused head through it). The classifiers'
    gradients and B are treated as constants (detached): the classifiers guide the fused
    head, not the other way round. A zero gradient has cosine 0 (PyTorch's eps clamp).
    All M cosines are taken in one call.

    The released code differs: it takes the cosine between the last-layer WEIGHTS of the
    heads rather than their gradients and uses B / rho here (both code-only). It adds the loss
    one iteration late, as the paper's Algorithm 1 also does (L_gm^t is computed after the
    backward pass and enters the next iteration's loss). The training method offers both
    (``CGGM(variant=...)``).
    """
    fused_list = [fused_grad] if isinstance(fused_grad, torch.Tensor) else list(fused_grad)
    B = torch.as_tensor(B, dtype=fused_list[0].dtype, device=fused_list[0].device).detach()
    if B.dim() != 1 or len(B) != len(unimodal_grads) or len(fused_list) not in (1, len(unimodal_grads)):
        raise ValueError(
            f"direction_loss: got {len(fused_list)} fused and {len(unimodal_grads)} unimodal gradients and B of "
            f"shape {tuple(B.shape)}; expected one balancing term per modality and one fused gradient (or one "
            "per modality)"
        )
    sizes = {g.numel() for g in (*fused_list, *unimodal_grads)}
    if len(sizes) > 1:
        raise ValueError(
            f"direction_loss: the gradients have {[g.numel() for g in (*fused_list, *unimodal_grads)]} elements "
            "(fused first, then unimodal); the heads' layers must have the same shape"
        )
    fused = torch.stack([g.flatten() for g in fused_list])                  # [1 or M, N]
    unimodal = torch.stack([g.detach().flatten() for g in unimodal_grads])  # [M, N]
    return (B.abs() - B * F.cosine_similarity(fused, unimodal, dim=1)).mean()


# ---------------------------------------------------------------------------------------------
# The training method
# ---------------------------------------------------------------------------------------------

VARIANTS = ("paper", "official")
CLASSIFIERS = ("linear", "mlp")
METRIC_NAMES = {"multiclass": "acc", "multilabel": "f1", "regression": "mae"}


def make_classifier(kind: str, hidden: int, num_outputs: int) -> nn.Sequential:
    """Classifier f_i on one modality's embedding f_i ([B, hidden]); its last layer is ``[-1]``.

    The paper's f_i is 1-2 self-attention layers and a linear layer over a token sequence. Our
    embeddings are single vectors, where self-attention over one token is just a linear map of
    it, so the stand-ins are ``"linear"`` (one Linear [K, hidden]) and ``"mlp"`` (Linear, ReLU,
    Linear). With ``"linear"`` the classifier reads exactly the features the fused head reads.
    """
    if kind == "linear":
        return nn.Sequential(nn.Linear(hidden, num_outputs))
    return nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_outputs))


@torch.no_grad()
def batch_metric(task: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """eps_i: a classifier's task metric on one batch, a 0-dim tensor (no sync with the GPU).

    multiclass: accuracy (a share in [0, 1]); regression: MAE (lower is better);
    multilabel: micro-F1 over the batch's labels, 2 TP / (2 TP + FP + FN) with a label predicted
    when its logit > 0. Micro-F1 pools every label of the batch, so rare labels do not make it
    jump the way a per-label (macro) F1 on 128 samples would, and unlike element-wise accuracy
    it is not swamped by the many true negatives of sparse multi-label data.
    """
    logits = logits.float()
    if task == "multiclass":
        return (logits.argmax(dim=1) == labels).float().mean()
    if task == "regression":
        return (logits.squeeze(-1) - labels).abs().mean()
    predicted, truth = logits > 0, labels > 0.5
    true_positives = (predicted & truth).sum()
    return 2 * true_positives / (predicted.sum() + truth.sum()).clamp_min(1)


def head_blocks(model: LateFusion, weight: torch.Tensor) -> list[torch.Tensor]:
    """The part of the fused head's last layer (or of its gradient) that matches each classifier f_i.

    concat: the head is W = [W_1 ... W_M], [K, M * hidden], and W_i is the block that acts on
    f_i, the same [K, hidden] shape and the same input as f_i's last layer, so f_i is compared
    with W_i. sum / attention: the head [K, hidden] reads a mix of all f_m, and every f_i is
    compared with the whole of it.
    """
    if model.fusion != "concat":
        return [weight] * len(model.modalities)
    return list(weight.split(model.hidden, dim=1))


class CGGM(Method):
    """CGGM: classifiers f_i on detached embeddings, balancing terms B from their progress (Eq. 7)
    scaling each branch's gradient, and the direction loss L_gm (Eq. 12) added with weight lam.

    Options:
        variant ["paper"]: L_gm from gradients (Eq. 12) added in the SAME iteration by a double
            backward, the kit's construction (Algorithm 1 adds L_gm^t to the next iteration's loss);
            or "official": the released code's weight cosine with B / rho, one step stale as in
            Algorithm 1.
        rho [1.3]: scale of the balancing terms (Eq. 7). lam [0.05]: weight of L_gm.
        guard ["robust"]: Eq. 7 when a metric did not improve: "robust" (B in [0, rho]) or "official".
        magnitude [True], direction [True]: the gradient scaling and L_gm (Table 6's switches).
        classifier ["linear"] or "mlp"; classifier_lr [5e-4]: the classifiers' Adam learning rate.
        clip_norm [None]: clip the model's gradient norm after the scaling (the released code: 0.8).

    Records per step: B_<m>, the classifiers' batch metric (acc/mae/f1_clf_<m>), loss_clf_<m>,
    loss_gm. The classifiers belong to the method, not the model. Discussion: chapter 5,
    sections 2-4 (equations vs released code) and 8 (the official recipe).
    """

    name = "cggm"

    def __init__(
        self,
        variant: str = "paper",
        rho: float = 1.3,
        lam: float = 0.05,
        guard: str = "robust",
        magnitude: bool = True,
        direction: bool = True,
        classifier: str = "linear",
        classifier_lr: float = 5e-4,
        clip_norm: float | None = None,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"CGGM: variant must be one of {VARIANTS}, got {variant!r}")
        if guard not in GUARDS:
            raise ValueError(f"CGGM: guard must be one of {GUARDS}, got {guard!r}")
        if classifier not in CLASSIFIERS:
            raise ValueError(f"CGGM: classifier must be one of {CLASSIFIERS}, got {classifier!r}")
        if rho <= 0 or lam < 0 or classifier_lr <= 0 or (clip_norm is not None and clip_norm <= 0):
            raise ValueError(f"CGGM: need rho > 0, lam >= 0, classifier_lr > 0 and clip_norm > 0 or None; got "
                             f"rho={rho}, lam={lam}, classifier_lr={classifier_lr}, clip_norm={clip_norm}")
        self.variant = variant
        self.rho = rho
        self.lam = lam
        self.guard = guard
        self.magnitude = magnitude
        self.direction = direction
        self.classifier = classifier
        self.classifier_lr = classifier_lr
        self.clip_norm = clip_norm

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        if len(model.modalities) < 2:
            raise ValueError(f"CGGM balances modalities and needs at least two; the model has {model.modalities}")
        device = next(model.parameters()).device
        num_outputs = model.head.out_features
        self.classifiers = nn.ModuleDict(
            {m: make_classifier(self.classifier, model.hidden, num_outputs) for m in model.modalities}
        ).to(device)
        # fused: one kernel updates each classifier tensor (on a CPU a third of the for-loop Adam's time)
        self.classifier_optimizer = torch.optim.Adam(self.classifiers.parameters(), lr=self.classifier_lr,
                                                     fused=True)
        self.previous_metric = None       # eps(t - 1), carried across epochs
        self.pending_direction_loss = None  # "official": L_gm of the previous step

    def balance(self, task: str, metric: torch.Tensor) -> torch.Tensor:
        """B from this batch's metrics and the previous ones (Eq. 7); remembers the metrics."""
        higher_is_better = task != "regression"
        if self.previous_metric is None:
            # eps(0) = 0 for accuracy and F1; MAE starts from the first batch's own values
            self.previous_metric = torch.zeros_like(metric) if higher_is_better else metric
        improvements = metric_improvements(metric, self.previous_metric, higher_is_better=higher_is_better)
        self.previous_metric = metric
        return balance_terms(improvements, self.rho, guard=self.guard)

    def gradient_direction_loss(self, model: LateFusion, task_loss_value: torch.Tensor,
                                classifier_losses: list[torch.Tensor], B: torch.Tensor) -> torch.Tensor:
        """Paper Eq. 12 on gradients: the fused head's (differentiable) against each classifier's last layer.

        Built with ``create_graph=True`` so that it can join this iteration's loss (the kit's timing of
        ``variant="paper"``; the paper's Algorithm 1 would add it to the next iteration's loss).
        """
        last_layers = [self.classifiers[m][-1].weight for m in model.modalities]
        # one backward pass for both: the task loss reaches only the fused head, each classifier's loss only
        # its classifier (which reads detached embeddings), so each gradient is that of its own loss
        fused_grad, *classifier_grads = loss_grads(task_loss_value + torch.stack(classifier_losses).sum(),
                                                   [model.head.weight, *last_layers], create_graph=True)
        return direction_loss(head_blocks(model, fused_grad), classifier_grads, B)

    def weight_direction_loss(self, model: LateFusion, B: torch.Tensor) -> torch.Tensor:
        """The released code's L_gm: cosines of the last-layer weights, with B / rho (added to the next
        iteration's loss, the order of the paper's Algorithm 1).

        The fused weight is cloned so the loss keeps the weights' current values (and its graph
        to ``model.head.weight``) through the coming optimizer step.
        """
        last_layers = [self.classifiers[m][-1].weight for m in model.modalities]
        return direction_loss(head_blocks(model, model.head.weight.clone()), last_layers, B / self.rho)

    def backward(self, step: Step, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model, modalities = step.model, step.model.modalities
        logits = {m: self.classifiers[m](step.output.embeddings[m].detach().float()) for m in modalities}
        classifier_losses = [task_loss(step.task, logits[m], step.labels) for m in modalities]
        metric = torch.stack([batch_metric(step.task, logits[m], step.labels) for m in modalities])
        B = self.balance(step.task, metric)

        loss = torch.stack(list(losses.values())).sum()
        direction = None
        if self.direction and self.variant == "paper":
            direction = self.gradient_direction_loss(model, losses["task"], classifier_losses, B)
            loss = loss + self.lam * direction
        elif self.direction and self.pending_direction_loss is not None:
            loss = loss + self.lam * self.pending_direction_loss
        # one backward: the model's loss, and the classifiers' losses (which reach only the classifiers)
        (loss + torch.stack(classifier_losses).sum()).backward()
        if self.direction and self.variant == "official":
            direction = self.pending_direction_loss = self.weight_direction_loss(model, B)

        if self.magnitude:
            for i, m in enumerate(modalities):
                scale_grads(model.branch_parameters(m), B[i])
        if self.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip_norm)
        self.classifier_optimizer.step()
        self.classifier_optimizer.zero_grad(set_to_none=True)

        metric_name = METRIC_NAMES[step.task]
        scalars = {}
        for i, m in enumerate(modalities):
            scalars[f"B_{m}"] = B[i]
            scalars[f"{metric_name}_clf_{m}"] = metric[i]
            scalars[f"loss_clf_{m}"] = classifier_losses[i].detach()
        if direction is not None:
            scalars["loss_gm"] = direction.detach()
        return scalars
