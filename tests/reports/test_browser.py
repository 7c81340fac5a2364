"""The report in a real browser: headless Chromium renders it without console errors, tables and images show."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.reports.figures import TP_RGB

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(page: Path, tmp: Path, *extra: str, height: int = 2000) -> tuple[str, str]:
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium; .ci/run installs it)")
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0",
        f"--window-size=1280,{height}", *extra, page.as_uri(),
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    return res.stdout, res.stderr


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_console_capture_works(tmp_path: Path):
    """Control: a page that logs an error is caught, so a clean report really is clean."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><script>console.error("boom-control")</script></body></html>')
    _, err = _chromium(page, tmp_path, "--dump-dom", height=300)
    assert any("boom-control" in line for line in _console(err))


def test_report_renders_cleanly(xss_report: Path, tmp_path: Path):
    shot = tmp_path / "shot.png"
    _, err = _chromium(xss_report, tmp_path, f"--screenshot={shot}", height=3000)
    assert _console(err) == [], "console messages (CSP violations, errors) while rendering the report"
    im = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert im.std() > 20, "blank screenshot"
    # the error maps' true-positive colour is on screen: the embedded figures decoded and rendered
    tp = (np.abs(im - np.array(TP_RGB)).sum(axis=2) < 30).sum()
    assert tp > 500
    dom, _ = _chromium(xss_report, tmp_path, "--dump-dom")
    assert len(re.findall(r"<table", dom)) >= 5
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) >= 5
    assert "<script" not in dom and "alert(1)" in dom  # the hostile id is shown as text, not run
