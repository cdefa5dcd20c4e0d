"""``FeatureSet``: encoded samples ready for training — the one data type the models, methods and trainer
share. It depends on nothing in the kit, so the methods (``modbal_lib.methods``) need no data code."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class FeatureSet:
    """Encoded samples: ``features[m]`` float32 [N, D] (or [N, C, H, W] pixels), labels, task, class names."""

    modalities: tuple[str, ...]
    features: dict[str, torch.Tensor]
    labels: torch.Tensor
    task: str
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor) -> FeatureSet:
        """The samples at ``index`` (rows of every modality and of the labels)."""
        return FeatureSet(self.modalities, {m: x[index] for m, x in self.features.items()}, self.labels[index],
                          self.task, self.class_names)
