"""The architecture as written in .importlinter, checked beyond what lint-imports checks.

- every module of the two packages belongs to a layer (import-linter's own exhaustive check needs containers);
- each pure-core module, imported alone in a fresh interpreter, loads no I/O library (no whitelist: the list is
  the pure-core contract itself, and a listed module that does not exist fails);
- an import inside a function says why in a comment;
- no collaborator is typed Any (constructor parameters and class attributes).
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rewards", "intake_adapter")
CONFIG = configparser.ConfigParser()
CONFIG.read(ROOT / ".importlinter")


def contract(name: str, field: str) -> list[str]:
    """The lines of one field of a contract in .importlinter."""
    return [line.strip() for line in CONFIG[f"importlinter:contract:{name}"][field].splitlines() if line.strip()]


def product_files() -> list[Path]:
    """Every Python file of the product (Alembic's migration scripts are not modules)."""
    return sorted(
        p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


LAYER_MODULES = {m.strip() for layer in contract("layers", "layers") for m in layer.replace("|", ":").split(":")}
PURE = contract("pure-core", "source_modules")
FORBIDDEN = contract("pure-core", "forbidden_modules")


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_has_a_layer(path: Path) -> None:
    name = module_name(path)
    if name in PACKAGES:
        return
    owners = [m for m in LAYER_MODULES if name == m or name.startswith(m + ".")]
    assert owners, f"{name} belongs to no layer in .importlinter: add it where it fits (docs/architecture.md)"


@pytest.mark.parametrize("module", PURE)
def test_pure_core_module_loads_no_io_library(module: str) -> None:
    probe = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"bad = sorted(m for m in {FORBIDDEN!r} if m in sys.modules); print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, f"{module} does not import alone: {done.stderr.strip()[-500:]}"
    assert done.stdout.strip() == "", f"{module} (pure core) loads {done.stdout.strip()}"


def _function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
    return found


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_function_level_imports_say_why(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    silent = []
    for node in _function_imports(ast.parse("\n".join(lines))):
        nearby = lines[max(0, node.lineno - 2) : (node.end_lineno or node.lineno)]
        if not any("#" in line for line in nearby):
            silent.append(f"line {node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not silent, f"imports inside functions without a comment saying why: {silent}"


def _is_any(annotation: ast.expr | None) -> bool:
    """A bare Any (or Any | None): a collaborator nobody named. Containers of Any are data (JSON), not services."""
    if annotation is None:
        return False
    if isinstance(annotation, ast.BinOp):
        return _is_any(annotation.left) or _is_any(annotation.right)
    return isinstance(annotation, ast.Name) and annotation.id == "Any"


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_collaborator_is_typed_any(path: Path) -> None:
    bad = []
    for cls in (n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.ClassDef)):
        for item in cls.body:
            if isinstance(item, ast.AnnAssign) and _is_any(item.annotation):
                bad.append(f"{cls.name}.{ast.unparse(item.target)}")
            if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                bad += [f"{cls.name}({a.arg})" for a in item.args.args + item.args.kwonlyargs if _is_any(a.annotation)]
    assert not bad, f"collaborators typed Any (name a Protocol or the concrete type): {bad}"


def test_lint_imports_passes() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
