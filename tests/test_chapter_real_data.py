"""Chapter 7's seam to the real datasets: with DATASET naming a prepared dataset whose features are cached,
the chapter runs the same comparison on it; otherwise it says what is missing and how to get it.

Run with papermill on a Food-101 fixture (true layout, offline encoders); SeeSaw stands in for the
embedded datasets so that nothing else needs extracting."""

from pathlib import Path

import nbformat
import papermill
import pytest

from fixtures_real import make_food101
from modbal_lib.features import precompute

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "07_head_to_head.ipynb"
PARAMETERS = dict(FAST=True, DATASET="food101", DATASET_OPTIONS={"val_size": 3}, SEEDS=[0], EMBEDDED=["seesaw"],
                  SEESAW_EPOCHS=1, REAL_EPOCHS=2, LAB_DATASET="seesaw")


def outputs(notebook_path: Path) -> str:
    """Every text and markdown output of an executed notebook, joined."""
    texts = []
    for cell in nbformat.read(notebook_path, as_version=4).cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(output.get("data", {}).get("text/markdown", ""))
    return "\n".join(texts)


@pytest.fixture
def food101(tmp_path, monkeypatch):
    monkeypatch.setenv("MODBAL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MODBAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODBAL_PROGRESS", "0")
    make_food101(tmp_path / "data" / "food101")
    return tmp_path


def run_chapter(tmp_path: Path) -> str:
    executed = tmp_path / "07_executed.ipynb"
    papermill.execute_notebook(str(CHAPTER), str(executed), parameters=PARAMETERS, cwd=str(CHAPTER.parent),
                               progress_bar=False, kernel_name="python3")
    return outputs(executed)


def test_chapter_7_says_what_is_missing_then_compares_on_the_cached_dataset(food101):
    before = run_chapter(food101)
    assert "food101: 8 feature sets are not cached yet: train image (efficientnet_lite0)" in before
    assert "python -m modbal_lib features --dataset food101 --impairments --seeds 1" in before
    assert "### food101" not in before

    precompute("food101", ("train", "test"), impairments=True, seeds=(0,), val_size=3)
    after = run_chapter(food101)
    assert "### food101: 2 epochs, seeds [0], metric accuracy" in after
    assert "| accuracy | unimodal_image | unimodal_text | joint |" in after
    assert "### seesaw: 1 epochs, seeds [0]" in after
