"""CREMA-D: an actor's voice and face saying one sentence -> the emotion acted (6 classes, accuracy).

7,442 clips by 91 actors. ``python data_scripts/cremad.py`` prepares ``data_dir()/cremad``::

    AudioWAV/<clip>.wav                 (linked from a Git LFS clone of the CREMA-D repository)
    VideoFlash/<clip>.flv
    processedResults/summaryTable.csv   crowd votes per clip: voice only, face only, both
    ogm-ge/train.csv, ogm-ge/test.csv   OGM-GE's split: 6,698 / 744 rows "<clip>,<EMO>", no header

A clip name is ``AAAA_SSS_EEE_LL``: actor 1001-1091, one of 12 sentence codes, the acted emotion,
and the intensity level (LO/MD/HI, or XX = unspecified). Labels follow OGM-GE's order
NEU, HAP, SAD, FEA, DIS, ANG (``EMOTIONS``). The split files are read with any UTF-8 byte-order
mark removed (OGM-GE's ``stat.csv`` starts with one) and CR/LF line ends.

Splits: train and test are OGM-GE's; OGM-GE has no validation split, so "val" is a seeded hold-out
of ``val_size`` clips (default 670, 10 %) from its train file, and "train" is the rest
(``val_size=0``: all of OGM-GE's train file, as in OGM-GE, and no "val").

The media are decoded by ``modbal_lib.media`` (OGM-GE's log-spectrogram for the audio, one frame
per second for the video; the FLV files need PyAV: ``pip install 'modbal_lib[media]'``) and
encoded by the "audio" / "video" encoders of ``modbal_lib.encoders``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modbal_lib.data.base import MultimodalDataset
from modbal_lib.data.files import (
    DatasetFileError,
    dataset_root,
    holdout,
    keep_existing,
    read_csv_rows,
)

EMOTIONS = ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"]  # OGM-GE's label order
CLASS_NAMES = ["neutral", "happy", "sad", "fear", "disgust", "anger"]
SENTENCES = {"IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI"}
LEVELS = {"LO", "MD", "HI", "XX"}
ACTORS = range(1001, 1092)
VOTE_LETTERS = {"A": "ANG", "D": "DIS", "F": "FEA", "H": "HAP", "N": "NEU", "S": "SAD"}
VOTE_COLUMNS = {"voice": "VoiceVote", "face": "FaceVote", "multimodal": "MultiModalVote"}


def parse_clip_name(name: str) -> dict:
    """``"1001_DFA_ANG_XX"`` (a ``.wav``/``.flv`` suffix is allowed) -> dict(actor, sentence, emotion, level)."""
    stem = Path(name).stem if Path(name).suffix in (".wav", ".flv", ".mp3") else name
    parts = stem.split("_")
    problem = None
    if len(parts) != 4:
        problem = "it must have 4 parts separated by '_'"
    elif not parts[0].isdigit() or int(parts[0]) not in ACTORS:
        problem = f"actor {parts[0]!r} must be a number from {ACTORS.start} to {ACTORS.stop - 1}"
    elif parts[1] not in SENTENCES:
        problem = f"sentence {parts[1]!r} must be one of {sorted(SENTENCES)}"
    elif parts[2] not in EMOTIONS:
        problem = f"emotion {parts[2]!r} must be one of {EMOTIONS}"
    elif parts[3] not in LEVELS:
        problem = f"level {parts[3]!r} must be one of {sorted(LEVELS)}"
    if problem:
        raise ValueError(f"bad CREMA-D clip name {name!r}: {problem} (format AAAA_SSS_EEE_LL)")
    return {"actor": int(parts[0]), "sentence": parts[1], "emotion": parts[2], "level": parts[3]}


def read_split(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(clip, label index into ``EMOTIONS``) for each row ``<clip>,<EMO>`` of an OGM-GE split file.

    The row's emotion must be the one in the clip's name.
    """
    clips = []
    for number, row in enumerate(read_csv_rows(path), start=1):
        where = f"{path}: row {number}"
        if len(row) != 2:
            raise DatasetFileError(f"{where}: expected <clip>,<emotion>, got {row!r}")
        clip, emotion = row[0].strip(), row[1].strip()
        try:
            acted = parse_clip_name(clip)["emotion"]
        except ValueError as error:
            raise DatasetFileError(f"{where}: {error}") from None
        if emotion != acted:
            raise DatasetFileError(f"{where}: label {emotion!r} differs from the emotion {acted!r} in the clip name")
        clips.append((clip, EMOTIONS.index(emotion)))
    return clips


@dataclass(frozen=True)
class Vote:
    """The crowd's majority answer for one clip in one presentation mode.

    ``emotions``: the emotion code(s) with the most votes, several when tied (the file writes "A:D");
    ``levels``: the mean intensity rating (0-100) given with each of those emotions ("37.2:58.6").
    """

    emotions: tuple[str, ...]
    levels: tuple[float, ...]


