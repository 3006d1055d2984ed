"""A constraint the database enforced is answered by what it means, told by its name.

Services check what they can before writing (a taken ``external_id``, an e-mail in use), but a
concurrent request can slip in between the check and the write, and then the database refuses
the write. Every such refusal (``IntegrityError``) reaches the one handler here, which reads
the violated constraint's name from the driver (psycopg: ``diag.constraint_name``; SQLite
names the columns or the index in its message, looked up in the metadata, whose naming
convention gives every constraint its name) and answers:

- a unique constraint named in ``CONFLICTS``: 409 with what is taken;
- a foreign key: the row it points to was removed by a concurrent request (an account erased
  while it was writing, say): 401 when that is the caller's own account, else 404. SQLite's
  message names no foreign key, and the caller's account is what matters here: it is looked
  up;
- anything else (a unique constraint no request can break, NOT NULL, CHECK): a bug, logged
  with the constraint's name and answered 500, never a conflict it was not.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request

from app.core.errors import ProblemResponse, problem_response

log = structlog.get_logger("waypoint.db")

# The unique constraints a request can break, and the conflict each one means.
CONFLICTS: dict[str, str] = {
    "uq_goals_client_id_external_id": "This client already has a goal with that external_id.",
    "uq_users_email_key": "An account with this e-mail already exists.",
    "uq_care_links_active_pair": "You are already linked with this therapist.",
}

_PG_KINDS = {
    "23505": "unique",
    "23503": "foreign_key",
    "23502": "not_null",
    "23514": "check",
    "23P01": "exclusion",
}
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SQLITE_INDEX = re.compile(r"index '([^']+)'")
_SQLITE_NOT_NULL = re.compile(r"NOT NULL constraint failed: (.+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (.+)")


@dataclass(frozen=True)
class Violation:
    kind: str  # unique, foreign_key, not_null, check, exclusion, unknown
    name: str | None  # the constraint's name as in the metadata; None when the driver names none


def violation_of(exc: sa.exc.IntegrityError, metadata: sa.MetaData) -> Violation:
    """Which constraint ``exc`` is about."""
    orig = exc.orig
    if isinstance(orig, sqlite3.IntegrityError):
        return _sqlite_violation(str(orig), metadata)
    kind = _PG_KINDS.get(getattr(orig, "sqlstate", None) or "", "unknown")
    diag = getattr(orig, "diag", None)
    return Violation(kind, getattr(diag, "constraint_name", None))


def _sqlite_violation(message: str, metadata: sa.MetaData) -> Violation:
    if message.startswith("FOREIGN KEY constraint failed"):
        return Violation("foreign_key", None)
    if match := _SQLITE_UNIQUE.match(message):
        return Violation("unique", _unique_name(match.group(1), metadata))
    if match := _SQLITE_NOT_NULL.match(message):
        return Violation("not_null", match.group(1))
    if match := _SQLITE_CHECK.match(message):
        return Violation("check", match.group(1))
    return Violation("unknown", None)


def _unique_name(failed: str, metadata: sa.MetaData) -> str | None:
    """The name of the unique index or constraint SQLite reports as ``t.a, t.b`` (or as
    ``index 'name'`` for one on expressions)."""
    if match := _SQLITE_INDEX.match(failed):
        return match.group(1)
    columns = [part.strip().split(".", 1) for part in failed.split(",")]
    table = metadata.tables.get(columns[0][0])
    if table is None or any(len(column) != 2 for column in columns):
        return None
    wanted = [name for _, name in columns]
    candidates: list[tuple[str | None, list[str]]] = [
        (index.name, [c.name for c in index.columns]) for index in table.indexes if index.unique
    ]
    candidates += [
        (constraint.name, [c.name for c in constraint.columns])
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint)
    ]
    for name, names in candidates:
        if names == wanted:
            return str(name) if name is not None else None
    return None


AccountIsGone = Callable[[uuid.UUID], Awaitable[bool]]


def install_constraint_answers(
    app: FastAPI, metadata: sa.MetaData, account_is_gone: AccountIsGone
) -> None:
    """Answer every ``IntegrityError`` a request raises by the constraint it violated;
    ``account_is_gone`` tells whether a caller's account no longer exists."""

    async def answer(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, sa.exc.IntegrityError)
        violation = violation_of(exc, metadata)
        if violation.kind == "foreign_key":
            log.info("constraint_referent_gone", constraint=violation.name)
            caller = getattr(request.state, "principal", None)
            if caller is not None and await account_is_gone(caller[1].user_id):
                return problem_response(
                    401,
                    "unauthorized",
                    "Not authenticated",
                    "The account no longer exists.",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return problem_response(
                404, "not-found", "Not found", "What this request refers to no longer exists."
            )
        conflict = CONFLICTS.get(violation.name or "") if violation.kind == "unique" else None
        if conflict is None:
            log.error("constraint_violation_unexpected", kind=violation.kind,
                      constraint=violation.name)  # fmt: skip
            raise exc  # a bug: answered 500 by the request middleware, which logs it too
        return problem_response(409, "conflict", "Conflict", conflict)

    app.add_exception_handler(sa.exc.IntegrityError, answer)
