"""MM-IMDb: split.json ids, longest plot, the 23-genre multi-label (News and other genres dropped),
the rating target, bad input, and the data script from a file:// archive."""

import json

import numpy as np
import pytest

from fixtures_real import MMIMDB_SPLITS, MOVIES, make_mmimdb, resource_for, run_script, tar_gz
from modbal_lib import data
from modbal_lib.data import mmimdb
from modbal_lib.data.files import DatasetFileError
from modbal_lib.download import DATA_HUB


def test_genre_list_is_the_23_in_order():
    assert len(mmimdb.GENRES) == 23 and len(set(mmimdb.GENRES)) == 23
    assert mmimdb.GENRES[:3] == ["Drama", "Comedy", "Romance"] and mmimdb.GENRES[-1] == "Film-Noir"
    assert "News" not in mmimdb.GENRES


def test_genres_longest_plot_and_splits(tmp_path):
    make_mmimdb(tmp_path)
    train = mmimdb.load("train", tmp_path)
    assert train.task == "multilabel" and train.class_names == mmimdb.GENRES and train.num_outputs == 23
    assert train.labels.shape == (4, 23) and train.labels.dtype == np.float32
    assert train.inputs["text"][0] == "The longest plot summary of this movie, by far."
    assert train.inputs["text"][2] == "Another plot, same size"  # 23 characters, longer than "A plot."
    assert train.inputs["image"][0] == str(tmp_path / "mmimdb" / "dataset" / "0000008.jpeg")
    for row, movie_id in zip(train.labels, MMIMDB_SPLITS["train"]):
        kept = [g for g in MOVIES[movie_id][0] if g in mmimdb.GENRES]
        assert [mmimdb.GENRES[k] for k in np.flatnonzero(row)] == sorted(kept, key=mmimdb.GENRES.index)
    assert train.labels[1].tolist() == [float(g == "Documentary") for g in mmimdb.GENRES]  # "News" dropped
    assert train.labels[2].sum() == 2  # Horror, Film-Noir; "Reality-TV" dropped
    val, test = mmimdb.load("val", tmp_path), mmimdb.load("test", tmp_path)
    assert val.inputs["text"] == ["Cowboys ride.", "Animals sing and dance all day."]
    assert test.inputs["image"][0].endswith("1234567.jpeg")  # ids listed as ints in split.json


def test_rating_target_is_regression(tmp_path):
    make_mmimdb(tmp_path)
    train = data.load("mmimdb", "train", root=tmp_path, target="rating")
    assert train.task == "regression" and train.num_outputs == 1
    assert train.labels.dtype == np.float32 and train.labels.tolist() == pytest.approx([6.1, 7.4, 4.9, 8.2])
    assert train.options == {"target": "rating", "drop_missing": False}
    with pytest.raises(ValueError, match="target='year'"):
        mmimdb.load("train", tmp_path, target="year")


def test_root_may_be_the_inner_folder(tmp_path):
    make_mmimdb(tmp_path)
    assert len(mmimdb.load("val", tmp_path / "mmimdb")) == 2


@pytest.mark.parametrize("edit, message", [
    (lambda movie: movie.pop("plot"), "0000012.json: missing field 'plot'"),
    (lambda movie: movie.pop("genres"), "0000012.json: missing field 'genres'"),
    (lambda movie: movie.update(plot=[1, 2]), "0000012.json: field 'plot' must be a list of strings"),
    (lambda movie: movie.update(genres="Drama"), "0000012.json: field 'genres' must be a list"),
])
def test_bad_movie_files_name_file_and_field(tmp_path, edit, message):
    make_mmimdb(tmp_path)
    path = tmp_path / "mmimdb" / "dataset" / "0000012.json"
    movie = json.loads(path.read_text())
    edit(movie)
    path.write_text(json.dumps(movie))
    with pytest.raises(DatasetFileError, match=message):
        mmimdb.load("train", tmp_path)


def test_bad_rating_and_split_file(tmp_path):
    make_mmimdb(tmp_path)
    path = tmp_path / "mmimdb" / "dataset" / "0200123.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "rating": "n/a"}))
    with pytest.raises(DatasetFileError, match="0200123.json: rating 'n/a' is not a number"):
        mmimdb.load("val", tmp_path, target="rating")
    (tmp_path / "mmimdb" / "split.json").write_text(json.dumps({"train": [], "test": []}))
    with pytest.raises(DatasetFileError, match="split.json: missing field 'dev'"):
        mmimdb.load("val", tmp_path)
    (tmp_path / "mmimdb" / "split.json").write_text('{"train": ["0000008",')
    with pytest.raises(DatasetFileError, match="split.json is not valid JSON"):
        mmimdb.load("train", tmp_path)


def test_missing_poster(tmp_path):
    make_mmimdb(tmp_path)
    (tmp_path / "mmimdb" / "dataset" / "0110001.jpeg").unlink()
    with pytest.raises(DatasetFileError, match="0110001.jpeg"):
        mmimdb.load("train", tmp_path)
    kept = mmimdb.load("train", tmp_path, drop_missing=True)
    assert len(kept) == 3 and kept.labels.shape == (3, 23)


def test_script_from_archive(tmp_path, monkeypatch, capsys):
    make_mmimdb(tmp_path / "release")
    archive = tar_gz(tmp_path / "release", tmp_path / "mmimdb.tar.gz")
    monkeypatch.setitem(DATA_HUB, "mmimdb", resource_for(archive, "tar.gz"))
    monkeypatch.setenv("MODBAL_DATA", str(tmp_path / "datasets"))
    assert run_script("mmimdb", []) == 0
    assert "4 train, 2 val, 2 test movies" in capsys.readouterr().out
    assert (tmp_path / "datasets" / "mmimdb" / "mmimdb" / "split.json").exists()
    assert data.load("mmimdb", "test").labels.shape == (2, 23)
