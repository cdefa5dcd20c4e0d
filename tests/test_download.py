"""The shared downloader: download/resume over file:// and a local HTTP server, verification,
atomic unpacking, layout checks; and the pinned CREMA-D/OGM-GE hashes against the real files."""

import hashlib
import http.server
import shutil
import threading

import pytest

from conftest import SHARED_CREMAD
from fixtures_real import resource_for, tar_gz, truncated_copy, zip_folder
from modbal_lib import download
from modbal_lib.download import DATA_HUB, DownloadError, Resource, UnreachableError

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def payload_file(tmp_path):
    path = tmp_path / "served" / "payload.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


class RangeServer:
    """A local HTTP server for PAYLOAD. mode: "range" honours Range headers, "ignore" always sends
    everything (200), "cut" announces the full length but hangs up halfway."""

    def __init__(self):
        self.mode, self.ranges = "range", []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/payload.bin":
                    self.send_error(404)
                    return
                server.ranges.append(self.headers.get("Range"))
                start = 0
                if server.mode != "ignore" and self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD) - start))
                self.end_headers()
                body = PAYLOAD[start:]
                self.wfile.write(body[: len(body) // 2] if server.mode == "cut" else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/payload.bin"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()


@pytest.fixture
def server():
    running = RangeServer()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def test_download_file_url_verifies_and_places_the_file(tmp_path, payload_file):
    target = download.download(payload_file.as_uri(), tmp_path / "out" / "payload.bin", PAYLOAD_SHA256, len(PAYLOAD))
    assert target.read_bytes() == PAYLOAD
    assert not (tmp_path / "out" / "payload.bin.part").exists()


def test_wrong_hash_names_file_and_hashes_and_leaves_nothing(tmp_path, payload_file):
    target = tmp_path / "payload.bin"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as error:
        download.download(payload_file.as_uri(), target, wrong)
    message = str(error.value)
    assert "payload.bin" in message and wrong in message and PAYLOAD_SHA256 in message
    assert not target.exists() and not (tmp_path / "payload.bin.part").exists()


def test_wrong_size_is_an_error(tmp_path, payload_file):
    with pytest.raises(DownloadError, match="10,240 bytes, expected 10,241"):
        download.download(payload_file.as_uri(), tmp_path / "payload.bin", size=len(PAYLOAD) + 1)
    assert not (tmp_path / "payload.bin").exists()


def test_cache_hit_is_verified_and_reused_without_network(tmp_path):
    target = tmp_path / "payload.bin"
    target.write_bytes(PAYLOAD)
    unreachable = (tmp_path / "nowhere.bin").as_uri()
    assert download.download(unreachable, target, PAYLOAD_SHA256).read_bytes() == PAYLOAD


def test_corrupt_cache_hit_is_downloaded_again(tmp_path, payload_file):
    target = tmp_path / "payload.bin"
    target.write_bytes(b"corrupted")
    assert download.download(payload_file.as_uri(), target, PAYLOAD_SHA256).read_bytes() == PAYLOAD


def test_http_resume_sends_range_and_appends(tmp_path, server):
    target = tmp_path / "payload.bin"
    (tmp_path / "payload.bin.part").write_bytes(PAYLOAD[:3000])
    download.download(server.url, target, PAYLOAD_SHA256, len(PAYLOAD))
    assert server.ranges == ["bytes=3000-"]
    assert target.read_bytes() == PAYLOAD


def test_http_server_ignoring_range_restarts_cleanly(tmp_path, server):
    server.mode = "ignore"
    (tmp_path / "payload.bin.part").write_bytes(b"stale bytes that must not be kept")
    assert download.download(server.url, tmp_path / "payload.bin", PAYLOAD_SHA256).read_bytes() == PAYLOAD


def test_interrupted_download_keeps_part_then_resumes(tmp_path, server):
    server.mode = "cut"
    target = tmp_path / "payload.bin"
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        download.download(server.url, target, PAYLOAD_SHA256)
    part = tmp_path / "payload.bin.part"
    assert not target.exists() and part.read_bytes() == PAYLOAD[: len(PAYLOAD) // 2]
    server.mode = "range"
    download.download(server.url, target, PAYLOAD_SHA256)
    assert server.ranges[-1] == f"bytes={len(PAYLOAD) // 2}-"
    assert target.read_bytes() == PAYLOAD and not part.exists()


def test_http_404_is_unreachable(tmp_path, server):
    with pytest.raises(UnreachableError, match="HTTP 404"):
        download.download(server.url.replace("payload", "missing"), tmp_path / "x.bin")


def test_fetch_falls_back_to_a_mirror(tmp_path, payload_file, monkeypatch):
    good = resource_for(payload_file)
    monkeypatch.setitem(DATA_HUB, "thing", Resource((tmp_path / "gone" / "payload.bin").as_uri(), good.sha256,
                                                     good.size, mirrors=(good.url,)))
    assert download.fetch("thing", tmp_path / "downloads").read_bytes() == PAYLOAD
    with pytest.raises(KeyError, match="no resource 'nothing'"):
        download.fetch("nothing")


@pytest.fixture
def tree(tmp_path):
    """A small folder to pack: data/a.txt, data/sub/b.txt."""
    folder = tmp_path / "tree"
    (folder / "data" / "sub").mkdir(parents=True)
    (folder / "data" / "a.txt").write_text("alpha")
    (folder / "data" / "sub" / "b.txt").write_text("beta" * 2000)
    return folder


@pytest.mark.parametrize("pack", [tar_gz, zip_folder])
def test_unpack_finds_the_marked_folder(tmp_path, tree, pack):
    archive = pack(tree, tmp_path / ("bundle.tar.gz" if pack is tar_gz else "bundle.zip"), top="Release_v1")
    target = download.unpack(archive, tmp_path / "dataset", marker="sub/b.txt")
    assert (target / "a.txt").read_text() == "alpha" and (target / "sub" / "b.txt").exists()
    assert {p.name for p in tmp_path.iterdir()} == {archive.name, "dataset", "tree"}  # no temporary left


@pytest.mark.parametrize("pack", [tar_gz, zip_folder])
def test_truncated_archive_is_an_error_and_leaves_nothing(tmp_path, tree, pack):
    archive = pack(tree, tmp_path / ("whole.tar.gz" if pack is tar_gz else "whole.zip"))
    cut = truncated_copy(archive, tmp_path / ("cut.tar.gz" if pack is tar_gz else "cut.zip"), keep=0.6)
    with pytest.raises(DownloadError, match="truncated or corrupt"):
        download.unpack(cut, tmp_path / "dataset")
    assert not (tmp_path / "dataset").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dataset")]


def test_failed_overwrite_keeps_the_old_folder(tmp_path, tree):
    archive = tar_gz(tree, tmp_path / "whole.tar.gz")
    target = download.unpack(archive, tmp_path / "dataset")
    with pytest.raises(DownloadError, match="already exists"):
        download.unpack(archive, target)
    cut = truncated_copy(archive, tmp_path / "cut.tar.gz", keep=0.6)
    with pytest.raises(DownloadError):
        download.unpack(cut, target, overwrite=True)
    assert (target / "data" / "a.txt").read_text() == "alpha"
    (target / "data" / "a.txt").write_text("edited")
    download.unpack(archive, target, overwrite=True)
    assert (target / "data" / "a.txt").read_text() == "alpha"


def test_archive_without_marker_or_required_paths_is_rejected(tmp_path, tree):
    archive = tar_gz(tree, tmp_path / "whole.tar.gz")
    with pytest.raises(DownloadError, match=r"does not contain 'train.jsonl' \(its top level holds: data\)"):
        download.unpack(archive, tmp_path / "dataset", marker="train.jsonl")
    with pytest.raises(DownloadError) as error:
        download.unpack(archive, tmp_path / "dataset", marker="a.txt", required=["a.txt", "img", "x/y.json"],
                        hint="get the other release")
    assert "missing:\n  img\n  x/y.json\nget the other release" in str(error.value)
    assert not (tmp_path / "dataset").exists()


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs the zip command to make an encrypted zip")
def test_encrypted_zip_needs_the_password(tmp_path, tree):
    import subprocess

    archive = tmp_path / "secret.zip"
    subprocess.run(["zip", "-q", "-r", "-P", "s3cret", str(archive), "data"], cwd=tree, check=True)
    with pytest.raises(DownloadError, match="encrypted and needs a password"):
        download.unpack(archive, tmp_path / "dataset")
    with pytest.raises(DownloadError, match="encrypted and needs the right password"):
        download.unpack(archive, tmp_path / "dataset", password="wrong")
    assert not (tmp_path / "dataset").exists()
    target = download.unpack(archive, tmp_path / "dataset", password="s3cret")
    assert (target / "data" / "sub" / "b.txt").read_text() == "beta" * 2000


def test_unknown_archive_type(tmp_path):
    with pytest.raises(DownloadError, match="unknown archive type"):
        download.unpack(tmp_path / "data.rar", tmp_path / "dataset")


def test_check_and_require_layout_list_exactly_what_is_missing(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "train_titles.csv").write_text("x")
    required = ["images/train", "images/test", "texts/train_titles.csv", "texts/test_titles.csv"]
    assert download.check_layout(tmp_path, required) == ["images/test", "texts/test_titles.csv"]
    with pytest.raises(DownloadError, match="missing:\n  images/test\n  texts/test_titles.csv$"):
        download.require_layout(tmp_path, required)
    download.require_layout(tmp_path, required[:1])


def test_prepare_archive_fetches_once_then_reuses(tmp_path, tree, monkeypatch):
    archive = zip_folder(tree, tmp_path / "release.zip", top="release")
    monkeypatch.setitem(DATA_HUB, "toy", resource_for(archive, "zip"))
    monkeypatch.setenv("MODBAL_DATA", str(tmp_path / "data"))
    root = download.prepare_archive(tmp_path / "toy", ["data/a.txt"], "data/a.txt", name="toy")
    assert (root / "data" / "a.txt").read_text() == "alpha"
    assert (tmp_path / "data" / "downloads" / "release.zip").exists()
    monkeypatch.setitem(DATA_HUB, "toy", Resource((tmp_path / "gone.zip").as_uri()))
    assert download.prepare_archive(root, ["data/a.txt"], "data/a.txt", name="toy") == root


@pytest.mark.skipif(not SHARED_CREMAD.is_dir(), reason="real CREMA-D metadata not present")
@pytest.mark.parametrize("name, path", [
    ("cremad_summary_table", "summaryTable.csv"),
    ("ogmge_cremad_train", "ogm-ge-splits/train.csv"),
    ("ogmge_cremad_test", "ogm-ge-splits/test.csv"),
    ("ogmge_cremad_classes", "ogm-ge-splits/stat.csv"),
    ("ogmge_license", "ogm-ge-splits/LICENSE"),
])
def test_pinned_hashes_match_the_real_files(name, path):
    resource = DATA_HUB[name]
    download.verify(SHARED_CREMAD / path, resource.sha256, resource.size)
    assert resource.filename == path.split("/")[-1]
