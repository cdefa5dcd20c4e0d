"""The one dataset type every loader returns (defined here, used from chapter 1 on)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

TASKS = ("multiclass", "multilabel", "regression")
# What a modality's raw inputs are; decides which impairments and encoders apply.
KINDS = ("image", "text", "vector", "audio", "video")


@dataclass
class MultimodalDataset:
    """Raw multimodal samples plus labels.

    ``inputs[m]`` holds modality ``m``'s raw inputs, one entry per sample:
    - kind "image": a uint8 array [N, H, W, 3], or a list of image file paths (loaded lazily);
    - kind "text": a list of str;
    - kind "vector": a float32 array [N, D];
    - kind "audio"/"video": a list of file paths.
    ``labels``: int64 [N] (multiclass), float32 [N, K] of 0/1 (multilabel), float32 [N] (regression).
    ``options`` records every loader option that changes the samples (it enters the feature-cache key).
    """

    name: str
    split: str
    modalities: tuple[str, ...]
    kinds: dict[str, str]
    inputs: dict[str, Any]
    labels: np.ndarray
    class_names: list[str]
    task: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"dataset {self.name!r}: task must be one of {TASKS}, got {self.task!r}")
        for modality in self.modalities:
            if modality not in self.inputs:
                raise ValueError(f"dataset {self.name!r}: no inputs for modality {modality!r}")
            if self.kinds.get(modality) not in KINDS:
                raise ValueError(
                    f"dataset {self.name!r}: modality {modality!r} has kind {self.kinds.get(modality)!r}, "
                    f"expected one of {KINDS}"
                )
            if len(self.inputs[modality]) != len(self.labels):
                raise ValueError(
                    f"dataset {self.name!r}: modality {modality!r} has {len(self.inputs[modality])} inputs "
                    f"but there are {len(self.labels)} labels"
                )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {m: self.inputs[m][index] for m in self.modalities}
        item["label"] = self.labels[index]
        return item

    @property
    def num_outputs(self) -> int:
        """Width of the model's output: classes (multiclass/multilabel) or 1 (regression)."""
        return 1 if self.task == "regression" else len(self.class_names)

    def subset(self, indices: Sequence[int]) -> "MultimodalDataset":
        """A new dataset with only the given samples (order kept)."""
        indices = np.asarray(indices, dtype=np.int64)

        def take(values):
            if isinstance(values, np.ndarray):
                return values[indices]
            return [values[i] for i in indices]

        return MultimodalDataset(
            name=self.name,
            split=self.split,
            modalities=self.modalities,
            kinds=dict(self.kinds),
            inputs={m: take(self.inputs[m]) for m in self.modalities},
            labels=self.labels[indices],
            class_names=list(self.class_names),
            task=self.task,
            options={**self.options, "subset": hashlib.sha256(indices.tobytes()).hexdigest()[:16]},
        )
