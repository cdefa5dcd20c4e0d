"""modbal_lib — the small library behind the *modbal* notebook textbook on dominant modality bias.

Chapters explain and plot; this package computes. Start at ``modbal_lib.data.load``,
``modbal_lib.train.train`` and ``modbal_lib.evaluate.evaluate``.
"""

__version__ = "0.1.0"

from modbal_lib.utils import fast_mode, select_device, seed_everything  # noqa: E402

__all__ = ["__version__", "fast_mode", "select_device", "seed_everything"]
