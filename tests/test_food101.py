"""UPMC Food-101: the title-file quirks, the seeded validation hold-out, bad input, and the data script
from a file:// archive to a loadable dataset."""

import numpy as np
import pytest

from fixtures_real import FOOD_CLASSES, make_food101, resource_for, run_script, tar_gz, truncated_copy, write_image
from modbal_lib import data
from modbal_lib.data import food101
from modbal_lib.data.files import DatasetFileError, open_image
from modbal_lib.download import DATA_HUB, Resource


@pytest.mark.parametrize("header", [False, True])
def test_titles_with_or_without_header_and_commas_in_text(tmp_path, header):
    expected = make_food101(tmp_path, header=header)
    for split in ("train", "test"):
        rows = food101.read_titles(tmp_path / "texts" / f"{split}_titles.csv", sorted(FOOD_CLASSES))
        assert rows == expected[split]
    texts = {text for _, text, _ in expected["train"]}
    assert {"Easy dinner, quick and cheap", "Grandma's classic, with a twist, 1950", 'The "real" one, finally',
            'Mom\'s "famous" version'} <= texts


def test_splits_classes_and_paths(tmp_path):
    expected = make_food101(tmp_path, train_per_class=5)
    test = food101.load("test", tmp_path)
    assert test.class_names == sorted(FOOD_CLASSES) and test.num_outputs == 3
    assert test.kinds == {"image": "image", "text": "text"} and test.task == "multiclass"
    assert test.inputs["text"] == [text for _, text, _ in expected["test"]]
    assert [test.class_names[k] for k in test.labels] == [label for _, _, label in expected["test"]]
    assert test.inputs["image"][0].endswith("images/test/hot_dog/hot_dog_0.jpg")
    image = open_image(test.inputs["image"][0])
    assert image.dtype == np.uint8 and image.shape == (6, 8, 3)

    train, val = food101.load("train", tmp_path, val_size=4), food101.load("val", tmp_path, val_size=4)
    assert len(train) == 11 and len(val) == 4 and train.labels.dtype == np.int64
    assert not set(train.inputs["image"]) & set(val.inputs["image"])
    assert sorted(train.inputs["image"] + val.inputs["image"]) == sorted(
        str(tmp_path / "images" / "train" / label / name) for name, _, label in expected["train"])
    assert food101.load("val", tmp_path, val_size=4).inputs["image"] == val.inputs["image"]  # seeded
    assert food101.load("val", tmp_path, val_size=4, seed=1).inputs["image"] != val.inputs["image"]
    assert val.options == {"val_size": 4, "seed": 0, "drop_missing": False}
    assert len(food101.load("train", tmp_path, val_size=0)) == 15
    with pytest.raises(ValueError, match="no 'val' split"):
        food101.load("val", tmp_path, val_size=0)
    with pytest.raises(ValueError, match="between 0 and 14"):
        food101.load("train", tmp_path)  # the default 5,000 is more than this fixture holds


def test_default_root_and_dispatch(tmp_path, monkeypatch):
    monkeypatch.setenv("MODBAL_DATA", str(tmp_path))
    make_food101(tmp_path / "food101")
    assert len(data.load("food101", "test")) == 6
    monkeypatch.setenv("MODBAL_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetFileError, match="python data_scripts/food101.py"):
        food101.load("test")


def test_bad_rows_name_file_and_line(tmp_path):
    make_food101(tmp_path)
    titles = tmp_path / "texts" / "test_titles.csv"
    lines = titles.read_text().splitlines()
    titles.write_text("\n".join(lines[:2] + ["hot_dog_9.jpg only one comma"] + lines[2:]) + "\n")
    with pytest.raises(DatasetFileError, match=r"test_titles.csv:3: expected <image file>,<text>,<class>"):
        food101.load("test", tmp_path)
    titles.write_text("\n".join(lines + ["pizza_1.jpg,Pizza, hot,pizza"]) + "\n")
    with pytest.raises(DatasetFileError, match=r"test_titles.csv:7: class 'pizza' is not one of the image folders"):
        food101.load("test", tmp_path)


def test_missing_image_is_an_error_unless_dropped(tmp_path):
    make_food101(tmp_path)
    (tmp_path / "images" / "test" / "apple_pie" / "apple_pie_1.jpg").unlink()
    with pytest.raises(DatasetFileError, match=r"1 files are missing:\n  .*apple_pie_1.jpg"):
        food101.load("test", tmp_path)
    kept = food101.load("test", tmp_path, drop_missing=True)
    assert len(kept) == 5 and not any(path.endswith("apple_pie_1.jpg") for path in kept.inputs["image"])


def test_corrupt_and_truncated_images_raise_naming_the_file(tmp_path):
    good = write_image(tmp_path / "good.jpg", size=(64, 48))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image")
    assert open_image(good).shape == (48, 64, 3)
    for path in (truncated, garbage):
        with pytest.raises(DatasetFileError, match=f"image file {path} is corrupt or truncated"):
            open_image(path)
    with pytest.raises(DatasetFileError, match="does not exist"):
        open_image(tmp_path / "absent.jpg")


def test_script_downloads_verifies_unpacks_and_checks(tmp_path, monkeypatch, capsys):
    make_food101(tmp_path / "release")
    archive = tar_gz(tmp_path / "release", tmp_path / "UPMC_Food101.tar.gz", top="UPMC_Food101")
    monkeypatch.setitem(DATA_HUB, "food101", resource_for(archive, "tar.gz"))
    monkeypatch.setenv("MODBAL_DATA", str(tmp_path / "data"))
    assert run_script("food101", []) == 0
    assert "15 train + 6 test pairs, 3 classes" in capsys.readouterr().out
    assert (tmp_path / "data" / "downloads" / "UPMC_Food101.tar.gz").exists()
    assert len(data.load("food101", "val", val_size=3)) == 3
    monkeypatch.setitem(DATA_HUB, "food101", Resource((tmp_path / "gone.tar.gz").as_uri()))
    assert run_script("food101", []) == 0  # already prepared: nothing fetched


def test_script_rejects_a_truncated_archive_and_leaves_nothing(tmp_path, capsys):
    make_food101(tmp_path / "release")
    archive = tar_gz(tmp_path / "release", tmp_path / "UPMC_Food101.tar.gz")
    cut = truncated_copy(archive, tmp_path / "cut.tar.gz", keep=0.5)
    assert run_script("food101", ["--archive", str(cut), "--root", str(tmp_path / "food101")]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err
    assert not (tmp_path / "food101").exists()
