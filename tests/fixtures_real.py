"""Tiny stand-ins for the real datasets, generated in a test's tmp_path in their TRUE layouts.

Nothing here is copied from a real dataset: the images are a few solid-colour pixels, the texts and
clip lists are made up, but file names, folder structure, encodings and the known quirks are the
real ones (see the module docstrings of ``modbal_lib.data.<name>``). Each ``make_*`` returns what a
correct parser must read back, so tests compare against it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import tarfile
import wave
import zipfile
from pathlib import Path

from PIL import Image

from modbal_lib.download import Resource

SCRIPTS = Path(__file__).resolve().parents[1] / "data_scripts"


def load_script(name: str):
    """Import ``data_scripts/<name>.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"data_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, argv: list[str]) -> int:
    """Run ``data_scripts/<name>.py`` in-process with ``argv``; return its exit status."""
    return load_script(name).main(argv)


def write_image(path: Path, color=(200, 40, 40), size=(8, 6), alpha: int | None = None) -> Path:
    """A tiny solid image; JPEG or PNG by suffix; RGBA with ``alpha`` (PNG only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode, fill = ("RGB", color) if alpha is None else ("RGBA", (*color, alpha))
    Image.new(mode, size, fill).save(path)
    return path


def resource_for(path: Path, archive: str | None = None) -> Resource:
    """A DATA_HUB entry that serves ``path`` from a file:// URL, with its true sha256 and size."""
    data = path.read_bytes()
    return Resource(path.resolve().as_uri(), hashlib.sha256(data).hexdigest(), len(data), archive)


def tar_gz(folder: Path, archive: Path, top: str | None = None) -> Path:
    """Pack ``folder``'s contents into ``archive`` (.tar.gz), under a top folder ``top`` if given."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            tar.add(path, arcname=f"{top}/{relative}" if top else relative, recursive=False)
    return archive


def zip_folder(folder: Path, archive: Path, top: str | None = None) -> Path:
    """Pack ``folder``'s files into ``archive`` (.zip), under a top folder ``top`` if given."""
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                relative = path.relative_to(folder).as_posix()
                bundle.write(path, f"{top}/{relative}" if top else relative)
    return archive


def truncated_copy(archive: Path, destination: Path, keep: float = 0.5) -> Path:
    """The first ``keep`` share of ``archive``'s bytes (a download cut short)."""
    data = archive.read_bytes()
    destination.write_bytes(data[: int(len(data) * keep)])
    return destination


# ---------------------------------------------------------------- UPMC Food-101

FOOD_CLASSES = ["hot_dog", "apple_pie", "caesar_salad"]  # folders; the loader sorts them
# (raw text as written in the file, text the parser must return): plain, quoted with commas,
# bare commas, quoted with doubled quotes, and quotes that do not wrap the whole text
FOOD_TEXTS = [
    ("Best recipe ever - Food Network", "Best recipe ever - Food Network"),
    ('"Easy dinner, quick and cheap"', "Easy dinner, quick and cheap"),
    ("Grandma's classic, with a twist, 1950", "Grandma's classic, with a twist, 1950"),
    ('"The ""real"" one, finally"', 'The "real" one, finally'),
    ('Mom\'s "famous" version', 'Mom\'s "famous" version'),
]


def make_food101(root: Path, header: bool = False, train_per_class: int = 5, test_per_class: int = 2) -> dict:
    """``images/{train,test}/<class>/<class>_<n>.jpg`` and ``texts/{train,test}_titles.csv``.

    The train file uses LF line ends, the test file CRLF; ``header`` adds ``image_path,text,food``.
    Returns {"train": [(file, text, class)], "test": [...]} in file order.
    """
    expected = {}
    for split, per_class, newline in (("train", train_per_class, "\n"), ("test", test_per_class, "\r\n")):
        lines = ["image_path,text,food"] if header else []
        expected[split] = []
        for k, label in enumerate(FOOD_CLASSES):
            for n in range(per_class):
                name = f"{label}_{n}.jpg"
                write_image(root / "images" / split / label / name, color=(60 * k, 100, 20 * n))
                raw, text = FOOD_TEXTS[(k + n) % len(FOOD_TEXTS)]
                lines.append(f"{name},{raw},{label}")
                expected[split].append((name, text, label))
        (root / "texts").mkdir(parents=True, exist_ok=True)
        (root / "texts" / f"{split}_titles.csv").write_bytes((newline.join(lines) + newline).encode())
    return expected


