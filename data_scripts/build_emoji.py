"""Build the embedded emoji asset from the npm package ``emoji-datasource-google@16.0.0``.

    python data_scripts/build_emoji.py                    # runs `npm pack` into a temporary folder
    python data_scripts/build_emoji.py --tarball PATH.tgz # uses a tarball you already have

Writes into ``modbal_lib/data/assets/`` (or ``--out``):
- ``emoji_images.npz``: ``images``, uint8 [N, 64, 64, 3], the Google/Noto 64 px PNGs composited on white;
- ``emoji_meta.json``: one record per image (unified code, name, short names, category, subcategory, image);
- ``NOTICE``: the MIT licence of the data and the Apache-2.0 attribution of the images.

Kept: every emoji with a Google image, except category "Component" (skin-tone and hair swatches).
Skin-tone variants live in ``skin_variations`` of their base record and are not used, so no variant
can leak across splits. That leaves 1,906 base emojis.

The output is byte-identical on every rebuild: the zip entries get a fixed date and order
(``np.savez_compressed`` would stamp the current time), and the JSON is written with sorted keys.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from modbal_lib.utils import atomic_path, file_sha256  # noqa: E402

PACKAGE = "emoji-datasource-google@16.0.0"
TARBALL_SHA256 = "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438"
IMAGE_SIZE = 64
EXPECTED_COUNT = 1906
ASSET_DIR = ROOT / "modbal_lib" / "data" / "assets"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold; fixed for reproducible bytes
META_FIELDS = ("unified", "name", "short_names", "category", "subcategory", "image")

NOTICE_HEAD = f"""Emoji asset (emoji_images.npz, emoji_meta.json) of modbal_lib
=============================================================

Built by data_scripts/build_emoji.py from the npm package {PACKAGE}
(tarball sha256 {TARBALL_SHA256}).

Images: Google Noto Emoji, Copyright Google Inc., licensed under the Apache License,
Version 2.0 (https://github.com/googlefonts/noto-emoji/blob/main/LICENSE); the full
licence text is in LICENSE-Apache-2.0.txt beside this file. Modifications: the 64 px
RGBA PNGs were composited onto a white background, converted to RGB and stored as a
uint8 array.

Data (names, short names, categories, subcategories, code points): emoji-data by
Cal Henderson (https://github.com/iamcal/emoji-data), under the MIT licence below.

"""


def npm_pack(folder: Path) -> Path:
    """Download the package tarball with ``npm pack`` into ``folder``."""
    try:
        subprocess.run(["npm", "pack", PACKAGE], cwd=folder, check=True, stdout=subprocess.DEVNULL)
    except FileNotFoundError:
        sys.exit("npm is not installed; install Node.js, or pass --tarball PATH to a downloaded tarball")
    return next(folder.glob("emoji-datasource-google-*.tgz"))


def read_package(tarball: Path) -> tuple[np.ndarray, list[dict], str]:
    """Images [N, 64, 64, 3] on white, their metadata records, and the MIT licence text."""
    with tarfile.open(tarball, "r:gz") as tar:
        members = {member.name: member for member in tar.getmembers()}

        def read(name: str) -> bytes:
            if name not in members:
                raise ValueError(f"{tarball}: expected {name} inside the tarball, it is missing")
            return tar.extractfile(members[name]).read()

        records = json.loads(read("package/emoji.json"))
        licence = read("package/LICENSE").decode("utf-8")
        kept = [r for r in records if r["category"] != "Component" and r.get("has_img_google")]
        images = []
        for record in kept:
            png = Image.open(io.BytesIO(read(f"package/img/google/{IMAGE_SIZE}/{record['image']}")))
            if png.size != (IMAGE_SIZE, IMAGE_SIZE):
                raise ValueError(f"{tarball}: image {record['image']} is {png.size}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
            white = Image.new("RGBA", png.size, (255, 255, 255, 255))
            images.append(np.asarray(Image.alpha_composite(white, png.convert("RGBA")).convert("RGB")))
    meta = [{field: record[field] for field in META_FIELDS} for record in kept]
    return np.stack(images), meta, licence


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` (``np.load`` reads it) but with fixed zip dates, so the bytes repeat."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, buffer.getvalue(), compresslevel=6)


def build(tarball: Path, out: Path) -> None:
    actual = file_sha256(tarball)
    if actual != TARBALL_SHA256:
        sys.exit(f"{tarball}: sha256 is {actual}, expected {TARBALL_SHA256} ({PACKAGE}); refusing to build")
    images, meta, licence = read_package(tarball)
    if len(meta) != EXPECTED_COUNT:
        sys.exit(f"{tarball}: found {len(meta)} base emojis, expected {EXPECTED_COUNT}")
    source = {"package": PACKAGE, "tarball_sha256": TARBALL_SHA256, "image_size": IMAGE_SIZE}
    with atomic_path(out / "emoji_images.npz") as tmp:
        write_npz(tmp, {"images": images})
    with atomic_path(out / "emoji_meta.json") as tmp:
        text = json.dumps({"source": source, "emojis": meta}, indent=1, sort_keys=True, ensure_ascii=False)
        tmp.write_text(text + "\n", encoding="utf-8")
    with atomic_path(out / "NOTICE") as tmp:
        tmp.write_text(NOTICE_HEAD + licence, encoding="utf-8")
    for name in ("emoji_images.npz", "emoji_meta.json", "NOTICE"):
        os.chmod(out / name, 0o644)  # temporary files are created owner-only; the asset is for everyone
    size_mb = (out / "emoji_images.npz").stat().st_size / 1e6
    print(f"wrote {len(meta)} emojis to {out} (images {size_mb:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help=f"the `npm pack {PACKAGE}` tarball (default: run npm pack)")
    parser.add_argument("--out", type=Path, default=ASSET_DIR, help="output folder (default: the package's assets)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tarball:
        build(args.tarball, args.out)
        return
    with tempfile.TemporaryDirectory() as folder:
        build(npm_pack(Path(folder)), args.out)


if __name__ == "__main__":
    main()
