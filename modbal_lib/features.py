"""Features for training and evaluation: ``load_features(dataset, split, ...) -> FeatureSet``.

One call loads a dataset split, impairs one modality's raw inputs if asked, and encodes every
modality (``modbal_lib.encoders``). Pretrained encoders' outputs go through the feature cache
(``modbal_lib.cache``), one entry per (dataset, split, options, modality, encoder, impairment, and a
fingerprint of the modality's raw inputs, so that changed data never reuses old features):

- features are cached per modality, so impairing the image never recomputes the text features;
- they are cached *before* L2 normalisation, which is applied on load, so raw and normalised
  features share one extraction;
- an impairment is extracted once, at ratio 1: because sample i's impaired version does not
  depend on the ratio (``modbal_lib.data.impair``), the features at ratio r are the clean ones
  with the rows of the round(r N) chosen samples taken from the ratio-1 features. A ratio sweep
  costs one extraction; and a modality missing from every sample is the same whatever the seed,
  so one extraction serves every seed.

The cheap encoders (``identity``, ``pixels``) are recomputed on every call when the inputs are
already in memory (an array); from files (e.g. Food-101's JPEGs) they are cached too.

**Large datasets** (``extract``, ``precompute``, and ``python -m modbal_lib features``): rows are
encoded in chunks of ``Extraction.chunk_rows``, each saved atomically as
``<key>.partNNNN.pt`` beside the final entry ``<key>.pt``. An interrupted run (crash, Ctrl-C,
a corrupt file) keeps the finished chunks; the next run with the same spec (and chunk size)
reuses them and goes on where it stopped. When every chunk is there, the entry is written
atomically and the chunks are deleted.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from modbal_lib.cache import cached_features, feature_key, feature_path, read_checked, read_entry, tensor_sha256
from modbal_lib.data import SPLITS, load
from modbal_lib.data.base import MultimodalDataset
from modbal_lib.data.files import DatasetFileError
from modbal_lib.data.impair import BLANKS, HOWS, chosen_indices, impair
from modbal_lib.encoders import compute_mode, default_encoder, default_normalize, encode, encoder_set, l2_normalize
from modbal_lib.utils import atomic_path, progress, select_device

UNCACHED_ENCODERS = ("identity", "pixels")
PART_FIELDS = ("key", "start", "stop", "sha256", "features")


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


@dataclass(frozen=True)
class Extraction:
    """How the encoders run. None of it changes the features (up to float rounding), so none of it
    enters the cache key: ``batch_size`` inputs per network call, ``workers`` DataLoader processes
    reading files, ``chunk_rows`` rows per resumable part of a large extraction."""

    batch_size: int = 64
    workers: int = 0
    chunk_rows: int = 4096


def part_path(key: str, index: int) -> Path:
    """Where chunk ``index`` of the extraction with cache key ``key`` is kept until the entry is complete."""
    return feature_path(key).with_name(f"{key}.part{index:04d}.pt")


def part_problem(part, key: str, start: int, stop: int) -> str | None:
    """Why a loaded chunk cannot be used as rows start..stop of entry ``key``, or None when it can."""
    if not isinstance(part, dict) or set(part) != set(PART_FIELDS):
        return f"not a feature chunk (expected the fields {PART_FIELDS})"
    if (part["key"], part["start"], part["stop"]) != (key, start, stop):
        return f"holds rows {part['start']}..{part['stop']} of {part['key'][:12]}…, expected {start}..{stop}"
    features = part["features"]
    if not isinstance(features, torch.Tensor) or features.dtype != torch.float32 or len(features) != stop - start:
        return f"expected float32 features for {stop - start} rows"
    if tensor_sha256(features) != part["sha256"]:
        return "corrupt: the rows' checksum does not match the one stored with them"
    return None


def read_part(path: Path, key: str, start: int, stop: int) -> torch.Tensor | None:
    """The rows start..stop saved at ``path`` by an earlier run, or None (absent, or unusable: warns)."""
    part = read_checked(path, lambda loaded: part_problem(loaded, key, start, stop), "feature chunk",
                        "extracting those rows again")
    return None if part is None else part["features"]


def cached_in_chunks(spec: dict, num_rows: int, compute_rows: Callable[[int, int], torch.Tensor],
                     chunk_rows: int) -> torch.Tensor:
    """Like ``cache.cached_features``, but computing rows start..stop one chunk at a time, each chunk
    saved as it is done, so that an interrupted extraction resumes (see the module docstring)."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    key = feature_key(spec)
    features = read_entry(feature_path(key), key, num_rows)
    if features is not None:
        return features
    if num_rows <= chunk_rows:
        return cached_features(spec, num_rows, lambda: compute_rows(0, num_rows))
    parts = []
    starts = range(0, num_rows, chunk_rows)
    for index, start in enumerate(progress(starts, desc=f"{spec['modality']} ({spec['encoder']}) chunks")):
        stop = min(start + chunk_rows, num_rows)
        part = read_part(part_path(key, index), key, start, stop)
        if part is None:
            part = compute_rows(start, stop).float().contiguous()
            if part.shape[0] != stop - start:
                raise ValueError(f"extraction of rows {start}..{stop} gave {part.shape[0]} rows")
            with atomic_path(part_path(key, index)) as tmp:
                torch.save({"key": key, "start": start, "stop": stop, "sha256": tensor_sha256(part), "features": part},
                           tmp)
        parts.append(part)
    features = cached_features(spec, num_rows, lambda: torch.cat(parts))
    for leftover in feature_path(key).parent.glob(f"{key}.part*.pt"):
        leftover.unlink()
    return features


