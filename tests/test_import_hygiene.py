"""The core never imports textual: it must run headless, in scripts and batch jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import convonet.core

CORE = Path(convonet.core.__file__).parent


def core_modules() -> list[str]:
    """``convonet.core`` and every module in it that exists now, sub-packages included."""
    names = sorted(".".join(p.relative_to(CORE).with_suffix("").parts).removesuffix(".__init__")
                   for p in CORE.rglob("*.py") if p.relative_to(CORE).parts != ("__init__.py",))
    return ["convonet.core"] + [f"convonet.core.{name}" for name in names]


def test_the_core_imports_no_textual() -> None:
    modules = core_modules()
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m == 'textual' or m.startswith('textual.'))))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    leaked = json.loads(result.stdout.strip().splitlines()[-1])
    assert leaked == [], f"importing the core pulled in {leaked}"

