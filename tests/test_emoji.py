"""The embedded emoji dataset: asset, counts, labels, splits, errors and the byte-identical rebuild."""

import collections
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from modbal_lib.data import emoji, load

ROOT = Path(__file__).resolve().parents[1]
TARBALL = Path(os.environ.get("MODBAL_EMOJI_TARBALL", "/tmp/emoji/emoji-datasource-google-16.0.0.tgz"))
TARBALL_SHA256 = "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438"
CATEGORY_COUNTS = {
    "People & Body": 386, "Flags": 270, "Objects": 264, "Symbols": 224, "Travel & Places": 218,
    "Smileys & Emotion": 169, "Animals & Nature": 159, "Food & Drink": 131, "Activities": 85,
}


@pytest.fixture
def fresh_asset_cache():
    emoji.read_asset.cache_clear()
    yield
    emoji.read_asset.cache_clear()


def test_all_splits_hold_the_1906_base_emojis_in_9_categories():
    splits = [load("emoji", split) for split in ("train", "val", "test")]
    assert sum(len(ds) for ds in splits) == 1906
    counts = collections.Counter(ds.class_names[k] for ds in splits for k in ds.labels)
    assert counts == CATEGORY_COUNTS
    ds = splits[0]
    assert ds.modalities == ("image", "text") and ds.kinds == {"image": "image", "text": "text"}
    assert ds.task == "multiclass" and ds.num_outputs == 9
    assert ds.inputs["image"].dtype == np.uint8 and ds.inputs["image"].shape == (len(ds), 64, 64, 3)
    assert ds.labels.dtype == np.int64


def test_items_pair_the_lowercased_name_with_its_picture_on_white():
    ds = load("emoji", "train")
    names = {record["name"].lower() for record in emoji.read_asset()[1]}
    assert all(text == text.lower() and text in names for text in ds.inputs["text"])
    item = ds[0]
    assert set(item) == {"image", "text", "label"}
    corners = ds.inputs["image"][:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 255).mean() > 0.9  # the transparent background became white


def test_splits_are_disjoint_cover_everything_and_are_stratified():
    categories = [record["category"] for record in emoji.read_asset()[1]]
    parts = emoji.split_indices(categories, split_seed=0)
    sets = {split: set(rows.tolist()) for split, rows in parts.items()}
    assert not (sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"])
    assert set().union(*sets.values()) == set(range(1906))
    categories = np.array(categories)
    for category, total in CATEGORY_COUNTS.items():
        for split, share in emoji.SPLIT_SHARES.items():
            assert abs((categories[parts[split]] == category).sum() - share * total) <= 1
    texts = load("emoji", "test").inputs["text"]
    names = [record["name"].lower() for record in emoji.read_asset()[1]]
    assert texts == [names[i] for i in emoji.split_indices(categories.tolist(), 0, names)["test"]]


@pytest.mark.parametrize("split_seed", [0, 1, 2, 3])
def test_no_text_appears_in_two_splits(split_seed):
    texts = {split: set(load("emoji", split, split_seed=split_seed).inputs["text"]) for split in emoji.SPLIT_SHARES}
    assert not (texts["train"] & texts["val"] or texts["train"] & texts["test"] or texts["val"] & texts["test"])
    assert sum(len(load("emoji", s, split_seed=split_seed)) for s in emoji.SPLIT_SHARES) == 1906


def test_samples_sharing_a_text_share_a_split():
    parts = emoji.split_indices(["a"] * 10, 0, ["x", "x"] + [str(i) for i in range(8)])
    where = {split for split, rows in parts.items() if {0, 1} & set(rows.tolist())}
    assert len(where) == 1 and sum(len(rows) for rows in parts.values()) == 10


def test_split_seed_reshuffles_and_is_repeatable():
    first, again, other = (load("emoji", "val", split_seed=s).inputs["text"] for s in (0, 0, 1))
    assert first == again and first != other
    assert load("emoji", "val", split_seed=1).options["split_seed"] == 1


def test_subcategory_labels_and_bad_label():
    ds = load("emoji", "train", label="subcategory")
    assert len(ds.class_names) == 98 and ds.options["label"] == "subcategory"
    same_samples = load("emoji", "train")
    assert ds.inputs["text"] == same_samples.inputs["text"]  # the split does not depend on the label
    with pytest.raises(ValueError, match="label='colour'.*category"):
        load("emoji", "train", label="colour")


def test_loading_is_fast(fresh_asset_cache):
    start = time.perf_counter()
    load("emoji", "test")
    assert time.perf_counter() - start < 1.0


def test_asset_is_small_and_ships_its_notice():
    size = sum(path.stat().st_size for path in emoji.ASSET_DIR.iterdir())
    assert size < 6.5e6
    notice = (emoji.ASSET_DIR / "NOTICE").read_text()
    assert "Apache License" in notice and "MIT License" in notice
    assert "Apache License" in (emoji.ASSET_DIR / "LICENSE-Apache-2.0.txt").read_text()


def test_missing_asset_says_how_to_rebuild(tmp_path, monkeypatch, fresh_asset_cache):
    monkeypatch.setattr(emoji, "IMAGES_FILE", tmp_path / "emoji_images.npz")
    with pytest.raises(FileNotFoundError, match="emoji_images.npz is missing.*python data_scripts/build_emoji.py"):
        load("emoji", "test")


def test_asset_with_wrong_shape_is_refused(tmp_path, monkeypatch, fresh_asset_cache):
    np.savez(tmp_path / "emoji_images.npz", images=np.zeros((3, 32, 32, 3), np.uint8))
    monkeypatch.setattr(emoji, "IMAGES_FILE", tmp_path / "emoji_images.npz")
    with pytest.raises(ValueError, match=r"\(3, 32, 32, 3\), expected uint8 \[1906, 64, 64, 3\]"):
        load("emoji", "test")


def build(tarball: Path, out: Path) -> subprocess.CompletedProcess:
    script = ROOT / "data_scripts" / "build_emoji.py"
    command = [sys.executable, str(script), "--tarball", str(tarball), "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True)


def test_build_refuses_a_tarball_with_the_wrong_hash(tmp_path):
    fake = tmp_path / "fake.tgz"
    with tarfile.open(fake, "w:gz") as tar:
        info = tarfile.TarInfo("package/emoji.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"[]"))
    result = build(fake, tmp_path / "out")
    assert result.returncode != 0
    assert "sha256 is" in result.stderr and f"expected {TARBALL_SHA256}" in result.stderr
    assert not (tmp_path / "out" / "emoji_images.npz").exists()


@pytest.mark.slow
@pytest.mark.skipif(not TARBALL.exists(), reason=f"npm tarball not at {TARBALL} (set MODBAL_EMOJI_TARBALL)")
def test_rebuild_from_the_tarball_is_byte_identical(tmp_path):
    result = build(TARBALL, tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("emoji_images.npz", "emoji_meta.json", "NOTICE"):
        assert (tmp_path / name).read_bytes() == (emoji.ASSET_DIR / name).read_bytes(), name
