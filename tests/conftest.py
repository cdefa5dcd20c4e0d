"""Test-wide settings: no progress bars, and a feature cache inside the checkout (``_build/test-cache``)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from fixtures_real import make_food101
from modbal_lib import features as features_module
from modbal_lib.encoders import encode

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MODBAL_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MODBAL_CACHE", str(ROOT / "_build" / "test-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Real CREMA-D metadata for parser tests; tests that need it skip when it is absent.
SHARED_CREMAD = ROOT.parent / "shared" / "real-samples" / "cremad"

# The tests' models are tiny: one CPU thread runs them faster than several (and repeatably).
torch.set_num_threads(1)


# --- headless Chromium for the browser tests (the HTML book, the labs in JupyterLab) ---------

BROWSER_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900",
    # Only the local server resolves: a page never waits on the internet, and a request elsewhere fails
    # (the book's test also reads every request from the performance log and asserts there is none).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def _install_chromium() -> str | None:
    """Install Debian's chromium and chromium-driver when missing and we can (root on Debian);
    returns why the browser tests must be skipped, or None when Chromium is ready."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return None
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get")):
        return "headless Chromium is missing: install the Debian packages chromium and chromium-driver (needs root)"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium", "chromium-driver"]):
        done = subprocess.run(command, capture_output=True, text=True, env=environment)
        if done.returncode != 0:
            return f"could not install Chromium ({' '.join(command)} exited {done.returncode}): {done.stderr[-300:]}"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra) is not installed")
    reason = _install_chromium()
    if reason:
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request, for driver.get_log("performance")
    for flag in BROWSER_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def food(tmp_path):
    """A Food-101 folder laid out like the real one: 15 train and 6 test pairs of tiny JPEGs and titles."""
    make_food101(tmp_path / "food101")
    return tmp_path / "food101"


@pytest.fixture
def encode_calls(monkeypatch):
    """Record (kind, encoder, rows) of every encoder run made through load_features / precompute
    (a large split runs in chunks)."""
    calls = []

    def counting_encode(kind, inputs, encoder, **options):
        calls.append((kind, encoder, len(inputs)))
        return encode(kind, inputs, encoder, **options)

    monkeypatch.setattr(features_module, "encode", counting_encode)
    return calls