# ---------------------------------------------------------------- Hateful Memes

# Each line is written by hand, as in the real files: the ids as ints or zero-padded strings, and
# the phase-1 style escaped slash in "img" (JSON allows "\/" for "/").
MEME_LINES = {
    "train": [
        '{"id":42953,"img":"img\\/42953.png","label":0,"text":"a dog enjoying the sun"}',
        '{"id":"08291","img":"img/08291.png","label":1,"text":"made-up hateful example one"}',
        '{"id": 10398, "img": "img/10398.png", "label": 1, "text": "made-up hateful example two"}',
        '{"id":"01765","img":"img\\/01765.png","label":0,"text":"when the weekend finally arrives"}',
        '',
        '{"id":36197,"img":"img/36197.png","label":0,"text":"coffee first, questions later"}',
    ],
    "dev_seen": [
        '{"id":"08395","img":"img\\/08395.png","label":0,"text":"a quiet morning"}',
        '{"id":91725,"img":"img/91725.png","label":1,"text":"made-up hateful example three"}',
    ],
    "dev_unseen": [
        '{"id":"04681","img":"img/04681.png","label":1,"text":"made-up hateful example four"}',
        '{"id":57391,"img":"img/57391.png","label":0,"text":"cats rule the internet"}',
        '{"id":"00612","img":"img/00612.png","label":0,"text":"rainy days"}',
    ],
    "test_seen": [
        '{"id":16395,"img":"img/16395.png","label":1,"text":"made-up hateful example five"}',
        '{"id":"03745","img":"img\\/03745.png","label":0,"text":"happy birthday"}',
    ],
    "test_unseen": [
        '{"id":"07213","img":"img/07213.png","label":0,"text":"a walk in the park"}',
    ],
}


