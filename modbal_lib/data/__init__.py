"""Datasets: ``load(name, split, **options) -> MultimodalDataset``.

Embedded (offline): ``emoji`` (Noto emoji picture + name -> category) and ``seesaw`` (synthetic).
Real paper datasets, once downloaded by ``data_scripts/``: ``food101``, ``hateful_memes``,
``mmimdb``, ``cremad``.
"""

from __future__ import annotations

import importlib
import inspect

from modbal_lib.data.base import MultimodalDataset

# name -> module holding ``load(split, **options)``
DATASETS = {
    "emoji": "modbal_lib.data.emoji",
    "seesaw": "modbal_lib.data.seesaw",
    "food101": "modbal_lib.data.food101",
    "hateful_memes": "modbal_lib.data.hateful_memes",
    "mmimdb": "modbal_lib.data.mmimdb",
    "cremad": "modbal_lib.data.cremad",
}
SPLITS = ("train", "val", "test")


def load(name: str, split: str = "train", **options) -> MultimodalDataset:
    """Load split ``split`` of dataset ``name`` (see ``DATASETS``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for dataset {name!r}; expected one of {SPLITS}")
    module = importlib.import_module(DATASETS[name])
    accepted = [p for p in inspect.signature(module.load).parameters if p != "split"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"dataset {name!r}: unknown option(s) {unknown}; its options are {accepted}")
    return module.load(split, **options)


__all__ = ["DATASETS", "SPLITS", "MultimodalDataset", "load"]
