"""argparse options generated from dataclass fields made with ``pasrec.model.options.option``: the
field owns the option's default, type, choices and help; this module only spells them out."""

from __future__ import annotations

import argparse
import types
from dataclasses import MISSING
from typing import Any, get_type_hints

from pasrec.model.options import option_fields

PRESET_DEFAULT = " (default: the --model preset's; else {})"


def add_options(
    parser: argparse.ArgumentParser, cls: type, preset_defaults: bool = False
) -> None:
    """An option per option field of ``cls``. ``preset_defaults``: an option left unset stays
    None, so that the ``--model`` preset's value (else the field's default) applies."""
    hints = get_type_hints(cls)
    for f in option_fields(cls):
        flag = "--" + (f.metadata["flag"] or f.name.replace("_", "-"))
        kind = value_type(hints[f.name])
        if kind is bool:
            action = "store_false" if f.default else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, help=f.metadata["help"])
            continue
        choices = f.metadata["choices"]
        extra: dict[str, Any] = {"choices": choices} if choices else {"type": kind}
        if f.metadata["flag"] and not choices:
            extra["metavar"] = f.metadata["flag"].upper()
        text = f.metadata["help"]
        if preset_defaults:
            extra["default"] = None
            text += PRESET_DEFAULT.format(f.default)
        elif f.default is MISSING:
            extra["required"] = True
        else:
            extra["default"] = f.default
        parser.add_argument(flag, dest=f.name, help=text, **extra)


def value_type(hint: Any) -> type:
    """The type an option's value is parsed as: ``X`` for ``X`` and ``X | None``."""
    if isinstance(hint, types.UnionType):
        (kind,) = (arg for arg in hint.__args__ if arg is not type(None))
        return kind
    return hint


def option_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The parsed values of ``cls``'s option fields, by field name."""
    return {f.name: getattr(args, f.name) for f in option_fields(cls)}

