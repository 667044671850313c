"""`pasrec --help` texts: every option explained with its default, `--version`, the service
commands pointing to the settings they read, and their clear error for a wrong checkpoint."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import MISSING
from importlib.metadata import version
from pathlib import Path

import pytest

from pasrec.cli.help_text import SERVE_SETTINGS, WORKER_SETTINGS
from pasrec.cli.main import build_parser, main
from pasrec.model.config import ModelConfig
from pasrec.model.options import option_fields
from pasrec.service.settings import Settings, environment_without_settings
from pasrec.training.job import DataOptions, TrainConfig


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_option_has_help(command: str) -> None:
    parser = subcommands()[command]
    unexplained = [a.option_strings for a in parser._actions if not (a.help or "").strip()]
    assert unexplained == []


def test_train_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(help_of("train", capsys).split())  # argparse wraps lines anywhere
    for shown in ("(default: 100)", "(default: 0.0003)", "(default: pasrec)", "(default: loo)"):
        assert shown in text
    # Model options default to the preset; the help says so and names the fallback value.
    assert "--hidden HIDDEN hidden size d of item embeddings and the encoder (default: the " \
        "--model preset's; else 256)" in text  # fmt: skip
    # Options without a value to show get no "(default: None)" / "(default: False)".
    assert "(default: None)" not in text and "(default: False)" not in text


@pytest.mark.parametrize("cls", [DataOptions, ModelConfig, TrainConfig])
def test_every_option_field_is_a_train_option_with_its_default(
    cls: type, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: textwrap also breaks at hyphens
    text = " ".join(help_of("train", capsys).split())
    actions = {a.dest: a for a in subcommands()["train"]._actions}
    for field in option_fields(cls):
        action = actions[field.name]
        assert action.choices == field.metadata["choices"], field.name
        helped = " ".join(field.metadata["help"].split())
        if cls is ModelConfig:  # unset, the --model preset's value applies
            assert action.default is None
            helped += f" (default: the --model preset's; else {field.default})"
        elif field.default is not None and field.default is not MISSING and not isinstance(
            field.default, bool
        ):  # a value to show: not for a switch, an unset option or --data (required)
            assert action.default == field.default and not action.required
            helped += f" (default: {field.default})"
        assert helped in text, field.name
    assert actions["path"].required and "--data DATA" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"pasrec {version('pasrec-push')}"


def test_version_through_the_console_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pasrec.cli.main", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"pasrec \d+\.\d+\.\d+\S*\n", done.stdout)


@pytest.mark.parametrize(("command", "names"), [("serve", SERVE_SETTINGS),
                                                 ("worker", WORKER_SETTINGS)])  # fmt: skip
def test_service_help_names_its_settings(
    command: str, names: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(command, capsys)
    assert "pasrec/service/README.md" in text
    for name in names:
        assert name in Settings.model_fields
        assert f"PASREC_{name.upper()} (default: " in text
    assert "PASREC_MODEL_PATH (default: unset)" in text
    if command == "serve":
        assert "pasrec train --out DIR` (DIR/checkpoint)" in text


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_training_output_dir_is_not_a_checkpoint(command: str, tmp_path: Path) -> None:
    """The usual first mistake, PASREC_MODEL_PATH=DIR for DIR/checkpoint: one line that says
    which path was meant, no start-up traceback."""
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint" / "config.json").write_text("{}")
    env = environment_without_settings()
    env.update(PASREC_MODEL_PATH=str(tmp_path / "run"), PASREC_SQLITE_PATH=str(tmp_path / "x.db"))
    done = subprocess.run([sys.executable, "-m", "pasrec.cli.main", command], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        f"pasrec {command}: error: PASREC_MODEL_PATH={tmp_path / 'run'} is not a checkpoint "
        f"directory; did you mean {tmp_path / 'run' / 'checkpoint'}?\n"
    )
