"""``convonet demo``: write the bundled demo set, print its params (and train on it)."""

from __future__ import annotations

import argparse

from convonet.headless.commands.train import cmd_train
from convonet.headless.output import EXIT_OK, Output
from convonet.headless.runner import Runner


def cmd_demo(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Write the bundled demo set and print its params files (then train, with --train)."""
    from convonet.core.demo import demo_params_paths, ensure_demo

    folder = ensure_demo(args.data_dir)
    data_json, hyper_json = demo_params_paths(folder)
    output.line(f"demo set: {folder}")
    output.line(f"data params: {data_json}")
    output.line(f"hyper params: {hyper_json}")
    if not args.train:
        output.line(f"next: convonet train --data-params {data_json} "
                    f"--hyper-params {hyper_json}", style="dim")
        output.emit_json({"command": "demo", "status": "finished", "folder": str(folder),
                          "data_params": str(data_json), "hyper_params": str(hyper_json)})
        return EXIT_OK
    args.data_params, args.hyper_params = data_json, hyper_json
    args.validation = True
    return cmd_train(args, output, runner)


