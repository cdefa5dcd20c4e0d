"""Prepare Hateful Memes from YOUR licensed download (meme picture + its text, hateful or not).

    python data_scripts/hateful_memes.py --zip ~/Downloads/hateful_memes.zip [--password PW]

The dataset's licence (Meta AI, via DrivenData / hatefulmemeschallenge.com) forbids redistribution,
so this kit never downloads or ships it: accept the licence, download the zip yourself, and point
this script at it. Steps: report whether the zip's sha256 is one of the known official releases,
unpack it into ``<data>/hateful_memes`` (all or nothing; the folder holding ``train.jsonl``, e.g. the
zip's ``data/``, becomes the dataset folder), check the layout, then read every split and check
that each meme's image exists. ``<data>`` is ``MODBAL_DATA`` (default ``~/.cache/modbal/datasets``).

Some releases are password-protected zips: pass ``--password``. Python's zip decryption is slow;
unzipping yourself (``unzip -P PW your.zip``) so that ``<data>/hateful_memes`` holds ``img/`` and the
jsonl files, then running this script without ``--zip``, only checks the result and is faster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modbal_lib import download  # noqa: E402
from modbal_lib.data import hateful_memes  # noqa: E402
from modbal_lib.utils import data_dir, file_sha256  # noqa: E402

REQUIRED = ["img", "train.jsonl", "dev_seen.jsonl", "test_seen.jsonl"]
PHASE_HINT = (
    "The loader needs the phase-2 release (dev_seen.jsonl, test_seen.jsonl with labels). A zip with "
    "dev.jsonl/test.jsonl only is the phase-1 release, whose test file has no labels."
)
# sha256 of the official zips, as listed by MMF's converter (facebookresearch/mmf, mmf_cli/hm_convert.py)
KNOWN_RELEASES = {
    "d8f1073f5fbf1b08a541cc2325fc8645619ab8ed768091fb1317d5c3a6653a77",
    "a424c003b7d4ea3f3b089168b5f5ea73b90a3ff043df4b8ff4d7ed87c51cb572",
    "6e609b8c230faff02426cf462f0c9528957b7884d68c60ebc26ff83846e5f80f",
    "c1363aae9649c79ae4abfdb151b56d3d170187db77757f3daa80856558ac367c",
}


def prepare(root: Path, zip_path: Path | None, password: str | None) -> None:
    if zip_path is not None:
        if not zip_path.is_file():
            raise download.DownloadError(f"{zip_path} does not exist (pass the zip you downloaded)")
        known = file_sha256(zip_path) in KNOWN_RELEASES
        print(f"{zip_path.name}: " + ("an official release" if known else "not a release known to MMF; continuing"))
    elif download.check_layout(root, REQUIRED):
        raise download.DownloadError(f"{root} is not prepared yet: pass --zip PATH (your licensed download)")
    download.prepare_archive(root, REQUIRED, "train.jsonl", archive=zip_path, password=password, hint=PHASE_HINT)
    sizes = {split: len(hateful_memes.load(split, root)) for split in ("train", "val", "test")}
    print(f"hateful_memes ready in {root}: " + ", ".join(f"{n:,} {split}" for split, n in sizes.items()) + " memes")
    print("loader: modbal_lib.data.load('hateful_memes', split); val = dev_seen, test = test_seen")
    print("next:   python -m modbal_lib features --dataset hateful_memes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip", type=Path, default=None, help="the zip you downloaded after accepting the licence")
    parser.add_argument("--password", default=None, help="the zip's password, if it has one")
    parser.add_argument("--root", type=Path, default=None, help="dataset folder (default <data>/hateful_memes)")
    args = parser.parse_args(argv)
    return download.run_script(prepare, args.root or data_dir() / "hateful_memes", args.zip, args.password)


if __name__ == "__main__":
    raise SystemExit(main())
