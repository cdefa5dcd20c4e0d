"""The shared downloader behind ``data_scripts/``: fetch, verify, unpack, check the layout.

``DATA_HUB`` maps a name to a ``Resource`` (like d2l's ``DATA_HUB``): where the file lives, its
sha256 and size where known, and what kind of archive it is. The four steps, each safe to repeat:

1. ``download(url, target, sha256, size)``: HTTP(S) or ``file://``. Bytes go to ``target.part``;
   a rerun after an interruption resumes it with a ``Range: bytes=<have>-`` request (a server that
   ignores ranges just sends the whole file again). Only a verified file is renamed to ``target``.
2. ``verify(path, sha256, size)``: on a cache hit and after every download. A wrong hash is an
   error naming the file and both hashes; the bad bytes never stay at the final name.
3. ``unpack(archive, target, marker)``: .tar.gz/.tgz/.tar/.zip, extracted into a temporary folder
   beside ``target`` and renamed onto it only when complete; a truncated archive leaves nothing.
4. ``check_layout(root, required)``: the required paths that are missing (``require_layout``
   raises with all of them listed).

``prepare_archive`` chains them for a dataset that comes as one archive.
"""

from __future__ import annotations

import sys
import http.client
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from modbal_lib.data.files import DatasetFileError
from modbal_lib.utils import data_dir, file_sha256, progress

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Resource:
    """A downloadable file: ``url`` (then ``mirrors`` in order), its sha256 and byte size if known,
    and ``archive`` = "tar.gz", "zip" or None (a plain file, kept as is)."""

    url: str
    sha256: str | None = None
    size: int | None = None
    archive: str | None = None
    mirrors: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name


_OGM_GE = "https://raw.githubusercontent.com/GeWu-Lab/OGM-GE_CVPR2022/main/data/CREMAD/"
_CREMA_D = "https://raw.githubusercontent.com/CheyneyComputerScience/CREMA-D/master/"

# No checksum is pinned for the two big archives (their sites publish none that we know of), so only
# their integrity is checked, by unpacking them.
# The CREMA-D metadata and OGM-GE split files are pinned to the bytes of the released files.
# Hateful Memes is not here: its licence forbids redistribution, the user brings their own zip.
DATA_HUB: dict[str, Resource] = {
    "food101": Resource("http://visiir.lip6.fr/data/public/UPMC_Food101.tar.gz", archive="tar.gz"),
    "mmimdb": Resource("http://lisi1.unal.edu.co/mmimdb/mmimdb.tar.gz", archive="tar.gz"),
    "cremad_summary_table": Resource(
        _CREMA_D + "processedResults/summaryTable.csv",
        sha256="fb0e382700d32c0d9adc0c6815292215a36bcf912f2657048862c91e3bd2b317",
        size=449048,
        # the repository has also been laid out with everything under data/ (same file)
        mirrors=(_CREMA_D + "data/InfoAndStats/processedResults/summaryTable.csv",),
    ),
    "ogmge_cremad_train": Resource(
        _OGM_GE + "train.csv",
        sha256="68d0d3fd253830328fc92c68f3cf2e215db8c5b86757ad9c5112d2c76ba68bde",
        size=140658,
    ),
    "ogmge_cremad_test": Resource(
        _OGM_GE + "test.csv",
        sha256="14866c99301fd56fb4a16f8a7048a8a6372a47069aee9f216443bc718be45f1f",
        size=15624,
    ),
    "ogmge_cremad_classes": Resource(
        _OGM_GE + "stat.csv",
        sha256="827044c2e7dae878abf30db1a789dcedac2ae260df34d62e6c28c9f8ed82546c",
        size=33,
    ),
    "ogmge_license": Resource(
        "https://raw.githubusercontent.com/GeWu-Lab/OGM-GE_CVPR2022/main/LICENSE",
        sha256="bc2b115fd6dd3fc940064b9c1ec967b8855f517d96ca44e14613da0b32a5cc87",
        size=1065,
    ),
}


class DownloadError(RuntimeError):
    """A download, verification, unpacking or layout check failed; the message says what to do."""


class UnreachableError(DownloadError):
    """The address could not be opened at all (``fetch`` then tries the next mirror)."""


