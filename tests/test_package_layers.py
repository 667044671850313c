"""The layers of the `pasrec` package, read from the source with `ast`: `model` at the bottom
imports nothing else of pasrec, `training` and `service` import only `model`, and `replay` and
`cli` on top may import everything (docs/architecture.md draws the graph)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pasrec"
# What each subpackage may import from pasrec besides itself; None: anything.
ALLOWED: dict[str, set[str] | None] = {
    "model": set(),
    "training": {"model"},
    "service": {"model"},
    "replay": None,
    "cli": None,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (lazy imports too), absolute."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return resolved_imports(ast.parse(path.read_text(), str(path)), package)


def resolved_imports(tree: ast.AST, package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from pasrec import service` imports the subpackage itself.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def layer_imports(layer: str) -> dict[str, set[str]]:
    """Per file of the layer, the other pasrec subpackages it imports."""
    out = {}
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        targets = {
            m.split(".")[1]
            for m in imported_modules(path)
            if m.startswith("pasrec.") and m.split(".")[1] in ALLOWED
        }
        out[str(path.relative_to(PACKAGE.parent))] = targets - {layer}
    return out


def test_every_subpackage_has_a_layer() -> None:
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert subpackages == set(ALLOWED)
    assert imported_modules(PACKAGE / "__init__.py") == set(), "the root package stays empty"


@pytest.mark.parametrize("layer", [name for name, rule in ALLOWED.items() if rule is not None])
def test_layer_imports_only_the_layers_below(layer: str) -> None:
    allowed = ALLOWED[layer]
    assert allowed is not None
    wrong = {path: sorted(t - allowed) for path, t in layer_imports(layer).items() if t - allowed}
    assert not wrong, f"{layer} may import only {sorted(allowed) or 'nothing of pasrec'}"


def test_the_walk_sees_imports() -> None:
    """Not vacuous: the upper layers do import the lower ones, and relative imports resolve."""
    assert "model" in set().union(*layer_imports("service").values())
    assert {"training", "service"} <= set().union(*layer_imports("replay").values())
    tree = ast.parse("from ...training import trainer\nfrom . import store")
    assert resolved_imports(tree, "pasrec.service.push") == {
        "pasrec.training", "pasrec.training.trainer", "pasrec.service.push",
        "pasrec.service.push.store",
    }  # fmt: skip
