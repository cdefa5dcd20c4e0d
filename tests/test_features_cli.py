"""``python -m modbal_lib features``: extraction into the cache that load_features reads, resumable
chunks, clean failure on a corrupt file, the protocol's impaired test sets, encoder sets, workers."""

import pytest
import torch

from fixtures_real import features_command
from modbal_lib import features as features_module
from modbal_lib.cache import feature_key, feature_path
from modbal_lib.cli import main
from modbal_lib.data import load
from modbal_lib.data.files import DatasetFileError
from modbal_lib.encoders import CLIP, compute_mode, encode, encoder_set
from modbal_lib.features import (Extraction, Impairment, chunks_key, extract, feature_spec, load_features, part_path,
                                 precompute)

CHEAP = {"image": "pixels:8", "text": "minilm"}  # pixels from files are cached (and chunked) like a network's output
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODBAL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "features"


def test_command_fills_the_cache_that_load_features_reads(food, encode_calls, capsys):
    assert main(features_command(food)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("food101 train image: pixels:8 [12, 3, 8, 8] extracted in ")
    assert lines[5].startswith("food101 test  text: minilm [6, 384] extracted in ") and len(lines) == 7
    assert len(encode_calls) == 6
    assert main(features_command(food)) == 0
    assert capsys.readouterr().out.splitlines()[3] == "food101 val   text: minilm [3, 384] cached"
    train = load_features("food101", "train", encoders=CHEAP, root=food, val_size=3)
    assert len(encode_calls) == 6  # neither the second command nor load_features ran an encoder
    images = load("food101", "train", root=food, val_size=3).inputs["image"]
    assert torch.equal(train.features["image"], encode("image", images, "pixels:8"))
    assert torch.allclose(train.features["text"].norm(dim=1), torch.ones(12), atol=1e-5)  # normalised on load


def test_interrupted_extraction_resumes_from_its_saved_chunks(food, monkeypatch, own_cache):
    ds = load("food101", "train", root=food, val_size=3)
    spec = feature_spec(ds, "image", "pixels:8", None, CPU)
    key, entry = chunks_key(spec), feature_path(feature_key(spec))
    rows = []

    def power_cut_at_second_chunk(kind, inputs, encoder, **options):
        rows.append(len(inputs))
        if len(rows) == 2:
            raise RuntimeError("power cut")
        return encode(kind, inputs, encoder, **options)

    how = Extraction(batch_size=5, chunk_rows=5)
    monkeypatch.setattr(features_module, "encode", power_cut_at_second_chunk)
    with pytest.raises(RuntimeError, match="power cut"):
        extract(ds, "image", "pixels:8", None, CPU, how)
    assert part_path(key, 0, how).exists() and not part_path(key, 1, how).exists() and not entry.exists()
    assert sorted(p.name for p in own_cache.iterdir()) == [part_path(key, 0, how).name]  # no temporary files left

    rows.clear()
    monkeypatch.setattr(features_module, "encode", lambda kind, inputs, encoder, **options: (
        rows.append(len(inputs)) or encode(kind, inputs, encoder, **options)))
    features, status = extract(ds, "image", "pixels:8", None, CPU, how)
    assert rows == [5, 2] and status == "resumed"  # rows 0-4 came from the saved chunk; 5-9 and 10-11 were extracted
    assert torch.equal(features, encode("image", ds.inputs["image"], "pixels:8"))
    assert [p.name for p in own_cache.iterdir()] == [entry.name]  # entry written, chunks removed


def test_a_damaged_chunk_is_reported_and_extracted_again(food, own_cache, encode_calls):
    ds = load("food101", "train", root=food, val_size=3)
    key = chunks_key(feature_spec(ds, "image", "pixels:8", None, CPU))
    how = Extraction(batch_size=5, chunk_rows=5)
    part_path(key, 1, how).parent.mkdir(parents=True)
    part_path(key, 1, how).write_bytes(b"half a chunk")
    with pytest.warns(UserWarning, match=r"part0001.rows5.batch5.pt: unreadable .* extracting those rows again"):
        assert extract(ds, "image", "pixels:8", None, CPU, how)[1] == "extracted"
    assert [rows for _, _, rows in encode_calls] == [5, 5, 2]


def test_chunks_of_another_chunk_size_are_not_mixed_in(food, monkeypatch):
    ds = load("food101", "test", root=food)

    def fail_on_second_chunk(kind, inputs, encoder, **options):
        if inputs[0] != ds.inputs["image"][0]:
            raise RuntimeError("stopped")
        return encode(kind, inputs, encoder, **options)

    monkeypatch.setattr(features_module, "encode", fail_on_second_chunk)
    with pytest.raises(RuntimeError, match="stopped"):
        extract(ds, "image", "pixels:8", None, CPU, Extraction(batch_size=1, chunk_rows=4))
    monkeypatch.setattr(features_module, "encode", encode)
    with pytest.warns(UserWarning, match=r"removing 1 feature chunks .* other chunk or batch sizes than this one's "
                                         r"\(rows5.batch1\), e.g. .*part0000.rows4.batch1.pt") as record:
        features, status = extract(ds, "image", "pixels:8", None, CPU, Extraction(batch_size=1, chunk_rows=5))
    assert len(record) == 1 and status == "extracted"  # nothing of the other size was used
    assert torch.equal(features, encode("image", ds.inputs["image"], "pixels:8"))


def test_corrupt_image_names_the_file_and_leaves_no_entry(food, own_cache, capsys):
    bad = food / "images" / "test" / "caesar_salad" / "caesar_salad_1.jpg"  # test row 6 of 6
    good_bytes = bad.read_bytes()
    bad.write_bytes(good_bytes[:40])  # a truncated JPEG
    assert main(features_command(food, "--splits", "test")) == 1
    error = capsys.readouterr().err
    # the same command fails again until the file is fixed: no "the same command resumes" hint
    assert error.startswith(f"error: image file {bad} is corrupt or truncated") and "resumes" not in error
    assert not own_cache.exists() or not list(own_cache.iterdir())  # one chunk: nothing at all

    assert main(features_command(food, "--splits", "test", "--chunk-rows", "4", "--batch-size", "4")) == 1
    assert [p.name[64:] for p in own_cache.iterdir()] == [".part0000.rows4.batch4.pt"]  # rows 0-3 kept for the rerun
    capsys.readouterr()
    bad.write_bytes(good_bytes)
    assert main(features_command(food, "--splits", "test", "--chunk-rows", "4", "--batch-size", "4")) == 0
    # the fixed file changed the inputs' fingerprint, not that of rows 0-3: their chunk was reused
    assert capsys.readouterr().out.startswith("food101 test  image: pixels:8 [6, 3, 8, 8] resumed from the chunks")
    assert sorted(p.suffixes[-1] for p in own_cache.iterdir()) == [".pt", ".pt"]  # image and text entries
    assert not list(own_cache.glob("*.part*"))
    with pytest.raises(DatasetFileError, match="absent.jpg does not exist"):
        encode("image", [food / "absent.jpg"], "pixels:8")


def test_impaired_test_sets_serve_every_seed_and_ratio(food, encode_calls):
    records = precompute("food101", ("test",), encoders=CHEAP, impairments=True, seeds=(0, 1), root=food)
    assert [(r["modality"], r["impairment"], r["status"]) for r in records] == [
        (m, impairment, "extracted") for m in ("image", "text")
        for impairment in (None, "missing", "noisy, seed 0", "noisy, seed 1")
    ]
    before = len(encode_calls)
    for modality in ("image", "text"):
        for seed in (0, 1):
            for impairment in (Impairment(modality, "missing", seed=seed), Impairment(modality, "noisy", seed=seed),
                               Impairment(modality, "missing", ratio=0.5, seed=seed)):
                load_features("food101", "test", encoders=CHEAP, impairment=impairment, root=food)
    assert len(encode_calls) == before  # evaluate's whole protocol for seeds 0 and 1 is already cached
    again = precompute("food101", ("test",), encoders=CHEAP, impairments=True, seeds=(0, 1), root=food)
    assert {r["status"] for r in again} == {"cached"}


def test_workers_read_files_in_parallel_with_the_same_result(food):
    images = load("food101", "test", root=food).inputs["image"]
    assert torch.equal(encode("image", images, "pixels:8", workers=2, batch_size=4),
                       encode("image", images, "pixels:8"))


def test_encoder_sets_and_precision():
    kinds = {"picture": "image", "caption": "text", "voice": "audio", "face": "video", "extra": "vector"}
    assert encoder_set("balgrad", kinds) == {
        "picture": "hf:google/vit-base-patch16-224-in21k", "caption": "hf:bert-base-uncased",
        "voice": "spectrogram", "face": "efficientnet_lite0", "extra": "identity"}
    assert encoder_set("clip", kinds) == {"picture": CLIP, "caption": CLIP, "voice": "spectrogram", "face": CLIP,
                                          "extra": "identity"}
    assert encoder_set("offline", kinds)["picture"] == "efficientnet_lite0"
    with pytest.raises(ValueError, match="unknown encoder set 'vit'; known: offline, balgrad, clip"):
        encoder_set("vit", kinds)
    seesaw = load_features("seesaw", "test", encoders="offline", num_samples=300)
    assert torch.equal(seesaw.features["easy"], load_features("seesaw", "test", num_samples=300).features["easy"])
    assert compute_mode(CPU) == "cpu" and compute_mode(torch.device("cuda")) == "cuda-fp16"


def test_precision_enters_the_cache_key(monkeypatch):
    monkeypatch.setenv("MODBAL_PRECISION", "bf16")
    assert compute_mode(torch.device("cuda")) == "cuda-bf16" and compute_mode(CPU) == "cpu"
    monkeypatch.setenv("MODBAL_PRECISION", "int8")
    with pytest.raises(ValueError, match="MODBAL_PRECISION='int8': expected one of fp16, bf16, fp32"):
        compute_mode(torch.device("cuda"))


def test_emoji_command_output_is_one_line_per_split_and_modality(monkeypatch, capsys):
    # the real encoders on all 1,906 emojis take minutes here; the command's bookkeeping does not need them
    monkeypatch.setattr(features_module, "encode", lambda kind, inputs, encoder, **options: torch.ones(len(inputs), 2))
    assert main(["features", "--dataset", "emoji"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:6]] == [
        f"emoji {split:5s} {m}" for split in ("train", "val", "test") for m in ("image", "text")]
    assert lines[0].startswith("emoji train image: efficientnet_lite0 [1335, 2] extracted") and len(lines) == 7
    assert main(["features", "--dataset", "emoji", "--splits", "test", "--impairments", "--seeds", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "emoji test  image: efficientnet_lite0 [284, 2] cached; + 3 impaired test sets (3 extracted)")
