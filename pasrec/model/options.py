"""Dataclass fields that are also command-line options.

A field made with ``option`` carries its help text and, for a closed set of values, its
choices, so an option's default, type, choices and help are written once, beside the field:
``pasrec/cli/options.py`` builds the argparse options from them, and ``check_choices`` refuses a
value outside the choices however the dataclass was built (options, JSON, code).
"""

from __future__ import annotations

from dataclasses import MISSING, Field, field, fields
from typing import Any


def option(
    default: Any = MISSING,
    *,
    help: str,
    choices: tuple[str, ...] | None = None,
    flag: str | None = None,
) -> Any:
    """A field with a command-line option; ``flag`` names the option when it is not the field's
    name with dashes (for a bool field: the switch that flips the default)."""
    return field(default=default, metadata={"help": help, "choices": choices, "flag": flag})


def option_fields(cls: type) -> list[Field]:
    """The fields of dataclass ``cls`` that are command-line options, in declaration order."""
    return [f for f in fields(cls) if "help" in f.metadata]


def check_choices(instance: Any) -> None:
    for f in option_fields(type(instance)):
        choices = f.metadata["choices"]
        value = getattr(instance, f.name)
        if choices is not None and value is not None and value not in choices:
            raise ValueError(f"{f.name} must be one of {choices}, got {value!r}")