def parse_vote(letters: str, levels: str, where: str) -> Vote:
    """``("A:D", "37.2:58.6")`` -> ``Vote(("ANG", "DIS"), (37.2, 58.6))``."""
    codes, values = letters.split(":"), levels.split(":")
    if len(codes) != len(values) or any(code not in VOTE_LETTERS for code in codes):
        raise DatasetFileError(
            f"{where}: vote {letters!r} / level {levels!r} must be letters from {sorted(VOTE_LETTERS)} "
            f"and as many numbers, separated by ':'"
        )
    try:
        return Vote(tuple(VOTE_LETTERS[code] for code in codes), tuple(float(value) for value in values))
    except ValueError:
        raise DatasetFileError(f"{where}: level {levels!r} is not a number (or numbers separated by ':')") from None


def read_votes(path: str | os.PathLike) -> dict[str, dict[str, Vote]]:
    """clip -> {"voice": Vote, "face": Vote, "multimodal": Vote} from CREMA-D's ``summaryTable.csv``.

    Header: ``"","FileName","VoiceVote","VoiceLevel","FaceVote","FaceLevel","MultiModalVote","MultiModalLevel"``.
    """
    rows = read_csv_rows(path)
    if not rows:
        raise DatasetFileError(f"{path} is empty")
    column = {name.strip().lower(): k for k, name in enumerate(rows[0])}
    needed = ["FileName", *[f"{mode}{part}" for mode in ("Voice", "Face", "MultiModal") for part in ("Vote", "Level")]]
    missing = [name for name in needed if name.lower() not in column]
    if missing:
        raise DatasetFileError(f"{path}: missing column(s) {missing}; header is {rows[0]}")
    votes = {}
    for number, row in enumerate(rows[1:], start=2):
        where = f"{path}: row {number}"
        if len(row) != len(rows[0]):
            raise DatasetFileError(f"{where}: {len(row)} fields, the header has {len(rows[0])}")
        clip = row[column["filename"]].strip()
        try:
            parse_clip_name(clip)
        except ValueError as error:
            raise DatasetFileError(f"{where}: {error}") from None
        if clip in votes:
            raise DatasetFileError(f"{where}: clip {clip} appears twice")
        votes[clip] = {
            mode: parse_vote(row[column[name.lower()]], row[column[name.replace("Vote", "Level").lower()]], where)
            for mode, name in VOTE_COLUMNS.items()
        }
    return votes


def vote_agreement(votes: dict[str, dict[str, Vote]]) -> dict[str, float]:
    """Percent of clips whose crowd vote is the emotion the actor was asked to act, per mode.

    "voice" = raters heard the audio only, "face" = saw the video without sound, "multimodal" =
    both. A tie of k emotions that includes the acted one counts 1/k (a random tie-break's chance).
    Chapter 1 asks with this whether people, too, lean on one modality.
    """
    if not votes:
        raise ValueError("vote_agreement: no votes given")
    credit = {mode: 0.0 for mode in VOTE_COLUMNS}
    for clip, modes in votes.items():
        acted = parse_clip_name(clip)["emotion"]
        for mode, vote in modes.items():
            if acted in vote.emotions:
                credit[mode] += 1.0 / len(vote.emotions)
    return {mode: 100.0 * total / len(votes) for mode, total in credit.items()}


def load(
    split: str,
    root: str | os.PathLike | None = None,
    *,
    val_size: int = 670,
    seed: int = 0,
    drop_missing: bool = False,
) -> MultimodalDataset:
    """Split ``split`` ("train", "val" or "test") of CREMA-D from ``root``, OGM-GE's split.

    Inputs are file paths: modality "audio" (``AudioWAV/<clip>.wav``) and "video"
    (``VideoFlash/<clip>.flv``). A clip with a missing file is an error unless ``drop_missing``
    (OGM-GE's loader silently skips such clips).
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"cremad: unknown split {split!r}; expected 'train', 'val' or 'test'")
    root = dataset_root("cremad", root)
    clips = read_split(root / "ogm-ge" / ("test.csv" if split == "test" else "train.csv"))
    indices = np.arange(len(clips)) if split == "test" else holdout(split, len(clips), val_size, seed)
    audio = [root / "AudioWAV" / f"{clip}.wav" for clip, _ in clips]
    video = [root / "VideoFlash" / f"{clip}.flv" for clip, _ in clips]
    indices = indices[keep_existing("cremad", drop_missing, [audio[i] for i in indices], [video[i] for i in indices])]
    return MultimodalDataset(
        name="cremad",
        split=split,
        modalities=("audio", "video"),
        kinds={"audio": "audio", "video": "video"},
        inputs={"audio": [str(audio[i]) for i in indices], "video": [str(video[i]) for i in indices]},
        labels=np.array([clips[i][1] for i in indices], dtype=np.int64),
        class_names=list(CLASS_NAMES),
        task="multiclass",
        options={"val_size": val_size, "seed": seed, "drop_missing": drop_missing},
    )
