"""MSLR (Yao & Mihalcea, "Modality-specific Learning Rates for Effective Multimodal Additive
Late-fusion", Findings of ACL 2022): each modality's branch gets its own learning rate.

The paper takes each modality's rate from its best unimodal run ("Keep" strategy). Without
``lr_scales`` we do the same on the training data: a short search over ``candidates`` (scales of
the base learning rate) per modality, each scored on a seeded 20% hold-out of the training set.
"""

from __future__ import annotations

import torch

from modbal_lib.features import FeatureSet
from modbal_lib.methods.base import Strategy
from modbal_lib.models import LateFusion


def holdout_split(features: FeatureSet, share: float = 0.2, seed: int = 0) -> tuple[FeatureSet, FeatureSet]:
    """A seeded (fit, hold-out) split of a feature set."""
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))
    cut = int(round(len(features) * (1 - share)))

    def take(index):
        return FeatureSet(features.modalities, {m: x[index] for m, x in features.features.items()},
                          features.labels[index], features.task, features.class_names)

    return take(order[:cut]), take(order[cut:])


def search_learning_rates(features: FeatureSet, lr: float, candidates=(0.25, 0.5, 1.0, 2.0, 4.0),
                          epochs: int = 3, seed: int = 0, **train_options) -> dict[str, float]:
    """Per modality, the learning-rate scale whose unimodal model scores best on the hold-out."""
    from modbal_lib.evaluate import predict_score
    from modbal_lib.metrics import higher_is_better, primary_metric
    from modbal_lib.methods.joint import Unimodal
    from modbal_lib.train import train

    fit, holdout = holdout_split(features, seed=seed)
    metric = primary_metric(features.task, len(features.class_names))
    sign = 1.0 if higher_is_better(metric) else -1.0
    best = {}
    for m in features.modalities:
        scores = {}
        for scale in candidates:
            result = train(fit, Unimodal(m), epochs=epochs, lr=lr * scale, seed=seed, record=False,
                           show_progress=False, **train_options)
            scores[scale] = sign * predict_score(result.model, holdout)[metric]
        best[m] = max(scores, key=scores.get)
    return best


class MSLR(Strategy):
    name = "mslr"

    def __init__(self, lr_scales: dict[str, float] | None = None, search_epochs: int = 3):
        self.lr_scales = lr_scales
        self.search_epochs = search_epochs

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        if self.lr_scales is None:
            self.lr_scales = search_learning_rates(features, lr, epochs=self.search_epochs, hidden=model.hidden,
                                                   fusion=model.fusion, device=next(model.parameters()).device)

    def param_groups(self, model: LateFusion, lr: float) -> list[dict]:
        groups = [{"params": model.branch_parameters(m), "lr": lr * self.lr_scales[m]} for m in model.modalities]
        branch_ids = {id(p) for group in groups for p in group["params"]}
        groups.append({"params": [p for p in model.parameters() if id(p) not in branch_ids], "lr": lr})
        return groups
