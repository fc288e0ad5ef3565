"""The headless subcommands' argument parsers, added to ``convonet``'s subparsers."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from convonet.executors import INSTALL_RAY, parse_gpus_per_fold, ray_address_from
from convonet.headless.runner import run_command
from convonet.noise import LOG_NAME


# ---- the argument parser ------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, *, hyper: bool = True, model: bool = False
            ) -> None:
    """Options every command takes. Shared names keep the top-level values (SUPPRESS)."""
    parser.add_argument("--data-params", metavar="PATH", type=Path, default=argparse.SUPPRESS,
                        help="data params JSON (default: the demo set when no params are "
                             "given)")
    if hyper:
        parser.add_argument("--hyper-params", metavar="PATH", type=Path,
                            default=argparse.SUPPRESS, help="hyper params JSON")
    if model:
        parser.add_argument("--model", metavar="PATH", type=Path, default=None,
                            help="the .keras model file (default: RESULTS/<name>-<hash>.keras "
                                 "as 'convonet train' saves it: <name> from the data params "
                                 "file's name, <hash> six hex digits naming its folder)")
    parser.add_argument("--results-dir", metavar="DIR", type=Path, default=argparse.SUPPRESS,
                        help="where run records and models go "
                             "(default: $CONVONET_RESULTS_DIR or ./app_results)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of bars and tables")
    parser.add_argument("--verbose", action="store_true",
                        help="show library warnings and tracebacks on the terminal instead "
                             f"of RESULTS/{LOG_NAME}")


def _parser(commands: Any, name: str, help_text: str, description: str,
            examples: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=textwrap.fill(description, 79),
        epilog="examples:\n" + examples + "\n\nexit status: 0 done, 1 failed, 2 bad input "
        "(one line on stderr), 130 stopped by Ctrl+C",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=run_command, command=name)
    return parser


#: The demo's params options, as the examples show them.
DEMO_ARGS = ("--data-params DEMO/demo_data_params.json "
             "--hyper-params DEMO/demo_hyper_params.json")


def add_commands(commands: Any) -> None:
    """Add the headless subcommands to ``convonet``'s subparsers."""
    for add in (_add_train, _add_tune, _add_evaluate, _add_predict, _add_classify, _add_demo):
        add(commands)


def _add_train(commands: Any) -> None:
    p = _parser(commands, "train", "train a model without the app",
                "Load the training set, build the model from the hyper params' first "
                "values, train (with validation unless --no-validation), and save the model "
                "to --model and to the run folder. Ctrl+C stops at the next batch and keeps "
                "the finished epochs. A training that diverges (NaN loss, or accuracy back "
                "at chance) stops with a notice and exits 1.",
                "  convonet train          (no params: the demo set, see 'convonet demo')\n"
                f"  convonet train {DEMO_ARGS} --no-validation\n"
                "  convonet train --data-params app_input/mnist_data_params.json "
                "--hyper-params app_input/mnist_hyper_params.json --epochs 3 "
                "--model app_results/mnist.keras\n"
                "  convonet train --resume app_results/runs/20250101-120000-training")
    _common(p, model=True)
    p.add_argument("--validation", action=argparse.BooleanOptionalAction, default=True,
                   help="hold out validation_split for validation (default: on)")
    p.add_argument("--epochs", type=int, metavar="N", help="override the epochs to train")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard logs into the run folder (needs the 'tensorboard' "
                        "extra; CONVONET_TENSORBOARD=1 turns it on everywhere, the app too)")
    p.add_argument("--resume", metavar="RUN_DIR", type=Path,
                   help="continue a stopped or interrupted training run at the epoch after "
                        "its last checkpoint (its own params and training set)")
    p.add_argument("--force", action="store_true",
                   help="replace the model file when it already exists (without it, train "
                        "refuses before it starts)")
    p.add_argument("--devices", metavar="WHICH", default=None,
                   help="train one model data-parallel over several GPUs: 'all', a count "
                        "(2) or device numbers (0,1); batch_size must be divisible by "
                        "their number (default: $CONVONET_DEVICES, else one device)")


def _add_tune(commands: Any) -> None:
    p = _parser(commands, "tune", "grid search or successive halving without the app",
                "Cross-validate every combination of the hyper params' comma-separated "
                "values on the tuning share of the training set. Each fold's score is "
                "recorded as it finishes; Ctrl+C keeps the finished folds and --resume "
                "continues the search.",
                f"  convonet tune {DEMO_ARGS} --save-best best_hyper_params.json\n"
                "  convonet tune --resume app_results/runs/20250101-120000-tuning\n"
                f"  convonet tune {DEMO_ARGS} --ray            (every GPU of this box)\n"
                f"  convonet tune {DEMO_ARGS} --ray 10.0.0.1:6379 --gpus-per-fold 0.25")
    _common(p)
    p.add_argument("--search", choices=("grid", "halving"),
                   help="override the params' search strategy")
    p.add_argument("--epochs", type=int, metavar="N", help="override the epochs of each fit")
    p.add_argument("--save-best", metavar="PATH", type=Path,
                   help="write the hyper params with the best combination applied")
    p.add_argument("--resume", metavar="RUN_DIR", type=Path,
                   help="continue a stopped or interrupted tuning run (on the executor "
                        "these options name, not necessarily the one it started on)")
    add_executor_options(p)


