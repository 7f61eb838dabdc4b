"""Strict YAML <-> dataclass loading shared by every config type (spaces, tasks, devices, search settings).

Rules: YAML is read with ``yaml.safe_load`` only, and aliases (``*name``) are refused before anything is built, so a
537-byte "billion laughs" file cannot expand into gigabytes; unknown keys are errors; values are type-checked against the
dataclass annotations (ints may be given for float fields). Errors are :class:`~hat.errors.ConfigError` with the
file and key in the message, so CLIs can print one line and exit 2.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from hat.errors import ConfigError

T = TypeVar("T")

MAX_MESSAGE_VALUE_CHARS = 80  # values quoted in error messages are cut to this, so a message stays one short line


def _short(value: Any) -> str:
    """``repr(value)`` cut to :data:`MAX_MESSAGE_VALUE_CHARS` (bounded work even for huge nested values)."""
    import reprlib
    r = reprlib.Repr()
    r.maxstring = r.maxother = MAX_MESSAGE_VALUE_CHARS
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 6
    r.maxlevel = 3
    text = r.repr(value)
    return text if len(text) <= MAX_MESSAGE_VALUE_CHARS else text[:MAX_MESSAGE_VALUE_CHARS - 3] + "..."


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _NoAliasSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases (``*anchor``): configs never need them, and nested aliases let a
    tiny file expand exponentially (the "billion laughs" bomb)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            ev = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"YAML aliases (*{str(ev.anchor)[:40]}) are not allowed "
                                              f"in hat configs", ev.start_mark)
        return super().compose_node(parent, index)


def safe_load_yaml_text(text: str):
    """``yaml.safe_load`` without aliases (see :class:`_NoAliasSafeLoader`); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_NoAliasSafeLoader)  # noqa: S506 (a SafeLoader subclass)


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping from ``path`` with ``yaml.safe_load``.

    Raises:
        ConfigError: the file is missing, is not valid YAML, or its top level is not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such file")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start}); expected a YAML file") from None
    try:
        data = safe_load_yaml_text(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())[:200]
        raise ConfigError(f"{p}: malformed YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def dump_yaml(data: dict, path: str | os.PathLike) -> None:
    """Write ``data`` as YAML atomically (temp file + rename), so a crash never leaves a half-written file."""
    from hat.io import atomic_write
    atomic_write(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


def check_type(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp``, converting where lossless (int -> float, list -> tuple).

    The type check behind :func:`from_dict`, for a single value (e.g. a ``--set key=value`` override).

    Args:
        value: the value as read from YAML.
        tp: a type annotation (``int``, ``Optional[str]``, ``list[int]``, a dataclass, ...).
        where: prefix for error messages (file and key).

    Returns:
        ``value``, converted where lossless.

    Raises:
        ConfigError: ``value`` does not fit ``tp``.
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for a in args:
            try:
                return check_type(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[-1] if errors else f"{where}: bad value {_short(value)}")
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{where}: expected null, got {_short(value)}")
        return None
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_short(value)}")
        elem = args[0] if args else Any
        out = [check_type(v, elem, f"{where}[{i}]") for i, v in enumerate(value)]
        return out if origin is list else tuple(out)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_short(value)}")
        kt, vt = args if args else (Any, Any)
        return {check_type(k, kt, where): check_type(v, vt, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_short(value)}")
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {_short(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_short(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_short(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_short(value)}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {_short(value)}")
    return value


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError.

    Args:
        cls: a dataclass type (annotations may be strings: they are resolved with ``typing.get_type_hints``).
        data: the mapping, e.g. from :func:`load_yaml`.
        where: prefix for error messages (a file name).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {_cut(', '.join(map(str, unknown)))}; "
            f"allowed: {', '.join(fields)}"
        )
    kwargs = {}
    for name, f in fields.items():
        key_where = f"{where}: {name}" if where else name
        if name in data:
            kwargs[name] = check_type(data[name], hints[name], key_where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where or cls.__name__}: missing required key '{name}'")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def load_dataclass(cls: type[T], path: str | os.PathLike) -> T:
    """``from_dict(cls, load_yaml(path))`` with the file name in error messages."""
    return from_dict(cls, load_yaml(path), str(path))


def to_dict(obj: Any) -> dict:
    """Dataclass -> plain dict of YAML/JSON-safe values (tuples become lists)."""
    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return conv(obj)
