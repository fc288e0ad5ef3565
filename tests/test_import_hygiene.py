"""The core and the task layer never import textual or rich: they must run without a UI,
in scripts and batch jobs. Checked in a fresh interpreter, so nothing a test imported
earlier hides a leak.

Keras itself imports rich (for its model summaries), so for rich the check is who imports
it: every ``import`` statement run while the modules load is watched, and one in a convonet
module that names rich fails. Textual must not be loaded at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import convonet.core

CORE = Path(convonet.core.__file__).parent

#: Run in a fresh interpreter with the module names as argv[1:]; prints what leaked.
_PROBE = """
import builtins, importlib, json, os, sys

UI = ("textual", "rich")
ROOT = os.environ.get("PROBE_ROOT", "convonet")
by_convonet = set()
original_import = builtins.__import__

def watched_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "")
    if level == 0 and name.split(".")[0] in UI and importer.split(".")[0] == ROOT:
        by_convonet.add(f"{importer} -> {name}")
    return original_import(name, globals, locals, fromlist, level)

builtins.__import__ = watched_import
for module in sys.argv[1:]:
    importlib.import_module(module)
textual = sorted(m for m in sys.modules if m.split(".")[0] == "textual")
print(json.dumps(sorted(by_convonet) + textual))
"""


def core_modules() -> list[str]:
    """``convonet.core`` and every module in it that exists now, sub-packages included."""
    names = sorted(".".join(p.relative_to(CORE).with_suffix("").parts).removesuffix(".__init__")
                   for p in CORE.rglob("*.py") if p.relative_to(CORE).parts != ("__init__.py",))
    return ["convonet.core"] + [f"convonet.core.{name}" for name in names]


def ui_imports(modules: list[str], **env_vars: str) -> list[str]:
    """Imports of textual or rich by convonet code, and any textual module loaded, when
    ``modules`` are imported in a fresh interpreter."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env_vars}
    result = subprocess.run([sys.executable, "-c", _PROBE, *modules], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_probe_sees_an_import_of_rich_already_loaded_and_textual(tmp_path: Path) -> None:
    package = tmp_path / "probed"
    package.mkdir()
    (package / "__init__.py").write_text("import importlib\n"
                                         "importlib.import_module('rich.text')  # as keras\n"
                                         "from rich.text import Text\n"
                                         "import textual.widget\n")
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    found = ui_imports(["probed"], PROBE_ROOT="probed", PYTHONPATH=path)
    assert "probed -> rich.text" in found
    assert "probed -> textual.widget" in found and "textual" in found


def test_the_core_and_the_task_layer_import_no_textual_and_no_rich() -> None:
    leaked = ui_imports([*core_modules(), "convonet.tasks"])
    assert leaked == [], f"importing the core and convonet.tasks: {leaked}"
