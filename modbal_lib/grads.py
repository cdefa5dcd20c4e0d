"""The shared gradient plumbing every method uses (defined once, unit-tested).

Methods in this kit act on gradients between ``backward`` and the optimizer step. They need
the same few operations: the gradient of ONE loss with respect to chosen parameters, flat
vectors to take dot products and projections, writing (or adding) edited gradients back into
``.grad``, and simple statistics (norms, cosines, conflicts).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

Params = Sequence[nn.Parameter]


def loss_grads(loss: Tensor, params: Params, retain_graph: bool = True, create_graph: bool = False) -> list[Tensor]:
    """d loss / d p for each parameter (zeros where the loss does not depend on p).

    Same values as ``loss.backward()`` would put into ``.grad``, but nothing is written:
    the caller decides what to do with them. ``create_graph`` keeps the gradients differentiable
    (for a loss built from gradients, like CGGM's direction loss).
    """
    grads = torch.autograd.grad(loss, list(params), retain_graph=retain_graph, create_graph=create_graph,
                                allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def flatten(tensors: Iterable[Tensor]) -> Tensor:
    """Concatenate tensors into one 1-D vector."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a 1-D vector back into tensors shaped like ``like`` (inverse of ``flatten``)."""
    sizes = [t.numel() for t in like]
    if vector.numel() != sum(sizes):
        raise ValueError(f"vector has {vector.numel()} elements, the tensors need {sum(sizes)}")
    return [chunk.view_as(t) for chunk, t in zip(vector.split(sizes), like)]


def write_grads(params: Params, grads: Sequence[Tensor], accumulate: bool = False) -> None:
    """Set (or, with ``accumulate``, add to) ``p.grad`` for each parameter; other parameters are untouched."""
    for p, g in zip(params, grads):
        g = g.detach().to(p.dtype)
        if accumulate and p.grad is not None:
            p.grad.add_(g)
        else:
            p.grad = g.clone()


def scale_grads(params: Params, factor: float | Tensor) -> None:
    """Multiply ``p.grad`` by ``factor`` in place (parameters without a gradient are skipped)."""
    for p in params:
        if p.grad is not None:
            p.grad.mul_(factor)


def current_grads(params: Params) -> list[Tensor]:
    """A copy of the gradients now in ``.grad`` (zeros where there is none)."""
    return [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]


def grad_norm(params: Params) -> float:
    """L2 norm of the gradients now in ``.grad`` over all given parameters."""
    squares = [p.grad.detach().float().pow(2).sum() for p in params if p.grad is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


def cosine(a: Tensor, b: Tensor, eps: float = 1e-12) -> float:
    """cos(a, b) of two tensors viewed as flat vectors (0 when either is zero)."""
    a, b = a.reshape(-1).float(), b.reshape(-1).float()
    denominator = a.norm() * b.norm()
    return float(a @ b / denominator) if denominator > eps else 0.0


def project_conflicting(g: Tensor, ref: Tensor, eps: float = 0.0) -> Tensor:
    """Remove from ``g`` its component along ``ref`` if the two conflict (g·ref < 0), else keep ``g``.

        g' = g − (min(g·ref, 0) / (‖ref‖² + eps)) ref

    PCGrad's projection (Yu et al. 2020), which BalGrad (Eq. 6) and GOAL (Eq. 10) specialise.
    Written without a Python branch: when g·ref ≥ 0 the correction is zero. Works on 1-D
    vectors [D] or row by row on [B, D]; a zero ``ref`` leaves ``g`` unchanged. After a
    projection with eps = 0, g'·ref = 0.
    """
    dot = (g * ref).sum(-1, keepdim=True)
    squared_norm = ((ref * ref).sum(-1, keepdim=True) + eps).clamp_min(torch.finfo(ref.dtype).tiny)
    return g - dot.clamp(max=0) / squared_norm * ref