def inputs_fingerprint(inputs) -> str:
    """sha256 of a modality's raw inputs as the cache sees them, so that features of changed data are
    never taken for the old ones: an array's bytes; texts; for files, the last two parts of each path
    (e.g. ``apple_pie/apple_pie_0.jpg``) and its size in bytes (a stat per file, not a read)."""
    digest = hashlib.sha256()
    if isinstance(inputs, np.ndarray):
        digest.update(f"{inputs.dtype}{inputs.shape}".encode())
        digest.update(np.ascontiguousarray(inputs).tobytes())
        return digest.hexdigest()
    for item in inputs:
        if isinstance(item, str):
            digest.update(item.encode() + b"\0")
        elif isinstance(item, os.PathLike):
            path = Path(item)
            size = path.stat().st_size if path.exists() else -1
            digest.update(f"{path.parent.name}/{path.name}:{size}\0".encode())
        else:
            raise TypeError(f"inputs_fingerprint: expected an array, texts or file paths, got a {type(item).__name__}")
    return digest.hexdigest()


def feature_spec(ds: MultimodalDataset, modality: str, encoder: str, impairment: Impairment | None,
                 device: torch.device) -> dict | None:
    """What identifies these features in the cache; None for a cheap encoder on in-memory inputs (not cached)."""
    if encoder.partition(":")[0] in UNCACHED_ENCODERS and isinstance(ds.inputs[modality], np.ndarray):
        return None
    if impairment is not None and impairment.kind == "missing" and impairment.ratio == 1.0:
        impairment = replace(impairment, seed=0)  # every sample blanked: the seed changes nothing
    return {
        "dataset": ds.name, "split": ds.split, "options": ds.options, "modality": modality, "kind": ds.kinds[modality],
        "encoder": encoder, "impairment": asdict(impairment) if impairment else None, "device": compute_mode(device),
        "inputs": inputs_fingerprint(ds.inputs[modality]),
    }


def extract(ds: MultimodalDataset, modality: str, encoder: str, impairment: Impairment | None, device,
            how: Extraction = Extraction()) -> torch.Tensor:
    """Un-normalised features of one modality, impaired if asked; cached unless the encoder is cheap."""
    kind = ds.kinds[modality]
    inputs = ds.inputs[modality]
    if impairment is not None:
        inputs = impair(kind, inputs, impairment.kind, ratio=impairment.ratio, seed=impairment.seed,
                        blank=impairment.blank)

    def compute_rows(start: int, stop: int) -> torch.Tensor:
        return encode(kind, inputs[start:stop], encoder, normalize=False, device=device, batch_size=how.batch_size,
                      workers=how.workers)

    spec = feature_spec(ds, modality, encoder, impairment, device)
    if spec is None:
        return compute_rows(0, len(ds))
    return cached_in_chunks(spec, len(ds), compute_rows, how.chunk_rows)


def check_modalities(ds: MultimodalDataset, option: str, chosen: dict) -> None:
    """Raise if the dict ``chosen`` (given as ``option``) names a modality the dataset does not have."""
    unknown = set(chosen) - set(ds.modalities)
    if unknown:
        raise ValueError(f"load_features({ds.name!r}): {option} names unknown modalities {sorted(unknown)}; "
                         f"the modalities are {ds.modalities}")


def modality_encoders(ds: MultimodalDataset, encoders: dict[str, str] | str | None) -> dict[str, str]:
    """Each modality's encoder: from ``encoders`` (by modality, or a set name), else its kind's default."""
    if isinstance(encoders, str):
        return encoder_set(encoders, ds.kinds)
    encoders = encoders or {}
    check_modalities(ds, "encoders", encoders)
    return {m: encoders.get(m) or default_encoder(ds.kinds[m]) for m in ds.modalities}


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
    encoders: dict[str, str] | str | None = None,
    normalize: dict[str, bool] | None = None,
    impairment: Impairment | None = None,
    device=None,
    **dataset_options,
) -> FeatureSet:
    """Encode split ``split`` of ``dataset`` (``modbal_lib.data.load(dataset, split, **dataset_options)``).

    ``encoders[m]`` names modality m's encoder (default: ``default_encoder`` of its kind), or
    ``encoders`` names a set from ``encoders.ENCODER_SETS`` ("offline", "balgrad", "clip");
    ``normalize[m]`` whether its features are L2-normalised (default: ``default_normalize``);
    ``impairment`` impairs one modality's raw inputs first.
    """
    ds = load(dataset, split, **dataset_options)
    encoders = modality_encoders(ds, encoders)
    normalize = normalize or {}
    check_modalities(ds, "normalize", normalize)
    if impairment is not None and impairment.modality not in ds.modalities:
        raise ValueError(f"load_features({dataset!r}): impairment of unknown modality {impairment.modality!r}; "
                         f"the modalities are {ds.modalities}")
    device = select_device(str(device) if device else None)
    features = {}
    for modality, encoder in encoders.items():
        features[modality] = modality_features(
            ds, modality, encoder, normalize.get(modality, default_normalize(encoder)),
            impairment if impairment is not None and impairment.modality == modality else None, device,
        )
    return FeatureSet(ds.modalities, features, torch.from_numpy(ds.labels), ds.task, list(ds.class_names))


