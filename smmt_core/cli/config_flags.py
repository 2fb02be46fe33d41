"""Command-line flags derived from the training config's declarations (`smmt_core.train.config`).

Each setting's flag, help text, type and choices come from its declaration, so a new config field
is a new flag with no code here; `overrides_from_args` turns what was given into the flat
overrides `TrainConfig.build` takes. Values are checked by the config itself (one validation),
which names the bad flag's setting and value in a one-line error.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Literal, get_args, get_origin

from smmt_core.train.config import FIELD_SECTION, SECTIONS, preset_value


def _flag(name: str, field) -> str:
    extra = field.json_schema_extra or {}
    return extra.get("flag") or "--" + name.replace("_", "-")


def _base_type(annotation):
    """(python type, choices) of a field annotation, unwrapping `X | None` and Literal."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
        origin = get_origin(annotation)
    if origin is Literal:
        return str, list(get_args(annotation))
    if origin in (tuple, list):
        return "list", None
    return annotation, None


def config_settings(exclude: typing.Iterable[str] = ()):
    """(flat name, FieldInfo) of every setting that has a flag, in declaration order."""
    skip = set(exclude)
    for section in SECTIONS.values():
        for name, field in section.model_fields.items():
            if name in skip or not (field.json_schema_extra or {}).get("cli", True):
                continue
            yield name, field


def add_config_flags(parser: argparse.ArgumentParser, exclude: typing.Iterable[str] = (),
                     required: typing.Iterable[str] = ()) -> None:
    """One flag per setting; defaults stay None so that only given flags override the preset.

    The help shows each setting's value in the default preset (what a run gets without the flag),
    not the declared default that the preset overrides."""
    must = set(required)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, field in config_settings(exclude):
        section = FIELD_SECTION[name]
        group = groups.setdefault(section, parser.add_argument_group(f"{section} settings"))
        flag = _flag(name, field)
        kind, choices = _base_type(field.annotation)
        help_text = field.description or ""
        if kind is bool:  # the flag flips the declared default (see overrides_from_args)
            action = "store_false" if field.default else "store_true"
            group.add_argument(flag, dest=name, action=action, default=None, help=help_text)
            continue
        default = preset_value(name)
        if default not in (None, "", [], ()):
            shown = ",".join(default) if isinstance(default, (list, tuple)) else default
            help_text += f" (default {shown})"
        metavar = None if choices else {int: "N", float: "X"}.get(kind, name.upper().split("_")[-1])
        group.add_argument(flag, dest=name, type=str if kind == "list" else kind, choices=choices,
                           metavar=metavar, required=name in must, default=None, help=help_text)


def overrides_from_args(args: argparse.Namespace, exclude: typing.Iterable[str] = ()) -> dict:
    """{setting: value} for every config flag that was given (None means not given)."""
    out = {}
    for name, field in config_settings(exclude):
        value = getattr(args, name, None)
        if value is None:
            continue
        if _base_type(field.annotation)[0] is bool:
            value = not field.default  # the flag flips the default
        out[name] = value
    return out
