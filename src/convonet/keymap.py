"""Key remapping from a config file, and the list of every binding id with its key.

Terminals, multiplexers and browsers each swallow some keys (tmux takes ``ctrl+b``, a
browser tab ``ctrl+w``, some terminals the F keys), so every action's key can be changed
without touching the code: ``keys.toml`` (or ``keys.json``) in the config folder maps
binding ids to keys, and the app applies it with Textual's ``App.set_keymap`` at start.

The config folder is ``$CONVONET_CONFIG_DIR``, else the user's config folder
(``~/.config/convonet`` on Linux). A TOML file may quote the ids or write them as dotted
keys; a value is one key, several separated by commas, or a list::

    "goto.training" = "f3"
    app.screenshot = "ctrl+t"
    training.stop = ["x", "ctrl+x"]

A file that cannot be read, an unknown id or a key Textual does not know is reported (file
and entry named) and skipped; the rest still applies and the app keeps running.

This module does not import Textual at module level: ``convonet keys`` and the app share it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import string
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "CONVONET_CONFIG_DIR"
#: Tried in this order; the first that exists is used.
KEYMAP_FILES = ("keys.toml", "keys.json")
MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})


def config_dir() -> Path:
    """$CONVONET_CONFIG_DIR, else the platform's user config folder for convonet."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("convonet"))


def keymap_file(folder: Path | None = None) -> Path | None:
    """The keymap file in ``folder`` (default: ``config_dir()``), or None when there is none."""
    folder = config_dir() if folder is None else folder
    for name in KEYMAP_FILES:
        path = folder / name
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class BindingInfo:
    """One binding with an id: where it lives, its default key and what it does."""

    id: str
    key: str
    description: str
    where: str


@dataclass
class Keymap:
    """What a keymap file asked for that can be applied, and what could not."""

    path: Path | None
    keys: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# ---- every binding id --------------------------------------------------------------------
def _tui_classes() -> Iterable[type[Any]]:
    """Every class defined in ``convonet.tui`` and its sub-packages (screens, widgets...)."""
    import convonet.tui as tui

    modules = [importlib.import_module("convonet.tui.app")]
    for info in pkgutil.walk_packages(tui.__path__, prefix="convonet.tui."):
        modules.append(importlib.import_module(info.name))
    seen: set[type[Any]] = set()
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__.startswith("convonet.tui") and cls not in seen:
                seen.add(cls)
                yield cls


def binding_infos() -> list[BindingInfo]:
    """Every binding that has an id, in the app and on every screen, dialog and widget.

    Read from the classes' own ``BINDINGS`` (not inherited ones twice), so ids of screens
    not yet shown are known too; sorted by id.
    """
    from textual.app import App
    from textual.binding import Binding

    found: dict[str, BindingInfo] = {}
    for cls in _tui_classes():
        for binding in cls.__dict__.get("BINDINGS", ()):
            if not isinstance(binding, Binding) or not binding.id:
                continue
            where = "App" if issubclass(cls, App) else \
                getattr(cls, "SCREEN_TITLE", "") or cls.__name__
            description = binding.description or binding.tooltip or binding.action
            found.setdefault(binding.id, BindingInfo(binding.id, binding.key, description,
                                                     where))
    return sorted(found.values(), key=lambda info: info.id)


def _binding_owners() -> dict[str, list[set[str]]]:
    """For each id, the id sets of the classes it is bound on (for clash checks)."""
    from textual.binding import Binding

    owners: dict[str, list[set[str]]] = {}
    for cls in _tui_classes():
        ids = {b.id for b in cls.__dict__.get("BINDINGS", ())
               if isinstance(b, Binding) and b.id}
        for binding_id in ids:
            owners.setdefault(binding_id, []).append(ids)
    return owners


# ---- reading a keymap file ---------------------------------------------------------------
def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """TOML's dotted keys (``goto.params = ...``) arrive as nested tables: join them back."""
    flat: dict[str, Any] = {}
    for name, value in table.items():
        full = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{full}."))
        else:
            flat[full] = value
    return flat


def _load_table(path: Path) -> dict[str, Any]:
    """The file's top-level table; raises ValueError with a readable reason."""
    from convonet.core.params import DuplicateKeyError, refuse_duplicate_keys

    try:
        # utf-8-sig: accept the byte-order mark Notepad writes (tomllib and json refuse it)
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read it: {exc}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text, object_pairs_hook=refuse_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        except DuplicateKeyError as exc:
            raise ValueError(f"entry {exc}") from None
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("expected a table of binding id = key")
    return _flatten(data)


def _known_key_names() -> set[str]:
    """Key names Textual can deliver: its ``Keys`` values and the names of printable keys."""
    from textual.keys import Keys

    names = {key.value for key in Keys}
    # A comma separates keys in a binding, so its name is spelled out here.
    names |= {_normalized_keys(ch) for ch in string.printable
              if not ch.isspace() and ch != ","}
    names |= {"space", "tab", "enter", "escape", "backspace", "delete", "comma"}
    return names