def verify(path: str | os.PathLike, sha256: str | None = None, size: int | None = None) -> None:
    """Raise ``DownloadError`` if ``path`` has the wrong size or sha256 (each checked only if given)."""
    path = Path(path)
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise DownloadError(f"{path}: size is {actual_size:,} bytes, expected {size:,}")
    if sha256 is not None:
        actual = file_sha256(path)
        if actual != sha256.lower():
            raise DownloadError(f"{path}: sha256 mismatch\n  expected {sha256.lower()}\n  actual   {actual}")


def download(
    url: str,
    target: str | os.PathLike,
    sha256: str | None = None,
    size: int | None = None,
    *,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``target`` (resuming ``target.part``) and verify it; return ``target``.

    A ``target`` already there is verified and reused (a cache hit); if it fails verification it is
    removed and downloaded again. If the connection drops, ``target.part`` is kept and the error says
    so: call again to resume. If the finished file fails verification, ``.part`` is removed.
    """
    target = Path(target)
    if target.exists():
        try:
            verify(target, sha256, size)
            return target
        except DownloadError as error:
            print(f"cached file fails verification, downloading it again ({error})")
            target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "modbal-downloader"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to fetch: .part is already complete
            return _finish(part, target, sha256, size)
        raise UnreachableError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise UnreachableError(f"cannot download {url}: {getattr(error, 'reason', error)}") from error
    with response:
        resumed = have > 0 and getattr(response, "status", None) == 206
        if not resumed:
            have = 0  # fresh download, or a server (or file://) that ignored the Range header
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        received = have
        try:
            with open(part, "ab" if resumed else "wb") as file, progress(
                total=total, initial=have, desc=target.name, unit="B", unit_scale=True, unit_divisor=1024
            ) as bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    file.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (http.client.IncompleteRead, ConnectionError, socket.timeout, urllib.error.URLError) as error:
            raise DownloadError(
                f"download of {url} was interrupted after {part.stat().st_size:,} bytes ({error!r}); "
                f"the partial file {part} is kept: run the same command again to resume"
            ) from error
    if total is not None and received < total:
        raise DownloadError(
            f"download of {url} stopped at {received:,} of {total:,} bytes; "
            f"the partial file {part} is kept: run the same command again to resume"
        )
    return _finish(part, target, sha256, size)


def _finish(part: Path, target: Path, sha256: str | None, size: int | None) -> Path:
    """Verify a completed ``.part`` and rename it onto ``target``; a bad one is removed."""
    try:
        verify(part, sha256, size)
    except DownloadError as error:
        part.unlink()
        message = f"{target.name}: the downloaded file is not the expected one and was removed.\n{error}"
        raise DownloadError(message) from None
    os.replace(part, target)
    return target


def fetch(name: str, folder: str | os.PathLike | None = None) -> Path:
    """Download ``DATA_HUB[name]`` into ``folder`` (default ``data_dir()/downloads``), trying its
    mirrors if the main address cannot be reached; return the local path."""
    if name not in DATA_HUB:
        raise KeyError(f"no resource {name!r} in DATA_HUB; known: {', '.join(sorted(DATA_HUB))}")
    resource = DATA_HUB[name]
    target = Path(folder if folder is not None else data_dir() / "downloads") / resource.filename
    failures = []
    for url in (resource.url, *resource.mirrors):
        try:
            return download(url, target, resource.sha256, resource.size)
        except UnreachableError as error:
            failures.append(str(error))
    raise UnreachableError(f"{name}: no address worked:\n  " + "\n  ".join(failures))


def archive_kind(path: str | os.PathLike) -> str:
    """"tar.gz", "tar" or "zip", from the file name."""
    name = Path(path).name.lower()
    for suffix, kind in ((".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar", "tar"), (".zip", "zip")):
        if name.endswith(suffix):
            return kind
    raise DownloadError(f"{path}: unknown archive type (expected .tar.gz, .tgz, .tar or .zip)")


def find_marker(folder: Path, marker: str) -> Path | None:
    """The folder, or one of its sub-folders up to two levels down, that contains path ``marker``."""
    for depth in range(3):
        for candidate in sorted(folder.glob("/".join(["*"] * depth))) if depth else [folder]:
            if candidate.is_dir() and (candidate / marker).exists():
                return candidate
    return None


def unpack(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    kind: str | None = None,
    marker: str | None = None,
    required: Iterable[str] = (),
    password: str | None = None,
    overwrite: bool = False,
    hint: str = "",
) -> Path:
    """Extract ``archive`` so that ``target`` holds its contents, all or nothing.

    ``kind`` ("tar.gz", "tar" or "zip") defaults to what the file name says. Extraction goes into a
    temporary folder beside ``target``. With ``marker`` (a path the dataset
    must contain, e.g. "texts/train_titles.csv"), the extracted folder holding it — the top level or
    an archive's own top folder(s) — becomes ``target``; without, the top level does. A truncated or
    corrupt archive, a zip that needs a (different) ``password``, a missing marker or any missing
    ``required`` path raises ``DownloadError`` (``hint`` appended) and removes the temporary folder.
    An existing ``target`` is an error unless ``overwrite``, which replaces it only once the new one
    is complete.
    """
    archive, target = Path(archive), Path(target)
    if target.exists() and not overwrite:
        raise DownloadError(f"{target} already exists; remove it first (or unpack with overwrite=True)")
    kind = kind or archive_kind(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.unpack-"))
    try:
        try:
            if kind == "zip":
                _extract_zip(archive, scratch, password)
            else:
                _extract_tar(archive, scratch)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
            raise DownloadError(
                f"{archive} is truncated or corrupt ({error}); nothing was unpacked. "
                f"Delete it and download it again."
            ) from error
        content = scratch if marker is None else find_marker(scratch, marker)
        if content is None:
            top = ", ".join(sorted(entry.name for entry in scratch.iterdir())) or "nothing"
            raise DownloadError(f"{archive} does not contain {marker!r} (its top level holds: {top})")
        require_layout(content, required, hint, what=str(archive))
        if target.exists():
            old = scratch.with_name(scratch.name + "-old")
            os.replace(target, old)
            os.replace(content, target)
            shutil.rmtree(old)
        else:
            os.replace(content, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _extract_tar(archive: Path, folder: Path) -> None:
    # tarfile's "data" filter refuses absolute paths, links out of the folder and device files
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(archive, "r:*") as tar:
        for member in progress(tar, desc=f"unpacking {archive.name}", unit=" files"):
            tar.extract(member, folder, **safe)


def _extract_zip(archive: Path, folder: Path, password: str | None) -> None:
    with zipfile.ZipFile(archive) as bundle:
        if password is not None:
            bundle.setpassword(password.encode())
        for member in progress(bundle.infolist(), desc=f"unpacking {archive.name}", unit=" files"):
            try:
                bundle.extract(member, folder)
            except RuntimeError as error:  # zipfile's "encrypted, password required" / "Bad password"
                needs = "the right password" if password is not None else "a password (pass --password)"
                raise DownloadError(f"{archive} is encrypted and needs {needs}: {error}") from error


def check_layout(root: str | os.PathLike, required: Iterable[str]) -> list[str]:
    """The paths in ``required`` (relative to ``root``) that do not exist, in the given order."""
    root = Path(root)
    return [path for path in required if not (root / path).exists()]


def require_layout(root: str | os.PathLike, required: Iterable[str], hint: str = "", what: str | None = None) -> None:
    """Raise ``DownloadError`` listing every missing required path (``hint`` says what to do;
    ``what`` names the thing checked, default ``root``)."""
    missing = check_layout(root, required)
    if missing:
        listing = "\n  ".join(missing)
        raise DownloadError(f"{what or root} is incomplete; missing:\n  {listing}" + (f"\n{hint}" if hint else ""))


def prepare_archive(
    root: str | os.PathLike,
    required: list[str],
    marker: str,
    *,
    name: str | None = None,
    archive: str | os.PathLike | None = None,
    password: str | None = None,
    hint: str = "",
) -> Path:
    """Make ``root`` hold a dataset that comes as one archive, and check its layout.

    If any ``required`` path is missing, the archive (``archive``, else ``fetch(name)``) is unpacked
    onto ``root`` (see ``unpack``; ``marker`` locates the dataset inside it); a complete ``root`` is
    left alone. Raises ``DownloadError`` listing whatever is still missing.
    """
    root = Path(root)
    if check_layout(root, required):
        kind = None
        if archive is None:
            if name is None:
                raise ValueError("prepare_archive: give an archive or the DATA_HUB name to fetch")
            archive, kind = fetch(name), DATA_HUB[name].archive
        unpack(archive, root, kind=kind, marker=marker, required=required, password=password, overwrite=True,
               hint=hint)
    require_layout(root, required, hint)
    return root


def run_script(prepare, *args) -> int:
    """Run a data script's ``prepare(*args)``; a download or dataset error becomes one
    ``error: ...`` line on stderr and exit status 1 (what every script in data_scripts/ returns)."""
    try:
        prepare(*args)
    except (DownloadError, DatasetFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
