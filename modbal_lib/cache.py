"""Feature cache: encoder outputs stored once under ``cache_dir()/features/<key>.pt`` and reused.

The key is the sha256 of the canonical JSON (sorted keys, no spaces) of a *spec*: everything that
changes the values (dataset, split, dataset options, modality, encoder, impairment, device type)
plus ``FEATURE_VERSION``, bumped whenever extraction code changes its output.

Each file holds its key, spec, shape, dtype and the sha256 of the tensor's bytes. On load all of
them are checked; a file that is unreadable, stale (other key or version) or corrupt (wrong shape,
dtype, row count or checksum) is reported once with ``warnings.warn`` naming the file and the
reason, then rebuilt (``cached_features`` says "rebuilt", not "cached"). Files are written
atomically (``utils.atomic_path``), so an interrupted run leaves no half-written entry; the hidden
temporary of a process killed while saving is removed by the next extraction
(``remove_stale_temporaries``).

Files given as paths enter a spec through the sha256 of their contents (``file_hashes``), read once:
``cache_dir()/file_hashes.json`` remembers each file's hash with its size, mtime and ctime, so later
runs read again only the files whose size or times changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from modbal_lib.utils import atomic_path, cache_dir, file_sha256, progress

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


def cached_features(spec: dict[str, Any], num_rows: int,
                    compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, str]:
    """``compute()``'s float32 features for ``spec``, from the cache when a valid entry exists, and
    where they came from: "cached", "extracted", or "rebuilt" (an entry was there but could not be
    trusted: warned once, computed again)."""
    key = feature_key(spec)
    path = feature_path(key)
    existed = path.exists()
    features = read_entry(path, key, num_rows)
    if features is not None:
        return features, "cached"
    remove_stale_temporaries()
    features = compute().float().contiguous()
    if features.shape[0] != num_rows:
        raise ValueError(f"feature extraction for {canonical_json(spec)} gave {features.shape[0]} rows, expected {num_rows}")
    entry = {"key": key, "version": FEATURE_VERSION, "spec": spec, "shape": list(features.shape),
             "dtype": "float32", "sha256": tensor_sha256(features), "features": features}
    with atomic_path(path) as tmp:
        torch.save(entry, tmp)
    return features, "rebuilt" if existed else "extracted"


# utils.atomic_path's temporaries: .<name>.<pid>.<random>.tmp<suffix> (older versions wrote no <pid>)
TEMPORARY_NAME = re.compile(r"^\.(?P<name>.+?)(\.(?P<pid>\d+))?\.[a-z0-9_]{8}\.tmp(\.\w+)?$")


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (assumed so where that cannot be asked safely)."""
    if os.name != "posix":
        return True  # Windows' os.kill would stop the process instead of asking
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries() -> list[Path]:
    """Delete the hidden temporaries of ``utils.atomic_path`` in the cache (``cache_dir()`` and its
    ``features`` folder) whose writer is no longer running: a process killed while saving (a name
    without a process id comes from an older version). Return them. A temporary that a live process
    is still writing is left alone."""
    removed = []
    temporaries = [path for folder in (cache_dir(), cache_dir() / "features") for path in folder.glob(".*.tmp*")]
    for path in temporaries:
        match = TEMPORARY_NAME.match(path.name)
        if match is None or (match["pid"] and process_running(int(match["pid"]))):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


FILE_HASHES_VERSION = 1
SETTLED_NS = 2_000_000_000  # a file changed in the last 2 s may change again within one timestamp tick


def file_hashes_path() -> Path:
    return cache_dir() / "file_hashes.json"


def read_file_hashes(path: Path) -> dict[str, list]:
    """The remembered hashes {absolute path: [size, mtime_ns, ctime_ns, sha256]} (empty if unusable: warns)."""
    if not path.exists():
        return {}
    try:
        index = json.loads(path.read_text())
        if index["version"] == FILE_HASHES_VERSION and isinstance(index["files"], dict):
            return index["files"]
        problem = f"version {index['version']}, expected {FILE_HASHES_VERSION}"
    except (ValueError, KeyError, TypeError) as error:
        problem = f"unreadable ({type(error).__name__}: {error})"
    warnings.warn(f"file-hash index {path}: {problem}; hashing the input files again", stacklevel=3)
    return {}


def file_hashes(paths: Sequence[str | os.PathLike]) -> list[str | None]:
    """The sha256 of each file's contents (None for a missing file).

    A hash is read from ``cache_dir()/file_hashes.json`` when the file's size, mtime and ctime are
    those recorded with it; otherwise the file is read and hashed (``utils.file_sha256``). The ctime
    catches a replacement that kept the size and restored the mtime (``tar``, ``rsync -t``). A hash
    is recorded only once the file has been unchanged for 2 s: a file rewritten within the same
    timestamp tick would otherwise look unchanged. The index is written atomically.
    """
    index_path = file_hashes_path()
    known = read_file_hashes(index_path)
    stamps = {}
    for path in map(os.path.abspath, paths):
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            continue
        stamps[path] = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
    hashes = {path: known[path][3] for path, stamp in stamps.items() if known.get(path, [])[:3] == stamp}
    changed = [path for path in stamps if path not in hashes]
    settled_before = time.time_ns() - SETTLED_NS
    recorded = False
    for path in progress(changed, desc="hashing input files"):
        hashes[path] = file_sha256(path)
        if max(stamps[path][1:]) < settled_before:
            known[path] = stamps[path] + [hashes[path]]
            recorded = True
    if recorded:
        with atomic_path(index_path) as tmp:
            tmp.write_text(json.dumps({"version": FILE_HASHES_VERSION, "files": known}))
    return [hashes.get(os.path.abspath(path)) for path in paths]