def _normalized_keys(keys: str) -> str:
    """A binding's comma-separated keys as Textual names them ("a" stays, "+" becomes
    "plus"), through Textual's public ``Binding.make_bindings``; left as given if Textual
    refuses them (an empty key)."""
    from textual.binding import Binding, InvalidBinding

    try:
        return ",".join(b.key for b in Binding.make_bindings([Binding(keys, "noop")]))
    except InvalidBinding:
        return keys


def check_key(key: str, known: set[str] | None = None) -> str | None:
    """Why ``key`` (one key, e.g. ``ctrl+t``, ``f5``, ``?``) is not usable; None when it is."""
    known = _known_key_names() if known is None else known
    key = key.strip()
    if not key:
        return "an empty key"
    *modifiers, name = key.split("+") if key != "+" else ["+"]
    bad = [m for m in modifiers if m.lower() not in MODIFIERS]
    if bad:
        return f"unknown modifier {bad[0]!r} in {key!r} (use ctrl, shift, alt, meta)"
    if len(name) == 1 and name.isprintable() or name in known or name.lower() in known:
        return None
    return f"unknown key {name!r} in {key!r}"


def _as_key_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return None


def read_keymap(path: Path | None, known_ids: Iterable[str] | None = None) -> Keymap:
    """The usable entries of the keymap file at ``path`` and a line per problem.

    ``known_ids`` defaults to every binding id of the app (``binding_infos``). Each problem
    names the file and the entry, so the user can find it.
    """
    result = Keymap(path)
    if path is None:
        return result
    try:
        table = _load_table(path)
    except ValueError as exc:
        result.problems.append(f"{path}: {exc}; no keys were changed")
        return result
    ids = set(known_ids) if known_ids is not None else {b.id for b in binding_infos()}
    known_keys = _known_key_names()
    for binding_id, value in table.items():
        keys = _as_key_string(value)
        if binding_id not in ids:
            result.problems.append(f"{path}: {binding_id!r} is not a binding id "
                                   f"(`convonet keys` lists them); skipped")
            continue
        if keys is None:
            result.problems.append(f"{path}: {binding_id!r} = {value!r}: expected a key "
                                   f"such as \"f5\" or a list of keys; skipped")
            continue
        why = next((w for k in keys.split(",") if (w := check_key(k, known_keys))), None)
        if why is not None:
            result.problems.append(f"{path}: {binding_id!r}: {why}; skipped")
            continue
        result.keys[binding_id] = ",".join(k.strip() for k in keys.split(","))
    result.problems.extend(_clashes(path, result.keys))
    return result


def _clashes(path: Path, keys: Mapping[str, str]) -> list[str]:
    """Warn when a remapped key is also the key of another binding in the same place."""
    if not keys:
        return []
    owners = _binding_owners()
    defaults = {b.id: b.key for b in binding_infos()}
    effective = {i: _normalized_keys(keys.get(i, k)) for i, k in defaults.items()}
    problems: list[str] = []
    for binding_id in keys:
        mine = set(effective.get(binding_id, "").split(","))
        for ids in owners.get(binding_id, []):
            for other in sorted(ids - {binding_id}):
                shared = mine & set(effective.get(other, "").split(","))
                if shared:
                    problems.append(f"{path}: {binding_id!r} uses {sorted(shared)[0]!r}, "
                                    f"which {other!r} also uses")
    return problems


def load_user_keymap(folder: Path | None = None) -> Keymap:
    """The keymap from the config folder (or ``folder``); empty when there is no file."""
    return read_keymap(keymap_file(folder))


# ---- `convonet keys` ---------------------------------------------------------------------
def format_keys(infos: Iterable[BindingInfo], keymap: Keymap | None = None) -> str:
    """A plain table of id, key (remapped ones marked) and description."""
    rows = []
    remapped = keymap.keys if keymap is not None else {}
    for info in infos:
        key = remapped.get(info.id, info.key)
        mark = "*" if info.id in remapped else " "
        rows.append((info.id, f"{key}{mark}", f"{info.where}: {info.description}"))
    width_id = max((len(r[0]) for r in rows), default=2)
    width_key = max((len(r[1]) for r in rows), default=3)
    lines = [f"{'id':<{width_id}}  {'key':<{width_key}}  what"]
    lines += [f"{i:<{width_id}}  {k:<{width_key}}  {w}" for i, k, w in rows]
    return "\n".join(lines)


def add_command(commands: Any) -> None:
    """``convonet keys``: print every binding id with its key, after the user's keymap."""
    parser = commands.add_parser(
        "keys", help="list every key binding id and its key (for keys.toml)",
        description="List every binding id, its key (* = changed by your keymap file) and "
                    f"what it does. Remap keys in {KEYMAP_FILES[0]} or {KEYMAP_FILES[1]} in "
                    f"the config folder (${CONFIG_ENV}, else the user config folder), e.g. "
                    '"goto.training" = "f4".')
    parser.set_defaults(handler=run_keys)


def run_keys(args: Any) -> int:
    """Print the table; problems in the keymap file go to stderr, exit status 1."""
    keymap = load_user_keymap()
    print(f"keymap file: {keymap.path or 'none (looked in ' + str(config_dir()) + ')'}")
    print(format_keys(binding_infos(), keymap))
    for problem in keymap.problems:
        print(f"convonet: warning: {problem}", file=sys.stderr)
    return 1 if keymap.problems else 0
