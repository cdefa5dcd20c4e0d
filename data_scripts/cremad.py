"""Prepare CREMA-D (voice + face of actors, 6 emotions) with OGM-GE's train/test split.

    python data_scripts/cremad.py --from-folder ~/CREMA-D   # an existing Git LFS clone
    python data_scripts/cremad.py                           # clone it (needs git and git-lfs)

The media live in the GitHub repository CheyneyComputerScience/CREMA-D under Git LFS. Without
``--from-folder`` the repository is cloned into ``<data>/cremad/CREMA-D`` with LFS downloads held
back, then only the WAV audio and FLV video are pulled (``git lfs pull --include "*.wav,*.flv"``,
which skips the MP3 copies; rerun to resume). Either way:

1. find ``AudioWAV/`` and ``VideoFlash/`` (at the top of the clone, or under ``data/`` in the
   repository's newer layout) and refuse Git LFS pointer files (a clone made without git-lfs);
2. link them into ``<data>/cremad`` (nothing is copied);
3. download the crowd votes ``summaryTable.csv`` and OGM-GE's ``train.csv``/``test.csv``/
   ``stat.csv`` (+ its MIT licence), each checked against its sha256;
4. read the split files and check every clip's media; print how often people recognise the acted
   emotion from voice only, face only and both.

``<data>`` is ``MODBAL_DATA`` (default ``~/.cache/modbal/datasets``). Licence: ODbL (database) and
DbCL (contents), see LICENSE.txt in the repository.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modbal_lib import download  # noqa: E402
from modbal_lib.data import cremad  # noqa: E402
from modbal_lib.data.files import DatasetFileError, read_lines  # noqa: E402
from modbal_lib.utils import data_dir  # noqa: E402

REPOSITORY = "https://github.com/CheyneyComputerScience/CREMA-D.git"
MEDIA = {"AudioWAV": ".wav", "VideoFlash": ".flv"}
METADATA = {  # DATA_HUB name -> folder inside the dataset folder
    "cremad_summary_table": "processedResults",
    "ogmge_cremad_train": "ogm-ge",
    "ogmge_cremad_test": "ogm-ge",
    "ogmge_cremad_classes": "ogm-ge",
    "ogmge_license": "ogm-ge",
}
LFS_POINTER = b"version https://git-lfs"


def git_lfs_available() -> bool:
    try:
        return subprocess.run(["git", "lfs", "version"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def run(command: list[str], env: dict | None = None) -> None:
    print("running:", " ".join(command))
    result = subprocess.run(command, env=env)
    if result.returncode != 0:
        raise download.DownloadError(f"`{' '.join(command)}` failed (exit {result.returncode}); rerun to resume")


def clone(destination: Path) -> Path:
    """Clone the repository (if not there yet) and pull its WAV and FLV files through Git LFS."""
    if not git_lfs_available():
        raise download.DownloadError(
            "cloning CREMA-D needs git and git-lfs (https://git-lfs.com; then run `git lfs install`). "
            "Or clone it yourself and pass --from-folder PATH."
        )
    if not (destination / ".git").is_dir():  # clone without the LFS files, then pull only the ones needed
        run(["git", "clone", "--depth", "1", REPOSITORY, str(destination)], {**os.environ, "GIT_LFS_SKIP_SMUDGE": "1"})
    run(["git", "-C", str(destination), "lfs", "pull", "--include", "*.wav,*.flv"])
    return destination


def is_lfs_pointer(path: Path) -> bool:
    """True for the small text stub Git leaves in place of a media file it did not pull through LFS."""
    with open(path, "rb") as file:
        return file.read(len(LFS_POINTER)) == LFS_POINTER


def media_folder(source: Path) -> Path:
    """The folder of ``source`` (itself or ``data/``) that holds AudioWAV/ and VideoFlash/, with real media."""
    folder = next((f for f in (source, source / "data") if all((f / name).is_dir() for name in MEDIA)), None)
    if folder is None:
        raise download.DownloadError(f"{source} has no AudioWAV/ and VideoFlash/ folders (nor under data/)")
    for name, suffix in MEDIA.items():
        files = sorted((folder / name).glob(f"*{suffix}"))
        if not files:
            raise download.DownloadError(f"{folder / name} holds no {suffix} files")
        pointers = [path for path in files if is_lfs_pointer(path)]
        if pointers:
            raise download.DownloadError(
                f"{folder / name}: {len(pointers)} of {len(files)} {suffix} files are Git LFS pointers, not media. "
                f'Run `git lfs pull --include "*.wav,*.flv"` in {source}.'
            )
    return folder


def link_media(folder: Path, root: Path) -> None:
    """Make ``root/AudioWAV`` and ``root/VideoFlash`` point at ``folder``'s (symbolic links)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in MEDIA:
        link, real = root / name, (folder / name).resolve()
        if link.exists() and link.resolve() == real:
            continue
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise download.DownloadError(f"{link} exists and is not a link to {real}; move it away first")
        link.symlink_to(real, target_is_directory=True)


def prepare(root: Path, source: Path | None) -> None:
    link_media(media_folder(source or clone(root / "CREMA-D")), root)
    for name, folder in METADATA.items():
        download.fetch(name, root / folder)
    classes = [line.strip() for _, line in read_lines(root / "ogm-ge" / "stat.csv")]
    if classes != cremad.EMOTIONS:
        raise DatasetFileError(f"{root / 'ogm-ge' / 'stat.csv'}: classes {classes}, expected {cremad.EMOTIONS}")
    for split in ("train", "test"):
        clips = cremad.read_split(root / "ogm-ge" / f"{split}.csv")
        usable = cremad.load(split, root, val_size=0, drop_missing=True)
        print(f"{split}: {len(clips):,} clips in OGM-GE's list, {len(usable):,} with both media files")
        if len(usable) < len(clips):
            print(f"  load with drop_missing=True to leave out the {len(clips) - len(usable)} clips without media")
    agreement = cremad.vote_agreement(cremad.read_votes(root / "processedResults" / "summaryTable.csv"))
    shares = ", ".join(f"{mode} {share:.1f}%" for mode, share in agreement.items())
    print(f"crowd recognises the acted emotion: {shares}")
    print(f"cremad ready in {root}; loader: modbal_lib.data.load('cremad', split) (val = 670 clips held out of train)")
    if importlib.util.find_spec("av") is None:
        print("note:   decoding the FLV video needs PyAV: pip install 'modbal_lib[media]'")
    print("next:   python -m modbal_lib features --dataset cremad")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-folder", type=Path, default=None, help="an existing CREMA-D clone with its LFS media")
    parser.add_argument("--root", type=Path, default=None, help="dataset folder (default <data>/cremad)")
    args = parser.parse_args(argv)
    return download.run_script(prepare, args.root or data_dir() / "cremad", args.from_folder)


if __name__ == "__main__":
    raise SystemExit(main())
