"""Feature cache: encoder outputs stored once under ``cache_dir()/features/<key>.pt`` and reused.

The key is the sha256 of the canonical JSON (sorted keys, no spaces) of a *spec*: everything that
changes the values (dataset, split, dataset options, modality, encoder, impairment, device type)
plus ``FEATURE_VERSION``, bumped whenever extraction code changes its output.

Each file holds its key, spec, shape, dtype and the sha256 of the tensor's bytes. On load all of
them are checked; a file that is unreadable, stale (other key or version) or corrupt (wrong shape,
dtype, row count or checksum) is reported with ``warnings.warn`` naming the file and the reason,
then rebuilt. Files are written atomically, so an interrupted run leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from modbal_lib.utils import atomic_path, cache_dir

FEATURE_VERSION = 1
ENTRY_FIELDS = ("key", "version", "spec", "shape", "dtype", "sha256", "features")


def canonical_json(spec: dict[str, Any]) -> str:
    try:
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))
    except TypeError as error:
        raise TypeError(f"feature-cache spec must hold only JSON values (str, numbers, lists, dicts): {error}") from error


def feature_key(spec: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``spec`` together with ``FEATURE_VERSION``."""
    return hashlib.sha256(canonical_json({**spec, "feature_version": FEATURE_VERSION}).encode()).hexdigest()


def feature_path(key: str) -> Path:
    return cache_dir() / "features" / f"{key}.pt"


def tensor_sha256(features: torch.Tensor) -> str:
    return hashlib.sha256(features.contiguous().numpy().tobytes()).hexdigest()


def entry_problem(entry: Any, key: str, num_rows: int) -> str | None:
    """Why a loaded cache entry cannot be used, or None when it can."""
    if not isinstance(entry, dict) or set(entry) != set(ENTRY_FIELDS):
        return f"not a feature-cache entry (expected the fields {ENTRY_FIELDS})"
    if entry["key"] != key or entry["version"] != FEATURE_VERSION:
        return (f"stale: it holds key {entry['key'][:12]}… version {entry['version']}, "
                f"expected {key[:12]}… version {FEATURE_VERSION}")
    features = entry["features"]
    if not isinstance(features, torch.Tensor) or features.dtype != torch.float32:
        return f"features are {getattr(features, 'dtype', type(features).__name__)}, expected a float32 tensor"
    if list(features.shape) != entry["shape"] or features.shape[0] != num_rows:
        return f"features have shape {list(features.shape)}, expected {entry['shape']} with {num_rows} rows"
    if tensor_sha256(features) != entry["sha256"]:
        return "corrupt: the features' checksum does not match the one stored with them"
    return None


def read_checked(path: Path, problem_of: Callable[[Any], str | None], what: str, remedy: str) -> dict | None:
    """The torch file at ``path`` if it exists and ``problem_of(loaded)`` finds nothing wrong; else None,
    warning "<what> <path>: <problem>; <remedy>" when a file was there but cannot be trusted."""
    if not path.exists():
        return None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        problem = f"unreadable ({type(error).__name__}: {error})"
    else:
        problem = problem_of(loaded)
    if problem:
        warnings.warn(f"{what} {path}: {problem}; {remedy}", stacklevel=4)
        return None
    return loaded


def read_entry(path: Path, key: str, num_rows: int) -> torch.Tensor | None:
    """The cached features at ``path``, or None if there are none or they cannot be trusted (warns)."""
    entry = read_checked(path, lambda loaded: entry_problem(loaded, key, num_rows), "feature cache file", "rebuilding it")
    return None if entry is None else entry["features"]


def cached_features(spec: dict[str, Any], num_rows: int, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``compute()``'s float32 features for ``spec``, from the cache when a valid entry exists."""
    key = feature_key(spec)
    path = feature_path(key)
    features = read_entry(path, key, num_rows)
    if features is not None:
        return features
    features = compute().float().contiguous()
    if features.shape[0] != num_rows:
        raise ValueError(f"feature extraction for {canonical_json(spec)} gave {features.shape[0]} rows, expected {num_rows}")
    entry = {"key": key, "version": FEATURE_VERSION, "spec": spec, "shape": list(features.shape),
             "dtype": "float32", "sha256": tensor_sha256(features), "features": features}
    with atomic_path(path) as tmp:
        torch.save(entry, tmp)
    return features