class _RayAction(argparse.Action):
    """``--ray [ADDRESS]``: the value, else ``RAY_ADDRESS``, else ``auto``, checked now."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        try:
            setattr(namespace, self.dest, ray_address_from(values))
        except ValueError as exc:
            parser.error(str(exc))


class _GpuShareAction(argparse.Action):
    """``--gpus-per-fold F``: 0 < F <= 1, checked now."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        try:
            setattr(namespace, self.dest, parse_gpus_per_fold(values))
        except ValueError as exc:
            parser.error(str(exc))


def add_executor_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """``--ray [ADDRESS]`` and ``--gpus-per-fold F``: where tuning folds run (``convonet
    tune`` and the app). ``suppress``: leave values given before a subcommand alone."""
    parser.add_argument(
        "--ray", metavar="ADDRESS", nargs="?", const=None, action=_RayAction,
        default=argparse.SUPPRESS if suppress else None,
        help="fit the tuning folds on Ray workers, several at once (needs "
             f"{INSTALL_RAY}). Without a value: the cluster $RAY_ADDRESS names, else "
             "'auto', a local Ray cluster over every GPU of this machine; HOST:PORT: the "
             "running cluster whose head node listens there (run convonet on one of its "
             "nodes). Default: the folds run one after another in this process")
    parser.add_argument(
        "--gpus-per-fold", metavar="F", action=_GpuShareAction,
        default=argparse.SUPPRESS if suppress else None,
        help="with --ray: each fold's share of a GPU, above 0 and at most 1 (default 1; "
             "0.25 packs four small fits on each GPU)")


def _add_evaluate(commands: Any) -> None:
    p = _parser(commands, "evaluate", "loss and accuracy of a model on the test set",
                "Load a saved model and the test set of the data params, and report loss "
                "and accuracy.",
                "  convonet evaluate --data-params app_input/mnist_data_params.json "
                "--model app_results/mnist.keras --json")
    _common(p, hyper=False, model=True)


def _add_predict(commands: Any) -> None:
    p = _parser(commands, "predict", "confusion matrix and per-class report on the test set",
                "Predict the test set with a saved model: the confusion matrix as a coloured "
                "heatmap and per-class precision, recall and F1, saved as confusion.csv and "
                "report.csv in the run folder.",
                "  convonet predict --data-params app_input/mnist_data_params.json "
                "--model app_results/mnist.keras")
    _common(p, hyper=False, model=True)


def _add_classify(commands: Any) -> None:
    p = _parser(commands, "classify", "classify new, unlabelled images",
                "Give the predicted class and confidence of image files or folders of "
                "images (not recursive). Image size and colour mode come from --data-params "
                "or, without it, from the model.",
                "  convonet classify --model app_results/mnist.keras scans/ one.png "
                "--csv predictions.csv")
    p.add_argument("paths", metavar="PATH", nargs="+", type=Path,
                   help="image files and folders of images")
    _common(p, hyper=False, model=True)
    p.add_argument("--csv", metavar="OUT", type=Path,
                   help="also write the classifications to this CSV file")


def _add_demo(commands: Any) -> None:
    p = _parser(commands, "demo", "write the bundled demo set and print its params files",
                "Write scikit-learn's digits as 28x28 PNG class folders (once; no "
                "download) and print the data and hyper params files to use them. With "
                "--train, also train a small model on them.",
                "  convonet demo\n  convonet demo --train --epochs 2")
    p.add_argument("--data-dir", metavar="DIR", type=Path,
                   help="where to write the demo set (default: $CONVONET_DATA_DIR/demo or "
                        "the user data folder)")
    p.add_argument("--train", action="store_true", help="then train on it")
    p.add_argument("--model", metavar="PATH", type=Path, default=None,
                   help="with --train: where to save the model (default as 'convonet train')")
    p.add_argument("--force", action="store_true",
                   help="with --train: replace the model file when it already exists")
    p.add_argument("--epochs", type=int, metavar="N", help="with --train: override epochs")
    p.add_argument("--results-dir", metavar="DIR", type=Path, default=argparse.SUPPRESS,
                   help="with --train: where run records and models go")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--verbose", action="store_true", help="show library warnings")
