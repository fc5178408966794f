"""Dataclass fields that carry their own command-line flag, and the argparse parser built from them.

A config dataclass declares each setting once (default, help, choices); :func:`add_arguments` turns every field
into a flag (``--batch-size``; a bool that defaults to True becomes ``--no-channels-last``; a nested dataclass
contributes its own fields), and :func:`build` reads the parsed flags back into the dataclass.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, field, fields, is_dataclass


def option(default, help: str, choices=None, flag: str | None = None):
    """A field with its flag's help text, choices and, if it differs from the field's name, the flag's name."""
    meta = {"help": help, "choices": tuple(choices) if choices else None, "flag": flag}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    if isinstance(default, type):  # a nested dataclass
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def _default(f):
    return f.default_factory() if f.default is MISSING else f.default


def _flag_name(f) -> str:
    return (f.metadata.get("flag") or f.name).replace("_", "-")


def _parse_tuple(text: str):
    return tuple(float(v) for v in text.split(","))


def add_arguments(parser: argparse.ArgumentParser, cls) -> None:
    for f in fields(cls):
        default = _default(f)
        if is_dataclass(default):
            group = parser.add_argument_group(f.metadata.get("help") or f.name)
            add_arguments(group, type(default))
            continue
        name, help_ = _flag_name(f), f.metadata.get("help", "")
        if isinstance(default, bool):
            if default:
                parser.add_argument(f"--no-{name}", dest=f.name, action="store_false", help=f"turn off: {help_}")
            else:
                parser.add_argument(f"--{name}", dest=f.name, action="store_true", help=help_)
            continue
        kind = {dict: json.loads, tuple: _parse_tuple}.get(type(default), type(default))
        shown = json.dumps(default) if isinstance(default, dict) else (
            ",".join(str(v) for v in default) if isinstance(default, tuple) else default)
        parser.add_argument(f"--{name}", dest=f.name, type=kind, default=default,
                            choices=f.metadata.get("choices"), help=f"{help_} (default: {shown})")


def command_line(obj, skip=()) -> list[str]:
    """The flags that rebuild ``obj`` (a dataclass built by :func:`build`): one per field that differs from its
    default, nested dataclasses included; fields named in ``skip`` are left out."""
    out = []
    for f in fields(obj):
        value, default = getattr(obj, f.name), _default(f)
        if f.name in skip:
            continue
        if is_dataclass(default):
            out += command_line(value, skip)
            continue
        if value == default or (isinstance(default, tuple) and tuple(value) == default):
            continue
        name = _flag_name(f)
        if isinstance(default, bool):
            out.append(f"--no-{name}" if default else f"--{name}")
        elif isinstance(default, dict):
            out += [f"--{name}", json.dumps(value, separators=(",", ":"))]
        elif isinstance(default, tuple):
            out += [f"--{name}", ",".join(str(v) for v in value)]
        else:
            out += [f"--{name}", str(value)]
    return out


def build(cls, namespace: argparse.Namespace):
    """The dataclass ``cls`` filled from ``namespace`` (nested dataclasses included)."""
    kwargs = {}
    for f in fields(cls):
        default = _default(f)
        kwargs[f.name] = build(type(default), namespace) if is_dataclass(default) else getattr(namespace, f.name)
    return cls(**kwargs)
