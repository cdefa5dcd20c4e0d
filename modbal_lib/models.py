"""Late-fusion models (the book's notation, chapter 0).

    x^m --(frozen encoder E_m, done once in the feature cache)--> features
        --(trainable embedding h_m)--> f_m --(fusion C)--> f_fus --(fused head f_T)--> z_fus
    optional unimodal heads:  f_m --> z_m

Fusion is ``concat`` (BalGrad's choice), ``sum`` or ``attention`` (softmax weights over the
modalities from a learned score of each f_m). Raw-pixel inputs ([C, H, W]) get a small CNN as
their trainable branch instead of a linear embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

FUSIONS = ("concat", "sum", "attention")


@dataclass
class ModelOutput:
    logits: Tensor                          # z_fus, [B, outputs]
    embeddings: dict[str, Tensor]           # f_m, [B, hidden] per modality
    unimodal_logits: dict[str, Tensor] | None  # z_m per modality when the model has unimodal heads


class SmallCNN(nn.Module):
    """A small from-scratch CNN for raw pixels [N, C, S, S] -> [N, out_dim] (any S >= 4).

    Three 3x3 conv blocks (32, 64, 128 channels; batch norm, ReLU; 2x2 max-pool after the first two),
    a global average pool and a linear layer.
    """

    def __init__(self, in_channels: int = 3, out_dim: int = 128):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(in_channels, 32), nn.MaxPool2d(2),
            *block(32, 64), nn.MaxPool2d(2),
            *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.out = nn.Linear(128, out_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(pixels))


def make_branch(input_shape: tuple[int, ...], hidden: int) -> nn.Module:
    """h_m: a linear embedding + ReLU on a feature vector, or a small CNN on raw pixels."""
    if len(input_shape) == 1:
        return nn.Sequential(nn.Linear(input_shape[0], hidden), nn.ReLU())
    if len(input_shape) == 3:
        return SmallCNN(in_channels=input_shape[0], out_dim=hidden)
    raise ValueError(f"branch input must be a vector [D] or an image [C, H, W], got shape {input_shape}")


class LateFusion(nn.Module):
    """Per-modality branches h_m, a fusion, a fused head f_T, and optional unimodal heads."""

    def __init__(
        self,
        input_shapes: dict[str, tuple[int, ...]],
        num_outputs: int,
        hidden: int = 128,
        fusion: str = "concat",
        unimodal_heads: bool = False,
    ):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.modalities = tuple(input_shapes)
        self.fusion = fusion
        self.hidden = hidden
        self.branches = nn.ModuleDict({m: make_branch(tuple(s), hidden) for m, s in input_shapes.items()})
        if fusion == "attention":
            self.attention_score = nn.Linear(hidden, 1)
        fused_width = hidden * len(self.modalities) if fusion == "concat" else hidden
        self.head = nn.Linear(fused_width, num_outputs)
        self.unimodal_heads = (
            nn.ModuleDict({m: nn.Linear(hidden, num_outputs) for m in self.modalities}) if unimodal_heads else None
        )

    def embed(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """f_m = h_m(features_m) for each modality of the model."""
        return {m: self.branches[m](inputs[m]) for m in self.modalities}

    def modality_weights(self, embeddings: dict[str, Tensor]) -> Tensor | None:
        """Attention weights [B, M] over modalities (None for concat and sum)."""
        if self.fusion != "attention":
            return None
        scores = torch.cat([self.attention_score(torch.tanh(embeddings[m])) for m in self.modalities], dim=1)
        return scores.softmax(dim=1)

    def fuse(self, embeddings: dict[str, Tensor]) -> Tensor:
        """f_fus = C(f_1, ..., f_M)."""
        stacked = [embeddings[m] for m in self.modalities]
        if self.fusion == "concat":
            return torch.cat(stacked, dim=1)
        if self.fusion == "sum":
            return torch.stack(stacked).sum(dim=0)
        weights = self.modality_weights(embeddings)
        return (torch.stack(stacked, dim=1) * weights.unsqueeze(-1)).sum(dim=1)

    def forward(self, inputs: dict[str, Tensor]) -> ModelOutput:
        embeddings = self.embed(inputs)
        logits = self.head(self.fuse(embeddings))
        unimodal = (
            {m: self.unimodal_heads[m](embeddings[m]) for m in self.modalities} if self.unimodal_heads else None
        )
        return ModelOutput(logits=logits, embeddings=embeddings, unimodal_logits=unimodal)

    def probe_logits(self, embeddings: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each modality's additive share of the fused logits; the shares sum to z_fus.

        concat:    z_m = W_m f_m + b/M   (the fused weight split into per-modality blocks, as OGM-GE does)
        sum:       z_m = W f_m + b/M
        attention: z_m = W (a_m f_m) + b/M  with the attention weight a_m of the full input
        These are the zero-masking probes of the fused head used when a model has no unimodal heads.
        """
        embeddings = {m: e.to(self.head.weight.dtype) for m, e in embeddings.items()}  # bf16 under autocast
        bias_share = self.head.bias / len(self.modalities)
        weights = self.modality_weights(embeddings)
        probes = {}
        for index, m in enumerate(self.modalities):
            if self.fusion == "concat":
                block = self.head.weight[:, index * self.hidden : (index + 1) * self.hidden]
                probes[m] = embeddings[m] @ block.T + bias_share
            elif self.fusion == "sum":
                probes[m] = embeddings[m] @ self.head.weight.T + bias_share
            else:
                probes[m] = (embeddings[m] * weights[:, index : index + 1]) @ self.head.weight.T + bias_share
        return probes

    def branch_parameters(self, modality: str) -> list[nn.Parameter]:
        """Parameters of h_m (the 'encoder' a method modulates)."""
        return list(self.branches[modality].parameters())

    def fusion_parameters(self) -> list[nn.Parameter]:
        """Parameters of the fused head f_T (and the attention scorer, when there is one)."""
        params = list(self.head.parameters())
        if self.fusion == "attention":
            params += list(self.attention_score.parameters())
        return params

