"""`convonet serve` on a host other machines can reach warns that whoever reaches the port
controls the app; a loopback host stays quiet."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import pytest

from convonet import serve
from convonet.cli import main


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_quiet(host: str) -> None:
    assert serve.is_loopback(host)
    assert serve.exposure_warning(host, 8000) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "10.0.0.5",
                                  "2001:db8::1"])
def test_other_hosts_warn(host: str) -> None:
    text = serve.exposure_warning(host, 8123)
    assert text is not None
    assert text.startswith("convonet: warning: --host ")
    assert "anyone who can reach port 8123 controls the app" in text
    assert "reads and writes files as" in text
    assert "ssh -L 8123:127.0.0.1:8123" in text
    assert "\n" not in text


class FakeServer:
    """Stands in for textual-serve's Server: records that it would have served."""

    served: list[dict[str, Any]] = []

    def __init__(self, command: str, **kwargs: Any) -> None:
        self.kwargs = dict(kwargs, command=command)

    def serve(self) -> None:
        FakeServer.served.append(self.kwargs)


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    import textual_serve.server

    for name in ("SSH_CONNECTION", "SSH_TTY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(textual_serve.server, "Server", FakeServer)
    FakeServer.served = []
    yield FakeServer.served


def test_serve_on_every_address_warns_on_stderr(fake_server: list[dict[str, Any]],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123",
                 "--public-url", "http://gpu-box:8123"]) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line == serve.exposure_warning("0.0.0.0", 8123)
    assert "open http://gpu-box:8123" in captured.out
    assert fake_server and fake_server[0]["host"] == "0.0.0.0"


def test_serve_on_loopback_is_quiet(fake_server: list[dict[str, Any]],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(host="127.0.0.1", port=8124, public_url=None, demo=False,
                              data_params=None, hyper_params=None, results_dir=None)
    assert serve.run_serve(args) == 0
    assert capsys.readouterr().err == ""
    assert fake_server


def test_bad_options_fail_before_any_warning(fake_server: list[dict[str, Any]],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 2  # --public-url is missing
    (line,) = capsys.readouterr().err.splitlines()
    assert "--public-url" in line and "warning" not in line
    assert not fake_server
