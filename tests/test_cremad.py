"""CREMA-D: clip names, OGM-GE split files (BOM, CRLF), crowd votes (ties), the loader, the data
script; and the parsers on the real metadata files when they are present."""

import wave

import numpy as np
import pytest

from conftest import SHARED_CREMAD
from fixtures_real import (
    CREMAD_TEST,
    CREMAD_TRAIN,
    load_script,
    make_cremad,
    make_cremad_media,
    resource_for,
    write_classes,
    write_split,
    write_votes,
)
from modbal_lib import data
from modbal_lib.data import cremad
from modbal_lib.data.cremad import Vote
from modbal_lib.data.files import DatasetFileError, read_lines
from modbal_lib.download import DATA_HUB

real = pytest.mark.skipif(not SHARED_CREMAD.is_dir(), reason="real CREMA-D metadata not present")


def test_parse_clip_name():
    expected = {"actor": 1001, "sentence": "DFA", "emotion": "ANG", "level": "XX"}
    assert cremad.parse_clip_name("1001_DFA_ANG_XX") == expected
    assert cremad.parse_clip_name("1091_IEO_HAP_HI.wav")["level"] == "HI"


@pytest.mark.parametrize("name, message", [
    ("1001_DFA_ANG", "4 parts"),
    ("1000_DFA_ANG_XX", "actor '1000' must be a number from 1001 to 1091"),
    ("10x1_DFA_ANG_XX", "actor '10x1'"),
    ("1001_ABC_ANG_XX", "sentence 'ABC'"),
    ("1001_DFA_SUR_XX", "emotion 'SUR'"),
    ("1040_ITH_SAD_X", "level 'X'"),  # a real misnamed file in old clones of the repository
])
def test_parse_clip_name_rejects_each_bad_part(name, message):
    with pytest.raises(ValueError, match=message):
        cremad.parse_clip_name(name)


def test_read_split_with_bom_and_crlf(tmp_path):
    path = write_split(tmp_path / "train.csv", CREMAD_TRAIN)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf1001_DFA_ANG_XX,ANG\r\n")
    clips = cremad.read_split(path)
    assert [clip for clip, _ in clips] == CREMAD_TRAIN
    assert [label for _, label in clips] == [5, 1, 2, 3, 4, 0, 5, 1, 2, 0]  # NEU HAP SAD FEA DIS ANG order


@pytest.mark.parametrize("row, message", [
    ("1001_DFA_ANG_XX,HAP", "label 'HAP' differs from the emotion 'ANG' in the clip name"),
    ("1001_DFA_ANG_XX,ANG,extra", r"expected <clip>,<emotion>"),
    ("1001_DFA_ANG_X,ANG", "bad CREMA-D clip name '1001_DFA_ANG_X': level 'X'"),
])
def test_read_split_bad_rows(tmp_path, row, message):
    path = write_split(tmp_path / "train.csv", CREMAD_TRAIN[:2])
    path.write_bytes(path.read_bytes() + row.encode() + b"\r\n")
    with pytest.raises(DatasetFileError, match=f"train.csv: row 3: {message}"):
        cremad.read_split(path)


def test_read_votes_with_ties(tmp_path):
    votes = cremad.read_votes(write_votes(tmp_path / "summaryTable.csv"))
    assert list(votes) == ["1001_DFA_ANG_XX", "1001_IEO_HAP_LO", "1002_IOM_SAD_XX", "1002_ITH_FEA_XX"]
    assert votes["1001_DFA_ANG_XX"]["voice"] == Vote(("ANG",), (47.33,))
    assert votes["1002_IOM_SAD_XX"]["voice"] == Vote(("NEU", "SAD"), (66.0, 47.75))
    assert votes["1002_ITH_FEA_XX"]["voice"] == Vote(("ANG", "DIS", "FEA"), (39.0, 89.0, 83.67))
    assert votes["1002_ITH_FEA_XX"]["multimodal"] == Vote(("FEA", "NEU"), (40.0, 82.33))
    assert votes["1001_IEO_HAP_LO"]["face"] == Vote(("HAP",), (57.0,))


