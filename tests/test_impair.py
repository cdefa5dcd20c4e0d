"""Impairments of raw inputs: exact ratios, realised noise levels, blanks, ratio-independence, errors."""

import numpy as np
import pytest
from PIL import Image

from modbal_lib.data.impair import chosen_indices, impair, read_image

N = 400


@pytest.fixture
def grey_images():
    return np.full((N, 20, 20, 3), 128, dtype=np.uint8)


@pytest.fixture
def texts():
    return [" ".join(f"w{i}_{k}" for k in range(10)) for i in range(N)]


@pytest.fixture
def vectors():
    rng = np.random.default_rng(5)
    return (rng.standard_normal((2000, 6)) * np.array([0.1, 1, 2, 5, 10, 0.5]) + 3).astype(np.float32)


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.333, 0.5, 0.9, 1.0])
def test_exactly_round_ratio_n_samples_are_chosen(ratio):
    rows = chosen_indices(N, ratio, seed=3)
    assert len(rows) == round(ratio * N) and len(set(rows.tolist())) == len(rows)
    assert np.all(np.diff(rows) > 0) and (len(rows) == 0 or rows.max() < N)


def test_smaller_ratios_impair_subsets_and_seeds_differ():
    small, large = set(chosen_indices(N, 0.2, 7).tolist()), set(chosen_indices(N, 0.6, 7).tolist())
    assert small < large
    assert set(chosen_indices(N, 0.2, 8).tolist()) != small


@pytest.mark.parametrize("blank, value", [("black", 0), ("white", 255)])
def test_missing_images_are_blank_and_the_rest_untouched(grey_images, blank, value):
    out = impair("image", grey_images, "missing", ratio=0.3, seed=1, blank=blank)
    rows = chosen_indices(N, 0.3, 1)
    hit = np.zeros(N, bool)
    hit[rows] = True
    assert np.all(out[hit] == value) and np.array_equal(out[~hit], grey_images[~hit])
    assert np.all(grey_images == 128)  # the input is not modified


def test_salt_and_pepper_hits_30_percent_of_pixels(grey_images):
    out = impair("image", grey_images, "noisy", ratio=1.0, seed=0)
    per_pixel = out.reshape(N, 400, 3)
    salt = np.all(per_pixel == 255, axis=2)
    pepper = np.all(per_pixel == 0, axis=2)
    untouched = np.all(per_pixel == 128, axis=2)
    assert np.all((salt | pepper).sum(1) == 120)  # exactly 30% of the 400 pixels of every image
    assert np.all(salt | pepper | untouched)
    assert abs(salt.sum() / (salt | pepper).sum() - 0.5) < 0.02


def test_noisy_text_deletes_15_percent_of_tokens(texts):
    out = impair("text", texts, "noisy", ratio=1.0, seed=0)
    kept = sum(len(text.split()) for text in out)
    assert abs(1 - kept / (10 * N) - 0.15) < 0.02
    assert all(set(new.split()) <= set(old.split()) for new, old in zip(out, texts))


def test_missing_text_is_empty(texts):
    out = impair("text", texts, "missing", ratio=0.5, seed=2)
    assert sum(text == "" for text in out) == N // 2 and texts[0] != ""


def test_vectors_missing_are_zero_and_noisy_add_each_features_std(vectors):
    missing = impair("vector", vectors, "missing", ratio=0.25, seed=0)
    assert (np.all(missing == 0, axis=1)).sum() == 500
    noisy = impair("vector", vectors, "noisy", ratio=1.0, seed=0)
    added_std = (noisy - vectors).std(0)
    assert np.allclose(added_std, vectors.std(0), rtol=0.06)
    assert abs((noisy - vectors).mean()) < 0.1 and noisy.dtype == np.float32


@pytest.mark.parametrize("kind, data", [("image", "grey_images"), ("text", "texts"), ("vector", "vectors")])
def test_an_impaired_sample_is_the_same_at_every_ratio(kind, data, request):
    inputs = request.getfixturevalue(data)
    full = impair(kind, inputs, "noisy", ratio=1.0, seed=9)
    part = impair(kind, inputs, "noisy", ratio=0.3, seed=9)
    rows = chosen_indices(len(inputs), 0.3, 9)
    assert all(np.array_equal(np.asarray(part[i]), np.asarray(full[i])) for i in rows)
    other = impair(kind, inputs, "noisy", ratio=1.0, seed=10)
    assert not all(np.array_equal(np.asarray(other[i]), np.asarray(full[i])) for i in rows)


def test_image_files_are_impaired_lazily(tmp_path):
    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((30, 40, 3), 100 + i, np.uint8)).save(path)
        paths.append(str(path))
    missing = impair("image", paths, "missing", ratio=0.5, seed=0, blank="white")
    rows = set(chosen_indices(4, 0.5, 0).tolist())
    for i, item in enumerate(missing):
        image = read_image(item)
        if i in rows:
            assert callable(item) and image.shape == (224, 224, 3) and np.all(image == 255)
        else:
            assert item == paths[i] and image.shape == (30, 40, 3) and np.all(image == 100 + i)
    noisy = impair("image", paths, "noisy", ratio=1.0, seed=0)
    image = read_image(noisy[2])
    assert image.shape == (30, 40, 3) and np.all(image, axis=2).sum() + np.all(image == 0, axis=2).sum() == 1200


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: impair("text", ["a"], "blurred"), "one of \\('missing', 'noisy'\\)"),
        (lambda: impair("image", np.zeros((1, 2, 2, 3), np.uint8), "missing", blank="grey"), "blank must be one of"),
        (lambda: impair("text", ["a"], "missing", ratio=1.5), r"ratio must be in \[0, 1\]"),
        (lambda: impair("point_cloud", ["a.ply"], "missing"), "kind 'point_cloud'.*image, text, vector, audio, video"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
