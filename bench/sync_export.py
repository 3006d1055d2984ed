"""The sync and export scenarios of ``make bench`` (issue 11): what the loader adds to the
``changes`` table, the big client's initial sync walked page by page, and the export measured
for the server's memory."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

SYNC_PAGE = 500


def record_changes(conn: sa.Connection) -> None:
    """One change row per loaded goal and step, in the order they were last written, so the
    feed has something to serve (the API writes these rows itself)."""
    conn.exec_driver_sql(
        "INSERT INTO changes (client_id, object_type, object_id, goal_id, op, at, shared) "
        "SELECT client_id, 'goal', id, id, 'upsert', updated_at, visibility = 'shared' "
        "FROM goals ORDER BY updated_at, id"
    )
    conn.exec_driver_sql(
        "INSERT INTO changes (client_id, object_type, object_id, goal_id, op, at, shared) "
        "SELECT s.client_id, 'step', s.id, s.goal_id, 'upsert', s.updated_at, "
        "g.visibility = 'shared' FROM steps s JOIN goals g ON g.id = s.goal_id "
        "ORDER BY s.updated_at, s.id"
    )


@dataclass
class SyncWalk:
    pages: int = 0
    objects: int = 0
    seconds: float = 0.0
    page_ms: list[float] = field(default_factory=list)
    last_full_cursor: str | None = None  # the cursor of the last page that came full
    current_cursor: str | None = None  # where a follower with nothing new stands

    @property
    def objects_per_second(self) -> float:
        return self.objects / self.seconds if self.seconds else 0.0


def walk_sync(base_url: str, token: str) -> SyncWalk:
    """The big client's initial sync in pages of 500, as a follower would do it."""
    walk = SyncWalk()
    cursor: str | None = None
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, timeout=60, headers=headers) as http:
        started = time.perf_counter()
        while True:
            params: dict[str, str | int] = {"limit": SYNC_PAGE}
            if cursor:
                params["cursor"] = cursor
            t0 = time.perf_counter()
            r = http.get("/v1/sync", params=params)
            walk.page_ms.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            page = r.json()
            walk.pages += 1
            walk.objects += len(page["changes"])
            if len(page["changes"]) == SYNC_PAGE and page["has_more"]:
                walk.last_full_cursor = cursor
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        walk.seconds = time.perf_counter() - started
    walk.current_cursor = cursor
    return walk


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class ExportRun:
    rss_before_mb: float
    rss_peak_mb: float
    seconds: float
    objects: int
    megabytes: float

    @property
    def growth_mb(self) -> float:
        return self.rss_peak_mb - self.rss_before_mb

    @property
    def objects_per_second(self) -> float:
        return self.objects / self.seconds if self.seconds else 0.0


def measure_export(base_url: str, token: str, server_pid: int) -> ExportRun:
    """Stream ``GET /v1/me/export`` to a file while sampling the server's RSS every 10 ms."""
    before = rss_bytes(server_pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes(server_pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size = 0
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        try:
            with httpx.stream(
                "GET", f"{base_url}/v1/me/export", timeout=300,
                headers={"Authorization": f"Bearer {token}"},
            ) as response:  # fmt: skip
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    size += len(chunk)
        finally:
            seconds = time.perf_counter() - started
            done.set()
            sampler.join()
        out.seek(0)
        document = json.load(out)
    objects = sum(len(v) for v in document.values() if isinstance(v, list))
    mb = 1024 * 1024
    return ExportRun(before / mb, peak / mb, seconds, objects, size / mb)
