"""Settings: every field documented, environment parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pasrec.service.settings import Settings, environment_without_settings

README = Path(__file__).resolve().parents[2] / "pasrec" / "service" / "README.md"


def test_every_setting_is_documented() -> None:
    readme = README.read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no docstring"
        assert f"`PASREC_{name.upper()}`" in readme, f"PASREC_{name.upper()} not in README"


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASREC_DATABASE_URL", "")  # docker-compose's way of "unset"
    monkeypatch.setenv("PASREC_MAX_K", "7")
    monkeypatch.setenv("PASREC_AUTH_ENABLED", "false")
    settings = Settings(_env_file=None)
    assert settings.database_url is None and settings.embedded_database
    assert settings.should_auto_migrate
    assert settings.max_k == 7 and settings.auth_enabled is False
    monkeypatch.setenv("PASREC_DATABASE_URL", "postgresql+psycopg://db/x")
    assert not Settings(_env_file=None).should_auto_migrate


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASREC_MAX_K", "0")
    with pytest.raises(ValueError, match="max_k"):
        Settings(_env_file=None)


def test_a_child_environment_drops_every_setting_and_keeps_the_rest(monkeypatch):
    parent = {"PASREC_DATABASE_URL": "postgresql://x", "PASREC_": "", "PATH": "/bin",
              "pasrec_log_level": "read by the settings too", "MY_PASREC_X": "kept"}  # fmt: skip
    monkeypatch.setenv("pasrec_log_level", "DEBUG")
    assert Settings().log_level == "DEBUG"  # lower case is a setting as well
    assert environment_without_settings(parent) == {"PATH": "/bin", "MY_PASREC_X": "kept"}
