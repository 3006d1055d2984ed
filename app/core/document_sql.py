"""A resource's document rendered by the database, generated from its one declaration.

``Document`` (``app.core.documents``) gives the fields in order and what each holds; from that
this module writes the SQL that builds the same JSON in the database (SQLite ``json_object``,
PostgreSQL ``json_build_object`` cast to text), so a hot read answers the rows' text joined,
with no per-row Python. The JSON is the one ``Document.render`` gives once serialized (tests
compare them for every field kind): uuids lower-case with dashes, dates ``YYYY-MM-DD``,
timestamps RFC 3339 UTC with ``Z`` and microseconds only when there are any (as orjson writes
them), nested JSON as it was stored, nulls as null.

The goals page (``app.goals.listing``) and the sync feed (``app.sync.feed``) use it.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from app.core.documents import Document


def _sqlite_value(document: Document, table: str, name: str) -> str:
    column = f"{table}.{name}"
    kind = document.kind(name)
    if kind == "uuid":  # stored as 32 hex digits
        return sqlite_uuid(column)
    if kind == "datetime":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)
        return f"replace(replace({column},'.000000',''),' ','T')||'Z'"
    if kind == "object":
        return f"json({column})"
    if kind == "boolean":  # stored as 0/1
        return f"json(CASE WHEN {column} THEN 'true' ELSE 'false' END)"
    return column


def sqlite_uuid(column: str) -> str:
    """A uuid column of SQLite (32 hex digits) as the API writes it (with dashes)."""
    parts = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    return "||'-'||".join(f"substr({column},{start},{length})" for start, length in parts)


def _postgres_value(document: Document, table: str, name: str) -> str:
    column = f"{table}.{name}"
    if document.kind(name) == "datetime":  # UTC whatever the TimeZone; '.000000' dropped
        return (
            f"replace(to_char({column} AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
        )
    return column  # uuid, date, integer, text and jsonb render as the API shows them


def document_sql(
    document: Document, table: str, dialect: str, computed: Mapping[str, str] = {}
) -> str:
    """The JSON object of one row of ``table`` as a SQL expression (a JSON value, not text).

    ``computed`` gives the SQL of the fields that are not a column of the same name (those the
    ``Document`` computes in Python), e.g. another ``document_sql`` for a nested object."""
    value = _sqlite_value if dialect == "sqlite" else _postgres_value
    json_object = "json_object" if dialect == "sqlite" else "json_build_object"
    missing = set(document.fields) - set(document.columns) - set(computed)
    if missing:
        raise ValueError(f"no SQL given for the computed fields {sorted(missing)}")
    pairs = ", ".join(
        f"'{name}', {computed[name] if name in computed else value(document, table, name)}"
        for name in document.fields
    )
    return f"{json_object}({pairs})"


def document_column(
    document: Document, table: str, dialect: str, computed: Mapping[str, str] = {}
) -> sa.ColumnElement[str]:
    """``document_sql`` as a text column of a SELECT (PostgreSQL: ``json`` cast to text)."""
    sql = document_sql(document, table, dialect, computed)
    return sa.literal_column(sql if dialect == "sqlite" else f"{sql}::text", sa.String())
