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
``<chunks key>.partNNNN.rows<chunk_rows>.batch<batch_size>.pt`` beside the final entries. An
interrupted run (crash, Ctrl-C, a kill, a corrupt file) keeps the finished chunks; the next run with
the same spec and the same chunk and batch sizes reuses them and goes on where it stopped
("resumed"). The chunks key leaves out the fingerprint of all the inputs and each chunk holds that
of its own rows, so after a corrupt file is fixed the chunks of the other rows are still reused.
Chunks saved with other sizes are never mixed in: that run removes them, with a warning. When every
chunk is there, the entry is written atomically and the chunks are deleted.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from modbal_lib.cache import cached_features, feature_key, feature_path, file_hashes, read_checked, tensor_sha256
from modbal_lib.data import SPLITS, load
from modbal_lib.data.base import MultimodalDataset
from modbal_lib.data.files import DatasetFileError
from modbal_lib.data.impair import BLANKS, HOWS, chosen_indices, impair
from modbal_lib.encoders import (FILE_KINDS, compute_mode, default_encoder, default_normalize, encode, encoder_set,
                                 l2_normalize)
from modbal_lib.featureset import FeatureSet
from modbal_lib.utils import atomic_path, progress, select_device

UNCACHED_ENCODERS = ("identity", "pixels")
PART_FIELDS = ("key", "start", "stop", "inputs", "sha256", "features")


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


@dataclass(frozen=True)
class Extraction:
    """How the encoders run: ``batch_size`` inputs per network call, ``workers`` DataLoader processes
    reading files, ``chunk_rows`` rows per resumable part of a large extraction. None of it enters the
    cache key.

    ``workers`` never changes the features. ``batch_size`` may change their last bits, as float
    rounding does: the network's arithmetic depends on the batch's shape (and, for text, on the
    padding to the batch's longest text); MiniLM's features of the emoji names differ by up to 3e-7
    between batches of 64 and of 1, 7, 37 or 100. ``chunk_rows`` must be a multiple of
    ``batch_size``: chunks are then whole batches, and the features bitwise those of one uncut run
    whatever the chunk size.

    The default chunk, 256 rows, is a fraction of a minute of work on 2 CPU cores, so that a killed
    run loses little and even the emoji splits (284-1,335 rows) resume: EfficientNet-Lite0 (31-37
    images/s on 2 idle cores, 7-9/s measured with the cores shared) takes 7-8 s a chunk, about 35 s
    on the busy machine; a video clip's ~3 frames make it ~25 s; MiniLM (220-510 short texts/s)
    about a second. A chunk costs ~0.3 s of its own (starting the DataLoader's workers, saving it),
    under 4% of an image chunk. (The earlier 4,096 rows exceeded every emoji split: one chunk,
    nothing to resume.)
    """

    batch_size: int = 64
    workers: int = 0
    chunk_rows: int = 256

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.chunk_rows < 1 or self.workers < 0:
            raise ValueError(f"Extraction needs batch_size >= 1, chunk_rows >= 1 and workers >= 0, got {self}")
        if self.chunk_rows % self.batch_size:
            raise ValueError(
                f"chunk_rows={self.chunk_rows} must be a multiple of batch_size={self.batch_size} (e.g. "
                f"{-(-self.chunk_rows // self.batch_size) * self.batch_size}): chunks of whole batches keep the "
                f"features the same whatever the chunk size")


def chunks_key(spec: dict) -> str:
    """The key that names the chunks of an extraction: the spec's without the fingerprint of all its
    inputs (each chunk holds the fingerprint of its own rows' inputs)."""
    return feature_key({**spec, "inputs": None})


def part_path(key: str, index: int, how: Extraction) -> Path:
    """Where chunk ``index`` of the extraction with chunks key ``key`` is kept until the entry is complete;
    the name holds the chunk and batch sizes, so that chunks of other sizes are never mixed in."""
    return feature_path(key).with_name(f"{key}.part{index:04d}.rows{how.chunk_rows}.batch{how.batch_size}.pt")


def remove_other_chunks(key: str, how: Extraction) -> None:
    """Delete the chunks of ``key`` that an earlier run saved with other chunk or batch sizes (one warning)."""
    mine = part_path(key, 0, how).name.removeprefix(f"{key}.part0000")
    others = [path for path in feature_path(key).parent.glob(f"{key}.part*") if not path.name.endswith(mine)]
    if others:
        warnings.warn(f"removing {len(others)} feature chunks saved by an earlier run with other chunk or batch "
                      f"sizes than this one's ({mine[1:-3]}), e.g. {others[0]}: chunks of other sizes are never "
                      f"mixed in", stacklevel=5)
    for path in others:
        path.unlink(missing_ok=True)


def part_problem(part, key: str, start: int, stop: int) -> str | None:
    """Why a loaded chunk cannot be rows start..stop of the extraction with chunks key ``key``, or None."""
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


def read_part(path: Path, key: str, start: int, stop: int, inputs: str) -> torch.Tensor | None:
    """The rows start..stop saved at ``path`` by an earlier run from the inputs with fingerprint
    ``inputs``, or None: absent, inputs changed since, or unusable (warns)."""
    part = read_checked(path, lambda loaded: part_problem(loaded, key, start, stop), "feature chunk",
                        "extracting those rows again")
    return None if part is None or part["inputs"] != inputs else part["features"]


