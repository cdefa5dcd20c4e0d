"""UPMC Food-101: a food photo and the title of its recipe web page -> one of 101 dishes (accuracy).

Layout (``python data_scripts/food101.py`` unpacks it into ``data_dir()/food101``)::

    images/{train,test}/<class>/<file>.jpg
    texts/{train,test}_titles.csv        rows: <image file>,<text>,<class>

Quirks of the title files, all handled here:

- usually no header row, sometimes one (e.g. ``image_path,text,food``): a first row whose last field
  is not a class name is taken as a header;
- the text often contains commas, sometimes inside double quotes (``"Pie, apple"``) and sometimes
  bare (``Pie, apple``), so the files are not consistently valid CSV. The image file name never
  contains a comma and the class is the last field, so each line is split at its first and last
  comma; a text wrapped in double quotes is unquoted the CSV way (``""`` -> ``"``).

Class names are the 101 snake_case folder names of ``images/train``, sorted. Validation follows
BalGrad: a seeded hold-out of ``val_size`` (default 5,000) training samples; ``train`` is the rest.
"""

from __future__ import annotations

import os

import numpy as np

from modbal_lib.data.base import MultimodalDataset
from modbal_lib.data.files import DatasetFileError, dataset_root, holdout, keep_existing, read_lines


def unquote(value: str) -> str:
    """Strip surrounding whitespace and one pair of CSV double quotes (``""`` inside becomes ``"``)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


def read_titles(path: str | os.PathLike, class_names: list[str]) -> list[tuple[str, str, str]]:
    """(image file, text, class) for each row of a ``*_titles.csv`` file (header and quotes handled)."""
    known = set(class_names)
    rows = []
    for position, (number, line) in enumerate(read_lines(path)):
        first, last = line.find(","), line.rfind(",")
        if first == last:
            raise DatasetFileError(f"{path}:{number}: expected <image file>,<text>,<class>, got {line[:80]!r}")
        image, text, label = unquote(line[:first]), unquote(line[first + 1:last]), unquote(line[last + 1:])
        if label not in known:
            if position == 0:
                continue  # a header row
            raise DatasetFileError(f"{path}:{number}: class {label!r} is not one of the image folders")
        rows.append((image, text, label))
    return rows


def load(
    split: str,
    root: str | os.PathLike | None = None,
    *,
    val_size: int = 5000,
    seed: int = 0,
    drop_missing: bool = False,
) -> MultimodalDataset:
    """Split ``split`` ("train", "val" or "test") of UPMC Food-101 from ``root``.

    ``val_size`` training samples, drawn with ``seed``, form "val"; "train" is the rest (all of the
    training file when ``val_size=0``). Images are
    given as file paths (decode them with ``modbal_lib.data.files.open_image``). A title row whose image
    file is missing is an error unless ``drop_missing``.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"food101: unknown split {split!r}; expected 'train', 'val' or 'test'")
    root = dataset_root("food101", root)
    train_folder = root / "images" / "train"
    if not train_folder.is_dir():
        raise DatasetFileError(f"food101: {train_folder} does not exist (expected one folder per class)")
    class_names = sorted(entry.name for entry in train_folder.iterdir() if entry.is_dir())
    source = "test" if split == "test" else "train"
    rows = read_titles(root / "texts" / f"{source}_titles.csv", class_names)
    indices = np.arange(len(rows)) if split == "test" else holdout(split, len(rows), val_size, seed)
    images = [root / "images" / source / label / image for image, _, label in rows]
    indices = indices[keep_existing("food101", drop_missing, [images[i] for i in indices])]
    class_of = {name: k for k, name in enumerate(class_names)}
    return MultimodalDataset(
        name="food101",
        split=split,
        modalities=("image", "text"),
        kinds={"image": "image", "text": "text"},
        inputs={
            "image": [str(images[i]) for i in indices],
            "text": [rows[i][1] for i in indices],
        },
        labels=np.array([class_of[rows[i][2]] for i in indices], dtype=np.int64),
        class_names=class_names,
        task="multiclass",
        options={"val_size": val_size, "seed": seed, "drop_missing": drop_missing},
    )
