""".ci/setup.sh, the functions .ci/run prepares a machine with, run for real in bash: the
checks that keep a prepared machine untouched, and creating a missing database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / ".ci" / "setup.sh"
REQUIRE = os.environ.get("PASREC_REQUIRE_SERVICES") == "1"


def setup_sh(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`script` run after sourcing setup.sh, as .ci/run does (strict mode, repository root,
    this interpreter's environment first on PATH)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; . .ci/setup.sh; {script}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PATH": path, **env},
    )  # fmt: skip


def needs_local_postgres() -> None:
    if shutil.which("pg_ctlcluster") is None or setup_sh("port_open 5432").returncode != 0:
        reason = "no local PostgreSQL on 127.0.0.1:5432 to create a database in"
        if REQUIRE:
            pytest.fail(f"{reason} (PASREC_REQUIRE_SERVICES=1)")
        pytest.skip(reason)


@pytest.mark.parametrize("script", [".ci/run", ".ci/setup.sh"])
def test_scripts_parse(script: str) -> None:
    done = subprocess.run(["bash", "-n", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_torch_requirement_is_the_pyproject_pin() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    done = setup_sh("torch_requirement")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in pins and done.stdout.startswith("torch==")


def test_wrong_python_is_a_clear_error() -> None:
    done = setup_sh("find_python", PYTHON="/bin/false")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        ".ci: Python 3.11 is required (pyproject.toml: requires-python); set PYTHON to one"
    )


def test_port_open_tells_open_from_closed() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert setup_sh(f"port_open {port}").returncode == 0
    assert setup_sh(f"port_open {port}").returncode != 0


def test_running_services_are_left_alone() -> None:
    """With both services up, the ensure steps return at once: no apt, no restart."""
    needs_local_postgres()
    done = setup_sh(
        "apt_install() { echo apt_install called; exit 3; }; "
        "as_root() { echo as_root called; exit 3; }; "
        "ensure_postgres; ensure_redis; ensure_database test; ensure_curl"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_missing_database_is_created_once() -> None:
    needs_local_postgres()
    import psycopg

    name = f"pasrec_ci_{uuid.uuid4().hex[:10]}"
    try:
        first = setup_sh(f"ensure_database {name}")
        assert first.returncode == 0, first.stderr
        with psycopg.connect(host="127.0.0.1", port=5432, dbname=name) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
        # Now it exists: the second run only checks.
        again = setup_sh(
            f"as_postgres() {{ echo as_postgres called; exit 3; }}; ensure_database {name}"
        )
        assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr
    finally:
        with psycopg.connect(host="127.0.0.1", port=5432, dbname="test", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
