"""The ``convonet`` command: opens the terminal app, or runs one task headless.

``convonet train | tune | evaluate | predict | classify | demo`` run the core tasks without
the app (see ``convonet.headless``).

``convonet serve`` serves the app to a browser (see ``convonet.serve``); ``convonet keys``
lists every key binding id for the user's keymap file (see ``convonet.keymap``).

``convonet`` alone (or ``--demo``) writes the bundled demo set once and opens the app on it.
``--data-params``/``--hyper-params`` open it on your own params files instead. A params file
that cannot be read ends the command with one line naming the file and what is wrong.

Keras is imported before the app starts, with TensorFlow's logging quieted, so whatever it
still prints at start-up lands before the screen is drawn, not on top of it. Python
warnings and absl/TensorFlow logging go to ``<results>/convonet.log`` while the app runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convonet import __version__, keymap, serve
from convonet.core.errors import ConvonetError, UsageError
from convonet.core.storage import files_left_open
from convonet.headless import add_commands, add_executor_options, worker_left_running
from convonet.noise import LOG_NAME, route_noise_to_log, stderr_to_log

if TYPE_CHECKING:
    from convonet.tui.session import Session

PROG = "convonet"


class CliError(UsageError):
    """A problem with the app's options the user can fix; printed as one line, exit 2."""


def _add_tui_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The app's options, on the top level and on ``convonet tui`` alike.

    On the subcommand their defaults are suppressed so that they do not overwrite values
    given before the subcommand's name.
    """
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--demo", action="store_true", default=default(False),
                        help="open on the bundled demo set (the default without params files)")
    parser.add_argument("--data-params", metavar="PATH", type=Path, default=default(None),
                        help="data params JSON file to load")
    parser.add_argument("--hyper-params", metavar="PATH", type=Path, default=default(None),
                        help="hyper params JSON file to load")
    parser.add_argument("--results-dir", metavar="DIR", type=Path, default=default(None),
                        help="where models and run records go "
                             "(default: $CONVONET_RESULTS_DIR or ./app_results)")
    add_executor_options(parser, suppress=suppress)  # the tuning screen's r switches too
    parser.add_argument("--devices", metavar="WHICH", default=default(None),
                        help="train one model data-parallel over several GPUs: 'all', a "
                             "count (2) or device numbers (0,1) (default: $CONVONET_DEVICES, "
                             "else one device)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, tune and test Keras image classifiers from the terminal.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_tui_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    tui = commands.add_parser("tui", help="open the terminal app (the default)")
    _add_tui_options(tui, suppress=True)
    tui.set_defaults(handler=run_tui)
    add_commands(commands)
    serve.add_command(commands, _add_tui_options)
    keymap.add_command(commands)
    parser.set_defaults(handler=run_tui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``convonet`` and ``python -m convonet``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.handler(args))
    except ConvonetError as exc:  # the user's to fix: one line, the class's exit status
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        status = 130
    except BrokenPipeError:
        # The reader went away (`convonet keys | head`): stop quietly, as a tool killed by
        # SIGPIPE would, and point stdout at /dev/null so the final flush cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    if argv is None and (worker_left_running() or files_left_open()):
        # Our own process (not a caller's): a core task left running in a thread by a
        # second Ctrl+C, or a file h5py could not close on a full disk, would abort
        # interpreter shutdown, so leave at once, streams flushed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


# ---- the terminal app ------------------------------------------------------------------
def multiplexer_notice(environ: Mapping[str, str]) -> str | None:
    """The one-time warning for an SSH session outside tmux or screen, else None.

    There a dropped connection sends SIGHUP: the app then stops its task, records it as
    interrupted and exits; inside tmux the app keeps running and the user reattaches. A
    browser tab of ``convonet serve`` inherits the server's SSH variables but hangs on the
    server, not on the connection: the server warns once instead (``serve_notice``).
    """
    if not _over_ssh_outside_multiplexer(environ):
        return None
    if "web_driver" in environ.get("TEXTUAL_DRIVER", ""):
        return None
    return ("Running over SSH outside tmux or screen: if the connection drops, a running "
            "task stops and is recorded as interrupted (it can be resumed). To keep it "
            "running, start the app inside tmux: tmux new -s convonet")


def serve_notice(environ: Mapping[str, str]) -> str | None:
    """What ``convonet serve`` says once when it was started over SSH outside tmux."""
    if not _over_ssh_outside_multiplexer(environ):
        return None
    return ("convonet: started over SSH outside tmux or screen: if this connection drops, "
            "the server stops and so do the runs in its browser tabs (recorded as "
            "interrupted). To keep it serving, start it inside tmux: tmux new -s convonet")


def _over_ssh_outside_multiplexer(environ: Mapping[str, str]) -> bool:
    if not (environ.get("SSH_CONNECTION") or environ.get("SSH_TTY")):
        return False
    term = environ.get("TERM", "")
    return not (environ.get("TMUX") or environ.get("STY")
                or term.startswith(("screen", "tmux")))


def run_tui(args: argparse.Namespace) -> int:
    """Load what the options name, import Keras, then run the app."""
    notices: list[str] = []
    ssh = multiplexer_notice(os.environ)  # once, at start: a dropped connection stops runs
    if ssh is not None:
        notices.append(ssh)
    session = load_session(args, notices)
    results_dir = session.results_dir
    from convonet.core.storage import StorageError, check_writable

    try:  # said at start; each task that records a run is refused until it is fixed
        check_writable(results_dir)
    except StorageError as exc:
        notices.append(f"{exc}. Training, tuning and testing are refused until it can "
                       "be written.")

    # Warnings and absl/TensorFlow logging come from worker threads at any time; on the
    # screen they would garble it, so they go to a log file while the app runs.
    log_path = Path(results_dir) / LOG_NAME
    with route_noise_to_log(log_path):
        with stderr_to_log(log_path):  # TensorFlow's C++ start-up lines, before any drawing
            backend_label = prepare_keras()
        check_devices(session.devices)
        from convonet.tui.app import ConvonetApp

        app = ConvonetApp(session=session,
                          backend_label=backend_label, notices=notices)
        app.run()
    return app.return_code or 0


def prepare_keras() -> str:
    """Import Keras now, quietly, and describe its backend and device for the header."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from convonet.core.backend import describe_backend

    return describe_backend()


