"""One params field: ``FieldSpec`` (type, range, default, help; parsing and the JSON and
form text of a value), ``ParamsError`` naming the file and the field, and the JSON object
hook that refuses a key given twice.

The params tables in ``convonet.core.params`` are rows of ``FieldSpec``.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from convonet.core.errors import ConvonetError


class ParamsError(ConvonetError, ValueError):
    """A params file or value is wrong. ``str()`` names the file and the field."""

    title = "Params error"
    advice = ("Correct that value in the params file or on the params screen, then try "
              "again.")

    def __init__(self, message: str, *, file: str | os.PathLike[str] | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{': '.join(where)}: {self.message}" if where else self.message

    def with_file(self, file: str | os.PathLike[str] | None) -> ParamsError:
        return ParamsError(self.message, file=file, field=self.field)


@dataclass(frozen=True)
class FieldSpec:
    """One params field: its type, range, default and the help the forms show."""

    name: str
    kind: type  # int, float, str
    default: Any
    help: str
    multi: bool = False  # may hold several comma-separated values (a tuning grid)
    min: float | None = None
    max: float | None = None
    min_open: bool = False  # True: the value must be strictly greater than min
    max_open: bool = False  # True: the value must be strictly less than max
    choices: tuple[str, ...] = ()
    unit: str = ""
    is_path: bool = False
    size_pair: bool = False  # [height, width]
    combine: bool = False  # choices may be joined with + (choices[0] stands alone: none)

    def allowed(self) -> str:
        """A short human description of the accepted values, for messages and forms."""
        if self.combine:
            return (f"{self.choices[0]}, or {' / '.join(self.choices[1:])} joined by + "
                    f"(e.g. {'+'.join(self.choices[1:3])}); several allowed, comma-separated")
        if self.choices:
            several = "; several allowed, comma-separated" if self.multi else ""
            return " / ".join(self.choices) + several
        if self.size_pair:
            return "height,width in pixels, each 1..4096"
        if self.is_path:
            return "a folder path (relative to the params file), or empty"
        noun = "a whole number" if self.kind is int else "a number"
        lo = hi = ""
        if self.min is not None:
            lo = f"{'>' if self.min_open else '>='} {_fmt(self.min)}"
        if self.max is not None:
            hi = f"{'<' if self.max_open else '<='} {_fmt(self.max)}"
        rng = " and ".join(p for p in (lo, hi) if p)
        text = f"{noun} {rng}".strip()
        if self.multi:
            text += "; several allowed, comma-separated (e.g. 64,80)"
        return text

    def parse(self, raw: Any) -> Any:
        """Turn a JSON value or form text into the validated value (a tuple when multi)."""
        if self.size_pair:
            return self._parse_size(raw)
        if self.multi:
            items = _split_items(raw, self.name)
            return tuple(self._parse_one(item) for item in items)
        if isinstance(raw, str) and self.kind is not str:
            raw = raw.strip()
            if "," in raw:
                raise ParamsError(f"takes one value, got '{raw}'", field=self.name)
        if isinstance(raw, list):
            if len(raw) != 1:
                raise ParamsError(f"takes one value, got a list of {len(raw)}", field=self.name)
            raw = raw[0]
        return self._parse_one(raw)

    def _parse_one(self, raw: Any) -> Any:
        name = self.name
        if self.kind is str:
            if not isinstance(raw, str):
                raise ParamsError(f"expected text ({self.allowed()}), got {_show(raw)}",
                                  field=name)
            value = raw.strip()
            if self.combine:
                return self._parse_combination(value)
            if self.choices and value.lower() not in self.choices:
                hint = _did_you_mean(value, self.choices)
                raise ParamsError(f"'{value}' is not one of {self.allowed()}{hint}", field=name)
            return value.lower() if self.choices else value
        value = _to_number(raw, self.kind, name, self.allowed())
        if self.min is not None and (value < self.min or (self.min_open and value == self.min)):
            raise ParamsError(f"{_fmt(value)} is out of range: expected {self.allowed()}",
                              field=name)
        if self.max is not None and (value > self.max or (self.max_open and value == self.max)):
            raise ParamsError(f"{_fmt(value)} is out of range: expected {self.allowed()}",
                              field=name)
        return value

    def _parse_combination(self, value: str) -> str:
        """``shift+flip`` -> ``flip+shift``: known words, each once, in the table's order."""
        words = [w.strip().lower() for w in value.split("+")]
        for word in words:
            if word not in self.choices:
                hint = _did_you_mean(word, self.choices)
                raise ParamsError(f"'{word}' is not one of {' / '.join(self.choices)}{hint}",
                                  field=self.name)
        if self.choices[0] in words and len(words) > 1:
            raise ParamsError(f"'{value}': {self.choices[0]} cannot be combined with others",
                              field=self.name)
        return "+".join(c for c in self.choices if c in words)

    def _parse_size(self, raw: Any) -> tuple[int, int]:
        items: list[Any]
        if isinstance(raw, str):
            items = [p.strip() for p in raw.replace("x", ",").split(",")]
        elif isinstance(raw, (list, tuple)):
            items = list(raw)
        elif isinstance(raw, int) and not isinstance(raw, bool):
            items = [raw, raw]
        else:
            raise ParamsError(f"expected {self.allowed()}, got {_show(raw)}", field=self.name)
        if len(items) != 2:
            raise ParamsError(f"expected {self.allowed()}, got {_show(raw)}", field=self.name)
        out = []
        for item in items:
            v = _to_number(item, int, self.name, self.allowed())
            if not 1 <= v <= 4096:
                raise ParamsError(f"{v} is out of range: expected {self.allowed()}",
                                  field=self.name)
            out.append(v)
        return (out[0], out[1])

    def to_json(self, value: Any) -> Any:
        """The JSON form of a value: several values become the seed's "64,80" text."""
        if self.size_pair:
            return list(value)
        if self.multi:
            if len(value) == 1:
                return value[0]
            return ",".join(_fmt(v) for v in value)
        return value

    def to_text(self, value: Any) -> str:
        """The form text of a value."""
        if self.size_pair:
            return f"{value[0]},{value[1]}"
        if self.multi:
            return ",".join(_fmt(v) for v in value)
        return _fmt(value) if not isinstance(value, str) else value


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e15:
            return f"{v:.1f}"
        return repr(v)
    return str(v)


