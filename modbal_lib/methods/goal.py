"""GOAL: gradient orthogonalization and adaptive leveraging.

Paper: "Balance Multimodal Learning with Gradient Orthogonalization and Adaptive
Leveraging", anonymous ICLR 2026 submission (OpenReview I3uFqoUZ2Y). No public code.

For each modality m the gradient reaching its branch splits into g^(m), from the fusion
loss L_mm, and G^(m), from the modality's own unimodal loss L^(m). GOAL edits g^(m) only,
in two steps:

1. Adaptive Leveraging (AL, Eqs. 6-7): each modality's unimodal prediction gets a
   confidence c = 1 - normalised entropy; a softmax over modalities with temperature T
   turns the confidences into weights w^(m) that sum to 1, averaged over the batch
   (``adaptive_weights``). The leveraged gradient is g^(m)' = w^(m) g^(m).
2. Gradient Orthogonalization (GO, Eqs. 9-10): wherever two leveraged gradients
   conflict (negative dot product), the conflicting component is projected out
   (``orthogonalize``), so one modality's fusion gradient no longer undoes another's.

Notation: M modalities; z_i^(m) the unimodal logits of sample i for modality m over K
classes; u the normalised entropy, c = 1 - u the confidence, T the temperature; g_m' the
leveraged gradient of modality m and g_m'' its orthogonalised version.

The functions at the top are the paper's equations, tensors in and tensors out. Below them,
``GOAL`` is the training method built on them (name "goal"): the fusion-loss gradient of
each branch is leveraged and orthogonalized, the unimodal-loss gradients are left alone.
Its default ``variant="feature"`` is the kit's reading: g^(m) is the per-sample gradient with
respect to the modality's embedding e_m, projected sample by sample (it works whatever the
branches look like; the paper's "for all conflicting pairs within a batch" allows it but does not
say it). ``variant="parameter"`` is the paper's letter (Eq. 5 and the pseudocode of Appendix
A.1-A.2): the flattened gradient on the branch parameters, one vector per modality and batch; it
needs branches of one shape. AL is the same in both (one batch-mean weight per modality).
``adaptive_leveraging``, ``orthogonalization`` and ``T`` give the paper's ablations and
temperature sweep.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import flatten, loss_grads, project_conflicting, rowwise_cosine, unflatten, write_grads
from modbal_lib.methods.base import Step, Method
from modbal_lib.models import LateFusion


def normalized_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Normalised entropy of softmax(logits) over the last dimension (paper Eq. 6).

        u = H(p) / log K = -(sum_k p_k log p_k) / log K,   p = softmax(logits)

    0 for a one-hot prediction, 1 for the uniform one. Returns one value per row.
    """
    num_classes = logits.shape[-1]
    if num_classes < 2:
        raise ValueError(f"normalized_entropy: need at least 2 classes in the last dimension, got {num_classes}")
    log_p = F.log_softmax(logits, dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    return entropy / math.log(num_classes)


def total_variance(probs: torch.Tensor) -> torch.Tensor:
    """Total variance 1 - sum_k p_k^2 of a distribution over the last dimension (paper appendix A.3).

    The appendix compares it with the normalised entropy: both are 0 for a one-hot
    prediction, largest at the uniform one, and agree to second order near it.
    """
    return 1 - probs.pow(2).sum(-1)


def adaptive_weights(logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """Adaptive Leveraging weights, one per modality (paper Eqs. 6-7).

        c_i^(m) = 1 - u_i^(m)                                       (confidence, Eq. 6)
        w^(m)   = (1/N') sum_i exp(c_i^(m)/T) / sum_m' exp(c_i^(m')/T)   (Eq. 7)

    ``logits`` are the UNIMODAL logits z^(m), shape [batch N', modalities M, classes K]
    (the appendix pseudocode passes the fused logits in one place; the text's z^(m) is
    what makes sense and what we use). The more confident modality gets the larger
    weight; a large T makes the weights uniform (1/M each), a small T sharpens them.

    Returns a tensor [M] of positive weights summing to 1. The weights are constants that
    scale gradients, so they are returned detached.
    """
    if logits.dim() != 3:
        raise ValueError(f"adaptive_weights: expected logits [batch, modalities, classes], got {tuple(logits.shape)}")
    if not (math.isfinite(T) and T > 0):
        raise ValueError(f"adaptive_weights: temperature T must be a finite positive number, got {T}")
    confidence = 1 - normalized_entropy(logits.detach())  # [N', M]
    per_sample = torch.softmax(confidence / T, dim=1)  # softmax over modalities
    return per_sample.mean(0)


def orthogonalize(grads: Sequence[torch.Tensor], eps: float = 1e-8) -> list[torch.Tensor]:
    """Gradient Orthogonalization of the leveraged gradients (paper Eqs. 9-10).

    For each modality i, and for each other modality j in order (j = 0..M-1, j != i):

        if g_i'' . g_j' < 0:   g_i'' <- g_i'' - (g_i'' . g_j' / (||g_j'||^2 + eps)) g_j'

    starting from g_i'' = g_i'. As in the appendix pseudocode, the running g_i'' is
    projected against the ORIGINAL leveraged g_j', never against g_j's projected version,
    and the test uses the running g_i''. For two modalities each result is orthogonal to
    the other's leveraged gradient when they conflicted (appendix A.9) and the two
    results no longer conflict. For M >= 3 the order of the j loop matters: a later
    projection can bring back a conflict with an earlier g_j'.

    ``grads``: one tensor per modality, all the same shape: 1-D [D] (one flattened
    gradient each), or 2-D [B, D], projected row by row (per-sample feature gradients).
    Each step is ``modbal_lib.grads.project_conflicting`` (PCGrad's projection, row-wise), taken for
    every modality i at once: step k projects each g_i'' against the k-th of the other modalities.
    Returns a new list; the inputs are not modified.
    """
    if len(grads) < 2:
        raise ValueError(f"orthogonalize: need gradients of at least 2 modalities, got {len(grads)}")
    shape = grads[0].shape
    if len(shape) not in (1, 2) or any(g.shape != shape for g in grads):
        raise ValueError(
            "orthogonalize: expected gradients of one shape, [D] or [batch, D], got "
            f"{[tuple(g.shape) for g in grads]}"
        )
    others = [[j for j in range(len(grads)) if j != i] for i in range(len(grads))]  # each i's j, in order
    projected = torch.stack(list(grads))  # row i: the running g_i''
    for k in range(len(grads) - 1):
        projected = project_conflicting(projected, torch.stack([grads[js[k]] for js in others]), eps)
    return list(projected.unbind(0))


# --- the training method -------------------------------------------------------------------

VARIANTS = ("feature", "parameter")


def pair_cosines(grads: Sequence[torch.Tensor], modalities: Sequence[str]) -> dict[str, torch.Tensor]:
    """Row-wise cosine of every pair of modalities' gradients [..., rows, D]: {"<a>_<b>": [..., rows]}.

    A row that is zero for either modality has cosine 0 (no conflict). Per-sample gradients can be
    tiny, so the cosine is the scale-safe ``modbal_lib.grads.rowwise_cosine`` (no floor on the norms),
    taken for all pairs at once.
    """
    pairs = list(itertools.combinations(range(len(grads)), 2))
    cosines = rowwise_cosine(torch.stack([grads[i] for i, _ in pairs]), torch.stack([grads[j] for _, j in pairs]))
    return {f"{modalities[i]}_{modalities[j]}": cosine for (i, j), cosine in zip(pairs, cosines)}


class GOAL(Method):
    """GOAL: Adaptive Leveraging (Eqs. 6-7) then Gradient Orthogonalization (Eqs. 9-10) on the
    fusion-loss gradient g^(m) of each branch; each unimodal gradient G^(m) passes untouched.

    Options:
        variant ["feature"]: g^(m) per sample at the embedding e_m (the kit's reading) or
            "parameter" (the paper's Eq. 5: the flat gradient on branch m's parameters; needs equal
            branch shapes).
        adaptive_leveraging [True]: AL; off means w^(m) = 1 (joint training's scale).
        orthogonalization [True]: GO.
        T [1.0]: AL's temperature (Eq. 7). eps [0.0]: the eps of Eq. 10.
        keep_cosines [False]: keep each step's per-sample cosines in ``self.cosines``.

    Records per step: w_<m>, cos_<a>_<b>_before/_after, conflict_before/_after. Multiclass and
    multilabel (AL per binary label); regression refuses AL. Which gradient, the two variants,
    eps and the caveats: chapter 6, sections 1, 5, 10 and 11.
    """

    name = "goal"
    unimodal_heads = True

    def __init__(
        self,
        variant: str = "feature",
        adaptive_leveraging: bool = True,
        orthogonalization: bool = True,
        T: float = 1.0,
        eps: float = 0.0,
        keep_cosines: bool = False,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"GOAL: variant must be one of {VARIANTS}, got {variant!r}")
        if not (math.isfinite(T) and T > 0):
            raise ValueError(f"GOAL: temperature T must be a finite positive number, got {T}")
        self.variant = variant
        self.adaptive_leveraging = adaptive_leveraging
        self.orthogonalization = orthogonalization
        self.T = T
        self.eps = eps
        self.keep_cosines = keep_cosines
        self.cosines: list[dict[str, torch.Tensor]] = []

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        if len(model.modalities) < 2:
            raise ValueError(f"GOAL needs at least 2 modalities, the model has {model.modalities}")
        if self.adaptive_leveraging and features.task not in ("multiclass", "multilabel"):
            raise ValueError(
                f"GOAL's adaptive leveraging needs a predicted distribution to take the entropy of; task "
                f"{features.task!r} has none. Use adaptive_leveraging=False (GO only)."
            )
        if self.variant == "parameter":
            shapes = {m: [tuple(p.shape) for p in model.branch_parameters(m)] for m in model.modalities}
            if len({tuple(s) for s in shapes.values()}) > 1:
                raise ValueError(
                    "GOAL variant='parameter' projects the branches' flattened gradients against each other, "
                    f"so every branch needs the same parameter shapes; got {shapes}. "
                    "Use variant='feature', which works for any branches."
                )

    def leverage_weights(self, step: Step) -> torch.Tensor:
        """w^(m) for each modality, [M]: AL's weights (Eqs. 6-7) from the unimodal logits, or ones."""
        modalities = step.model.modalities
        if not self.adaptive_leveraging:
            return torch.ones(len(modalities), device=step.output.logits.device)
        logits = torch.stack([step.output.unimodal_logits[m].detach().float() for m in modalities], dim=1)
        if step.task == "multilabel":  # [B, M, K] -> [B*K, M, 2]: each label a binary softmax([z, 0])
            logits = torch.stack([logits, torch.zeros_like(logits)], dim=-1).transpose(1, 2).flatten(0, 1)
        return adaptive_weights(logits, self.T)

    def edit(self, step: Step, fusion_grads: Sequence[torch.Tensor]):
        """AL then GO on the fusion-loss gradients g^(m) (one tensor per modality, [rows, D]):
        returns (weights w^(m) [M], leveraged g^(m)' = w^(m) g^(m), edited g^(m)'' after GO)."""
        weights = self.leverage_weights(step)
        leveraged = [w * g for w, g in zip(weights, fusion_grads)]
        edited = orthogonalize(leveraged, self.eps) if self.orthogonalization else leveraged
        return weights, leveraged, edited

    def backward(self, step: Step, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model, modalities = step.model, step.model.modalities
        if self.variant == "feature":
            targets = [step.output.embeddings[m] for m in modalities]
        else:
            targets = [p for m in modalities for p in model.branch_parameters(m)]
        fusion = model.fusion_parameters()
        task_grads = loss_grads(losses["task"], targets + fusion)
        write_grads(fusion, task_grads[len(targets):])
        if self.variant == "feature":  # one [B, hidden] gradient per modality
            fusion_grads = [g.float() for g in task_grads[: len(targets)]]
        else:  # one flat [1, P] gradient per modality
            per_branch = len(model.branch_parameters(modalities[0]))
            fusion_grads = [flatten(task_grads[k * per_branch : (k + 1) * per_branch]).float().unsqueeze(0)
                            for k in range(len(modalities))]

        weights, leveraged, edited = self.edit(step, fusion_grads)

        unimodal = torch.stack([loss for name, loss in losses.items() if name != "task"]).sum()
        if self.variant == "feature":  # g'' + G into each branch in one backward pass
            edited_at_targets = [g.to(t.dtype) for g, t in zip(edited, targets)]
            torch.autograd.backward([unimodal, *targets], [torch.ones_like(unimodal), *edited_at_targets])
        else:
            unimodal.backward()
            for m, g in zip(modalities, edited):
                params = model.branch_parameters(m)
                write_grads(params, unflatten(g.reshape(-1), params), accumulate=True)
        return self.summarise(modalities, weights, leveraged, edited)

    def summarise(self, modalities, weights, leveraged, edited) -> dict[str, torch.Tensor]:
        """The step's scalars (weights, mean cosines, conflict shares), 0-dim tensors left on the device."""
        if edited is leveraged:
            before = after = pair_cosines(leveraged, modalities)
        else:  # before and after GO in one pass: each modality's two gradients stacked
            both = pair_cosines([torch.stack([g, e]) for g, e in zip(leveraged, edited)], modalities)
            before, after = ({pair: cosines[k] for pair, cosines in both.items()} for k in (0, 1))
        if self.keep_cosines:
            kept = {f"{pair}_before": cos.cpu() for pair, cos in before.items()}
            kept.update({f"{pair}_after": cos.cpu() for pair, cos in after.items()})
            self.cosines.append(kept)
        scalars = {f"w_{m}": w for m, w in zip(modalities, weights)}
        for pair in before:
            scalars[f"cos_{pair}_before"] = before[pair].mean()
            scalars[f"cos_{pair}_after"] = after[pair].mean()
        scalars["conflict_before"] = (torch.stack(list(before.values())) < 0).float().mean()
        scalars["conflict_after"] = (torch.stack(list(after.values())) < 0).float().mean()
        return scalars
