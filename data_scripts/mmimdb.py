"""Download and prepare MM-IMDb (movie poster + plot, 23 genres or the rating).

    python data_scripts/mmimdb.py                      # download, unpack, check
    python data_scripts/mmimdb.py --archive PATH       # use a mmimdb.tar.gz you already have

Steps: download ``mmimdb.tar.gz`` into ``<data>/downloads`` (resumable: rerun after an
interruption), unpack it into ``<data>/mmimdb`` (all or nothing; it holds ``mmimdb/split.json`` and
``mmimdb/dataset/``), check the layout, then read every movie of the three splits. ``<data>`` is
``MODBAL_DATA`` (default ``~/.cache/modbal/datasets``). The archive is kept; delete it once this succeeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modbal_lib import download  # noqa: E402
from modbal_lib.data import mmimdb  # noqa: E402
from modbal_lib.utils import data_dir  # noqa: E402

REQUIRED = ["mmimdb/split.json", "mmimdb/dataset"]


def prepare(root: Path, archive: Path | None) -> None:
    download.prepare_archive(root, REQUIRED, "mmimdb/split.json", name="mmimdb", archive=archive)
    sizes = {split: len(mmimdb.load(split, root)) for split in ("train", "val", "test")}
    print(f"mmimdb ready in {root}: " + ", ".join(f"{n:,} {split}" for split, n in sizes.items()) + " movies")
    print("loader: modbal_lib.data.load('mmimdb', split) (genres, multilabel) or target='rating' (regression)")
    print("next:   python -m modbal_lib features --dataset mmimdb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="dataset folder (default <data>/mmimdb)")
    parser.add_argument("--archive", type=Path, default=None, help="a mmimdb.tar.gz you already downloaded")
    args = parser.parse_args(argv)
    return download.run_script(prepare, args.root or data_dir() / "mmimdb", args.archive)


if __name__ == "__main__":
    raise SystemExit(main())
