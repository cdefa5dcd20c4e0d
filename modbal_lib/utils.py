"""Small helpers every chapter uses: device choice, seeding, fast mode, atomic files, file hashes, progress bars."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def select_device(prefer: str | None = None) -> torch.device:
    """CUDA when present, else CPU. ``prefer`` (or env ``MODBAL_DEVICE``) forces a choice."""
    choice = prefer or os.environ.get("MODBAL_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; make CPU runs bit-for-bit repeatable.

    Returns a ``torch.Generator`` seeded with ``seed`` for code that wants its own stream.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.benchmark = False
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def env_flag(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable ("1", "true", "yes" are true)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def fast_mode() -> bool:
    """True when ``MODBAL_FAST=1``: every chapter then finishes in well under a minute on 2 CPU cores."""
    return env_flag("MODBAL_FAST")


def cache_dir() -> Path:
    """Where features and other derived data are cached (``MODBAL_CACHE``, default ``~/.cache/modbal``)."""
    path = Path(os.environ.get("MODBAL_CACHE", Path.home() / ".cache" / "modbal")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    The temporary name keeps ``target``'s suffix, so writers that append one (``np.savez``) behave.

    Nothing half-written is ever left at ``target``::

        with atomic_path("out.npz") as tmp:
            np.savez(tmp, ...)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """Run a block with ``count`` torch CPU threads, then restore the setting (``None``: leave it).

    The kit's models are small: on a CPU one thread trains them faster than several (thread
    start-up and spin-waiting cost more than they save, badly so on a busy machine), and a fixed
    thread count keeps CPU runs bit-for-bit repeatable across machines.
    """
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def progress(iterable=None, *, desc: str | None = None, total: int | None = None, **kwargs):
    """A tqdm progress bar (silenced by ``MODBAL_PROGRESS=0``, e.g. in tests)."""
    disable = not env_flag("MODBAL_PROGRESS", default=True)
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False, **kwargs)


def data_dir() -> Path:
    """Where real datasets are downloaded and unpacked (``MODBAL_DATA``, default ``~/.cache/modbal/datasets``)."""
    path = Path(os.environ.get("MODBAL_DATA", Path.home() / ".cache" / "modbal" / "datasets")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


KEY_PACKAGES = ("torch", "transformers", "numpy", "scikit-learn", "matplotlib", "ipywidgets", "papermill", "jupytext")


def environment_report() -> dict[str, str]:
    """Python, torch, the compute device and the versions of the key packages (chapter 0 shows it)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import modbal_lib

    device = select_device()
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "modbal_lib": modbal_lib.__version__,
        "device": str(device),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available (CPU run)",
        "cpu threads": str(torch.get_num_threads()),
        "fast mode": str(fast_mode()),
        "feature cache": str(cache_dir()),
        "datasets folder": str(data_dir()),
    }
    for package in KEY_PACKAGES:
        try:
            report[package] = version(package)
        except PackageNotFoundError:
            report[package] = "not installed"
    return report
