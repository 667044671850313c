"""The push package's ownership rules, read from the source: one module queries each push
table, and push code depends on its settings and parts, never on the whole service."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pasrec"
PUSH = PACKAGE / "service" / "push"
# pasrec/replay/ is the replay harness's; it reads `pushes` for its report (docs/architecture.md).
SOURCES = [PACKAGE / "service", PACKAGE / "cli"]
OWNERS = {
    "Push": PUSH / "store.py",
    "PushAttempt": PUSH / "store.py",
    "PushOutbox": PUSH / "outbox.py",
}


def imported(path: Path) -> set[tuple[str, str]]:
    """(module, name) of every `from module import name` in the file."""
    tree = ast.parse(path.read_text(), str(path))
    return {
        (node.module or "", alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_each_push_table_is_queried_by_one_module() -> None:
    users: dict[str, set[Path]] = {name: set() for name in OWNERS}
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            for module, name in imported(path):
                if module == "pasrec.service.models" and name in OWNERS:
                    users[name].add(path)
    assert users == {name: {owner} for name, owner in OWNERS.items()}


def test_push_code_takes_its_settings_and_parts_not_the_service() -> None:
    for path in PUSH.glob("*.py"):
        names = imported(path)
        assert not any(module == "pasrec.service.context" for module, _ in names), path.name
        if path.name != "parts.py":
            # Only the parts protocol names the whole settings (for the shared Redis).
            assert ("pasrec.service.settings", "Settings") not in names, path.name
