"""Small helpers every chapter uses: device choice, seeding, fast mode, atomic files, file hashes, progress bars."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import platform
import random
import re
import tempfile
from importlib.metadata import PackageNotFoundError, version
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


def select_device(prefer: str | torch.device | None = None) -> torch.device:
    """CUDA when present, else CPU. ``prefer`` (or env ``MODBAL_DEVICE``) forces a choice: ``cpu``,
    ``cuda`` or ``cuda:N``; asking for CUDA where PyTorch sees no GPU is an error, not a silent CPU run."""
    if isinstance(prefer, torch.device):
        return prefer
    where = "device" if prefer else "MODBAL_DEVICE"
    choice = (prefer or os.environ.get("MODBAL_DEVICE") or "").strip()
    if not choice:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", choice):
        raise ValueError(f"{where}={choice!r}: expected cpu, cuda or cuda:N")
    device = torch.device(choice)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{where}={choice!r}: PyTorch sees no CUDA GPU here; use cpu (or unset {where})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{where}={choice!r}: only {torch.cuda.device_count()} CUDA device(s) here "
                             f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return device


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


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(text: str, what: str) -> bool:
    """"true"/"1"/"yes"/"on" -> True, "false"/"0"/"no"/"off" -> False (any case); anything else is an
    error naming ``what`` (an environment variable or a command-line option) and the accepted words."""
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{what}={text!r}: expected a boolean, one of {'/'.join(TRUE_WORDS + FALSE_WORDS)}")


def env_flag(name: str, default: bool = False) -> bool:
    """A boolean environment variable (``parse_bool``'s words); unset or empty gives ``default``."""
    value = os.environ.get(name, "")
    return default if not value.strip() else parse_bool(value, name)


def fast_mode() -> bool:
    """True when ``MODBAL_FAST=1``: every chapter then finishes in well under a minute on 2 CPU cores."""
    return env_flag("MODBAL_FAST")


def env_folder(name: str, default: Path) -> Path:
    """The folder named by environment variable ``name`` (``default`` when unset), created if needed;
    an error naming the variable when the path is a file or cannot be created."""
    path = Path(os.environ.get(name) or default).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a file; expected a folder (or unset {name} for {default})")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{name}={str(path)!r}: cannot create the folder ({error.strerror})") from error
    return path


def cache_dir() -> Path:
    """Where features and other derived data are cached (``MODBAL_CACHE``, default ``~/.cache/modbal``)."""
    return env_folder("MODBAL_CACHE", Path.home() / ".cache" / "modbal")


PRECISION_NAMES = ("fp16", "bf16", "fp32")  # MODBAL_PRECISION: the encoders' autocast on CUDA
KNOWN_VARIABLES = ("MODBAL_FAST", "MODBAL_PROGRESS", "MODBAL_DEVICE", "MODBAL_PRECISION", "MODBAL_CACHE",
                   "MODBAL_DATA", "MODBAL_DATASET",
                   "MODBAL_CREMAD_VOTES",   # chapter 1: CREMA-D's votes file
                   "MODBAL_EMOJI_TARBALL")  # tests: the npm tarball for the byte-identical rebuild


def precision_name() -> str:
    """``MODBAL_PRECISION`` (fp16 when unset); an error naming the variable for anything else."""
    chosen = os.environ.get("MODBAL_PRECISION", "").strip() or "fp16"
    if chosen not in PRECISION_NAMES:
        raise ValueError(f"MODBAL_PRECISION={chosen!r}: expected one of {', '.join(PRECISION_NAMES)}")
    return chosen


def check_environment(datasets: tuple[str, ...] = ()) -> list[str]:
    """Validate every ``MODBAL_*`` variable before any work (the command line calls it first): each bad
    value raises ``ValueError`` naming the variable and what it accepts. ``MODBAL_DATASET``, when set,
    must be one of ``datasets`` (when given). Returns warnings about unknown ``MODBAL_*`` names
    (a typo like ``MODBAL_FAS`` would otherwise be ignored silently)."""
    env_flag("MODBAL_FAST")
    env_flag("MODBAL_PROGRESS")
    select_device()
    precision_name()
    cache_dir()
    data_dir()
    dataset = os.environ.get("MODBAL_DATASET", "").strip()
    if dataset and datasets and dataset not in datasets:
        raise ValueError(f"MODBAL_DATASET={dataset!r}: expected one of {', '.join(sorted(datasets))} (or unset it)")
    return [f"unknown environment variable {name} (known: {', '.join(KNOWN_VARIABLES)})"
            for name in sorted(os.environ) if name.startswith("MODBAL_") and name not in KNOWN_VARIABLES]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    The temporary name keeps ``target``'s suffix, so writers that append one (``np.savez``) behave,
    and holds the writer's process id, ``.<name>.<pid>.<random>.tmp<suffix>``, so that a temporary
    left by a killed process can be told from one still being written (``cache.remove_stale_temporaries``).

    Nothing half-written is ever left at ``target``::

        with atomic_path("out.npz") as tmp:
            np.savez(tmp, ...)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.",
                                suffix=f".tmp{target.suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        if tmp.exists():  # mkstemp's private 0600 would outlive the rename: give the usual mode of a new file
            os.chmod(tmp, 0o666 & ~umask)
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


_SILENT = contextvars.ContextVar("modbal_silent_progress", default=False)


@contextlib.contextmanager
def silent_progress():
    """Inside this block ``progress`` shows nothing: a caller with its own bar (the claims ledger) keeps the
    many short bars of what it calls from flooding a notebook's output with widgets."""
    token = _SILENT.set(True)
    try:
        yield
    finally:
        _SILENT.reset(token)


def progress(iterable=None, *, desc: str | None = None, total: int | None = None, **kwargs):
    """A tqdm progress bar (silenced by ``MODBAL_PROGRESS=0``, e.g. in tests, and inside ``silent_progress``)."""
    disable = _SILENT.get() or not env_flag("MODBAL_PROGRESS", default=True)
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False, **kwargs)


def data_dir() -> Path:
    """Where real datasets are downloaded and unpacked (``MODBAL_DATA``, default ``~/.cache/modbal/datasets``)."""
    return env_folder("MODBAL_DATA", Path.home() / ".cache" / "modbal" / "datasets")


KEY_PACKAGES = ("torch", "transformers", "numpy", "scikit-learn", "matplotlib", "ipywidgets", "papermill", "jupytext")


def environment_report(fast: bool | None = None) -> dict[str, str]:
    """Python, torch, the compute device and the versions of the key packages (chapter 0 shows it).

    ``fast`` is the mode the caller runs in (a chapter passes its ``FAST`` parameter, which papermill may
    have set); by default the mode ``MODBAL_FAST`` asks for."""
    device = select_device()
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "modbal_lib": version("modbal_lib"),
        "device": str(device),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available (CPU run)",
        "cpu threads": str(torch.get_num_threads()),
        "fast mode": str(fast_mode() if fast is None else fast),
        "feature cache": str(cache_dir()),
        "datasets folder": str(data_dir()),
    }
    for package in KEY_PACKAGES:
        try:
            report[package] = version(package)
        except PackageNotFoundError:
            report[package] = "not installed"
    return report
