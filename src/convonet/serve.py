"""``convonet serve``: the same app in a browser, through textual-serve.

textual-serve runs one command line per browser tab (``python -m convonet tui ...``) and
relays its screen over a websocket to xterm.js in the page. It binds to 127.0.0.1 by default:
on a remote box, forward the port over SSH (``ssh -L 8000:127.0.0.1:8000 gpu-box``) rather
than opening it to the network; the app can read and write files as the user who runs it.

The page's links are absolute, built from the public URL: when the forwarded local port
differs from the served one (``ssh -L 9000:127.0.0.1:8000``), pass
``--public-url http://localhost:9000`` or the page cannot reach its websocket.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import shlex
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convonet.core.errors import ConvonetError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: Hosts that listen everywhere: a browser cannot open them, so the URL needs a real name.
ANY_HOST = ("0.0.0.0", "::", "")


class ServeError(ConvonetError):
    """A problem with the serve options; printed as one line, exit status 2."""

    title = "Serve error"


def add_command(commands: Any,
                add_app_options: Callable[..., None]) -> argparse.ArgumentParser:
    """Register ``convonet serve``; ``add_app_options`` adds the app's own options."""
    parser = commands.add_parser(
        "serve", help="serve the app to a web browser (textual-serve)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the convonet app to a web browser: each browser tab runs its own "
                    "app. Bound to 127.0.0.1 unless --host says otherwise.",
        epilog="examples:\n"
               "  convonet serve                      # then open http://127.0.0.1:8000\n"
               "  convonet serve --port 8080 --data-params app_input/mnist_data_params.json\n"
               "  # on a remote box, from your machine: ssh -L 9000:127.0.0.1:8000 gpu-box\n"
               "  convonet serve --public-url http://localhost:9000")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default: {DEFAULT_HOST}; 0.0.0.0 opens "
                             "it to the network, without any password)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on (default: {DEFAULT_PORT})")
    parser.add_argument("--public-url", metavar="URL", default=None,
                        help="the URL the browser uses, when it differs from http://HOST:PORT "
                             "(SSH port forwarding to another local port, a proxy)")
    add_app_options(parser, suppress=True)
    parser.set_defaults(handler=run_serve)
    return parser


def app_command(args: argparse.Namespace, python: str | None = None) -> str:
    """The shell command textual-serve runs for each browser tab: the app with our options.

    Paths are made absolute so the app finds them whatever folder the server was started in.
    """
    argv = [python or sys.executable, "-m", "convonet", "tui"]
    if getattr(args, "demo", False):
        argv.append("--demo")
    for option in ("data_params", "hyper_params", "results_dir"):
        value = getattr(args, option, None)
        if value is not None:
            argv += [f"--{option.replace('_', '-')}", str(Path(value).expanduser().resolve())]
    for option in ("ray", "gpus_per_fold"):  # where the tabs' searches fit their folds
        value = getattr(args, option, None)
        if value is not None:
            argv += [f"--{option.replace('_', '-')}", str(value)]
    if getattr(args, "devices", None):
        argv += ["--devices", str(args.devices)]
    return shlex.join(argv)


def public_url(host: str, port: int, given: str | None = None) -> str:
    """The URL the page's links are built from (textual-serve's rule, with IPv6 brackets)."""
    if given:
        return given.rstrip("/")
    if host in ANY_HOST:
        raise ServeError(f"--host {host or repr(host)} listens on every address: give the "
                         "URL browsers will use with --public-url (e.g. http://my-box:"
                         f"{port})")
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}" if port == 80 else f"http://{shown}:{port}"


def is_loopback(host: str) -> bool:
    """True when ``host`` listens only on this machine (127.x, ::1, localhost).

    A name is resolved as the server will resolve it; one that does not resolve counts as
    loopback here (the server then fails to bind and says so), one that resolves to any
    address off this machine does not.
    """
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    if not name:
        return False  # "" listens on every address
    try:
        infos = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return True
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback
               for info in infos)


def exposure_warning(host: str, port: int) -> str | None:
    """The warning for a host other machines can reach, or None for a loopback one.

    The served app has no password and runs as this user: whoever reaches the port can
    load, write and delete files wherever this user can.
    """
    if is_loopback(host):
        return None
    try:
        user = f"user {getpass.getuser()!r}"
    except (KeyError, OSError):  # no name for this uid (some containers)
        user = "this user"
    return (f"convonet: warning: --host {host or repr(host)} is reachable from other "
            f"machines, without a password: anyone who can reach port {port} controls the "
            f"app and reads and writes files as {user}. Safer: keep the default host "
            f"({DEFAULT_HOST}) and forward the port over SSH from your machine "
            f"(ssh -L {port}:{DEFAULT_HOST}:{port} THIS-HOST).")


def check_args(args: argparse.Namespace) -> None:
    """Fail now, once, rather than in every browser tab that opens the app."""
    if not 0 < args.port < 65536:
        raise ServeError(f"--port {args.port}: expected 1 to 65535")
    for option in ("data_params", "hyper_params"):
        value = getattr(args, option, None)
        if value is not None and not Path(value).expanduser().is_file():
            raise ServeError(f"--{option.replace('_', '-')} {value}: no such file")
    if args.public_url and not args.public_url.startswith(("http://", "https://")):
        raise ServeError(f"--public-url {args.public_url}: expected http://... or https://...")


def run_serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C; returns the exit status."""
    check_args(args)  # a ServeError: one line, exit status 2 (see convonet.cli.main)
    url = public_url(args.host, args.port, args.public_url)
    try:
        from textual_serve.server import Server
    except ModuleNotFoundError as exc:
        raise ServeError(f"textual-serve is not installed ({exc.name}): "
                         "python -m pip install textual-serve") from None

    from convonet.cli import serve_notice

    for notice in (exposure_warning(args.host, args.port), serve_notice(os.environ)):
        if notice is not None:
            print(notice, file=sys.stderr, flush=True)
    command = app_command(args)
    server = Server(command, host=args.host, port=args.port, title="convonet",
                    public_url=url)
    print(f"convonet: open {url} in a browser (Ctrl+C stops the server)", flush=True)
    try:
        server.serve()
    except OSError as exc:  # the port is taken, the address is not ours ...
        raise ServeError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") \
            from None
    return 0
