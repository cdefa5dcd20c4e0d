"""The shared gradient plumbing every method uses (defined once, unit-tested).

Methods in this kit act on gradients between ``backward`` and the optimizer step. They need
the same few operations: the gradient of ONE loss with respect to chosen parameters, the gradients
of SEVERAL losses with respect to the same tensors in one vectorised backward pass (``losses_grads``),
the dot products of several losses' parameter gradients without forming them (``parameter_gram``),
flat vectors to take dot products and projections, writing (or adding) edited gradients back into
``.grad``, and simple statistics (norms, cosines, conflicts).

Nothing here moves a value to the host: every result is a tensor on the gradients' device, so a
training step never waits for the GPU (the trainer reads the recorded scalars once per epoch).
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


def losses_grads(losses: Sequence[Tensor], inputs: Sequence[Tensor], retain_graph: bool = True,
                 vectorised: bool | None = None) -> list[Tensor]:
    """The gradients of K losses with respect to the same tensors: per input a tensor [K, *input.shape]
    whose row k is d losses[k] / d input (zeros where that loss does not depend on the input).

    ``vectorised`` (default: on CUDA): ONE backward pass over the stacked losses,
    ``torch.autograd.grad(..., is_grads_batched=True)`` (vmap over the backward pass with the K one-hot
    output gradients as the batch), which saves K - 1 passes of kernel launches on a GPU. On a CPU the
    default is K ``autograd.grad`` calls: for the kit's small graphs vmap's batching costs more there
    than it saves (BalGrad's two losses at the embeddings: about 1.3 ms vectorised against 0.85 ms in
    a loop, per step on emoji). Both give the values of separate ``loss_grads`` calls (tested).
    """
    inputs = list(inputs)
    if vectorised is None:
        vectorised = inputs[0].is_cuda
    if vectorised:
        stacked = torch.stack([loss.reshape(()) for loss in losses])
        one_hot = torch.eye(len(losses), dtype=stacked.dtype, device=stacked.device)
        grads = torch.autograd.grad(stacked, inputs, one_hot, retain_graph=retain_graph, allow_unused=True,
                                    is_grads_batched=True)
        return [torch.zeros((len(losses), *x.shape), dtype=x.dtype, device=x.device) if g is None else g
                for x, g in zip(inputs, grads)]
    per_loss = [loss_grads(loss, inputs, retain_graph=retain_graph or k < len(losses) - 1)
                for k, loss in enumerate(losses)]
    return [torch.stack(column) for column in zip(*per_loss)]


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


def grad_norm(params: Params) -> Tensor:
    """L2 norm of the gradients now in ``.grad`` over all given parameters: a 0-dim float tensor on their
    device (0 when none has a gradient)."""
    squares = [p.grad.detach().float().pow(2).sum() for p in params if p.grad is not None]
    return torch.stack(squares).sum().sqrt() if squares else torch.zeros(())


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


# Row-wise dot products and norms (``rowwise_cosine``, ``project_conflicting``) are taken in float64: the
# square of any float32 number, even the largest (3.4e38) or the smallest subnormal (1.4e-45), and sums of
# billions of them lie inside float64's normal range, and the products of two float32 numbers are exact.
# On the kit's small per-sample gradients that is cheaper than rescaling each row (``_power_of_two_scale``,
# which the matrix products ``gram`` and ``linear_gram`` keep so that they run at float32 speed).
_WIDE = torch.float64


def rowwise_cosine(a: Tensor, b: Tensor) -> Tensor:
    """cos(a_i, b_i) along the last dimension ([D] -> 0-dim, [B, D] -> [B]); 0 where either row is zero.

    Computed in float64 (``_WIDE``) and returned in float32 or wider: tiny non-zero rows get their true
    cosine, huge ones do not overflow, float16 and bfloat16 rows neither.
    """
    out_dtype = torch.promote_types(_compute_dtype(a), _compute_dtype(b))
    a, b = a.to(_WIDE), b.to(_WIDE)
    norms = torch.linalg.vector_norm(a, dim=-1) * torch.linalg.vector_norm(b, dim=-1)
    return (torch.linalg.vecdot(a, b) / norms.clamp_min(torch.finfo(_WIDE).tiny)).to(out_dtype)


def cosine(a: Tensor, b: Tensor) -> float:
    """cos(a, b) of two tensors viewed as flat vectors (0 when either is zero), scale-safe as ``rowwise_cosine``."""
    return float(rowwise_cosine(a.reshape(-1), b.reshape(-1)))


def conflict_coefficient(dot: Tensor, squared_norm: Tensor) -> Tensor:
    """c of the projection g' = g − c ref that removes a conflicting component: c = min(g·ref, 0) / ‖ref‖².

    0 when g and ref agree (g·ref ≥ 0), and 0 for a zero ref (whose dot product with anything is 0):
    the division never sees a zero norm. Tensors in, tensors out (element-wise), no Python branch, so
    nothing waits for the device. ``project_conflicting`` applies it to vectors, the methods that work
    from a Gram matrix of gradients (``parameter_gram``) to its entries.
    """
    return dot.clamp(max=0) / squared_norm.clamp_min(torch.finfo(squared_norm.dtype).tiny)


def project_conflicting(g: Tensor, ref: Tensor, eps: float = 0.0) -> Tensor:
    """Remove from ``g`` its component along ``ref`` if the two conflict (g·ref < 0), else keep ``g``.

        g' = g − (min(g·ref, 0) / (‖ref‖² + eps)) ref

    PCGrad's projection (Yu et al. 2020), which BalGrad (Eq. 6) and GOAL (Eq. 10) specialise.
    Written without a Python branch: when g·ref ≥ 0 the correction is zero and ``g`` comes back
    unchanged. Works on 1-D vectors [D] or row by row on [B, D]; a zero ``ref`` leaves ``g``
    unchanged. After a projection with eps = 0, g'·ref = 0 (to rounding).

    Evaluated in float64 (``_WIDE``) and cast back to g's dtype: g·ref and ‖ref‖² neither overflow nor
    underflow at any magnitude of a float32, float16 or bfloat16 gradient.
    """
    wide_g, wide_ref = g.to(_WIDE), ref.to(_WIDE)
    dot = torch.linalg.vecdot(wide_g, wide_ref).unsqueeze(-1)
    squared_norm = torch.linalg.vecdot(wide_ref, wide_ref).unsqueeze(-1) + eps
    return torch.addcmul(wide_g, wide_ref, conflict_coefficient(dot, squared_norm), value=-1).to(g.dtype)


def gram(vectors: Tensor) -> Tensor:
    """The Gram matrix [K, K] of K flat vectors [K, D], in float64: entry (i, j) = v_i · v_j.

    Scale-safe like ``project_conflicting``: each row is divided by a power of two near its largest
    entry (exact) before the product, and the scales are multiplied back in float64, whose range holds
    the square of any float32 number: no overflow or underflow at any magnitude or dtype.
    """
    wide = vectors.to(_compute_dtype(vectors))
    scale = _power_of_two_scale(wide)
    unit = wide / scale
    return (unit @ unit.T).double() * (scale.double() @ scale.double().T)


def linear_gram(inputs: Tensor, output_grads: Tensor) -> Tensor:
    """The Gram matrix [K, K] (float64) of K losses' gradients with respect to ONE linear layer's weight
    and bias together, without forming them (the Gram trick).

    ``inputs`` x [B, D] is what the layer read, ``output_grads`` P [K, B, H] each loss's gradient at the
    layer's output. With dL_k/dW = P_k^T x and dL_k/db = P_k^T 1:

        <dL_i/dW, dL_j/dW> + <dL_i/db, dL_j/db> = sum_ab (P_i P_j^T)_ab (x x^T + 1)_ab = <P_i, (x x^T + 1) P_j>

    which costs one [B, B] product of the inputs instead of K weight gradients [H, D]. Each P_k is
    divided by a power of two near its largest entry (exact) and the scales multiplied back in float64,
    so gradients of any magnitude and dtype neither overflow nor underflow; x x^T is formed in float32
    (the inputs are features: |x| would have to pass 1e19 to overflow).
    """
    x = inputs.to(_compute_dtype(inputs))
    p = output_grads.to(_compute_dtype(output_grads))
    losses, rows, width = p.shape
    p_scale = p.abs().amax(dim=(1, 2)).clamp_min(torch.finfo(p.dtype).tiny)  # [K]
    p_unit = (p / p_scale[:, None, None]).transpose(0, 1).reshape(rows, losses * width)  # [B, K H]
    kernel = torch.addmm(torch.ones((), dtype=x.dtype, device=x.device), x, x.T)  # x x^T + 1, [B, B]
    q = kernel @ p_unit                                                          # (x x^T + 1) P_j, [B, K H]

    def per_loss(t: Tensor) -> Tensor:  # [B, K H] -> [K, B H]
        return t.reshape(rows, losses, width).transpose(0, 1).reshape(losses, rows * width)

    unit_gram = per_loss(p_unit) @ per_loss(q).T                                 # <P_i, (x x^T + 1) P_j>
    return unit_gram.double() * torch.outer(p_scale.double(), p_scale.double())


def is_linear_relu(module: nn.Module) -> bool:
    """Is ``module`` a linear layer followed by a ReLU (the kit's feature branch, ``models.make_branch``)?"""
    return (isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[0], nn.Linear)
            and isinstance(module[1], nn.ReLU))