def make_hateful_memes(root: Path, test_labels: bool = True) -> dict:
    """``img/<id>.png`` plus the five jsonl files (phase-2 names). The first image is RGBA, half
    transparent. Without ``test_labels`` the test files have no "label" (as in phase 1).
    Returns {file stem: [(int id, "img/<id>.png", text, label)]}."""
    expected = {}
    for stem, lines in MEME_LINES.items():
        records = [json.loads(line) for line in lines if line]
        expected[stem] = [(int(r["id"]), r["img"], r["text"], r["label"]) for r in records]
        if stem.startswith("test") and not test_labels:
            lines = [json.dumps({k: v for k, v in r.items() if k != "label"}) for r in records]
        root.mkdir(parents=True, exist_ok=True)
        (root / f"{stem}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for n, record in enumerate(records):
            alpha = 128 if n == 0 and stem == "train" else None
            write_image(root / record["img"], color=(10 * n, 80, 160), alpha=alpha)
    return expected


# ---------------------------------------------------------------- MM-IMDb

MOVIES = {
    # id: (genres as in the file, plots, rating)
    "0000008": (["Drama", "Comedy"],
                ["Short one.", "The longest plot summary of this movie, by far.", "Medium plot."], 6.1),
    "0000012": (["Documentary", "News"], ["Only plot."], 7.4),
    "0100005": (["Horror", "Reality-TV", "Film-Noir"], ["A plot.", "Another plot, same size"], 4.9),
    "0110001": (["Sci-Fi", "Action", "Adventure"], ["Space.", "In space, nobody hears the longest plot."], 8.2),
    "0200123": (["Western"], ["Cowboys ride."], 5.5),
    "0300456": (["Animation", "Family", "Musical"], ["Singing animals.", "Animals sing and dance all day."], 7.0),
    "1234567": (["Romance", "Drama"], ["Love."], 6.6),
    "2345678": (["War", "History", "Biography"], ["A general's life.", "The life of a general in a long war."], 7.8),
}
MMIMDB_SPLITS = {"train": ["0000008", "0000012", "0100005", "0110001"], "dev": ["0200123", "0300456"],
                 "test": [1234567, 2345678]}  # the test ids as JSON ints: the loader must zero-pad them


def make_mmimdb(root: Path) -> dict:
    """``mmimdb/split.json`` and ``mmimdb/dataset/<id>.json`` + ``<id>.jpeg`` under ``root``."""
    folder = root / "mmimdb" / "dataset"
    folder.mkdir(parents=True, exist_ok=True)
    (root / "mmimdb" / "split.json").write_text(json.dumps(MMIMDB_SPLITS))
    for n, (movie_id, (genres, plots, rating)) in enumerate(MOVIES.items()):
        record = {"title": f"Movie {n}", "year": 1990 + n, "genres": genres, "plot": plots, "rating": rating,
                  "imdb_id": movie_id, "director": ["Someone"]}
        (folder / f"{movie_id}.json").write_text(json.dumps(record))
        write_image(folder / f"{movie_id}.jpeg", color=(20 * n, 20, 200))
    return MOVIES


# ---------------------------------------------------------------- CREMA-D

CREMAD_TRAIN = [
    "1001_DFA_ANG_XX", "1001_IEO_HAP_LO", "1002_IOM_SAD_XX", "1002_ITH_FEA_XX", "1003_ITS_DIS_XX",
    "1003_IWL_NEU_XX", "1004_IWW_ANG_HI", "1005_MTI_HAP_XX", "1006_TAI_SAD_MD", "1091_TIE_NEU_XX",
]
CREMAD_TEST = ["1010_TSI_FEA_XX", "1011_WSI_DIS_XX", "1012_IEO_NEU_XX"]
OGM_EMOTIONS = ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"]
# (clip, voice, voice level, face, face level, both, both level) in summaryTable.csv's format
CREMAD_VOTES = [
    ("1001_DFA_ANG_XX", "A", "47.33", "A", "41.8", "A", "41.5"),
    ("1001_IEO_HAP_LO", "N", "71.67", "H", "57", "H", "57.38"),
    ("1002_IOM_SAD_XX", "N:S", "66.00:47.75", "N", "80.78", "S", "44.2"),
    ("1002_ITH_FEA_XX", "A:D:F", "39.00:89.00:83.67", "F", "62.4", "F:N", "40.00:82.33"),
]


def write_wav(path: Path, seconds: float = 0.2, rate: int = 16000) -> Path:
    """A short 16-bit mono WAV of a rising ramp (stdlib ``wave``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * rate)
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(b"".join(int(100 * (i % 200)).to_bytes(2, "little", signed=True) for i in range(frames)))
    return path


def make_cremad_media(folder: Path, clips: list[str]) -> Path:
    """``AudioWAV/<clip>.wav`` (real WAV) and ``VideoFlash/<clip>.flv`` (an FLV header) in ``folder``."""
    for clip in clips:
        write_wav(folder / "AudioWAV" / f"{clip}.wav")
        (folder / "VideoFlash").mkdir(parents=True, exist_ok=True)
        (folder / "VideoFlash" / f"{clip}.flv").write_bytes(b"FLV\x01\x05\x00\x00\x00\x09" + bytes(16))
    return folder


def write_split(path: Path, clips: list[str], bom: bool = True) -> Path:
    """OGM-GE's format: ``<clip>,<EMO>`` per line, no header, CRLF, optionally a UTF-8 BOM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{clip},{clip.split('_')[2]}\r\n" for clip in clips)
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def write_classes(path: Path) -> Path:
    """OGM-GE's stat.csv: a BOM, then the six emotion codes in label order, CRLF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("\ufeff".encode() + "".join(f"{code}\r\n" for code in OGM_EMOTIONS).encode())
    return path


def write_votes(path: Path, rows=CREMAD_VOTES) -> Path:
    """CREMA-D's summaryTable.csv format: every field double-quoted, a blank first header, row numbers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["", "FileName", "VoiceVote", "VoiceLevel", "FaceVote", "FaceLevel", "MultiModalVote", "MultiModalLevel"]
    lines = [header] + [[str(n), *row] for n, row in enumerate(rows, start=1)]
    path.write_text("".join(",".join(f'"{cell}"' for cell in line) + "\n" for line in lines))
    return path


def make_cremad(root: Path) -> Path:
    """A prepared dataset folder, as ``data_scripts/cremad.py`` leaves it (media as plain folders)."""
    make_cremad_media(root, CREMAD_TRAIN + CREMAD_TEST)
    write_split(root / "ogm-ge" / "train.csv", CREMAD_TRAIN)
    write_split(root / "ogm-ge" / "test.csv", CREMAD_TEST, bom=False)
    write_classes(root / "ogm-ge" / "stat.csv")
    write_votes(root / "processedResults" / "summaryTable.csv")
    return root


def features_command(food, *extra):
    """``python -m modbal_lib features`` on the ``food`` fixture with cheap encoders, as an argv list."""
    return ["features", "--dataset", "food101", "--encoders", "image=pixels:8,text=minilm",
            "--dataset-options", f"root={food},val_size=3", "--workers", "0", *extra]
