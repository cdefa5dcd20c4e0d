"""Faults around the feature cache (issue 13, items 5 and 6): replaced input files, a killed
``python -m modbal_lib features`` that resumes, stale temporaries, corrupt entries, bad input files,
errors in DataLoader workers, and chunk sizes that never change the features."""

import io
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from fixtures_real import features_command, make_food101
from modbal_lib import cache
from modbal_lib import features as features_module
from modbal_lib.cache import TEMPORARY_NAME, feature_key, feature_path, file_hashes, process_running
from modbal_lib.cli import main
from modbal_lib.data import load
from modbal_lib.data.files import DatasetFileError, open_image
from modbal_lib.encoders import encode
from modbal_lib.features import (Extraction, chunks_key, extract, feature_spec, inputs_fingerprint, load_features,
                                 precompute)
from modbal_lib.utils import atomic_path, file_sha256

ROOT = Path(__file__).resolve().parents[1]
CHEAP = {"image": "pixels:8", "text": "minilm"}  # pixels from files are cached like a network's output
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODBAL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def replace_keeping_size(path: Path, color=(0, 90, 250)) -> None:
    """Overwrite the JPEG at ``path`` with another picture of exactly the same byte size."""
    size = path.stat().st_size
    for quality in range(90, 0, -10):  # the first quality whose file is no larger
        buffer = io.BytesIO()
        Image.new("RGB", (8, 6), color).save(buffer, "JPEG", quality=quality)
        if len(buffer.getvalue()) <= size:
            break
    before = open_image(path)
    path.write_bytes(buffer.getvalue().ljust(size, b"\0"))  # bytes after the JPEG's end marker are ignored
    assert path.stat().st_size == size and not (open_image(path) == before).all()


# ---------------------------------------------------------------- item 5: content, not size


def test_a_replaced_image_of_the_same_byte_size_gets_new_features(food, monkeypatch):
    monkeypatch.setattr(cache, "SETTLED_NS", 0)  # the files' hashes are remembered, as for files unpacked long ago
    first = load_features("food101", "test", encoders=CHEAP, root=food)
    images = load("food101", "test", root=food).inputs["image"]
    time.sleep(0.05)  # past the file system's timestamp tick
    replace_keeping_size(Path(images[2]))
    second = load_features("food101", "test", encoders=CHEAP, root=food)
    assert torch.equal(second.features["image"], encode("image", images, "pixels:8"))  # the new picture's
    assert not torch.equal(second.features["image"][2], first.features["image"][2])
    assert torch.equal(second.features["image"][3:], first.features["image"][3:])
    assert torch.equal(second.features["text"], first.features["text"])  # the titles did not change


