"""Download and prepare UPMC Food-101 (food photo + recipe page title, 101 classes).

    python data_scripts/food101.py                     # download, unpack, check
    python data_scripts/food101.py --archive PATH      # use an archive you already have (.tar.gz or .zip)

Steps: download ``UPMC_Food101.tar.gz`` into ``<data>/downloads`` (resumable: rerun after an
interruption), unpack it into ``<data>/food101`` (all or nothing), check the layout, then read
both title files and check that every image they name exists. ``<data>`` is ``MODBAL_DATA``
(default ``~/.cache/modbal/datasets``). The archive is kept; delete it once this succeeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modbal_lib import download  # noqa: E402
from modbal_lib.data import food101  # noqa: E402
from modbal_lib.utils import data_dir  # noqa: E402

REQUIRED = ["images/train", "images/test", "texts/train_titles.csv", "texts/test_titles.csv"]


def prepare(root: Path, archive: Path | None) -> None:
    download.prepare_archive(root, REQUIRED, "texts/train_titles.csv", name="food101", archive=archive)
    train, test = food101.load("train", root, val_size=0), food101.load("test", root)
    print(f"food101 ready in {root}: {len(train):,} train + {len(test):,} test pairs, {len(train.class_names)} classes")
    print("loader: modbal_lib.data.load('food101', split) with split train / val (5,000 held out) / test")
    print("next:   python -m modbal_lib features --dataset food101")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="dataset folder (default <data>/food101)")
    parser.add_argument("--archive", type=Path, default=None, help="an archive you already downloaded")
    args = parser.parse_args(argv)
    return download.run_script(prepare, args.root or data_dir() / "food101", args.archive)


if __name__ == "__main__":
    raise SystemExit(main())
