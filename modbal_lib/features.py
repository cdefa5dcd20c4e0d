"""Features for training and evaluation: ``load_features(dataset, split, ...) -> FeatureSet``.

One call loads a dataset split, impairs one modality's raw inputs if asked, and encodes every
modality (``modbal_lib.encoders``). Pretrained encoders' outputs go through the feature cache
(``modbal_lib.cache``), one entry per (dataset, split, options, modality, encoder, impairment):

- features are cached per modality, so impairing the image never recomputes the text features;
- they are cached *before* L2 normalisation, which is applied on load, so raw and normalised
  features share one extraction;
- an impairment is extracted once, at ratio 1: because sample i's impaired version does not
  depend on the ratio (``modbal_lib.data.impair``), the features at ratio r are the clean ones
  with the rows of the round(r N) chosen samples taken from the ratio-1 features. A ratio sweep
  costs one extraction.

The cheap encoders (``identity``, ``pixels``) are recomputed on every call instead of cached.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from modbal_lib.cache import cached_features
from modbal_lib.data import load
from modbal_lib.data.base import MultimodalDataset
from modbal_lib.data.impair import BLANKS, HOWS, chosen_indices, impair
from modbal_lib.encoders import default_encoder, default_normalize, encode, l2_normalize
from modbal_lib.utils import select_device

UNCACHED_ENCODERS = ("identity", "pixels")


@dataclass(frozen=True)
class Impairment:
    """Impair modality ``modality`` of a share ``ratio`` of the samples (BalGrad 4.1), on raw inputs.

    ``kind``: "missing" or "noisy"; ``seed`` picks the samples and the noise; ``blank``: the
    missing image, "black" (zeros, BalGrad's protocol) or "white" (the emoji background).
    """

    modality: str
    kind: str
    ratio: float = 1.0
    seed: int = 0
    blank: str = "black"

    def __post_init__(self) -> None:
        if self.kind not in HOWS:
            raise ValueError(f"Impairment.kind must be one of {HOWS}, got {self.kind!r}")
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"Impairment.ratio must be in [0, 1], got {self.ratio!r}")
        if self.blank not in BLANKS:
            raise ValueError(f"Impairment.blank must be one of {tuple(BLANKS)}, got {self.blank!r}")


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


def extract(ds: MultimodalDataset, modality: str, encoder: str, impairment: Impairment | None, device) -> torch.Tensor:
    """Un-normalised features of one modality, impaired if asked; cached unless the encoder is cheap."""
    kind = ds.kinds[modality]

    def compute() -> torch.Tensor:
        inputs = ds.inputs[modality]
        if impairment is not None:
            inputs = impair(kind, inputs, impairment.kind, ratio=impairment.ratio, seed=impairment.seed,
                            blank=impairment.blank)
        return encode(kind, inputs, encoder, normalize=False, device=device)

    if encoder.partition(":")[0] in UNCACHED_ENCODERS:
        return compute()
    spec = {
        "dataset": ds.name, "split": ds.split, "options": ds.options, "modality": modality, "kind": kind,
        "encoder": encoder, "impairment": asdict(impairment) if impairment else None, "device": device.type,
    }
    return cached_features(spec, len(ds), compute)


def modality_features(ds: MultimodalDataset, modality: str, encoder: str, normalize: bool,
                      impairment: Impairment | None, device) -> torch.Tensor:
    """Features of one modality; an impairment at ratio r mixes clean rows with ratio-1 impaired rows."""
    if impairment is None or impairment.ratio == 0:
        features = extract(ds, modality, encoder, None, device)
    else:
        impaired = extract(ds, modality, encoder, replace(impairment, ratio=1.0), device)
        rows = torch.from_numpy(chosen_indices(len(ds), impairment.ratio, impairment.seed))
        if len(rows) == len(ds):
            features = impaired
        else:
            features = extract(ds, modality, encoder, None, device).clone()
            features[rows] = impaired[rows]
    return l2_normalize(features) if normalize else features


def load_features(
    dataset: str,
    split: str,
    *,
    encoders: dict[str, str] | None = None,
    normalize: dict[str, bool] | None = None,
    impairment: Impairment | None = None,
    device=None,
    **dataset_options,
) -> FeatureSet:
    """Encode split ``split`` of ``dataset`` (``modbal_lib.data.load(dataset, split, **dataset_options)``).

    ``encoders[m]`` names modality m's encoder (default: ``default_encoder`` of its kind);
    ``normalize[m]`` whether its features are L2-normalised (default: ``default_normalize``);
    ``impairment`` impairs one modality's raw inputs first.
    """
    ds = load(dataset, split, **dataset_options)
    encoders, normalize = encoders or {}, normalize or {}
    for option, chosen in (("encoders", encoders), ("normalize", normalize)):
        unknown = set(chosen) - set(ds.modalities)
        if unknown:
            raise ValueError(f"load_features({dataset!r}): {option} names unknown modalities {sorted(unknown)}; "
                             f"the modalities are {ds.modalities}")
    if impairment is not None and impairment.modality not in ds.modalities:
        raise ValueError(f"load_features({dataset!r}): impairment of unknown modality {impairment.modality!r}; "
                         f"the modalities are {ds.modalities}")
    device = select_device(str(device) if device else None)
    features = {}
    for modality in ds.modalities:
        encoder = encoders.get(modality) or default_encoder(ds.kinds[modality])
        features[modality] = modality_features(
            ds, modality, encoder, normalize.get(modality, default_normalize(encoder)),
            impairment if impairment is not None and impairment.modality == modality else None, device,
        )
    return FeatureSet(ds.modalities, features, torch.from_numpy(ds.labels), ds.task, list(ds.class_names))
