"""``teachseg view OUT_DIR``: says where it listens, opens the browser, stops on Ctrl-C, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from teachseg.cli import run
from tests.conftest import teachseg_cmd
from tests.viewer.conftest import predictions  # noqa: F401  (shared fixture)

from .conftest import one_error_line


@pytest.mark.parametrize("exists", [True, False])
def test_a_folder_without_predictions_is_a_one_line_error(tmp_path: Path, capsys, exists: bool):
    folder = tmp_path / "empty"
    if exists:
        folder.mkdir()
    assert run(["view", str(folder), "--no-browser"]) == 2
    err = one_error_line(capsys)
    assert str(folder) in err and "teachseg predict" in err and "--out DIR" in err


def test_a_port_in_use_is_a_one_line_error(predictions: Path, capsys):  # noqa: F811
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run(["view", str(predictions), "--no-browser", "--port", str(port)]) == 2
    err = one_error_line(capsys)
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_opens_the_browser_at_the_address_it_prints(predictions: Path, capsys, monkeypatch):  # noqa: F811
    import webbrowser

    from teachseg.viewer.server import ViewerServer

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", opened.append)

    def ctrl_c(self: ViewerServer, poll_interval: float = 0.5) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ViewerServer, "serve_forever", ctrl_c)
    assert run(["view", str(predictions)]) == 0
    captured = capsys.readouterr()
    url = captured.out.strip()
    assert opened == [url] and url.startswith("http://127.0.0.1:") and url.endswith("/")
    assert f"viewing 2 prediction(s) in {predictions} at {url}" in captured.err
    assert captured.err.strip().endswith("stopped")


def test_serves_the_folder_until_ctrl_c(predictions: Path):  # noqa: F811
    proc = subprocess.Popen(
        [*teachseg_cmd(), "view", str(predictions), "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TEACHSEG_LOG_FORMAT": "plain"},
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        with urllib.request.urlopen(url + "api/folder.json", timeout=20) as resp:
            names = [s["name"] for s in json.load(resp)["slides"]]
        assert names == ["square", "clear"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
        assert "stopped" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