def parameter_gram(modules: Sequence[nn.Module], inputs: Sequence[Tensor], outputs: Sequence[Tensor],
                   output_grads: Sequence[Tensor]) -> Tensor:
    """The Gram matrix [K, K] (float64) of K losses' gradients with respect to the parameters of
    ``modules``, flattened over all of them: entry (i, j) = <dL_i/dθ, dL_j/dθ>.

    Per module: the tensor it read (``inputs``), the tensor it returned (``outputs``) and each loss's
    gradient at that output, [K, *output.shape] (``losses_grads`` of the losses with respect to the
    outputs). The losses must reach the modules' parameters only through these outputs, as every loss
    reaches a branch h_m through its embedding f_m. A linear layer + ReLU (the feature branches) takes
    ``linear_gram``, no parameter gradient formed (the ReLU passes the gradient where its output is
    positive); any other module (the pixel CNN) its K parameter gradients in one vectorised backward
    pass from the output, then ``gram``. The methods that need several losses' parameter gradients only
    through their dot products (PCGrad, BalGrad's Eq. 6) then write the edited sum with ONE backward pass
    from the outputs, since a combination of gradients is the gradient of the combined output gradients.
    """
    total = 0
    for module, x, y, grads_at_y in zip(modules, inputs, outputs, output_grads):
        if is_linear_relu(module):
            total = total + linear_gram(x, grads_at_y * (y > 0))
        else:
            params = list(module.parameters())
            per_param = torch.autograd.grad(y, params, grads_at_y, retain_graph=True, allow_unused=True,
                                            is_grads_batched=True)
            total = total + gram(torch.cat([g.flatten(1) if g is not None else y.new_zeros(len(grads_at_y), p.numel())
                                            for p, g in zip(params, per_param)], dim=1))
    return total


def cosine_from_gram(gram_matrix: Tensor, i: int, j: int) -> Tensor:
    """cos(g_i, g_j) read from a Gram matrix (0 when either vector is zero), a 0-dim tensor."""
    norms = (gram_matrix[i, i] * gram_matrix[j, j]).sqrt()
    return torch.where(norms > 0, gram_matrix[i, j] / norms.clamp_min(torch.finfo(norms.dtype).tiny), 0.0)


def to_floats(scalars: dict[str, Tensor | float]) -> dict[str, float]:
    """A step's recorded scalars as Python floats: every method's ``backward`` returns through this, so
    the 0-dim tensors among them reach the host in ONE device transfer (not one sync per value)."""
    tensors = {key: value for key, value in scalars.items() if isinstance(value, Tensor)}
    values = torch.stack([v.detach().float().reshape(()) for v in tensors.values()]).tolist() if tensors else []
    transferred = dict(zip(tensors, values))
    return {key: transferred[key] if key in transferred else float(value) for key, value in scalars.items()}
