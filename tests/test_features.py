"""load_features: FeatureSets, reuse through the cache, per-modality caching, cheap ratio sweeps, errors."""

import pytest
import torch

from modbal_lib.data import load
from modbal_lib.data.impair import chosen_indices, impair
from modbal_lib.encoders import encode
from modbal_lib.features import FeatureSet, Impairment, load_features

CHEAP_IMAGE = {"image": "pixels:16"}  # keeps emoji tests fast; text goes through MiniLM and the cache


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODBAL_CACHE", str(tmp_path))


def minilm_rows(calls) -> int:
    """How many texts went through MiniLM."""
    return sum(rows for kind, encoder, rows in calls if (kind, encoder) == ("text", "minilm"))


def test_seesaw_feature_set_holds_the_vectors_and_labels():
    feature_set = load_features("seesaw", "val", num_modalities=3)
    ds = load("seesaw", "val", num_modalities=3)
    assert isinstance(feature_set, FeatureSet) and len(feature_set) == 1500
    assert feature_set.modalities == ("easy", "medium", "hard") and feature_set.task == "multiclass"
    assert torch.equal(feature_set.features["hard"], torch.from_numpy(ds.inputs["hard"]))
    assert feature_set.labels.dtype == torch.int64 and torch.equal(feature_set.labels, torch.from_numpy(ds.labels))
    regression = load_features("seesaw", "val", target="regression")
    assert regression.task == "regression" and regression.labels.dtype == torch.float32


def test_ratio_r_impairs_exactly_the_chosen_rows():
    clean = load_features("seesaw", "test")
    missing = load_features("seesaw", "test", impairment=Impairment("easy", "missing", ratio=0.3, seed=4))
    rows = chosen_indices(1500, 0.3, 4)
    zero = (missing.features["easy"] == 0).all(dim=1)
    assert zero.sum() == 450 and zero[rows].all()
    assert torch.equal(missing.features["easy"][~zero], clean.features["easy"][~zero])
    assert torch.equal(missing.features["hard"], clean.features["hard"])


def test_emoji_features_are_extracted_once_and_reused(encode_calls):
    first = load_features("emoji", "test", encoders=CHEAP_IMAGE)
    assert first.features["text"].shape == (284, 384) and first.features["image"].shape == (284, 3, 16, 16)
    assert first.class_names[0] == "Activities" and len(first) == 284
    second = load_features("emoji", "test", encoders=CHEAP_IMAGE)
    assert minilm_rows(encode_calls) == 284  # each text once: the second call read the cache
    assert torch.equal(first.features["text"], second.features["text"])
    assert torch.allclose(first.features["text"].norm(dim=1), torch.ones(284), atol=1e-5)  # MiniLM: normalised


def test_raw_and_normalised_features_share_one_extraction(encode_calls):
    normalised = load_features("emoji", "test", encoders=CHEAP_IMAGE)
    raw = load_features("emoji", "test", encoders=CHEAP_IMAGE, normalize={"text": False})
    assert minilm_rows(encode_calls) == 284
    assert raw.features["text"].norm(dim=1).min() > 1.5
    assert torch.allclose(torch.nn.functional.normalize(raw.features["text"], dim=1), normalised.features["text"])


def test_impairing_the_image_does_not_recompute_the_text(encode_calls):
    load_features("emoji", "test", encoders=CHEAP_IMAGE)
    white = Impairment("image", "missing", blank="white")
    impaired = load_features("emoji", "test", encoders=CHEAP_IMAGE, impairment=white)
    assert minilm_rows(encode_calls) == 284
    assert torch.allclose(impaired.features["image"], torch.ones(284, 3, 16, 16))


def test_a_ratio_sweep_extracts_once_and_equals_direct_extraction(encode_calls):
    sweep = {ratio: load_features("emoji", "test", encoders=CHEAP_IMAGE,
                                  impairment=Impairment("text", "noisy", ratio, seed=3))
             for ratio in (0.25, 0.5, 1.0)}
    assert minilm_rows(encode_calls) == 2 * 284  # clean once + impaired (ratio 1) once
    texts = load("emoji", "test").inputs["text"]
    direct = encode("text", impair("text", texts, "noisy", ratio=0.5, seed=3))
    assert torch.allclose(sweep[0.5].features["text"], direct, atol=1e-5)
    chosen = torch.zeros(len(texts), dtype=torch.bool)
    chosen[torch.from_numpy(chosen_indices(len(texts), 0.5, 3))] = True
    clean = load_features("emoji", "test", encoders=CHEAP_IMAGE).features["text"]
    assert torch.equal(sweep[0.5].features["text"][chosen], sweep[1.0].features["text"][chosen])
    assert torch.equal(sweep[0.5].features["text"][~chosen], clean[~chosen])  # the other half kept their clean features
    changed = (sweep[0.5].features["text"] != sweep[1.0].features["text"]).any(dim=1)
    noisy = impair("text", texts, "noisy", ratio=1.0, seed=3)
    assert changed.sum() == sum(noisy[i] != texts[i] for i in torch.nonzero(~chosen).flatten().tolist()) > 20


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Impairment.kind must be one of"):
        Impairment("image", "blurred")
    with pytest.raises(ValueError, match="Impairment.ratio"):
        Impairment("image", "missing", ratio=-0.1)
    with pytest.raises(ValueError, match="Impairment.blank"):
        Impairment("image", "missing", blank="grey")
    with pytest.raises(ValueError, match=r"impairment of unknown modality 'audio'.*\('easy', 'hard'\)"):
        load_features("seesaw", "test", impairment=Impairment("audio", "missing"))
    with pytest.raises(ValueError, match=r"encoders names unknown modalities \['picture'\]"):
        load_features("seesaw", "test", encoders={"picture": "pixels"})
    with pytest.raises(ValueError, match="unknown dataset 'emojis'"):
        load_features("emojis", "test")