def test_file_hashes_are_remembered_and_a_restored_mtime_does_not_hide_a_change(food, monkeypatch):
    images = load("food101", "test", root=food).inputs["image"]
    monkeypatch.setattr(cache, "SETTLED_NS", 0)  # remember the fixture's files although they were just written
    hashed = []
    monkeypatch.setattr(cache, "file_sha256", lambda path: hashed.append(path) or file_sha256(path))
    before = inputs_fingerprint(images, "image")
    assert len(hashed) == 6 and cache.file_hashes_path().exists()
    hashed.clear()
    assert inputs_fingerprint(images, "image") == before
    assert hashed == []  # nothing read again: sizes and times unchanged

    time.sleep(0.05)  # past the file system's timestamp tick
    replaced = Path(images[4])
    stat = replaced.stat()
    replace_keeping_size(replaced)
    os.utime(replaced, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as tar or rsync -t would restore it
    assert (replaced.stat().st_size, replaced.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert inputs_fingerprint(images, "image") != before  # the ctime told
    assert hashed == [os.path.abspath(images[4])]  # only the changed file was read
    assert file_hashes([images[4], food / "absent.jpg"]) == [file_sha256(images[4]), None]


def test_a_file_changed_in_the_last_moments_is_hashed_again_next_time(food, monkeypatch):
    images = load("food101", "test", root=food).inputs["image"]
    inputs_fingerprint(images, "image")  # the fixture's files are younger than cache.SETTLED_NS: not remembered
    assert not cache.file_hashes_path().exists()  # (a rewrite within one timestamp tick would look unchanged)
    hashed = []
    monkeypatch.setattr(cache, "file_sha256", lambda path: hashed.append(path) or file_sha256(path))
    inputs_fingerprint(images, "image")
    assert len(hashed) == 6


# ---------------------------------------------------------------- item 6: killed, resumed


def test_a_killed_features_command_resumes_from_its_chunks(tmp_path, own_cache, monkeypatch, capsys):
    """SIGKILL ``python -m modbal_lib features`` once a chunk is saved; the same command then reuses the
    finished chunks, ends with the features of an uninterrupted run, and leaves no hidden file."""
    command = ["features", "--dataset", "emoji", "--splits", "test", "--encoders", "image=pixels:8,text=minilm",
               "--chunk-rows", "32", "--batch-size", "32", "--workers", "0"]
    # one thread, as these tests run torch (conftest), so that the subprocess's arithmetic is this process's
    env = {**os.environ, "MODBAL_CACHE": str(own_cache), "MODBAL_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "modbal_lib", *command], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folder = own_cache / "features"

    def saved_chunks():
        return sorted(path.name for path in folder.glob("*.part*") if not path.name.startswith("."))  # no temporary

    deadline = time.monotonic() + 300
    while not saved_chunks() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    out, err = process.communicate()
    assert process.returncode == -signal.SIGKILL, f"the command ended before a chunk was saved:\n{out}\n{err}"
    ds = load("emoji", "test")
    spec = feature_spec(ds, "text", "minilm", None, CPU)
    entry = feature_path(feature_key(spec))
    saved = saved_chunks()
    assert saved and not entry.exists() and len(saved) < 9  # 284 texts: 9 chunks of 32
    assert saved == [f"{chunks_key(spec)}.part{index:04d}.rows32.batch32.pt" for index in range(len(saved))]

    texts = []
    monkeypatch.setattr(features_module, "encode", lambda kind, inputs, encoder, **options: (
        texts.extend(inputs) if kind == "text" else None) or encode(kind, inputs, encoder, **options))
    assert main(command) == 0
    assert texts == list(ds.inputs["text"][32 * len(saved):])  # the saved chunks were not extracted again
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("emoji test  text: minilm [284, 384] resumed from the chunks an earlier run saved")
    assert [path.name for path in folder.iterdir()] == [entry.name]  # no chunk, no hidden temporary
    assert not [path for path in own_cache.rglob(".*")]
    resumed = torch.load(entry, weights_only=True)["features"]

    monkeypatch.setenv("MODBAL_CACHE", str(tmp_path / "uninterrupted"))
    assert main(command) == 0
    uninterrupted = own_cache.parent / "uninterrupted" / "features" / entry.name
    assert torch.equal(resumed, torch.load(uninterrupted, weights_only=True)["features"])


def test_a_saved_chunk_whose_files_changed_is_extracted_again(food, monkeypatch):
    ds = load("food101", "train", root=food, val_size=3)  # 12 images: chunks of rows 0-3, 4-7, 8-11
    how = Extraction(batch_size=4, chunk_rows=4)
    rows = []

    def power_cut_at_third_chunk(kind, inputs, encoder, **options):
        rows.append(len(inputs))
        if len(rows) == 3:
            raise RuntimeError("power cut")
        return encode(kind, inputs, encoder, **options)

    monkeypatch.setattr(features_module, "encode", power_cut_at_third_chunk)
    with pytest.raises(RuntimeError, match="power cut"):
        extract(ds, "image", "pixels:8", None, CPU, how)
    replace_keeping_size(Path(ds.inputs["image"][1]))  # in the first saved chunk
    ds = load("food101", "train", root=food, val_size=3)

    rows.clear()
    monkeypatch.setattr(features_module, "encode", lambda kind, inputs, encoder, **options: (
        rows.append(list(inputs)) or encode(kind, inputs, encoder, **options)))
    features, status = extract(ds, "image", "pixels:8", None, CPU, how)
    assert rows == [ds.inputs["image"][0:4], ds.inputs["image"][8:12]] and status == "resumed"  # rows 4-7 reused
    assert torch.equal(features, encode("image", ds.inputs["image"], "pixels:8"))


def test_stale_temporaries_are_removed_by_the_next_run(food, own_cache):
    with atomic_path(food / "entry.pt") as tmp:  # the temporaries name their writer
        match = TEMPORARY_NAME.match(tmp.name)
        assert match and match["name"] == "entry.pt" and int(match["pid"]) == os.getpid()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)
    assert not process_running(dead) and process_running(os.getpid())
    folder = own_cache / "features"
    folder.mkdir(parents=True)
    killed = [folder / f".{'a' * 64}.pt.{dead}.x1y2z3w4.tmp.pt",
              folder / f".{'b' * 64}.part0002.rows4.batch4.pt.{dead}.abcdefgh.tmp.pt",
              folder / f".{'c' * 64}.pt.abcdefgh.tmp.pt",  # written before temporaries held a pid
              own_cache / f".file_hashes.json.{dead}.abcdefgh.tmp.json"]
    alive = [folder / f".{'d' * 64}.pt.{os.getpid()}.abcdefgh.tmp.pt", folder / ".notes.tmp.txt"]
    for path in killed + alive:
        path.write_bytes(b"half a file")
    precompute("food101", ("test",), encoders=CHEAP, root=food)
    assert [path.exists() for path in killed + alive] == [False] * len(killed) + [True] * len(alive)


def test_a_corrupt_entry_is_warned_about_once_and_reported_rebuilt(food, capsys):
    assert main(features_command(food, "--splits", "test")) == 0
    capsys.readouterr()
    ds = load("food101", "test", root=food, val_size=3)  # the command's dataset options
    path = feature_path(feature_key(feature_spec(ds, "image", "pixels:8", None, CPU)))
    path.write_bytes(b"half an entry")
    unreadable = torch_load_error(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(features_command(food, "--splits", "test")) == 0
    assert [str(w.message) for w in caught if str(path) in str(w.message)] == [
        f"feature cache file {path}: unreadable ({unreadable}); rebuilding it"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("food101 test  image: pixels:8 [6, 3, 8, 8] rebuilt in ")
    assert lines[1] == "food101 test  text: minilm [6, 384] cached"

    path.write_bytes(b"half an entry")
    with pytest.warns(UserWarning, match="rebuilding it") as caught:
        records = precompute("food101", ("test",), encoders=CHEAP, root=food, val_size=3)
    assert len(caught) == 1 and [r["status"] for r in records] == ["rebuilt", "cached"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = precompute("food101", ("test",), encoders=CHEAP, root=food, val_size=3)
    assert [r["status"] for r in records] == ["cached"] * 2


def torch_load_error(path):
    """What torch.load says about the unreadable file (its wording is torch's, not ours)."""
    try:
        torch.load(path, weights_only=True)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    raise AssertionError("expected an unreadable file")


def test_only_an_interruption_gets_the_resume_hint(food, own_cache, monkeypatch, capsys):
    titles = food / "texts" / "test_titles.csv"
    titles.write_bytes(b"\xff\xfe not UTF-8")
    assert main(features_command(food, "--splits", "test")) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: {titles} is not UTF-8 text: ")
    assert error.count("\n") == 1 and "resumes" not in error  # one line; rerunning cannot help before a fix
    make_food101(food)

    assert main(features_command(food, "--splits", "test", "--chunk-rows", "100")) == 2
    assert capsys.readouterr().err.startswith("error: chunk_rows=100 must be a multiple of batch_size=64 (e.g. 128)")
    assert not (own_cache / "features").exists()  # refused before any work

    def ctrl_c(*args, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(features_module, "encode", ctrl_c)
    assert main(features_command(food, "--splits", "test")) == 130
    hint = "interrupted: finished chunks and feature sets are kept; the same command resumes\n"
    assert capsys.readouterr().err == hint


def test_an_error_in_a_dataloader_worker_reaches_the_user_as_its_one_line_message(food, capsys):
    images = load("food101", "test", root=food).inputs["image"]
    bad = Path(images[3])
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated JPEG, read by a worker process
    with pytest.raises(DatasetFileError) as caught:
        encode("image", images, "pixels:8", workers=2, batch_size=2)
    message = str(caught.value)
    assert message.startswith(f"image file {bad} is corrupt or truncated: ") and "\n" not in message
    assert main(features_command(food, "--splits", "test", "--workers", "2", "--batch-size", "2",
                                 "--chunk-rows", "2")) == 1
    assert capsys.readouterr().err == f"error: {message}\n"  # not "Caught DatasetFileError in DataLoader worker ..."


# ---------------------------------------------------------------- chunk sizes


def test_the_chunk_size_never_changes_the_features(food, tmp_path, monkeypatch):
    """Chunks are whole batches (chunk_rows is a multiple of batch_size), so every chunk size gives the
    bitwise features of one uncut run; texts of different lengths would show any change of padding."""
    ds = load("food101", "train", root=food, val_size=3)  # 12 titles
    results = []
    for chunk_rows in (2, 4, 6, 16):
        monkeypatch.setenv("MODBAL_CACHE", str(tmp_path / f"chunks-of-{chunk_rows}"))
        features, status = extract(ds, "text", "minilm", None, CPU, Extraction(batch_size=2, chunk_rows=chunk_rows))
        assert status == "extracted"
        results.append(features)
    assert all(torch.equal(features, results[-1]) for features in results)
    assert torch.equal(results[-1], encode("text", ds.inputs["text"], "minilm", normalize=False, batch_size=2))
    with pytest.raises(ValueError, match=r"chunk_rows=5 must be a multiple of batch_size=2 \(e.g. 6\)"):
        Extraction(batch_size=2, chunk_rows=5)
    assert Extraction().chunk_rows % Extraction().batch_size == 0


def test_atomic_path_gives_the_file_the_mode_a_new_file_gets(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "CLAIMS.md") as tmp:
            tmp.write_text("ledger")
    finally:
        os.umask(umask)
    assert (tmp_path / "CLAIMS.md").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
