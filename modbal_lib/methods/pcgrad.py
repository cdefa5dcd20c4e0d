"""PCGrad (Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020): the generic projection.

Here the tasks are the fused loss L_T and each unimodal loss L_T^m (so the model has unimodal
heads). Each task's gradient on the shared parameters (the branches h_m) is projected onto the
normal plane of every other task's gradient it conflicts with, in a random order, and the
projected gradients are summed. BalGrad (Eq. 6) and GOAL (Eq. 10) specialise this projection.

Every projection g_i <- g_i - c g_j keeps g_i a combination of the ORIGINAL task gradients, and
its coefficient c needs only dot products of them. So the surgery runs on the tasks' Gram matrix
(``surgery_coefficients``) and the projected sum is written in one backward pass; the task
gradients themselves are never formed (``modbal_lib.grads.parameter_gram``).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import conflict_coefficient, gram, losses_grads, parameter_gram
from modbal_lib.methods.base import Step, Method
from modbal_lib.models import LateFusion


def random_order(count: int, exclude: int, generator: torch.Generator | None = None) -> list[int]:
    """0..count-1 without ``exclude``, in a random order drawn on the host (a CPU generator: nothing is read
    from the GPU)."""
    return [j for j in torch.randperm(count, generator=generator).tolist() if j != exclude]


def surgery_coefficients(task_gram: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """PCGrad's surgery (Yu et al. Alg. 1) on the Gram matrix G [K, K] of the task gradients g_1..g_K.

    Each g_i, in turn, against every ORIGINAL g_j (j != i) in a random order:
        if g_i . g_j < 0:   g_i <- g_i - (g_i . g_j / |g_j|^2) g_j
    The running g_i is a combination sum_k A[i, k] g_k (A starts as the identity), so g_i . g_j =
    A[i] . G[:, j]. Returns A [K, K]: the projected gradients are A @ [g_1; ...; g_K], their sum
    (A's column sums) @ [g_1; ...; g_K]. Written without a Python branch on a value (``conflict_coefficient``).
    """
    K = len(task_gram)
    rows = []
    for i in range(K):
        row = torch.eye(K, dtype=task_gram.dtype, device=task_gram.device)[i]
        for j in random_order(K, i, generator):
            c = conflict_coefficient(row @ task_gram[:, j], task_gram[j, j])
            row = row - c * torch.eye(K, dtype=task_gram.dtype, device=task_gram.device)[j]
        rows.append(row)
    return torch.stack(rows)


def project_tasks(task_grads: list[Tensor], generator: torch.Generator | None = None) -> list[Tensor]:
    """PCGrad's surgery on explicit flat task gradients: ``surgery_coefficients`` of their Gram matrix applied
    to them (the training step never forms them; this is the same surgery for vectors at hand)."""
    stacked = torch.stack(task_grads)
    coefficients = surgery_coefficients(gram(stacked), generator)
    return list((coefficients @ stacked.double()).to(stacked.dtype))


def conflict_fraction(task_gram: Tensor) -> Tensor:
    """Share of unordered pairs of task gradients with a negative dot product, read from their Gram matrix."""
    pairs = list(itertools.combinations(range(len(task_gram)), 2))
    if not pairs:
        return task_gram.new_zeros(()).float()
    return torch.stack([task_gram[i, j] < 0 for i, j in pairs]).float().mean()


class PCGrad(Method):
    """PCGrad over the fused and unimodal losses. ``seed`` seeds the random projection order;
    None (default) takes the training seed."""

    name = "pcgrad"
    unimodal_heads = True

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed if self.seed is None else self.seed)

    def backward(self, step: Step, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        model, modalities = step.model, step.model.modalities
        embeddings = [step.output.embeddings[m] for m in modalities]
        tasks = list(losses.values())
        # the tasks' gradients at the embeddings, and through them the Gram matrix of their gradients on h
        at_embeddings = losses_grads(tasks, embeddings)  # per modality [tasks, B, hidden]
        task_gram = parameter_gram([model.branches[m] for m in modalities], [step.inputs[m] for m in modalities],
                                   embeddings, at_embeddings)
        # sum_i projected g_i = sum_k a_k g_k: h receives it, the heads their own gradients (the plain sum)
        a = surgery_coefficients(task_gram, self.generator).sum(dim=0).float()
        change_at_embeddings = [torch.tensordot((a - 1).to(g.dtype), g, dims=1) for g in at_embeddings]
        total = torch.stack(tasks).sum()
        torch.autograd.backward([total, *embeddings], [torch.ones_like(total), *change_at_embeddings])
        return {"conflict_fraction": conflict_fraction(task_gram)}
