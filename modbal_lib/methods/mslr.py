"""MSLR (Yao & Mihalcea, "Modality-specific Learning Rates for Effective Multimodal Additive
Late-fusion", Findings of ACL 2022): each modality's branch gets its own learning rate.

The paper takes each modality's rate from its best unimodal run ("Keep" strategy). The kit does
the same on the training data: ``experiments.mslr_lr_scales`` searches, per modality, the scale of
the base learning rate whose unimodal model scores best on a seeded 20% hold-out, and
``experiments.compare`` runs that search (``search_epochs`` epochs per candidate) for an MSLR entry
without ``lr_scales``. This file only applies the scales.
"""

from __future__ import annotations

from modbal_lib.featureset import FeatureSet
from modbal_lib.methods.base import Method
from modbal_lib.models import LateFusion


class MSLR(Method):
    name = "mslr"

    def __init__(self, lr_scales: dict[str, float] | None = None, search_epochs: int = 3):
        self.lr_scales = lr_scales
        self.search_epochs = search_epochs

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        missing = [m for m in model.modalities if m not in (self.lr_scales or {})]
        if missing:
            raise ValueError(f"MSLR needs a learning-rate scale for every modality, missing {missing}: pass "
                             "lr_scales={modality: scale}, or train through experiments.compare, which searches them "
                             "(experiments.mslr_lr_scales)")

    def param_groups(self, model: LateFusion, lr: float) -> list[dict]:
        groups = [{"params": model.branch_parameters(m), "lr": lr * self.lr_scales[m]} for m in model.modalities]
        branch_ids = {id(p) for group in groups for p in group["params"]}
        groups.append({"params": [p for p in model.parameters() if id(p) not in branch_ids], "lr": lr})
        return groups