def _show(raw: Any) -> str:
    if isinstance(raw, bool):
        return f"{str(raw).lower()} (true/false)"
    if isinstance(raw, str):
        return f"'{raw}'"
    if isinstance(raw, list):
        return "a list"
    if isinstance(raw, dict):
        return "an object"
    if raw is None:
        return "null"
    return repr(raw)


def _to_number(raw: Any, kind: type, name: str, allowed: str) -> Any:
    if isinstance(raw, bool) or raw is None or isinstance(raw, (list, dict)):
        raise ParamsError(f"expected {allowed}, got {_show(raw)}", field=name)
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            raise ParamsError(f"is empty: expected {allowed}", field=name)
        try:
            number = float(text)
        except ValueError:
            raise ParamsError(f"'{text}' is not a number: expected {allowed}",
                              field=name) from None
    else:
        number = float(raw)
    if not math.isfinite(number):
        raise ParamsError(f"{_show(raw)} is not a finite number: expected {allowed}", field=name)
    if kind is int:
        if number != int(number):
            raise ParamsError(f"{_show(raw)} is not a whole number: expected {allowed}",
                              field=name)
        return int(number)
    return float(number)


def _split_items(raw: Any, name: str) -> list[Any]:
    if isinstance(raw, str):
        parts = [p.strip() for p in raw.split(",")]
        if any(p == "" for p in parts):
            raise ParamsError(f"'{raw}' has an empty item: write values separated by single "
                              "commas, e.g. 64,80", field=name)
        return parts
    if isinstance(raw, (list, tuple)):
        if not raw:
            raise ParamsError("is an empty list: give at least one value", field=name)
        return list(raw)
    return [raw]


class DuplicateKeyError(ValueError):
    """A JSON object gives one key twice; ``str()`` names the key and both values."""

    def __init__(self, key: str, first: Any, second: Any) -> None:
        self.key, self.first, self.second = key, first, second
        super().__init__(f"'{key}' {self.detail}")

    @property
    def detail(self) -> str:
        """What is wrong and what to do, without the key (for messages that name it)."""
        return (f"is given twice, as {json.dumps(self.first)} and then as "
                f"{json.dumps(self.second)}; keep one of them and delete the other")


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A ``json.loads`` object hook that refuses a key given twice in one object.

    Plain ``json.loads`` keeps the last value silently, so a field changed by adding a
    second line (instead of editing the first) would use a value the user did not mean.
    """
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key, out[key], value)
        out[key] = value
    return out


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
