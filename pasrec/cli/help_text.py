"""What `pasrec ... --help` prints beyond argparse's defaults: every option's default, and for
the service commands the `PASREC_*` settings they read instead of options."""

from __future__ import annotations

import argparse
import textwrap
from importlib.metadata import PackageNotFoundError, version

PACKAGE = "pasrec-push"

# The settings a first deployment has to decide on; the rest have working defaults and are
# listed in pasrec/service/README.md.
SERVE_SETTINGS = (
    "model_path",
    "database_url",
    "redis_url",
    "host",
    "port",
    "push_webhook_url",
    "push_webhook_secret",
    "push_timing",
    "toi_model_path",
    "device",
)
WORKER_SETTINGS = (
    "model_path",
    "database_url",
    "redis_url",
    "push_webhook_url",
    "push_webhook_secret",
    "worker_metrics_port",
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help, except where there is nothing to show (no
    default, a switch): "(default: None)" would read as a value, and a switch's help says what
    giving it does. Descriptions and epilogs keep their line breaks, so a list of settings
    stays a list."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


def package_version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def settings_epilog(names: tuple[str, ...]) -> str:
    """The named settings as environment variables, each with its default and its
    documentation in `pasrec/service/settings.py` (so the two never disagree)."""
    from pasrec.service.settings import Settings

    lines = [
        "settings (environment variables or a .env file; all of them: "
        "pasrec/service/README.md):"
    ]
    for name in names:
        field = Settings.model_fields[name]
        default = "unset" if field.default is None else str(field.default)
        text = " ".join((field.description or "").split())
        lines.append(f"  PASREC_{name.upper()} (default: {default})")
        lines.extend(textwrap.wrap(text, 90, initial_indent="      ",
                                   subsequent_indent="      "))  # fmt: skip
    return "\n".join(lines)
