"""``convonet serve`` in a real headless Chromium, driven over the DevTools protocol.

textual-serve draws the app with xterm.js on a canvas, so the page's text cannot be read
from the DOM: the test reads the websocket frames the page receives (ANSI stripped), sends
a key through the page, and takes a screenshot. The page's web font comes from outside;
the request is blocked (and every outside host is unresolvable) so the test needs no network.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convonet import serve
from convonet.cli import build_parser, main

CHROMIUM = next((p for name in ("chromium", "chromium-browser", "google-chrome")
                 if (p := shutil.which(name))), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium; .ci/run does)")

#: CSI and OSC escape sequences, and the rest of ESC-prefixed pairs.
ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.")
FONT_URLS = ["*fonts.googleapis.com*", "*fonts.gstatic.com*"]


# ---- the command line, without a browser -------------------------------------------------
def test_serve_options_reach_the_app_command(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text("{}")
    args = build_parser().parse_args(["serve", "--port", "8123", "--data-params", str(data),
                                      "--results-dir", "res", "--demo"])
    assert (args.host, args.port, args.public_url) == ("127.0.0.1", 8123, None)
    command = serve.app_command(args, python="python3")
    assert command.startswith("python3 -m convonet tui --demo --data-params ")
    assert str(data.resolve()) in command
    assert str(Path("res").resolve()) in command
    assert serve.public_url("127.0.0.1", 8123) == "http://127.0.0.1:8123"
    assert serve.public_url("::1", 8000) == "http://[::1]:8000"
    assert serve.public_url("x", 1, "http://localhost:9000/") == "http://localhost:9000"


@pytest.mark.parametrize("argv, message", [
    (["serve", "--host", "0.0.0.0"], "--public-url"),
    (["serve", "--port", "70000"], "expected 1 to 65535"),
    (["serve", "--data-params", "/nowhere/d.json"], "no such file"),
    (["serve", "--public-url", "localhost:9000"], "expected http://"),
])
def test_bad_serve_options_are_one_line(argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_run_serve_hands_the_command_to_textual_serve(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    seen: dict[str, Any] = {}

    class FakeServer:
        def __init__(self, command: str, **kwargs: Any) -> None:
            seen.update(kwargs, command=command)

        def serve(self) -> None:
            seen["served"] = True

    import textual_serve.server

    monkeypatch.setattr(textual_serve.server, "Server", FakeServer)
    args = argparse.Namespace(host="127.0.0.1", port=9001, public_url="http://localhost:9999",
                              demo=False, data_params=None, hyper_params=None,
                              results_dir=None)
    assert serve.run_serve(args) == 0
    assert seen["served"] and seen["port"] == 9001 and seen["host"] == "127.0.0.1"
    assert seen["public_url"] == "http://localhost:9999"
    assert seen["command"].endswith("-m convonet tui")
    assert "http://localhost:9999" in capsys.readouterr().out


# ---- a real server and a real browser ----------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the process ended early with status {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def stop(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM (textual-serve exits gracefully on it), then kill if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """``convonet serve`` on a free port of 127.0.0.1, its results and demo set in tmp."""
    port = free_port()
    env = dict(os.environ, CONVONET_RESULTS_DIR=str(tmp_path / "results"),
               CONVONET_DATA_DIR=str(tmp_path / "data"),
               CONVONET_CONFIG_DIR=str(tmp_path / "config"), TF_CPP_MIN_LOG_LEVEL="2")
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "convonet", "serve",
                                    "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        stop(process)


class DevTools:
    """A minimal DevTools-protocol client over one page's websocket (aiohttp's client)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 30)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return dict(reply.get("result", {}))

    def frames_text(self) -> str:
        """What the page's websocket received from the app, decoded, ANSI stripped."""
        parts = []
        for event in self.events:
            if event.get("method") != "Network.webSocketFrameReceived":
                continue
            response = event["params"]["response"]
            payload = response["payloadData"]
            if response.get("opcode") == 2:
                payload = base64.b64decode(payload).decode("utf-8", "replace")
            parts.append(payload)
        return ANSI.sub("", "".join(parts))

    async def wait_for_text(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.frames_text():
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{text!r} never reached the page in {timeout} s; got "
                             f"{self.frames_text()[-800:]!r}")

    async def press(self, key: str, code: str, key_code: int) -> None:
        """One printable key, as a user would type it into the focused terminal."""
        common = {"key": key, "code": code, "windowsVirtualKeyCode": key_code}
        await self.send("Input.dispatchKeyEvent", type="keyDown", text=key, **common)
        await self.send("Input.dispatchKeyEvent", type="keyUp", **common)

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[int]:
    """Headless Chromium with DevTools on a port it picks; no outside host resolves."""
    profile = tmp_path / "chromium-profile"
    assert CHROMIUM is not None
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "--remote-debugging-address=127.0.0.1", "--window-size=1100,700",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert process.poll() is None, "chromium ended at start"
            assert time.monotonic() < deadline, "chromium wrote no DevToolsActivePort"
            time.sleep(0.1)
        yield int(port_file.read_text().split()[0])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@needs_chromium
