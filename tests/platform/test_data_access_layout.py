"""SQL text and database-dialect branches live only in a domain's ``repository.py`` and in
``app/core/`` (docs/data-access.md): a service, router or worker holds neither."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
# Where statements may be written out: ``app/core/`` (the engine and the generic fast paths),
# each domain's ``repository.py``, and ``app/models/`` (table definitions: a partial index's
# ``WHERE``). ``scripts/mirror.py`` is a command-line client's own SQLite file, not the
# service's database.
ALLOWED_DIRS = ("core", "models")
ALLOWED_FILES = ("repository.py",)
ALLOWED_PATHS = ("scripts/mirror.py",)

_SQL_STATEMENT = re.compile(
    r"^\s*(SELECT\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|WITH\s+\w+\s+AS\s"
    r"|CREATE\s|DROP\s|ALTER\s|PRAGMA\s)"
)
_DIALECT_NAMES = {"postgresql", "sqlite", "postgres"}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes (module, class, function): prose, not SQL."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def violations(source: str) -> list[str]:
    """What in ``source`` belongs in a repository: SQL text, a statement written as a string,
    a branch on the dialect, or a dialect's own constructs."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("text", "exec_driver_sql"):
                found.append(f"{line}: {name}(...)")
        elif isinstance(node, ast.Attribute) and node.attr == "dialect":
            found.append(f"{line}: .dialect")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            if node.value in _DIALECT_NAMES:
                found.append(f"{line}: dialect name {node.value!r}")
            elif _SQL_STATEMENT.match(node.value):
                found.append(f"{line}: SQL string {node.value[:30]!r}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.startswith("sqlalchemy.dialects") or module == "sqlalchemy.dialects":
                found.append(f"{line}: import from {module}")
            elif module.startswith("app.core"):
                driver = [a.name for a in node.names if a.name.startswith("sqlite_")]
                if driver:
                    found.append(f"{line}: import {', '.join(driver)}")
    return found


def _domain_modules() -> list[Path]:
    modules = []
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP)
        if relative.parts[0] in ALLOWED_DIRS or path.name in ALLOWED_FILES:
            continue
        if relative.as_posix() in ALLOWED_PATHS:
            continue
        modules.append(path)
    return modules


def test_domain_modules_hold_no_sql_text_and_no_dialect_branch() -> None:
    modules = _domain_modules()
    assert len(modules) > 50  # the walk found the application
    found = {
        path.relative_to(APP).as_posix(): hits
        for path in modules
        if (hits := violations(path.read_text()))
    }
    assert found == {}


@pytest.mark.parametrize(
    "source",
    [
        'import sqlalchemy as sa\nQ = sa.text("SELECT 1")',
        'from sqlalchemy import text\nQ = text("anything")',
        'async def f(c):\n    await c.exec_driver_sql("VACUUM")',
        "def f(session):\n    return session.bind.dialect.name",
        'def f(name):\n    return name == "postgresql"',
        'def f(name):\n    return {"sqlite": 1}[name]',
        'SQL = "SELECT id FROM goals WHERE id = ?"',
        'SQL = f"INSERT INTO changes ({1}) VALUES (?)"',
        'SQL = "DELETE FROM goals"',
        "from sqlalchemy.dialects.postgresql import ARRAY",
        "from sqlalchemy.dialects import postgresql",
        "from app.core.sqlite_inline import sqlite_inline",
    ],
)
def test_each_kind_of_data_access_is_found(source: str) -> None:
    assert violations(source)


@pytest.mark.parametrize(
    "source",
    [
        '"""SELECT the goals a caller may see: a docstring, not a statement."""',
        'def f():\n    """INSERT INTO the prose."""',
        'import sqlalchemy as sa\nQ = sa.select(sa.column("id"))',
        'MESSAGE = "Select a goal first."',
        "def f(dialect):\n    return g(dialect)",
    ],
)
def test_prose_and_core_expressions_are_not_data_access(source: str) -> None:
    assert violations(source) == []
