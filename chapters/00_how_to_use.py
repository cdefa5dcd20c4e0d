# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 0. How to use this book
#
# **modbal** is a notebook textbook on *dominant modality bias*: a multimodal model leans on
# the modality that is easiest to learn and collapses when that modality is missing or noisy.
# Every chapter is a notebook you can run, change and re-run; every number it shows is
# computed by the small library `modbal_lib`, which has unit tests.
#
# **You will learn here:** how to open and run the chapters, what the paired `.py`/`.ipynb`
# files are, what *fast* and *full* mode mean, how to use a GPU, and where data and caches live.

# %%
import modbal_lib
from modbal_lib.utils import environment_report

# %% tags=["parameters"]
# Papermill overrides this cell; nbval (which cannot) reads MODBAL_FAST from the environment.
FAST = modbal_lib.fast_mode()

# %% [markdown]
# ## Your environment
# The report below is produced by `modbal_lib.utils.environment_report()`.

# %%
report = environment_report()
for key, value in report.items():
    print(f"{key:>16}: {value}")

# %% [markdown]
# ## Opening the book
#
# From the root of the repository, after `make book` or `make test` has created `.venv`:
#
# ```bash
# .venv/bin/jupyter lab chapters/
# ```
#
# Each chapter exists twice, as a **pair** kept in sync by [jupytext](https://jupytext.readthedocs.io):
#
# * `NN_slug.py` — the source of truth, a plain Python file in the *percent* format
#   (`# %%` starts a code cell, `# %% [markdown]` a text cell). Easy to diff and review.
# * `NN_slug.ipynb` — the notebook you open in JupyterLab. It is committed **without outputs**.
#
# When you save one of them in JupyterLab (with jupytext installed, as it is in `.venv`), the
# other is updated. From the command line: `jupytext --sync chapters/*.ipynb`.
# Executed copies with all outputs go to `_build/executed/`, never back into `chapters/`.
#
# ## Fast and full mode
#
# Every chapter has a cell tagged `parameters` with `FAST`. Fast mode (`MODBAL_FAST=1`, or
# `FAST=True` passed by papermill) trains fewer epochs on fewer seeds so that each chapter
# finishes in well under a minute on two CPU cores; the test command (and CI) uses it. Full
# mode is what `make book` runs; numbers quoted in the text come from full mode.
#
# ```bash
# MODBAL_FAST=1 .venv/bin/jupyter lab chapters/        # fast mode in JupyterLab
# .venv/bin/papermill chapters/01_dominant_modality_bias.ipynb out.ipynb -p FAST True
# ```
#
# ## Running on a GPU
#
# `modbal_lib.select_device()` picks CUDA when PyTorch sees a GPU, otherwise the CPU; set
# `MODBAL_DEVICE=cpu` (or `cuda:1`) to force a choice. On a machine with CUDA, install the
# ordinary PyTorch wheel (`make book` does this on its own when no local CPU wheel is present).
#
# ## Where data and caches live
#
# * The embedded datasets (the Noto emoji set, the synthetic see-saw data) ship inside the package:
#   nothing is downloaded for the default path.
# * Encoder features are computed once and cached in `MODBAL_CACHE` (default `~/.cache/modbal`).
# * Real datasets (Food-101, Hateful Memes, MM-IMDb, CREMA-D) go to `MODBAL_DATA`
#   (default `~/.cache/modbal/datasets`); see `data_scripts/README.md`. Once a dataset's features are
#   cached, `MODBAL_DATASET=food101` (or chapter 7's `DATASET` parameter) makes chapter 7 compare the
#   methods on it too.

# %%
print("feature cache :", report["feature cache"])
print("datasets      :", report["datasets folder"])
print("mode          :", "fast" if FAST else "full")

# %% [markdown]
# ## Exercises
# 1. Run this chapter in fast and in full mode with papermill and compare the printed mode.
# 2. Set `MODBAL_CACHE` to a fresh folder and watch the next chapter build its feature cache.