def test_impairment_is_frozen_and_hashable():
    impairment = Impairment("text", "missing", ratio=0.5)
    assert {impairment: 1}[Impairment("text", "missing", ratio=0.5)] == 1
    with pytest.raises(AttributeError):
        impairment.ratio = 1.0


def test_cache_status_lists_what_a_comparison_still_needs(tmp_path, monkeypatch):
    from fixtures_real import make_food101

    from modbal_lib.features import cache_status, precompute

    monkeypatch.setenv("MODBAL_DATA", str(tmp_path / "data"))
    absent = cache_status("food101", seeds=(0,), val_size=3)
    assert not absent.ready and "food101: dataset folder" in absent.problem and "data_scripts/food101.py" in absent.problem

    make_food101(tmp_path / "data" / "food101")
    fresh = cache_status("food101", seeds=(0,), val_size=3, encoders={"image": "pixels:8"})
    assert fresh.problem is None and not fresh.ready
    # pixels from files are cached too: train and test, clean, missing and noisy seed 0, for each modality
    assert fresh.missing == [
        "train image (pixels:8)", "train text (minilm)",
        "test image (pixels:8)", "test image (pixels:8, missing)", "test image (pixels:8, noisy, seed 0)",
        "test text (minilm)", "test text (minilm, missing)", "test text (minilm, noisy, seed 0)",
    ]
    precompute("food101", ("train", "test"), encoders={"image": "pixels:8"}, impairments=True, seeds=(0,), val_size=3)
    assert cache_status("food101", seeds=(0,), val_size=3, encoders={"image": "pixels:8"}).ready
    more_seeds = cache_status("food101", seeds=(0, 1), val_size=3, encoders={"image": "pixels:8"})
    assert more_seeds.missing == ["test image (pixels:8, noisy, seed 1)", "test text (minilm, noisy, seed 1)"]


def test_inputs_fingerprint_follows_the_data(tmp_path):
    import numpy as np

    from modbal_lib.features import inputs_fingerprint

    texts = ["a dog", "a cat"]
    assert inputs_fingerprint(texts, "text") == inputs_fingerprint(list(texts), "text")
    assert inputs_fingerprint(["a dog", "a cow"], "text") != inputs_fingerprint(texts, "text")
    pixels = np.zeros((2, 4, 4, 3), np.uint8)
    changed = pixels.copy()
    changed[1, 0, 0, 0] = 1
    assert inputs_fingerprint(pixels, "image") != inputs_fingerprint(changed, "image")
    files = [tmp_path / "pie" / "0.jpg", tmp_path / "pie" / "1.jpg"]
    files[0].parent.mkdir()
    for path in files:
        path.write_bytes(b"jpeg")
    before = inputs_fingerprint(files, "image")
    assert inputs_fingerprint([str(path) for path in files], "image") == before  # the datasets give paths as str
    files[1].write_bytes(b"a re-downloaded jpeg")  # same names, other contents (size)
    assert inputs_fingerprint(files, "image") != before
    assert inputs_fingerprint([str(path) for path in files], "text") != inputs_fingerprint(files, "image")
    with pytest.raises(TypeError, match="expected an array, texts or file paths"):
        inputs_fingerprint([1.5, 2.5], "vector")
    with pytest.raises(TypeError, match="expected an array, texts or file paths, got a PosixPath"):
        inputs_fingerprint(files, "text")


def test_changed_texts_get_their_own_cache_entry(encode_calls, monkeypatch):
    from modbal_lib.data import emoji

    load_features("emoji", "test", encoders=CHEAP_IMAGE)
    assert minilm_rows(encode_calls) == 284
    encode_calls.clear()
    load_features("emoji", "test", encoders=CHEAP_IMAGE)
    assert minilm_rows(encode_calls) == 0  # cached
    original = emoji.load

    def renamed(split, **options):
        ds = original(split, **options)
        ds.inputs["text"] = [name.upper() for name in ds.inputs["text"]]
        return ds

    monkeypatch.setattr(emoji, "load", renamed)
    load_features("emoji", "test", encoders=CHEAP_IMAGE)
    assert minilm_rows(encode_calls) == 284  # other texts: extracted again, not the old features
