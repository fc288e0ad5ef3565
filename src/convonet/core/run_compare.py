"""Two runs' settings side by side: a run's params, record fields, metrics and versions as
flat ``section.field`` values, and which of them differ."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convonet.core.run_tables import _num
from convonet.core.runs import DATA_PARAMS_JSON, HYPER_PARAMS_JSON, RUN_JSON

#: run.json fields worth comparing between two runs (besides params and metrics).
_RECORD_FIELDS = ("task", "status", "seed", "dataset_fingerprint", "keras_backend",
                  "validation", "epochs", "model", "host")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {"(unreadable)": path.name}


def load_params(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's settings as flat ``section.field`` -> value, in a stable order.

    Sections: ``run`` (what run.json says matters: seed, dataset fingerprint, backend ...),
    ``hyper`` and ``data`` (the params files copied into the run), ``metrics`` and
    ``versions``.
    """
    folder = Path(path)
    out: dict[str, Any] = {}
    info = _read_json(folder / RUN_JSON)
    info = info if isinstance(info, dict) else {}
    for key in _RECORD_FIELDS:
        if key in info:
            out[f"run.{key}"] = info[key]
    for section, name in (("hyper", HYPER_PARAMS_JSON), ("data", DATA_PARAMS_JSON)):
        data = _read_json(folder / name)
        if isinstance(data, dict):
            _flatten(section, data, out)
    _flatten("metrics", info.get("metrics") or {}, out)
    out.pop("metrics", None)
    _flatten("versions", info.get("versions") or {}, out)
    out.pop("versions", None)
    return out


@dataclass(frozen=True)
class ParamDiff:
    """One field of two runs side by side; ``differs`` marks what changed."""

    field: str
    a: Any
    b: Any
    differs: bool


def value_text(value: Any) -> str:
    """How a param value reads in a table: lists as ``28, 28``, missing as ``–``."""
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None and not isinstance(a, str) \
            and not isinstance(b, str):
        return math.isclose(na, nb, rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


def diff_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[ParamDiff]:
    """Every field of either run, in a's order then b's extra ones, with what differs."""
    fields = list(a) + [k for k in b if k not in a]
    return [ParamDiff(f, a.get(f), b.get(f),
                      not (f in a and f in b and _same(a.get(f), b.get(f))))
            for f in fields]


def diff_runs(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> list[ParamDiff]:
    return diff_params(load_params(a), load_params(b))