def protocol_impairments(modality: str, seeds: tuple[int, ...]) -> list[Impairment]:
    """The impaired test sets the protocol of ``evaluate`` reads for ``modality``: missing (which serves
    every seed and every missing ratio) and noisy for each seed."""
    return [Impairment(modality, "missing")] + [Impairment(modality, "noisy", seed=s) for s in seeds]


def describe(impairment: Impairment | None) -> str | None:
    """None, "missing" or "noisy, seed s"."""
    if impairment is None:
        return None
    return "missing" if impairment.kind == "missing" else f"noisy, seed {impairment.seed}"


def feature_jobs(ds: MultimodalDataset, encoders, impairments: bool, seeds: tuple[int, ...]):
    """(modality, encoder, impairment) of every feature set of one split: the clean features, and on the
    test split with ``impairments`` also ``protocol_impairments``."""
    for modality, encoder in modality_encoders(ds, encoders).items():
        yield modality, encoder, None
        if impairments and ds.split == "test":
            for impairment in protocol_impairments(modality, seeds):
                yield modality, encoder, impairment


def precompute(
    dataset: str,
    splits: tuple[str, ...] = SPLITS,
    *,
    encoders: dict[str, str] | str | None = None,
    impairments: bool = False,
    seeds: tuple[int, ...] = (0,),
    device=None,
    how: Extraction = Extraction(),
    **dataset_options,
) -> list[dict]:
    """Put into the cache every feature set that ``load_features`` will ask for; return what was done.

    For each split and modality, the clean features; with ``impairments``, also the test split's
    features under the protocol of ``evaluate`` (``protocol_impairments``). Features already cached
    are not recomputed. One record per feature set: split, modality, encoder, impairment (None,
    "missing" or "noisy, seed s"), shape, status ("cached", "extracted" or "not cached": a cheap
    encoder on in-memory inputs) and seconds.
    """
    device = select_device(str(device) if device else None)
    records = []
    for split in splits:
        ds = load(dataset, split, **dataset_options)
        for modality, encoder, impairment in feature_jobs(ds, encoders, impairments, seeds):
            spec = feature_spec(ds, modality, encoder, impairment, device)
            was_cached = spec is not None and feature_path(feature_key(spec)).exists()
            started = time.perf_counter()
            features = extract(ds, modality, encoder, impairment, device, how)
            status = "not cached" if spec is None else "cached" if was_cached else "extracted"
            records.append({"split": split, "modality": modality, "encoder": encoder, "impairment": describe(impairment),
                            "shape": tuple(features.shape), "status": status,
                            "seconds": time.perf_counter() - started})
    return records


@dataclass
class CacheStatus:
    """Whether a comparison on ``dataset`` can run from the feature cache alone (``cache_status``)."""

    dataset: str
    problem: str | None  # why the dataset itself could not be read (not prepared, wrong folder), else None
    missing: list[str]   # the feature sets the comparison needs that are not in the cache

    @property
    def ready(self) -> bool:
        return self.problem is None and not self.missing


def cache_status(dataset: str, seeds: tuple[int, ...] = (0,), *, encoders: dict[str, str] | str | None = None,
                 device=None, **dataset_options) -> CacheStatus:
    """Check, without extracting anything, that the cache holds every feature set a comparison over
    ``seeds`` reads (``experiments.compare``: train and test features, and the test split under the
    protocol), i.e. what ``python -m modbal_lib features --dataset NAME --impairments --seeds N`` put there.

    Features of a cheap encoder on in-memory inputs are never cached and count as present.
    """
    device = select_device(str(device) if device else None)
    missing = []
    for split in ("train", "test"):
        try:
            ds = load(dataset, split, **dataset_options)
        except DatasetFileError as error:
            return CacheStatus(dataset, str(error), [])
        for modality, encoder, impairment in feature_jobs(ds, encoders, True, tuple(seeds)):
            spec = feature_spec(ds, modality, encoder, impairment, device)
            if spec is not None and not feature_path(feature_key(spec)).exists():
                described = f", {describe(impairment)}" if impairment else ""
                missing.append(f"{split} {modality} ({encoder}{described})")
    return CacheStatus(dataset, None, missing)
