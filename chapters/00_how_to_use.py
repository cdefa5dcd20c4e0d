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
# files are, what *fast* and *full* mode mean, how to use a GPU, where data and caches live, and
# how the book judges whether two methods differ.

# %%
from IPython.display import Markdown, display
from scipy import stats as scipy_stats

import modbal_lib
from modbal_lib import stats
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
# ## How this book judges a difference
#
# Every training run depends on its seed (initialisation, data order, which samples are impaired),
# so one run proves little: the book trains each setting on several seeds, and one module,
# `modbal_lib.stats`, summarises them. A quantity over seeds is quoted as its mean ± **sample** SD
# (divided by n − 1) with the number of seeds n (`stats.summarize`). Two methods are compared
# **paired, seed by seed** (`stats.paired_difference`): on the same seed both see the same
# initialisation, data order and impairments, so the difference a_s − b_s removes what the seed does to
# both and keeps what the method does. Paired differences scatter much less than the scores themselves,
# so pairing sees differences that two overlapping "mean ± SD" bars hide. The book quotes their mean
# with a t-interval and one of three verdicts: **differs** when the interval excludes 0, **within seed
# noise** when it contains 0 (no difference this number of seeds can tell), **too few seeds** below a
# minimum n, whatever the interval: from two seeds the interval rests on a single spread and the
# t-factor is huge, so its width says little. The cell below states the rule as the code applies it and
# works it through on **made-up numbers**.

# %%
a = [84.1, 86.0, 85.2, 87.3, 85.9]  # ILLUSTRATION ONLY: invented accuracies of "method A" on seeds 0-4
b = [83.0, 85.1, 83.6, 86.4, 84.4]  # ILLUSTRATION ONLY: invented accuracies of "method B" on the same seeds
c = [82.6, 85.5, 83.1, 86.9, 84.1]  # ILLUSTRATION ONLY: a "method C" that beats B on some seeds, not others
t_factor = {n: scipy_stats.t.ppf(0.5 + stats.CONFIDENCE / 2, n - 1) for n in (stats.MIN_SEEDS - 1, len(a))}
display(Markdown(
    f"**The rule** (`modbal_lib.stats`): values over seeds are quoted as {stats.SD_NOTE}; comparisons as a "
    f"{stats.DIFFERENCE_NOTE}. The interval is the mean difference ± t × (sample SD of the differences)/√n, "
    f"with t = {t_factor[len(a)]:.2f} for {len(a)} seeds but {t_factor[stats.MIN_SEEDS - 1]:.1f} for "
    f"{stats.MIN_SEEDS - 1}.\n\n"
    "**Worked example, made-up numbers (an illustration, not a result of this kit):**\n\n"
    f"* A: {stats.summarize(a).text()}; B: {stats.summarize(b).text()}; C: {stats.summarize(c).text()}. "
    "The ± bars overlap.\n"
    f"* A − B, paired seed by seed: {stats.paired_difference(a, b).text()} (A is above B on every seed).\n"
    f"* C − B: {stats.paired_difference(c, b).text()}.\n"
    f"* A − B on the first two seeds only: {stats.paired_difference(a[:2], b[:2]).text()}."))

# %% [markdown]
# ## Exercises
# 1. Run this chapter in fast and in full mode with papermill and compare the printed mode.
# 2. Set `MODBAL_CACHE` to a fresh folder and watch the next chapter build its feature cache.
# 3. In the worked example, change one seed of A so that A − B turns negative there. How does the interval
#    move, and when does the verdict change?
