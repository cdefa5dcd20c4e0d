"""Noto emoji: a picture and a name -> the emoji's category. A real dataset that ships inside the package.

1,906 base emojis from ``emoji-datasource-google@16.0.0`` (category "Component" and skin-tone
variants left out; see ``data_scripts/build_emoji.py``, which builds the asset in ``assets/``).

- modality ``image``: uint8 [N, 64, 64, 3], the Google/Noto picture composited on white;
- modality ``text``: the emoji's Unicode name, lower-cased (the source mixes "HASH KEY" and
  "Egypt Flag"; lower case gives one style, and the default text encoder is uncased anyway);
- label: ``category`` (9 classes, default) or ``subcategory`` (98 classes).

Splits: 70/15/15, stratified by category, drawn with ``split_seed``; the two emojis named "man in
tuxedo" share a split, so no text appears in two splits. The split does not depend on
``label``, so category and subcategory results are on the same samples; a few subcategories have
one to three members, so some of them are absent from train.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from pathlib import Path

import numpy as np

from modbal_lib.data.base import MultimodalDataset

ASSET_DIR = Path(__file__).resolve().parent / "assets"
IMAGES_FILE = ASSET_DIR / "emoji_images.npz"
META_FILE = ASSET_DIR / "emoji_meta.json"
LABELS = ("category", "subcategory")
SPLIT_SHARES = {"train": 0.70, "val": 0.15, "test": 0.15}
REBUILD_HINT = "rebuild it with `python data_scripts/build_emoji.py` (needs npm, or --tarball PATH)"


@functools.lru_cache(maxsize=1)
def read_asset() -> tuple[np.ndarray, list[dict], str]:
    """The images (read-only uint8 [N, 64, 64, 3]), their metadata records, and the images file's sha256."""
    for path in (IMAGES_FILE, META_FILE):
        if not path.exists():
            raise FileNotFoundError(f"emoji asset {path} is missing; {REBUILD_HINT}")
    raw = IMAGES_FILE.read_bytes()
    try:
        images = np.load(io.BytesIO(raw))["images"]
        meta = json.loads(META_FILE.read_text(encoding="utf-8"))["emojis"]
    except Exception as error:
        raise ValueError(f"emoji asset in {ASSET_DIR} is unreadable ({error}); {REBUILD_HINT}") from error
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3) or len(images) != len(meta):
        raise ValueError(
            f"{IMAGES_FILE}: images are {images.dtype} {images.shape}, expected uint8 [{len(meta)}, 64, 64, 3] "
            f"to match {META_FILE}; {REBUILD_HINT}"
        )
    images.flags.writeable = False
    return images, meta, hashlib.sha256(raw).hexdigest()


def split_indices(categories: list[str], split_seed: int = 0, texts: list[str] | None = None) -> dict[str, np.ndarray]:
    """Stratified 70/15/15 split: within each category, a seeded shuffle cut at round(0.70 n) and round(0.85 n).

    Samples with the same ``texts`` entry stay in one split (the first of train, val, test that holds one
    of them): two emojis share the name "man in tuxedo", and a name seen in training must not reappear
    in the test split.
    """
    categories = np.asarray(categories)
    rng = np.random.default_rng(split_seed)
    parts = {split: [] for split in SPLIT_SHARES}
    for category in sorted(set(categories)):
        members = rng.permutation(np.flatnonzero(categories == category))
        n_train = round(SPLIT_SHARES["train"] * len(members))
        n_val = round(SPLIT_SHARES["val"] * len(members))
        parts["train"].append(members[:n_train])
        parts["val"].append(members[n_train:n_train + n_val])
        parts["test"].append(members[n_train + n_val:])
    split_of = {int(i): split for split, chunks in parts.items() for chunk in chunks for i in chunk}
    if texts is not None:
        order = list(SPLIT_SHARES)
        first_split: dict[str, str] = {}
        for i in sorted(split_of, key=lambda i: (order.index(split_of[i]), i)):
            split_of[i] = first_split.setdefault(texts[i], split_of[i])
    return {split: np.array(sorted(i for i, s in split_of.items() if s == split), dtype=np.int64)
            for split in SPLIT_SHARES}


def load(split: str, *, label: str = "category", split_seed: int = 0) -> MultimodalDataset:
    """Split ``split`` of the emoji dataset, labelled by ``label`` ("category" or "subcategory")."""
    if label not in LABELS:
        raise ValueError(f"emoji: option label={label!r}; expected one of {LABELS}")
    if split not in SPLIT_SHARES:
        raise ValueError(f"emoji: unknown split {split!r}; expected one of {tuple(SPLIT_SHARES)}")
    images, meta, images_sha256 = read_asset()
    texts = [record["name"].lower() for record in meta]
    indices = split_indices([record["category"] for record in meta], split_seed, texts)[split]
    class_names = sorted({record[label] for record in meta})
    class_of = {name: k for k, name in enumerate(class_names)}
    return MultimodalDataset(
        name="emoji",
        split=split,
        modalities=("image", "text"),
        kinds={"image": "image", "text": "text"},
        inputs={"image": images[indices], "text": [texts[i] for i in indices]},
        labels=np.array([class_of[meta[i][label]] for i in indices], dtype=np.int64),
        class_names=class_names,
        task="multiclass",
        options={"label": label, "split_seed": split_seed, "asset": images_sha256[:16]},
    )