def cached_in_chunks(spec: dict, inputs, kind: str, compute_rows: Callable[[int, int], torch.Tensor],
                     how: Extraction) -> tuple[torch.Tensor, str]:
    """Like ``cache.cached_features``, but computing rows start..stop of the raw ``inputs`` (of modality
    kind ``kind``) one chunk of ``how.chunk_rows`` at a time, each chunk saved as it is done, so that an
    interrupted extraction resumes (see the module docstring). The status is "resumed" when chunks
    saved by an earlier run were used."""
    key = chunks_key(spec)
    num_rows = len(inputs)
    reused = 0

    def compute_in_chunks() -> torch.Tensor:
        nonlocal reused
        remove_other_chunks(key, how)
        if num_rows <= how.chunk_rows:
            return compute_rows(0, num_rows)
        rows = row_fingerprints(inputs, kind)
        parts = []
        starts = range(0, num_rows, how.chunk_rows)
        for index, start in enumerate(progress(starts, desc=f"{spec['modality']} ({spec['encoder']}) chunks")):
            stop = min(start + how.chunk_rows, num_rows)
            chunk_inputs = fingerprint(rows[start:stop])
            part = read_part(part_path(key, index, how), key, start, stop, chunk_inputs)
            reused += part is not None
            if part is None:
                part = compute_rows(start, stop).float().contiguous()
                if part.shape[0] != stop - start:
                    raise ValueError(f"extraction of rows {start}..{stop} gave {part.shape[0]} rows")
                with atomic_path(part_path(key, index, how)) as tmp:
                    torch.save({"key": key, "start": start, "stop": stop, "inputs": chunk_inputs,
                                "sha256": tensor_sha256(part), "features": part}, tmp)
            parts.append(part)
        return torch.cat(parts)

    features, status = cached_features(spec, num_rows, compute_in_chunks)
    for leftover in feature_path(key).parent.glob(f"{key}.part*"):
        leftover.unlink()
    return features, "resumed" if reused and status == "extracted" else status


def row_fingerprints(inputs, kind: str) -> list[str]:
    """The sha256 of each row of a modality's raw inputs as the cache sees them, so that features of
    changed data are never taken for the old ones: an array row's bytes; a text; for the kinds read
    from files (image, audio, video: ``encoders.FILE_KINDS``), whose inputs are file paths, the last
    two parts of the path (e.g. ``apple_pie/apple_pie_0.jpg``) and the sha256 of the file's contents
    (``cache.file_hashes``: read once, then only when the file's size or times change)."""
    if isinstance(inputs, np.ndarray):
        shape = f"{inputs.dtype}{inputs.shape[1:]}".encode()
        return [hashlib.sha256(shape + np.ascontiguousarray(row).tobytes()).hexdigest() for row in inputs]
    files = kind in FILE_KINDS
    for item in inputs:
        if not isinstance(item, (str, os.PathLike) if files else str):
            raise TypeError(f"row_fingerprints: expected an array, texts or file paths, got a {type(item).__name__} "
                            f"in a modality of kind {kind!r}")
    if not files:
        return [hashlib.sha256(text.encode()).hexdigest() for text in inputs]
    return [hashlib.sha256(f"{path.parent.name}/{path.name}:{content or 'missing'}".encode()).hexdigest()
            for path, content in zip(map(Path, inputs), file_hashes(inputs))]


def fingerprint(rows: list[str]) -> str:
    """sha256 of a run of row fingerprints: all of a modality's (the spec's "inputs"), or a chunk's."""
    return hashlib.sha256("".join(rows).encode()).hexdigest()


def inputs_fingerprint(inputs, kind: str) -> str:
    """The fingerprint of all of a modality's raw inputs (``row_fingerprints``)."""
    return fingerprint(row_fingerprints(inputs, kind))


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
        "inputs": inputs_fingerprint(ds.inputs[modality], ds.kinds[modality]),
    }


def extract(ds: MultimodalDataset, modality: str, encoder: str, impairment: Impairment | None, device,
            how: Extraction = Extraction()) -> tuple[torch.Tensor, str]:
    """Un-normalised features of one modality, impaired if asked, cached unless the encoder is cheap;
    and where they came from: "cached", "extracted", "resumed" (from chunks an earlier run saved),
    "rebuilt" (a cache file was there but could not be trusted: warned, extracted again) or
    "not cached" (a cheap encoder on in-memory inputs)."""
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
        return compute_rows(0, len(ds)), "not cached"
    return cached_in_chunks(spec, ds.inputs[modality], kind, compute_rows, how)


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
        features, _ = extract(ds, modality, encoder, None, device)
    else:
        impaired, _ = extract(ds, modality, encoder, replace(impairment, ratio=1.0), device)
        rows = torch.from_numpy(chosen_indices(len(ds), impairment.ratio, impairment.seed))
        if len(rows) == len(ds):
            features = impaired
        else:
            features = extract(ds, modality, encoder, None, device)[0].clone()
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
    "missing" or "noisy, seed s"), shape, status (``extract``'s: "cached", "extracted", "resumed",
    "rebuilt" or "not cached") and seconds.
    """
    device = select_device(str(device) if device else None)
    records = []
    for split in splits:
        ds = load(dataset, split, **dataset_options)
        for modality, encoder, impairment in feature_jobs(ds, encoders, impairments, seeds):
            started = time.perf_counter()
            features, status = extract(ds, modality, encoder, impairment, device, how)
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
