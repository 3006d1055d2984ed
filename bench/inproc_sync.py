"""In-process CPU cost of the sync scenarios against their baselines, for a shared machine.

Runs the app in this process (httpx over ASGI, no sockets, no wrk) on data already loaded by a
smoke run of ``bench.run`` and reports, interleaved over several rounds, the CPU time per
request (this process's, and on PostgreSQL its backends' on this database) and the SQL
statements per request of: the ceiling, the goals list, a sync follower with nothing new, and
the big client's first and last sync pages of 500. CPU time is what a busy neighbour disturbs least.

    .venv/bin/python -m bench.inproc_sync sqlite:///var/bench/waypoint.db
    .venv/bin/python -m bench.inproc_sync postgresql+psycopg://postgres@127.0.0.1/waypoint_bench_x
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

from bench.run import bench_env, mint_tokens
from bench.server import cpu_seconds


def backends_cpu(url: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to this database (the app's)."""
    import sqlalchemy as sa

    from app.core.database_url import sync_url

    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        pids = conn.scalars(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()")
        ).all()  # fmt: skip
    engine.dispose()
    return sum(cpu_seconds(pid) for pid in pids)


async def main(url: str, rounds: int = 5, n: int = 200, n_pages: int = 20) -> None:
    bench_env()
    os.environ["WAYPOINT_DATABASE_URL"] = url
    os.environ["WAYPOINT_LOG_LEVEL"] = "WARNING"
    os.environ["WAYPOINT_MAX_QUEUE_WAIT_MS"] = "60000"
    import httpx
    import sqlalchemy as sa
    from sqlalchemy import event

    from bench.app import create_bench_app

    postgres = url.startswith("postgresql")
    tokens, big = mint_tokens(url, 20)
    app = create_bench_app()
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    async with app.router.lifespan_context(app):
        # Every engine (SQLite's inline reader too); fetch_page tells these listeners as well.
        event.listen(sa.Engine, "before_cursor_execute", count)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            big_h = {"Authorization": f"Bearer {big}"}
            cursor, last_cursor, objects = None, None, 0
            while True:  # walk the initial sync: the current cursor and the last full page's
                params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
                page = (await http.get("/v1/sync", params=params, headers=big_h)).json()
                objects += len(page["changes"])
                if len(page["changes"]) == 500 and page["has_more"]:
                    last_cursor = cursor
                cursor = page["next_cursor"]
                if not page["has_more"]:
                    break
            scenarios = {
                "ceiling": ("/bench/ceiling", {}, n),
                "list": ("/v1/goals", {"limit": 50}, n),
                "sync idle": ("/v1/sync", {"limit": 500, "cursor": cursor}, n),
                "sync first 500": ("/v1/sync", {"limit": 500}, n_pages),
                "sync last 500": ("/v1/sync", {"limit": 500, "cursor": last_cursor}, n_pages),
            }
            cpu: dict[str, list[float]] = {name: [] for name in scenarios}
            pg: dict[str, list[float]] = {name: [] for name in scenarios} if postgres else {}
            per_request: dict[str, float] = {}
            for _ in range(rounds):
                for name, (path, params, count_n) in scenarios.items():
                    rotate = name in ("ceiling", "list")
                    statements = 0
                    b0 = backends_cpu(url) if postgres else 0.0
                    t0 = time.process_time()
                    for i in range(count_n):
                        token = tokens[i % len(tokens)] if rotate else big
                        r = await http.get(
                            path, params=params, headers={"Authorization": f"Bearer {token}"}
                        )
                        assert r.status_code == 200, (name, r.status_code, r.text[:300])
                    cpu[name].append((time.process_time() - t0) * 1000 / count_n)
                    if postgres:
                        pg[name].append((backends_cpu(url) - b0) * 1000 / count_n)
                    per_request[name] = statements / count_n
    print(f"{url.split(':')[0]}: initial sync {objects} objects; CPU ms/request, median of "
          f"{rounds} interleaved rounds (min-max); SQL statements/request")  # fmt: skip
    for name, values in cpu.items():
        backend = f"  PostgreSQL {statistics.median(pg[name]):.3f}" if pg else ""
        print(f"  {name:15s} {statistics.median(values):7.3f}  ({min(values):.3f}-"
              f"{max(values):.3f})  stmts {per_request[name]:.1f}{backend}")  # fmt: skip
    ceiling, idle = statistics.median(cpu["ceiling"]), statistics.median(cpu["sync idle"])
    lst, first = statistics.median(cpu["list"]), statistics.median(cpu["sync first 500"])
    print(f"  idle/ceiling by CPU: {ceiling / idle:.2f} (target 0.50)")
    print(f"  sync objects/s / list goals/s by CPU: {(500 / first) / (50 / lst):.2f} (target 0.60)")
    if pg:
        ceiling += statistics.median(pg["ceiling"])
        idle += statistics.median(pg["sync idle"])
        lst += statistics.median(pg["list"])
        first += statistics.median(pg["sync first 500"])
        print(f"  with PostgreSQL's CPU: idle/ceiling {ceiling / idle:.2f}, "
              f"sync/list {(500 / first) / (50 / lst):.2f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], *(int(a) for a in sys.argv[2:])))
