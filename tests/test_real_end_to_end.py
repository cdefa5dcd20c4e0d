"""The whole path for the real datasets, on fixtures in their true layouts: archive on disk -> download
(file:// URL) -> verify -> unpack -> load -> extract features (offline encoders) -> train -> bench table.

The features command extracts everything, including the protocol's impaired test sets; bench then
runs with every encoder disabled, which proves it reads only the cache.
"""

import json

import pytest

from fixtures_real import (
    CREMAD_TEST,
    CREMAD_TRAIN,
    make_cremad_media,
    make_food101,
    make_hateful_memes,
    make_mmimdb,
    resource_for,
    run_script,
    tar_gz,
    write_classes,
    write_split,
    write_votes,
    zip_folder,
)
from modbal_lib import features as features_module
from modbal_lib.cli import main
from modbal_lib.download import DATA_HUB


@pytest.fixture(autouse=True)
def own_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("MODBAL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MODBAL_CACHE", str(tmp_path / "cache"))


def no_encoder(kind, inputs, encoder, **options):
    raise AssertionError(f"bench ran encoder {encoder} on {len(inputs)} {kind} inputs; the cache should have them")


def extract_then_bench(dataset, methods, options, out, monkeypatch, capsys) -> tuple[list[str], dict]:
    """``features`` (everything, with the impaired test sets), then ``bench`` with the encoders switched off."""
    assert main(["features", "--dataset", dataset, "--impairments", "--seeds", "1", "--workers", "0",
                 "--dataset-options", options]) == 0
    extracted = capsys.readouterr().out
    monkeypatch.setattr(features_module, "encode", no_encoder)
    assert main(["bench", "--dataset", dataset, "--methods", methods, "--seeds", "1", "--epochs", "2",
                 "--dataset-options", options, "--out", str(out), "--device", "cpu"]) == 0
    capsys.readouterr()
    return extracted.splitlines(), json.loads((out / "results.json").read_text())


def check_results(results, metric, modalities, methods):
    assert results["metric"] == metric and results["modalities"] == modalities
    assert list(results["methods"]) == methods
    for entry in results["methods"].values():
        values = [entry["full"]["mean"]] + [entry[kind][m]["mean"] for kind in ("missing", "noisy") for m in modalities]
        assert all(0 <= value <= 100 for value in values)
        assert entry["missing"]["delta_gap"]["mean"] == pytest.approx(
            abs(entry["missing"][modalities[0]]["mean"] - entry["missing"][modalities[1]]["mean"]))


def test_food101_from_archive_to_bench_table(tmp_path, monkeypatch, capsys):
    make_food101(tmp_path / "release")
    archive = tar_gz(tmp_path / "release", tmp_path / "UPMC_Food101.tar.gz", top="UPMC_Food101")
    monkeypatch.setitem(DATA_HUB, "food101", resource_for(archive, "tar.gz"))
    assert run_script("food101", []) == 0
    assert "15 train + 6 test pairs, 3 classes" in capsys.readouterr().out
    lines, results = extract_then_bench("food101", "joint,balgrad", "val_size=3", tmp_path / "bench",
                                        monkeypatch, capsys)
    assert lines[0].startswith("food101 train image: efficientnet_lite0 [12, 1280] extracted")
    assert lines[5].startswith("food101 test  text: minilm [6, 384] extracted")
    assert lines[5].endswith("+ 2 impaired test sets (2 extracted)")
    check_results(results, "accuracy", ["image", "text"], ["joint", "balgrad"])
    table = (tmp_path / "bench" / "results.md").read_text().splitlines()
    assert table[0] == "| accuracy | joint | balgrad |" and table[2].startswith("| Full | ")


def test_hateful_memes_from_users_zip_to_bench_table(tmp_path, monkeypatch, capsys):
    make_hateful_memes(tmp_path / "release")
    archive = zip_folder(tmp_path / "release", tmp_path / "hateful_memes.zip", top="data")
    assert run_script("hateful_memes", ["--zip", str(archive)]) == 0  # the user's own zip: never downloaded
    assert "5 train, 2 val, 2 test memes" in capsys.readouterr().out
    lines, results = extract_then_bench("hateful_memes", "joint,goal", "val_file=dev_unseen", tmp_path / "bench",
                                        monkeypatch, capsys)
    assert lines[0].startswith("hateful_memes train image: efficientnet_lite0 [5, 1280] extracted")
    assert lines[5].startswith("hateful_memes test  text: minilm [2, 384] extracted")
    assert lines[5].endswith("+ 2 impaired test sets (2 extracted)")
    check_results(results, "auroc", ["image", "text"], ["joint", "goal"])


def test_mmimdb_from_archive_to_bench_table(tmp_path, monkeypatch, capsys):
    make_mmimdb(tmp_path / "release")
    archive = tar_gz(tmp_path / "release", tmp_path / "mmimdb.tar.gz")
    monkeypatch.setitem(DATA_HUB, "mmimdb", resource_for(archive, "tar.gz"))
    assert run_script("mmimdb", []) == 0
    assert "4 train, 2 val, 2 test movies" in capsys.readouterr().out
    lines, results = extract_then_bench("mmimdb", "joint,cggm", "target=genres", tmp_path / "bench",
                                        monkeypatch, capsys)
    assert lines[0].startswith("mmimdb train image: efficientnet_lite0 [4, 1280] extracted")
    check_results(results, "macro_f1", ["image", "text"], ["joint", "cggm"])


def test_cremad_from_clone_to_bench_table(tmp_path, monkeypatch, capsys):
    pytest.importorskip("av", reason="PyAV (the optional 'media' extra) is needed to decode the FLV video")
    from test_media import write_flv

    clone = make_cremad_media(tmp_path / "CREMA-D", CREMAD_TRAIN + CREMAD_TEST)
    for clip in CREMAD_TRAIN + CREMAD_TEST:
        write_flv(clone / "VideoFlash" / f"{clip}.flv", seconds=1.2)
    served = tmp_path / "served"
    (served / "LICENSE").parent.mkdir()
    (served / "LICENSE").write_text("MIT License (made-up copy for the test)\n")
    for name, path in {"cremad_summary_table": write_votes(served / "summaryTable.csv"),
                       "ogmge_cremad_train": write_split(served / "train.csv", CREMAD_TRAIN),
                       "ogmge_cremad_test": write_split(served / "test.csv", CREMAD_TEST),
                       "ogmge_cremad_classes": write_classes(served / "stat.csv"),
                       "ogmge_license": served / "LICENSE"}.items():
        monkeypatch.setitem(DATA_HUB, name, resource_for(path))
    assert run_script("cremad", ["--from-folder", str(clone)]) == 0
    assert "test: 3 clips in OGM-GE's list, 3 with both media files" in capsys.readouterr().out
    lines, results = extract_then_bench("cremad", "joint,goal", "val_size=2", tmp_path / "bench", monkeypatch, capsys)
    assert lines[0].startswith("cremad train audio: spectrogram [8, 1, 257, 188] extracted")
    assert lines[1].startswith("cremad train video: efficientnet_lite0 [8, 1280] extracted")
    check_results(results, "accuracy", ["audio", "video"], ["joint", "goal"])
