"""Hateful Memes: a meme picture and its overlaid text -> hateful or not (AUROC).

The licence (Meta AI, distributed through DrivenData) forbids redistribution, so nothing is
downloaded: ``python data_scripts/hateful_memes.py --zip YOUR_DOWNLOAD.zip`` unpacks the user's own
copy into ``data_dir()/hateful_memes``::

    img/<id>.png
    train.jsonl  dev_seen.jsonl  dev_unseen.jsonl  test_seen.jsonl  test_unseen.jsonl

Each line is a JSON object with ``id``, ``img`` (e.g. "img/08291.png"), ``label`` (0/1) and ``text``.
Quirks, handled by reading every line with a JSON parser: ids are ints in some files and zero-padded
strings in others (cast with ``int()``), and phase-1 files escape the slash (``"img\\/42953.png"``).
The image path is taken from ``img``, relative to the dataset folder.

Splits: train = ``train.jsonl``; val = ``dev_seen.jsonl`` (``val_file="dev_unseen"`` picks the other
one); test = ``test_seen.jsonl`` (or ``test_file="test_unseen"``), which has labels only in the
phase-2 release. Labels: 0 = not hateful, 1 = hateful, as a two-class multiclass task.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from modbal_lib.data.base import MultimodalDataset
from modbal_lib.data.files import DatasetFileError, dataset_root, field, keep_existing, read_jsonl

CLASS_NAMES = ["not_hateful", "hateful"]
VAL_FILES = ("dev_seen", "dev_unseen")
TEST_FILES = ("test_seen", "test_unseen")


def read_memes(path: str | os.PathLike) -> list[dict]:
    """The records of one jsonl file as dicts with int ``id``, str ``img``, str ``text``, int ``label``."""
    memes = []
    for where, record in read_jsonl(path):
        if "label" not in record:
            raise DatasetFileError(
                f"{where}: no 'label' field. The phase-1 release has no test labels; "
                f"use the phase-2 files (dev_seen/test_seen) that include them"
            )
        raw_id, label = field(record, "id", where), record["label"]
        try:
            meme_id = int(raw_id)
        except (TypeError, ValueError):
            raise DatasetFileError(f"{where}: id {raw_id!r} is not an integer") from None
        if label not in (0, 1):
            raise DatasetFileError(f"{where}: label {label!r} must be 0 or 1")
        memes.append({"id": meme_id, "img": str(field(record, "img", where)), "text": str(field(record, "text", where)),
                      "label": int(label)})
    return memes


def load(
    split: str,
    root: str | os.PathLike | None = None,
    *,
    val_file: str = "dev_seen",
    test_file: str = "test_seen",
    drop_missing: bool = False,
) -> MultimodalDataset:
    """Split ``split`` ("train", "val" or "test") of Hateful Memes from ``root``.

    A meme whose image file is missing is an error unless ``drop_missing``.
    """
    if val_file not in VAL_FILES:
        raise ValueError(f"hateful_memes: val_file={val_file!r}; expected one of {VAL_FILES}")
    if test_file not in TEST_FILES:
        raise ValueError(f"hateful_memes: test_file={test_file!r}; expected one of {TEST_FILES}")
    files = {"train": "train", "val": val_file, "test": test_file}
    if split not in files:
        raise ValueError(f"hateful_memes: unknown split {split!r}; expected 'train', 'val' or 'test'")
    root = dataset_root("hateful_memes", root)
    memes = read_memes(root / f"{files[split]}.jsonl")
    images = [root / Path(meme["img"]) for meme in memes]
    kept = keep_existing("hateful_memes", drop_missing, images)
    return MultimodalDataset(
        name="hateful_memes",
        split=split,
        modalities=("image", "text"),
        kinds={"image": "image", "text": "text"},
        inputs={"image": [str(images[i]) for i in kept], "text": [memes[i]["text"] for i in kept]},
        labels=np.array([memes[i]["label"] for i in kept], dtype=np.int64),
        class_names=list(CLASS_NAMES),
        task="multiclass",
        options={"val_file": val_file, "test_file": test_file, "drop_missing": drop_missing},
    )
