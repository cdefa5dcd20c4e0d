"""Hateful Memes: int and zero-padded ids, escaped slashes, split files, missing labels/fields, and the
script that unpacks the user's own zip."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from fixtures_real import make_hateful_memes, run_script, truncated_copy, zip_folder
from modbal_lib import data
from modbal_lib.data import hateful_memes
from modbal_lib.data.files import DatasetFileError, open_image


def test_read_memes_casts_ids_and_unescapes_slashes(tmp_path):
    expected = make_hateful_memes(tmp_path)
    raw = (tmp_path / "train.jsonl").read_text()
    assert '"img\\/42953.png"' in raw and '"id":"08291"' in raw  # the quirks are really in the file
    memes = hateful_memes.read_memes(tmp_path / "train.jsonl")
    assert [(m["id"], m["img"], m["text"], m["label"]) for m in memes] == expected["train"]
    assert memes[0]["img"] == "img/42953.png" and memes[1]["id"] == 8291


def test_splits_labels_and_images(tmp_path):
    expected = make_hateful_memes(tmp_path)
    train = hateful_memes.load("train", tmp_path)
    assert len(train) == 5 and train.class_names == ["not_hateful", "hateful"]
    assert train.labels.dtype == np.int64 and train.labels.tolist() == [0, 1, 1, 0, 0]
    assert train.inputs["image"][0] == str(tmp_path / "img" / "42953.png")
    assert train.inputs["text"][1] == "made-up hateful example one"
    val = hateful_memes.load("val", tmp_path)
    assert [t for t in val.inputs["text"]] == [text for _, _, text, _ in expected["dev_seen"]]
    assert len(hateful_memes.load("val", tmp_path, val_file="dev_unseen")) == 3
    assert len(hateful_memes.load("test", tmp_path)) == 2
    assert len(hateful_memes.load("test", tmp_path, test_file="test_unseen")) == 1
    with pytest.raises(ValueError, match="val_file='dev'"):
        hateful_memes.load("val", tmp_path, val_file="dev")


def test_transparent_png_is_composited_on_white(tmp_path):
    make_hateful_memes(tmp_path)
    pixel = open_image(tmp_path / "img" / "42953.png")[0, 0]  # colour (0, 80, 160) at alpha 128
    assert pixel.tolist() == pytest.approx([127, 167, 207], abs=1)


def test_test_file_without_labels_says_so(tmp_path):
    make_hateful_memes(tmp_path, test_labels=False)
    with pytest.raises(DatasetFileError, match=r"test_seen.jsonl:1: no 'label' field. The phase-1 release"):
        hateful_memes.load("test", tmp_path)
    assert len(hateful_memes.load("train", tmp_path)) == 5


@pytest.mark.parametrize("line, message", [
    ('{"id": 5, "img": "img/00005.png", "label": 0}', r"train.jsonl:7: missing field 'text'"),
    ('{"id": "x5", "img": "img/00005.png", "label": 0, "text": "t"}', r"train.jsonl:7: id 'x5' is not an integer"),
    ('{"id": 5, "img": "img/00005.png", "label": 2, "text": "t"}', r"train.jsonl:7: label 2 must be 0 or 1"),
    ('{"id": 5, "img": "img/00005.png", ', r"train.jsonl:7: not valid JSON"),
    ('[5, "img/00005.png"]', r"train.jsonl:7: expected a JSON object"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, line, message):
    make_hateful_memes(tmp_path)
    with open(tmp_path / "train.jsonl", "a") as file:
        file.write(line + "\n")
    with pytest.raises(DatasetFileError, match=message):
        hateful_memes.load("train", tmp_path)


def test_missing_image(tmp_path):
    make_hateful_memes(tmp_path)
    (tmp_path / "img" / "08291.png").unlink()
    with pytest.raises(DatasetFileError, match=r"08291.png"):
        hateful_memes.load("train", tmp_path)
    assert len(hateful_memes.load("train", tmp_path, drop_missing=True)) == 4


def test_script_unpacks_the_users_zip(tmp_path, monkeypatch, capsys):
    make_hateful_memes(tmp_path / "release")
    archive = zip_folder(tmp_path / "release", tmp_path / "hateful_memes.zip", top="data")
    monkeypatch.setenv("MODBAL_DATA", str(tmp_path / "datasets"))
    assert run_script("hateful_memes", ["--zip", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "not a release known to MMF" in out and "5 train, 2 val, 2 test memes" in out
    assert len(data.load("hateful_memes", "val")) == 2
    assert run_script("hateful_memes", []) == 0  # no zip: just checks the prepared folder


def test_script_errors_leave_nothing(tmp_path, capsys):
    root = tmp_path / "hateful_memes"
    assert run_script("hateful_memes", ["--root", str(root)]) == 1
    assert "pass --zip PATH" in capsys.readouterr().err
    assert run_script("hateful_memes", ["--zip", str(tmp_path / "absent.zip"), "--root", str(root)]) == 1
    make_hateful_memes(tmp_path / "release")
    archive = zip_folder(tmp_path / "release", tmp_path / "hm.zip", top="data")
    cut = truncated_copy(archive, tmp_path / "cut.zip")
    assert run_script("hateful_memes", ["--zip", str(cut), "--root", str(root)]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err
    assert not root.exists()


def test_script_explains_a_phase_one_zip(tmp_path, capsys):
    release = tmp_path / "release"
    make_hateful_memes(release)
    for stem in ("dev_seen", "dev_unseen", "test_seen", "test_unseen"):
        (release / f"{stem}.jsonl").unlink()
    (release / "dev.jsonl").write_text(json.dumps({"id": 1, "img": "img/00001.png", "label": 0, "text": "x"}) + "\n")
    archive = zip_folder(release, tmp_path / "phase1.zip", top="data")
    assert run_script("hateful_memes", ["--zip", str(archive), "--root", str(tmp_path / "hm")]) == 1
    err = capsys.readouterr().err
    assert "missing:\n  dev_seen.jsonl\n  test_seen.jsonl\n" in err and "phase-1 release" in err
    assert not (tmp_path / "hm").exists()


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs the zip command to make an encrypted zip")
def test_script_with_password_protected_zip(tmp_path, capsys):
    make_hateful_memes(tmp_path / "data")
    archive = tmp_path / "locked.zip"
    subprocess.run(["zip", "-q", "-r", "-P", "pw", str(archive), "data"], cwd=tmp_path, check=True)
    root = str(tmp_path / "hm")
    assert run_script("hateful_memes", ["--zip", str(archive), "--root", root]) == 1
    assert "needs a password (pass --password)" in capsys.readouterr().err
    assert run_script("hateful_memes", ["--zip", str(archive), "--root", root, "--password", "pw"]) == 0
