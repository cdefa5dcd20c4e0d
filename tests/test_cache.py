"""Feature cache: keys, reuse, and detection of unreadable, stale and corrupt entries (warned once, "rebuilt")."""

import pytest
import torch

from modbal_lib import cache
from modbal_lib.cache import cached_features, feature_key, feature_path

SPEC = {"dataset": "emoji", "split": "test", "options": {"label": "category", "split_seed": 0},
        "modality": "text", "encoder": "minilm", "impairment": None}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODBAL_CACHE", str(tmp_path))


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, rows=5):
        self.calls, self.rows = 0, rows

    def __call__(self):
        self.calls += 1
        return torch.arange(self.rows * 3, dtype=torch.float32).reshape(self.rows, 3)


def test_key_depends_on_every_value_but_not_on_dict_order(monkeypatch):
    key = feature_key(SPEC)
    assert key == feature_key(dict(reversed(list(SPEC.items()))))
    assert len(key) == 64
    for field, other in [("split", "val"), ("encoder", "efficientnet_lite0"), ("options", {"label": "subcategory"}),
                         ("impairment", {"modality": "text", "kind": "noisy", "ratio": 1.0, "seed": 0})]:
        assert feature_key({**SPEC, field: other}) != key, field
    monkeypatch.setattr(cache, "FEATURE_VERSION", cache.FEATURE_VERSION + 1)
    assert feature_key(SPEC) != key


def test_features_are_computed_once_then_read_back():
    compute = Counter()
    first, first_status = cached_features(SPEC, 5, compute)
    second, second_status = cached_features(SPEC, 5, compute)
    assert compute.calls == 1 and torch.equal(first, second)
    assert (first_status, second_status) == ("extracted", "cached")
    entry = torch.load(feature_path(feature_key(SPEC)), weights_only=True)
    assert entry["spec"] == SPEC and entry["shape"] == [5, 3] and entry["dtype"] == "float32"
    assert feature_path(feature_key(SPEC)).parent.name == "features"


def corrupt_and_reload(path, compute, message):
    with pytest.warns(UserWarning, match=message) as record:
        features, status = cached_features(SPEC, 5, compute)
    assert len(record) == 1, [str(w.message) for w in record]  # warned once, not once per look at the file
    assert str(path) in str(record[0].message) and "rebuilding" in str(record[0].message)
    assert status == "rebuilt"
    return features


def test_unreadable_file_is_reported_and_rebuilt():
    compute = Counter()
    cached_features(SPEC, 5, compute)
    path = feature_path(feature_key(SPEC))
    path.write_bytes(b"garbage")
    features = corrupt_and_reload(path, compute, "unreadable")
    assert compute.calls == 2 and torch.equal(features, Counter()())
    assert cached_features(SPEC, 5, compute)[1] == "cached"  # rebuilt file is valid again: no warning, no recompute
    assert compute.calls == 2


def test_stale_entry_is_reported_and_rebuilt():
    compute = Counter()
    other = {**SPEC, "split": "val"}
    cached_features(other, 5, compute)
    path = feature_path(feature_key(SPEC))
    path.write_bytes(feature_path(feature_key(other)).read_bytes())  # an entry of another spec at this key
    corrupt_and_reload(path, compute, "stale")
    assert compute.calls == 2


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda entry: entry["features"].mul_(2), "corrupt: the features' checksum"),
        (lambda entry: entry.update(features=entry["features"][:4], shape=[4, 3]), "expected \\[4, 3\\] with 5 rows"),
        (lambda entry: entry.update(features=entry["features"].double()), "float64, expected a float32"),
        (lambda entry: entry.pop("sha256"), "not a feature-cache entry"),
    ],
)
def test_corrupt_entry_is_reported_and_rebuilt(edit, message):
    compute = Counter()
    cached_features(SPEC, 5, compute)
    path = feature_path(feature_key(SPEC))
    entry = torch.load(path, weights_only=True)
    edit(entry)
    torch.save(entry, path)
    assert torch.equal(corrupt_and_reload(path, compute, message), Counter()())
    assert compute.calls == 2


def test_failed_extraction_leaves_nothing_behind():
    def broken():
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError, match="encoder crashed"):
        cached_features(SPEC, 5, broken)
    folder = feature_path(feature_key(SPEC)).parent
    assert not folder.exists() or not any(folder.iterdir())
    with pytest.raises(ValueError, match="gave 5 rows, expected 6"):
        cached_features(SPEC, 6, Counter())
    assert not folder.exists() or not any(folder.iterdir())


def test_spec_must_be_json():
    with pytest.raises(TypeError, match="JSON values"):
        feature_key({"device": torch.device("cpu")})
