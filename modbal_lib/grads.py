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


def _power_of_two_scale(x: Tensor) -> Tensor:
    """A power of two near the largest |entry| of each row of ``x`` ([..., 1]; 1/2 for a zero row).

    Dot products and squared norms of raw gradients leave the dtype's range: they overflow once
    |x| >~ 1.8e19 in float32 or >~ 180 in float16 (gradients under fp16 autocast), and underflow
    for tiny vectors. Divided by this scale a row's largest entry lies in [1, 2), so its products stay
    near 1 whatever the magnitude or dtype; dividing by a power of two is exact, so in float32's
    normal range the results are bit for bit those of the unscaled formulas.
    """
    _, exponent = torch.frexp(x.abs().amax(-1, keepdim=True))  # largest = mantissa * 2^exponent, mantissa in [1/2, 1)
    return torch.ldexp(torch.ones_like(x[..., :1]), exponent - 1)


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def rowwise_cosine(a: Tensor, b: Tensor) -> Tensor:
    """cos(a_i, b_i) along the last dimension ([D] -> 0-dim, [B, D] -> [B]); 0 where either row is zero.

    Scale-safe (``_power_of_two_scale``), in float32 or wider: tiny non-zero rows get their true
    cosine, huge ones do not overflow, float16 and bfloat16 rows neither.
    """
    if a.dim() == 1:  # as one row, the same arithmetic as a row of a batch
        return rowwise_cosine(a.unsqueeze(0), b.unsqueeze(0)).squeeze(0)
    a, b = a.to(_compute_dtype(a)), b.to(_compute_dtype(b))
    a, b = a / _power_of_two_scale(a), b / _power_of_two_scale(b)
    # each scaled norm is >= 1 unless its row is zero, when the dot product is 0 as well
    norms = torch.linalg.vector_norm(a, dim=-1) * torch.linalg.vector_norm(b, dim=-1)
    return torch.linalg.vecdot(a, b) / norms.clamp_min(1)


def cosine(a: Tensor, b: Tensor) -> float:
    """cos(a, b) of two tensors viewed as flat vectors (0 when either is zero), scale-safe as ``rowwise_cosine``."""
    return float(rowwise_cosine(a.reshape(-1), b.reshape(-1)))


def project_conflicting(g: Tensor, ref: Tensor, eps: float = 0.0) -> Tensor:
    """Remove from ``g`` its component along ``ref`` if the two conflict (g·ref < 0), else keep ``g``.

        g' = g − (min(g·ref, 0) / (‖ref‖² + eps)) ref

    PCGrad's projection (Yu et al. 2020), which BalGrad (Eq. 6) and GOAL (Eq. 10) specialise.
    Written without a Python branch: when g·ref ≥ 0 the correction is zero and ``g`` comes back
    unchanged. Works on 1-D vectors [D] or row by row on [B, D]; a zero ``ref`` leaves ``g``
    unchanged. After a projection with eps = 0, g'·ref = 0 (to rounding).

    The formula is evaluated on g and ref divided by powers of two near their largest entries
    (``_power_of_two_scale``: with g = a u and ref = b r, the correction is a (u·r) / (‖r‖² + eps/b²) r),
    in float32 or wider, and the result is cast back to g's dtype: no overflow or underflow of g·ref
    and ‖ref‖² at any magnitude, also in float16 and bfloat16. Few temporaries (fused dot products):
    on large flat gradients the projection costs little more than the unscaled formula.
    """
    if g.dim() == 1:  # as one row, so that a vector and a row of a batch take the same arithmetic path
        return project_conflicting(g.unsqueeze(0), ref.unsqueeze(0), eps).squeeze(0)
    g_wide, ref_wide = g.to(_compute_dtype(g)), ref.to(_compute_dtype(ref))
    g_scale, ref_scale = _power_of_two_scale(g_wide), _power_of_two_scale(ref_wide)
    unit_ref = ref_wide / ref_scale
    dot = torch.linalg.vecdot(g_wide / g_scale, unit_ref).unsqueeze(-1)
    # ‖unit_ref‖² >= 1 for a non-zero ref (its largest entry is >= 1); the clamp only touches a zero
    # ref, whose dot product and so correction are 0. eps/b² as eps/b/b: b² can underflow to 0.
    squared_norm = (torch.linalg.vecdot(unit_ref, unit_ref).unsqueeze(-1) + eps / ref_scale / ref_scale).clamp_min(1)
    coefficient = dot.clamp(max=0) / squared_norm * g_scale
    return torch.addcmul(g_wide, unit_ref, coefficient, value=-1).to(g.dtype)


def to_floats(scalars: dict[str, Tensor | float]) -> dict[str, float]:
    """A step's recorded scalars as Python floats: every method's ``backward`` returns through this, so
    the 0-dim tensors among them reach the host in ONE device transfer (not one sync per value)."""
    tensors = {key: value for key, value in scalars.items() if isinstance(value, Tensor)}
    values = torch.stack([v.detach().float().reshape(()) for v in tensors.values()]).tolist() if tensors else []
    transferred = dict(zip(tensors, values))
    return {key: transferred[key] if key in transferred else float(value) for key, value in scalars.items()}
