"""Reading the files of the real datasets: images, CSV/JSON/JSONL tables, split hold-outs, missing files.

Every dataset module (``food101``, ``hateful_memes``, ``mmimdb``, ``cremad``) parses its own layout
with these few helpers, so each bad-input case has one clear error: a ``DatasetFileError`` that names
the file (and line or field) and says what was expected.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from modbal_lib.utils import data_dir


class DatasetFileError(ValueError):
    """A dataset file is missing, unreadable or not in the expected format."""


def dataset_root(name: str, root: str | os.PathLike | None) -> Path:
    """``root``, or the default ``data_dir() / name``; it must exist (else: run the data script)."""
    path = Path(root).expanduser() if root is not None else data_dir() / name
    if not path.is_dir():
        raise DatasetFileError(
            f"{name}: dataset folder {path} does not exist; prepare it with `python data_scripts/{name}.py` "
            f"(or pass root=... / set MODBAL_DATA)"
        )
    return path


def open_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to uint8 [H, W, 3] RGB; transparent pixels are composited onto white.

    A missing, truncated or corrupt file raises ``DatasetFileError`` naming the file: decoding happens
    here in full (``Image.load``), not lazily later inside an encoder's batch.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            if "A" in image.getbands() or "transparency" in image.info:
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError as error:
        raise DatasetFileError(f"image file {path} does not exist") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DatasetFileError(f"image file {path} is corrupt or truncated: {error}") from error


def read_csv_rows(path: str | os.PathLike) -> list[list[str]]:
    """The rows of a CSV file (UTF-8, a leading byte-order mark tolerated, blank rows skipped)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            return [row for row in csv.reader(file) if any(cell.strip() for cell in row)]
    except FileNotFoundError as error:
        raise DatasetFileError(f"file {path} does not exist") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise DatasetFileError(f"{path} is not a readable UTF-8 CSV file: {error}") from error


def read_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """(line number, line) for each non-blank line of a UTF-8 text file (BOM and CR/LF endings tolerated)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as error:
        raise DatasetFileError(f"file {path} does not exist") from error
    except UnicodeDecodeError as error:
        raise DatasetFileError(f"{path} is not UTF-8 text: {error}") from error
    return [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_json(path: str | os.PathLike) -> Any:
    """Parse one JSON file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as error:
        raise DatasetFileError(f"file {path} does not exist") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetFileError(f"{path} is not valid JSON: {error}") from error


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[str, dict]]:
    """("file:line", record) for each non-blank line of a JSON-lines file; each line must be an object."""
    for number, line in read_lines(path):
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetFileError(f"{where}: not valid JSON ({error})") from error
        if not isinstance(record, dict):
            raise DatasetFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
        yield where, record


def field(record: dict, name: str, where: str) -> Any:
    """``record[name]``, or a ``DatasetFileError`` saying which field is missing where."""
    if name not in record:
        raise DatasetFileError(f"{where}: missing field {name!r} (fields present: {sorted(record)})")
    return record[name]


def holdout(split: str, n: int, val_size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``split`` ("train" or "val") when "val" is a hold-out from a training file.

    "val" is a seeded random choice of ``val_size`` of the file's ``n`` samples, "train" the rest;
    ``val_size=0`` keeps the whole file as "train" (and leaves no "val").
    """
    if split not in ("train", "val"):
        raise ValueError(f"holdout: split must be 'train' or 'val', got {split!r}")
    if not 0 <= val_size < n:
        raise ValueError(f"val_size={val_size} must be between 0 and {n - 1} (the training file has {n} samples)")
    if split == "val" and val_size == 0:
        raise ValueError("val_size=0 keeps every training sample in 'train', so there is no 'val' split")
    is_val = np.zeros(n, dtype=bool)
    is_val[np.random.default_rng(seed).choice(n, size=val_size, replace=False)] = True
    return np.flatnonzero(is_val if split == "val" else ~is_val)


def keep_existing(dataset: str, drop_missing: bool, *columns: Sequence[Path]) -> np.ndarray:
    """Indices of the samples whose files all exist (one column of paths per file-backed modality).

    Missing files are an error listing them, unless ``drop_missing`` (then those samples are left out).
    """
    exists = np.ones(len(columns[0]), dtype=bool)
    missing = []
    for paths in columns:
        for index, path in enumerate(paths):
            if not Path(path).is_file():
                exists[index] = False
                missing.append(str(path))
    if missing and not drop_missing:
        shown = "\n  ".join(missing[:10])
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DatasetFileError(
            f"{dataset}: {len(missing)} files are missing:\n  {shown}{more}\n"
            f"re-run the data script, or pass drop_missing=True to leave those samples out"
        )
    return np.flatnonzero(exists)