def test_vote_agreement_counts_ties_fractionally(tmp_path):
    votes = cremad.read_votes(write_votes(tmp_path / "summaryTable.csv"))
    # voice: ANG yes, HAP no (N), SAD tie of 2 (1/2), FEA tie of 3 (1/3) -> (1 + 0.5 + 1/3) / 4
    agreement = cremad.vote_agreement(votes)
    assert agreement["voice"] == pytest.approx(100 * (1 + 1 / 2 + 1 / 3) / 4)
    assert agreement["face"] == pytest.approx(100 * 3 / 4)  # SAD clip voted N
    assert agreement["multimodal"] == pytest.approx(100 * (1 + 1 + 1 + 1 / 2) / 4)
    with pytest.raises(ValueError):
        cremad.vote_agreement({})


@pytest.mark.parametrize("rows, message", [
    ([("1001_DFA_ANG_XX", "A:X", "1:2", "A", "1", "A", "1")], "vote 'A:X' / level '1:2'"),
    ([("1001_DFA_ANG_XX", "A:D", "37.2", "A", "1", "A", "1")], "vote 'A:D' / level '37.2'"),
    ([("1001_DFA_ANG_XX", "A", "high", "A", "1", "A", "1")], "level 'high' is not a number"),
    ([("1001_DFA_ANG_XX", "A", "1", "A", "1", "A", "1")] * 2, "row 3: clip 1001_DFA_ANG_XX appears twice"),
    ([("1001_DFA_ANG_XX", "A", "1", "A", "1", "A")], "row 2: 7 fields, the header has 8"),
])
def test_read_votes_bad_rows(tmp_path, rows, message):
    with pytest.raises(DatasetFileError, match=message):
        cremad.read_votes(write_votes(tmp_path / "summaryTable.csv", rows))


def test_read_votes_missing_column(tmp_path):
    path = tmp_path / "summaryTable.csv"
    path.write_text('"","FileName","VoiceVote","VoiceLevel","FaceVote","FaceLevel"\n'
                    '"1","1001_DFA_ANG_XX","A","1","A","1"\n')
    with pytest.raises(DatasetFileError, match=r"missing column\(s\) \['MultiModalVote', 'MultiModalLevel'\]"):
        cremad.read_votes(path)


def test_load_splits_and_media(tmp_path):
    make_cremad(tmp_path)
    test = cremad.load("test", tmp_path)
    assert test.modalities == ("audio", "video") and test.kinds == {"audio": "audio", "video": "video"}
    assert test.class_names == ["neutral", "happy", "sad", "fear", "disgust", "anger"]
    assert test.labels.tolist() == [3, 4, 0]
    assert test.inputs["audio"][0] == str(tmp_path / "AudioWAV" / "1010_TSI_FEA_XX.wav")
    assert test.inputs["video"][0] == str(tmp_path / "VideoFlash" / "1010_TSI_FEA_XX.flv")
    with wave.open(test.inputs["audio"][0]) as audio:
        assert audio.getframerate() == 16000 and audio.getnframes() == 3200
    train, val = cremad.load("train", tmp_path, val_size=3), cremad.load("val", tmp_path, val_size=3)
    assert len(train) == 7 and len(val) == 3
    assert sorted(train.inputs["audio"] + val.inputs["audio"]) == sorted(
        str(tmp_path / "AudioWAV" / f"{clip}.wav") for clip in CREMAD_TRAIN)
    assert len(data.load("cremad", "train", root=tmp_path, val_size=0)) == 10


def test_load_missing_media(tmp_path):
    make_cremad(tmp_path)
    (tmp_path / "VideoFlash" / "1011_WSI_DIS_XX.flv").unlink()
    with pytest.raises(DatasetFileError, match=r"cremad: 1 files are missing:\n  .*1011_WSI_DIS_XX.flv"):
        cremad.load("test", tmp_path)
    kept = cremad.load("test", tmp_path, drop_missing=True)
    assert kept.labels.tolist() == [3, 0] and len(kept.inputs["video"]) == 2