async def test_the_app_runs_in_a_browser(served: tuple[str, subprocess.Popen[str], Path],
                                         chromium: int, tmp_path: Path) -> None:
    import aiohttp

    url, server, log = served
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{chromium}/json/list") as response:
            targets = await response.json(content_type=None)
        page = next(t for t in targets if t.get("type") == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            tools = DevTools(ws)
            try:
                await tools.send("Network.enable")
                await tools.send("Network.setBlockedURLs", urls=FONT_URLS)
                await tools.send("Page.enable")
                await tools.send("Page.navigate", url=url)

                # The page opened the app's websocket and the app drew its header.
                await tools.wait_for_text("convonet", timeout=45)
                sockets = [e["params"]["url"] for e in tools.events
                           if e.get("method") == "Network.webSocketCreated"]
                assert len(sockets) == 1
                assert sockets[0].startswith(f"ws://127.0.0.1:{url.rsplit(':', 1)[1]}/ws?")

                # A key typed in the page reaches the app: 2 shows the Data screen.
                await tools.send("Runtime.evaluate", expression=(
                    "document.querySelector('.xterm-helper-textarea')?.focus()"))
                await tools.press("2", "Digit2", 50)
                await tools.wait_for_text("Samples", timeout=15)  # its footer
                await asyncio.sleep(0.5)  # let xterm.js paint the canvas

                # F12 through the page: the app saves its SVG screenshot on the server.
                await tools.send("Input.dispatchKeyEvent", type="rawKeyDown", key="F12",
                                 code="F12", windowsVirtualKeyCode=123)
                await tools.send("Input.dispatchKeyEvent", type="keyUp", key="F12",
                                 code="F12", windowsVirtualKeyCode=123)
                shots = tmp_path / "results" / "screenshots"
                deadline = time.monotonic() + 15
                while not list(shots.glob("convonet-data-*.svg")):
                    assert time.monotonic() < deadline, "F12 in the browser saved nothing"
                    await asyncio.sleep(0.2)
                await tools.wait_for_text("Screenshot", timeout=10)  # its notification

                shot = await tools.send("Page.captureScreenshot", format="png")
                png = base64.b64decode(shot["data"])
                (tmp_path / "browser.png").write_bytes(png)
                assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000

                # The outside font request was made and blocked, and nothing else left.
                requested = [e["params"]["request"]["url"] for e in tools.events
                             if e.get("method") == "Network.requestWillBeSent"]
                outside = [u for u in requested
                           if not u.startswith(("http://127.0.0.1", "data:", "about:"))]
                assert any("fonts.googleapis.com" in u for u in outside)
                blocked = {e["params"]["requestId"] for e in tools.events
                           if e.get("method") == "Network.loadingFailed"}
                finished = [e for e in tools.events
                            if e.get("method") == "Network.responseReceived"
                            and not e["params"]["response"]["url"].startswith(
                                ("http://127.0.0.1", "data:"))]
                assert blocked and not finished
            finally:
                await tools.close()
    assert server.poll() is None, log.read_text()
    output = log.read_text()
    assert f"open {url} in a browser" in output
    assert "Application failed to start" not in output
