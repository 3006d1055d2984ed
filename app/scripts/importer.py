"""``waypoint import goals.csv``: upsert goals by ``external_id``.

For each row: ``GET /v1/goals?external_id=`` finds the goal; a missing goal is created with an
``Idempotency-Key`` derived from the row (a rerun, or a retry after a lost answer, creates
nothing twice); a goal whose given fields differ is updated with ``If-Match`` (only those
fields); an equal one is left alone. An empty cell means "not given": the goal keeps (or is
created with the default for) that field. A bad row is reported with its line number (the
header is line 1) and the API's error; the other rows still go in."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from app.goals.schemas import GOAL_FIELDS
from app.scripts.api_client import ApiClient, ApiError, Reporter, Unreachable


def _number(annotation: Any) -> bool:
    """``int``, constrained or not (``ReviewEveryDays``)."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation is int


# The goal fields a POST takes, as the goal's declaration says (each a cell of text).
COLUMNS = tuple(
    name for name, field in GOAL_FIELDS.items() if field.create is not None and field.csv
)
UPDATABLE = tuple(c for c in COLUMNS if c not in ("external_id", "client_id"))
# Rows are read into memory before the first request (to show progress against the total), so
# a file's size is bounded here: a caseload's goals are counted in hundreds, and a larger
# import is split into files. A cell is bounded by the csv module (131,072 characters).
MAX_ROWS = 100_000
# Cells that are whole numbers in the API (sent as numbers when they are digits).
NUMBERS = tuple(c for c in COLUMNS if _number(GOAL_FIELDS[c].takes))


class BadFile(Exception):
    """The file cannot be imported at all (no header, no ``external_id`` column, ...)."""


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (
            f"imported: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} failed"
        )


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number where the row starts, its non-empty cells) for each data row."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise BadFile(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "external_id" not in header:
            raise BadFile("the header row (line 1) has no external_id column")
        unknown = [name for name in header if name not in COLUMNS]
        if unknown:
            raise BadFile(f"unknown columns in the header row (line 1): {', '.join(unknown)}")
        rows = []
        line = reader.line_num + 1
        try:
            for row in reader:
                if len(rows) == MAX_ROWS:
                    raise BadFile(f"more than {MAX_ROWS} rows: split the file")
                cells = {k: v.strip() for k, v in row.items() if k in COLUMNS and v and v.strip()}
                rows.append((line, cells))
                line = reader.line_num + 1
        except csv.Error as exc:
            raise BadFile(f"line {reader.line_num}: {exc}") from None
    return rows


def _body(cells: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = dict(cells)
    for name in NUMBERS:
        if body.get(name, "").isdigit():
            body[name] = int(body[name])
    return body


def idempotency_key(body: dict[str, Any]) -> str:
    """The same row always gets the same key (and a changed row another one)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "waypoint-import-" + hashlib.sha256(canonical.encode()).hexdigest()


def _differences(goal: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k in UPDATABLE and goal.get(k) != v}


def _find(api: ApiClient, body: dict[str, Any]) -> dict[str, Any] | None:
    params = {"external_id": body["external_id"], "limit": 1}
    if "client_id" in body:
        params["client_id"] = body["client_id"]
    items = api.request("GET", "/v1/goals", params=params).json()["items"]
    return items[0] if items else None


def import_row(api: ApiClient, body: dict[str, Any], result: ImportResult) -> None:
    for _ in range(3):  # a concurrent change (412) is looked at again
        goal = _find(api, body)
        if goal is None:
            headers = {"Idempotency-Key": idempotency_key(body)}
            api.request("POST", "/v1/goals", json=body, headers=headers)
            result.created += 1
            return
        changes = _differences(goal, body)
        if not changes:
            result.unchanged += 1
            return
        try:
            api.request(
                "PATCH", f"/v1/goals/{goal['id']}", json=changes,
                headers={"If-Match": f'"{goal["version"]}"'},
            )  # fmt: skip
        except ApiError as exc:
            if exc.status_code == 412:
                continue
            raise
        result.updated += 1
        return
    raise ValueError("the goal kept changing while it was imported (412 three times)")


def run_import(api: ApiClient, path: Path) -> ImportResult:
    rows = read_rows(path)
    result = ImportResult()
    reporter = Reporter("import", total=len(rows))
    try:
        for line, cells in rows:
            body = _body(cells)
            try:
                if "external_id" not in body:
                    raise ValueError("external_id is required")
                import_row(api, body, result)
            except ApiError as exc:
                result.failed += 1
                reporter.warn(f"line {line}: {exc.describe()}")
            except ValueError as exc:
                result.failed += 1
                reporter.warn(f"line {line}: {exc}")
            except Unreachable:
                raise
            reporter.advance(1, f"line {line}")
    finally:
        reporter.close()
    return result