@pytest.fixture
def cremad_hub(tmp_path, monkeypatch):
    """DATA_HUB entries for the metadata files, served from made-up copies via file:// URLs."""
    served = tmp_path / "served"
    files = {
        "cremad_summary_table": write_votes(served / "summaryTable.csv"),
        "ogmge_cremad_train": write_split(served / "train.csv", CREMAD_TRAIN),
        "ogmge_cremad_test": write_split(served / "test.csv", CREMAD_TEST),
        "ogmge_cremad_classes": write_classes(served / "stat.csv"),
        "ogmge_license": served / "LICENSE",
    }
    (served / "LICENSE").write_text("MIT License (made-up copy for the test)\n")
    for name, path in files.items():
        monkeypatch.setitem(DATA_HUB, name, resource_for(path))
    return files


@pytest.mark.parametrize("layout", ["top", "data"])
def test_script_from_folder(tmp_path, cremad_hub, capsys, layout):
    clone = tmp_path / "CREMA-D"
    make_cremad_media(clone / "data" if layout == "data" else clone, CREMAD_TRAIN + CREMAD_TEST[:2])
    root = tmp_path / "cremad"
    assert load_script("cremad").main(["--from-folder", str(clone), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "train: 10 clips in OGM-GE's list, 10 with both media files" in out
    assert "test: 3 clips in OGM-GE's list, 2 with both media files" in out and "drop_missing=True" in out
    assert "crowd recognises the acted emotion: voice 45.8%, face 75.0%, multimodal 87.5%" in out
    assert (root / "AudioWAV").is_symlink() and (root / "ogm-ge" / "stat.csv").exists()
    assert len(cremad.load("train", root, val_size=2)) == 8
    assert load_script("cremad").main(["--from-folder", str(clone), "--root", str(root)]) == 0  # rerun is fine


def test_script_refuses_lfs_pointers_and_missing_git_lfs(tmp_path, cremad_hub, monkeypatch, capsys):
    clone = make_cremad_media(tmp_path / "CREMA-D", CREMAD_TRAIN)
    (clone / "AudioWAV" / "1001_DFA_ANG_XX.wav").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 72862\n")
    script = load_script("cremad")
    assert script.main(["--from-folder", str(clone), "--root", str(tmp_path / "cremad")]) == 1
    assert "1 of 10 .wav files are Git LFS pointers" in capsys.readouterr().err
    monkeypatch.setattr(script, "git_lfs_available", lambda: False)
    assert script.main(["--root", str(tmp_path / "cremad")]) == 1
    assert "needs git and git-lfs" in capsys.readouterr().err
    assert script.main(["--from-folder", str(tmp_path / "empty"), "--root", str(tmp_path / "cremad")]) == 1
    assert "has no AudioWAV/ and VideoFlash/ folders" in capsys.readouterr().err


@real
def test_real_split_files():
    train = cremad.read_split(SHARED_CREMAD / "ogm-ge-splits" / "train.csv")
    test = cremad.read_split(SHARED_CREMAD / "ogm-ge-splits" / "test.csv")
    assert len(train) == 6698 and len(test) == 744
    assert not {clip for clip, _ in train} & {clip for clip, _ in test}
    for clips in (train, test):
        labels = np.array([label for _, label in clips])
        assert set(labels.tolist()) == set(range(6))
    assert [line for _, line in read_lines(SHARED_CREMAD / "ogm-ge-splits" / "stat.csv")] == cremad.EMOTIONS
    assert (SHARED_CREMAD / "ogm-ge-splits" / "stat.csv").read_bytes().startswith(b"\xef\xbb\xbf")


@real
def test_real_votes():
    votes = cremad.read_votes(SHARED_CREMAD / "summaryTable.csv")
    assert len(votes) == 7442
    assert all(set(modes) == {"voice", "face", "multimodal"} for modes in votes.values())
    assert any(len(modes["voice"].emotions) > 1 for modes in votes.values())  # ties really occur
    assert all(len(v.emotions) == len(v.levels) and all(0 <= x <= 100 for x in v.levels)
               for modes in votes.values() for v in modes.values())
    split_clips = {clip for name in ("train", "test") for clip, _ in
                   cremad.read_split(SHARED_CREMAD / "ogm-ge-splits" / f"{name}.csv")}
    assert split_clips == set(votes)
    agreement = cremad.vote_agreement(votes)
    assert all(0 < share < 100 for share in agreement.values())
