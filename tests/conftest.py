"""Test-wide settings: no progress bars, and a feature cache inside the checkout (``_build/test-cache``)."""

import os
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MODBAL_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MODBAL_CACHE", str(ROOT / "_build" / "test-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Real CREMA-D metadata for parser tests; tests that need it skip when it is absent.
SHARED_CREMAD = ROOT.parent / "shared" / "real-samples" / "cremad"

# The tests' models are tiny: one CPU thread runs them faster than several (and repeatably).
torch.set_num_threads(1)