def check_devices(devices: str | None) -> None:
    """Refuse at start a --devices (or $CONVONET_DEVICES) this machine does not have; the
    batch size is checked when a training starts (the hyper params may change first)."""
    from convonet.core.distribution import available_devices, choose_devices, requested_devices

    request, name = requested_devices(devices)
    if request is not None:
        choose_devices(request, available_devices(), name)


def load_session(args: argparse.Namespace, notices: list[str]) -> Session:
    """The app's starting state: the demo's params, or the files given, or the defaults;
    the results folder that --results-dir names, else the default one."""
    from convonet.core.params import DataParams, HyperParams, ParamsError
    from convonet.core.storage import resolve_results_dir
    from convonet.tui.session import Session

    data_path: Path | None = args.data_params
    hyper_path: Path | None = args.hyper_params
    if args.demo or (data_path is None and hyper_path is None):
        demo = demo_params(notices)
        if demo is not None:
            data_path = data_path or demo[0]
            hyper_path = hyper_path or demo[1]

    session = Session(results_dir=resolve_results_dir(args.results_dir),
                      devices=getattr(args, "devices", None))
    try:
        if data_path is not None:
            session.data_params = DataParams.load(data_path)
        if hyper_path is not None:
            session.hyper_params = HyperParams.load(hyper_path)
    except ParamsError as exc:
        raise CliError(str(exc)) from None
    executor_settings(args, session, notices)
    return session


def executor_settings(args: argparse.Namespace, session: Session, notices: list[str],
                      environ: Mapping[str, str] | None = None) -> None:
    """Where the app's searches fit their folds: ``--ray`` (checked: Ray installed) starts
    on Ray; without it, in this process, and the tuning screen's switch (r) offers
    ``RAY_ADDRESS``'s cluster, else a local one."""
    from convonet.executors import parse_ray_address, ray_missing

    ray: str | None = getattr(args, "ray", None)
    share: float | None = getattr(args, "gpus_per_fold", None)
    if share is not None:
        session.gpus_per_fold = share
    if ray is not None:
        missing = ray_missing()
        if missing is not None:
            raise CliError(f"--ray: {missing}, or leave --ray out to tune in this process")
        session.ray = session.ray_address = ray
        return
    env = (os.environ if environ is None else environ).get("RAY_ADDRESS", "").strip()
    if env:
        try:
            session.ray_address = parse_ray_address(env, "RAY_ADDRESS")
        except ValueError as exc:
            notices.append(f"{exc}. The tuning screen's r offers a local Ray cluster "
                           "instead.")


def demo_params(notices: list[str]) -> tuple[Path, Path] | None:
    """Write the demo set if needed and return its params files (None if unavailable)."""
    try:
        demo = importlib.import_module("convonet.core.demo")
    except ModuleNotFoundError as exc:
        if exc.name != "convonet.core.demo":
            raise
        notices.append("The bundled demo set is not part of this build: starting with "
                       "default params. Load your own with the App menu (ctrl+p).")
        return None
    try:
        folder = demo.ensure_demo()
    except OSError as exc:
        raise CliError(f"cannot write the demo set: {exc}") from None
    data_json, hyper_json = demo.demo_params_paths(folder)
    return Path(data_json), Path(hyper_json)
