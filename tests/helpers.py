"""Tiny feature sets for fast training tests (no encoders involved)."""

import torch

from modbal_lib.features import FeatureSet


def toy_features(n: int = 256, seed: int = 0, task: str = "multiclass", classes: int = 4) -> FeatureSet:
    """Two modalities: "easy" carries the label cleanly, "hard" carries it weakly in noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=generator)
    one_hot = torch.nn.functional.one_hot(labels, classes).float()
    easy = torch.cat([3 * one_hot, torch.randn(n, 4, generator=generator)], dim=1)
    hard = torch.cat([0.7 * one_hot, torch.randn(n, 8, generator=generator)], dim=1)
    if task == "regression":
        targets = labels.float()
        return FeatureSet(("easy", "hard"), {"easy": easy, "hard": hard}, targets, "regression", ["target"])
    if task == "multilabel":
        targets = torch.stack([one_hot[:, 0] + one_hot[:, 1], one_hot[:, 1] + one_hot[:, 2]], dim=1).clamp(max=1)
        return FeatureSet(("easy", "hard"), {"easy": easy, "hard": hard}, targets, "multilabel", ["x", "y"])
    return FeatureSet(("easy", "hard"), {"easy": easy, "hard": hard}, labels, "multiclass",
                      [f"c{k}" for k in range(classes)])
