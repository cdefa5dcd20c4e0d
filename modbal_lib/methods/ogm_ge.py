"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement (a baseline).

Paper: Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient
Modulation", CVPR 2022. Official code: github.com/GeWu-Lab/OGM-GE_CVPR2022.

Two modalities a and b share a concatenation classifier W = [W_a, W_b]. Splitting it gives
each modality's own logits z_a = W_a h_a + bias/2 and z_b = W_b h_b + bias/2, and a score
per modality, s_m = sum over the batch of softmax(z_m)[y] (how much probability the
modality alone puts on the true class). The modality with the higher score dominates;
OGM slows its encoder by multiplying that encoder's gradient by k < 1 (``coefficients``,
Eq. 10), and GE adds Gaussian noise to the gradient to restore the stochasticity the
smaller step loses (``ge_noise``).

Notation: s_a, s_b the modality scores; ratio r_a = s_a / s_b, r_b = s_b / s_a; alpha the
modulation strength (0.8 on CREMA-D in the official README); k_a, k_b the coefficients.
"""

from __future__ import annotations

import math

import torch

from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import scale_grads
from modbal_lib.methods.base import Step, Method
from modbal_lib.models import LateFusion


def coefficients(score_a: float, score_b: float, alpha: float) -> tuple[float, float]:
    """Gradient coefficients for the two encoders (paper Eq. 10, official form).

        k_m = 1 - tanh(alpha * r_m)   if r_m > 1   (modality m dominates: slowed)
        k_m = 1                       otherwise

    with r_a = s_a / s_b and r_b = s_b / s_a, so at most one modality is slowed. Like the
    official code we use tanh(alpha * r), not tanh(alpha * (r - 1)): as soon as one
    modality leads, even by a hair, its gradient is cut by at least a factor
    1 - tanh(alpha) (0.34 at alpha = 0.8), so k jumps at r = 1.

    Equal scores (r = 1): neither modality dominates and both keep k = 1, as Eq. 10 says.
    (The official code's ``else`` branch would slow the second modality in that case.)
    Scores are positive sums of probabilities; anything else (zero, negative, NaN, inf) is an error.
    The formula itself is ``modulation`` (tensors, unchecked: what a training step uses).
    """
    score_a, score_b, alpha = float(score_a), float(score_b), float(alpha)
    for name, score in (("score_a", score_a), ("score_b", score_b)):
        if not (math.isfinite(score) and score > 0):
            raise ValueError(f"coefficients: {name} must be a finite positive number, got {score} "
                             f"(score_a={score_a}, score_b={score_b})")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"coefficients: alpha must be a finite number >= 0, got {alpha}")
    k_a, k_b = modulation(torch.tensor([score_a, score_b], dtype=torch.float64), alpha).tolist()
    return k_a, k_b


def modulation(scores: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 10 on a tensor of the two scores [s_a, s_b]: [k_a, k_b] (see ``coefficients``), computed in
    float64 on the scores' device without a Python branch on a value, so a training step never waits
    for the GPU here. No check of the scores (``coefficients`` checks them)."""
    scores = scores.double()
    ratios = torch.stack([scores[0] / scores[1], scores[1] / scores[0]])
    return torch.where(ratios > 1, 1 - torch.tanh(alpha * ratios), 1.0)


def ge_noise(grad: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Generalisation-enhancement noise for one gradient tensor: a sample of N(0, sigma^2).

        sigma = std(grad) + 1e-8,    new grad = k * grad + noise

    sigma is the spread of the UNSCALED gradient, as in the official code, which adds this
    noise to both encoders' (convolution) weight gradients, whichever was slowed. We use
    the population std (divide by N); the official code's torch default divides by N - 1,
    a factor sqrt(N / (N - 1)) that is negligible for weight tensors and keeps a
    one-element gradient defined here. ``generator`` (on grad's device) makes the noise
    reproducible. Returns a tensor shaped like ``grad``.
    """
    sigma = grad.detach().std(correction=0) + 1e-8
    noise = torch.randn(grad.shape, generator=generator, device=grad.device, dtype=grad.dtype)
    return noise * sigma


# ---------------------------------------------------------------------------------------------
# The training method
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def modality_scores(model: LateFusion, embeddings: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """s_m = sum over the batch of softmax(z_m)[y], with z_m the modality's share of the fused logits
    (``LateFusion.probe_logits``: for concat, W_m f_m + b/2 — the official split of the classifier).
    A float tensor [M] on the model's device, in the order of ``model.modalities``."""
    probes = model.probe_logits({m: e.detach() for m, e in embeddings.items()})
    rows = torch.arange(len(labels), device=labels.device)
    return torch.stack([probes[m].float().softmax(dim=1)[rows, labels].sum() for m in model.modalities])


class OGMGE(Method):
    """Joint training whose dominant branch is slowed by k (``coefficients``), plus GE noise.

    Two modalities and a multiclass task, as in the paper. The official code modulates only
    within an epoch range; here it modulates throughout (set ``alpha=0`` to switch OGM off).
    ``seed`` seeds the GE noise; None (default) takes the training seed, so every seed of a
    comparison draws its own noise and the same seed repeats it exactly.
    """

    name = "ogm_ge"

    def __init__(self, alpha: float = 0.8, ge: bool = True, seed: int | None = None):
        self.alpha = alpha
        self.ge = ge
        self.seed = seed

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        if len(model.modalities) != 2 or features.task != "multiclass":
            raise ValueError(
                f"OGM-GE needs two modalities and a multiclass task; got {model.modalities} and {features.task!r}"
            )
        device = next(model.parameters()).device
        self.generator = torch.Generator(device=device).manual_seed(seed if self.seed is None else self.seed)

    def backward(self, step: Step, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        torch.stack(list(losses.values())).sum().backward()
        scores = modality_scores(step.model, step.output.embeddings, step.labels)
        k = modulation(scores, self.alpha)  # [k_a, k_b], Eq. 10
        for modality, k_m in zip(step.model.modalities, k):
            params = step.model.branch_parameters(modality)
            if self.ge:
                noises = [ge_noise(p.grad, self.generator) for p in params]
            scale_grads(params, k_m)
            if self.ge:
                for p, noise in zip(params, noises):
                    p.grad.add_(noise)
        a, b = step.model.modalities
        n = len(step.labels)
        return {f"k_{a}": k[0], f"k_{b}": k[1], f"score_{a}": scores[0].double() / n, f"score_{b}": scores[1].double() / n}
