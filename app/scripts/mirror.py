"""``waypoint sync --into mirror.db``: follow ``GET /v1/sync`` into a local SQLite file.

Tables ``goals``, ``steps``, ``reviews`` and ``encouragements`` (``id TEXT PRIMARY KEY, data
TEXT``: the object's JSON document) and ``sync_state`` (the cursor). Each page is applied and
its cursor stored in one SQLite transaction, so a run killed at any point resumes from the last
page it stored and loses nothing (a page applied twice changes nothing: the last entry for an
id wins).

A stored cursor older than the history the server keeps answers 410 ``cursor-expired``: the
mirror may lack deletions made since, so its tables and cursor are emptied (in one
transaction) and the sync starts over from a full snapshot."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app.scripts.api_client import ApiClient, ApiError, Reporter

CURSOR_EXPIRED = "/problems/cursor-expired"
TABLES = {"goal": "goals", "step": "steps", "review": "reviews", "encouragement": "encouragements"}


@dataclass
class SyncResult:
    upserts: int = 0
    deletes: int = 0

    def summary(self) -> str:
        return f"synced: {self.upserts} upserts, {self.deletes} deletes"


def open_mirror(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    for table in TABLES.values():
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS sync_state (key TEXT PRIMARY KEY, value TEXT)")
    return db


def stored_cursor(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT value FROM sync_state WHERE key = 'cursor'").fetchone()
    return row[0] if row else None


def forget_everything(db: sqlite3.Connection) -> None:
    """Empty the mirror and its cursor, all or nothing: the next page is a full sync's first."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for table in TABLES.values():
            db.execute(f"DELETE FROM {table}")
        db.execute("DELETE FROM sync_state")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _cursor_expired(error: ApiError) -> bool:
    return error.status_code == 410 and error.problem.get("type") == CURSOR_EXPIRED


def apply_page(
    db: sqlite3.Connection, changes: list[dict], cursor: str, result: SyncResult
) -> None:
    """One page and its cursor, all or nothing."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for change in changes:
            table = TABLES.get(change["type"])
            if table is None:
                continue  # a type this version does not know: skip, keep following
            if change["op"] == "upsert":
                db.execute(
                    f"INSERT INTO {table} (id, data) VALUES (?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    (change["id"], json.dumps(change["data"], ensure_ascii=False)),
                )
                result.upserts += 1
            else:
                db.execute(f"DELETE FROM {table} WHERE id = ?", (change["id"],))
                result.deletes += 1
        db.execute(
            "INSERT INTO sync_state (key, value) VALUES ('cursor', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (cursor,),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def run_sync(api: ApiClient, into: Path, limit: int) -> SyncResult:
    db = open_mirror(into)
    result = SyncResult()
    reporter = Reporter("sync")
    try:
        cursor = stored_cursor(db)
        page_number = 0
        started_over = False
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            try:
                page = api.request("GET", "/v1/sync", params=params).json()
            except ApiError as error:
                if started_over or not _cursor_expired(error):
                    raise  # a second expiry in one run would be the server's fault: stop
                started_over = True
                reporter.warn("sync: the stored cursor has expired; starting over (full sync)")
                forget_everything(db)
                cursor = None
                continue
            apply_page(db, page["changes"], page["next_cursor"], result)
            cursor = page["next_cursor"]
            page_number += 1
            reporter.advance(
                len(page["changes"]),
                f"page {page_number}, {result.upserts} upserts, {result.deletes} deletes",
            )
            if not page["has_more"]:
                return result
    finally:
        reporter.close()
        db.close()
