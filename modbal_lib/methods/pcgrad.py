"""PCGrad (Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020): the generic projection.

Here the tasks are the fused loss L_T and each unimodal loss L_T^m (so the model has unimodal
heads). Each task's gradient on the shared parameters (the branches h_m) is projected onto the
normal plane of every other task's gradient it conflicts with, in a random order, and the
projected gradients are summed. BalGrad (Eq. 6) and GOAL (Eq. 10) specialise this projection.
"""

from __future__ import annotations

import torch
from torch import Tensor

from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import cosine, flatten, loss_grads, project_conflicting, to_floats, unflatten, write_grads
from modbal_lib.methods.base import Step, Method
from modbal_lib.models import LateFusion


def project_tasks(task_grads: list[Tensor], generator: torch.Generator | None = None) -> list[Tensor]:
    """PCGrad's surgery (Yu et al. Alg. 1): each g_i, in turn, against every ORIGINAL g_j (j != i) in random order."""
    projected = []
    for i, g in enumerate(task_grads):
        others = [j for j in torch.randperm(len(task_grads), generator=generator).tolist() if j != i]
        for j in others:
            g = project_conflicting(g, task_grads[j])
        projected.append(g)
    return projected


def conflict_fraction(grads: list[Tensor]) -> float:
    """Share of unordered pairs of gradients with a negative dot product (read from the scale-safe cosine)."""
    pairs = [(i, j) for i in range(len(grads)) for j in range(i + 1, len(grads))]
    return sum(float(cosine(grads[i], grads[j]) < 0) for i, j in pairs) / max(len(pairs), 1)


class PCGrad(Method):
    """PCGrad over the fused and unimodal losses. ``seed`` seeds the random projection order;
    None (default) takes the training seed."""

    name = "pcgrad"
    unimodal_heads = True

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed if self.seed is None else self.seed)

    def backward(self, step: Step, losses: dict[str, Tensor]) -> dict[str, float]:
        shared = [p for m in step.model.modalities for p in step.model.branch_parameters(m)]
        task_grads = [flatten(loss_grads(loss, shared)) for loss in losses.values()]
        projected = project_tasks(task_grads, self.generator)
        torch.stack(list(losses.values())).sum().backward()  # the heads' own gradients
        write_grads(shared, unflatten(torch.stack(projected).sum(dim=0), shared))
        return to_floats({"conflict_fraction": conflict_fraction(task_grads)})
