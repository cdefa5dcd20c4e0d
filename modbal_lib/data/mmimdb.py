"""MM-IMDb: a movie poster and its plot -> its genres (23-way multi-label, macro-F1), or its rating.

Layout of ``mmimdb.tar.gz`` (``python data_scripts/mmimdb.py`` unpacks it into ``data_dir()/mmimdb``)::

    mmimdb/split.json             {"train": [...], "dev": [...], "test": [...]}  7-digit ids
    mmimdb/dataset/<id>.json      keys include "genres" (list), "plot" (list of str), "rating", "title"
    mmimdb/dataset/<id>.jpeg      the poster

Common practice, followed here: the text is the longest of the movie's plot summaries; labels are
a 0/1 vector over the 23 genres in ``GENRES`` (this order). Genres outside the list ("News" and the
rare "Adult", "Reality-TV", "Talk-Show") are dropped from the label; the movie stays. (MMBT's
preprocessing drops movies tagged "News" altogether; that changes a few dozen training movies.)
``target="rating"`` gives GOAL's regression task on the ``rating`` field instead (MAE).

Splits: train, val = the ``dev`` list, test. Ids are formatted as 7-digit strings whether
split.json lists them as strings or ints.
"""

from __future__ import annotations

import os

import numpy as np

from modbal_lib.data.base import MultimodalDataset
from modbal_lib.data.files import DatasetFileError, dataset_root, field, keep_existing, read_json

GENRES = [
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror",
    "Documentary", "Mystery", "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History",
    "Music", "Animation", "Musical", "Western", "Sport", "Short", "Film-Noir",
]
SPLIT_KEYS = {"train": "train", "val": "dev", "test": "test"}
TARGETS = ("genres", "rating")


def longest_plot(plot, where: str) -> str:
    """The longest plot summary (the first of equally long ones); a bare string is taken as is."""
    if isinstance(plot, str):
        return plot
    if not isinstance(plot, list) or not all(isinstance(text, str) for text in plot):
        raise DatasetFileError(f"{where}: field 'plot' must be a list of strings")
    return max(plot, key=len, default="")


def genre_vector(genres, where: str) -> np.ndarray:
    """0/1 float32 [23] over ``GENRES``; genres not in the list are ignored."""
    if not isinstance(genres, list):
        raise DatasetFileError(f"{where}: field 'genres' must be a list, got {genres!r}")
    return np.array([name in genres for name in GENRES], dtype=np.float32)


def read_split_ids(path, split_key: str) -> list[str]:
    """The 7-digit movie ids listed under ``split_key`` in split.json."""
    splits = read_json(path)
    if not isinstance(splits, dict):
        raise DatasetFileError(f"{path}: expected an object with lists 'train', 'dev', 'test'")
    ids = field(splits, split_key, str(path))
    try:
        return [f"{int(movie_id):07d}" for movie_id in ids]
    except (TypeError, ValueError):
        raise DatasetFileError(f"{path}: the {split_key!r} list must hold numeric movie ids") from None


def load(
    split: str,
    root: str | os.PathLike | None = None,
    *,
    target: str = "genres",
    drop_missing: bool = False,
) -> MultimodalDataset:
    """Split ``split`` ("train", "val" or "test") of MM-IMDb from ``root``.

    ``target="genres"`` (multilabel over ``GENRES``) or ``"rating"`` (regression). A movie whose
    poster or JSON file is missing is an error unless ``drop_missing``.
    """
    if target not in TARGETS:
        raise ValueError(f"mmimdb: target={target!r}; expected one of {TARGETS}")
    if split not in SPLIT_KEYS:
        raise ValueError(f"mmimdb: unknown split {split!r}; expected 'train', 'val' or 'test'")
    root = dataset_root("mmimdb", root)
    base = root / "mmimdb" if (root / "mmimdb").is_dir() else root
    ids = read_split_ids(base / "split.json", SPLIT_KEYS[split])
    folder = base / "dataset"
    kept = keep_existing(
        "mmimdb", drop_missing, [folder / f"{i}.json" for i in ids], [folder / f"{i}.jpeg" for i in ids]
    )
    texts, labels = [], []
    for i in kept:
        where = str(folder / f"{ids[i]}.json")
        movie = read_json(where)
        texts.append(longest_plot(field(movie, "plot", where), where))
        if target == "genres":
            labels.append(genre_vector(field(movie, "genres", where), where))
        else:
            rating = field(movie, "rating", where)
            try:
                labels.append(float(rating))
            except (TypeError, ValueError):
                raise DatasetFileError(f"{where}: rating {rating!r} is not a number") from None
    if target == "genres":
        label_array = np.array(labels, np.float32).reshape(-1, len(GENRES))
        class_names, task = list(GENRES), "multilabel"
    else:
        label_array, class_names, task = np.array(labels, np.float32), ["rating"], "regression"
    return MultimodalDataset(
        name="mmimdb",
        split=split,
        modalities=("image", "text"),
        kinds={"image": "image", "text": "text"},
        inputs={"image": [str(folder / f"{ids[i]}.jpeg") for i in kept], "text": texts},
        labels=label_array,
        class_names=class_names,
        task=task,
        options={"target": target, "drop_missing": drop_missing},
    )
