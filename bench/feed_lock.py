"""Creates with two workers on PostgreSQL, this checkout against another (issue 11, point 6:
the change feed ordered by transaction id instead of one advisory lock around every COMMIT).

Both servers (``python -m bench.serve --workers 2``) run on the bench data of ``make bench``
(load it first: ``python -m bench.run --only postgres --no-overload --no-mixed --reuse``) and
take turns under wrk on ``POST /v1/goals``, round after round, so that a slow spell of the
machine falls on both sides. The other checkout (say ``git worktree add --detach ../base
main``) needs its own ``.venv``; the schema is this checkout's (migrated here first), which
older code still writes (``changes.tx`` has a default). Holds the benchmark lock like ``bench.run``:

    .venv/bin/python -m bench.feed_lock --base ../xid-base \\
        --lock-file <main checkout>/var/bench/run.lock
"""

from __future__ import annotations

import os
import statistics
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from bench.run import (
    DEFAULT_POSTGRES,
    SCENARIOS,
    VAR,
    bench_env,
    console,
    count_goals_safely,
    hold_bench_lock,
    measure,
    mint_tokens,
)
from bench.server import ROOT, Server
from bench.wrk import ensure_wrk

cli = typer.Typer(add_completion=False)
CREATE = next(s for s in SCENARIOS if s.key == "create")


@cli.command()
def main(
    base: Annotated[Path, typer.Option(help="The checkout to compare with (its own .venv).")],
    rounds: Annotated[int, typer.Option(min=1)] = 3,
    duration: Annotated[float, typer.Option(help="Seconds of load per side and round.")] = 10,
    warmup: Annotated[float, typer.Option(help="Seconds of unmeasured load before each.")] = 2,
    connections: Annotated[int, typer.Option()] = 50,
    workers: Annotated[int, typer.Option()] = 2,
    tokens: Annotated[int, typer.Option(help="Distinct clients' tokens wrk rotates.")] = 200,
    postgres_url: Annotated[str, typer.Option(envvar="WAYPOINT_BENCH_POSTGRES_URL")] = (
        DEFAULT_POSTGRES
    ),
    lock_file: Annotated[Path, typer.Option(help="The benchmark lock to hold.")] = (
        VAR / "run.lock"
    ),
) -> None:
    """Creates per second of this checkout ("new") and of ``--base`` ("base"), A/B by turns."""
    bench_env()
    lock = hold_bench_lock(lock_file)
    # This checkout's schema (older code still writes it: ``changes.tx`` has a default).
    migrate = [str(ROOT / ".venv" / "bin" / "waypoint"), "migrate"]
    subprocess.run(migrate, env={**os.environ, "WAYPOINT_DATABASE_URL": postgres_url}, check=True)
    if count_goals_safely(postgres_url) < 1000:
        raise typer.BadParameter("load the bench data first (python -m bench.run --only postgres)")
    opts = {
        "duration": duration,
        "warmup": warmup,
        "connections": connections,
        "threads": 2,
        "nice": 0,
        "wrk": ensure_wrk(),
    }
    many, _ = mint_tokens(postgres_url, tokens)
    VAR.mkdir(parents=True, exist_ok=True)
    tokens_file = VAR / "tokens-feed-lock.txt"
    tokens_file.write_text("\n".join(many) + "\n")
    env = {**bench_env(), "WAYPOINT_MAX_QUEUE_WAIT_MS": "60000"}
    sides = {"new": ROOT, "base": base.resolve()}
    servers = {
        name: Server(
            postgres_url, env, VAR / f"server-feed-lock-{name}.log", workers=workers,
            checkout=checkout,
        )
        for name, checkout in sides.items()
    }  # fmt: skip
    rps: dict[str, list[float]] = {name: [] for name in sides}
    db_ms: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for server in servers.values():
            server.__enter__()
        for round_number in range(1, rounds + 1):
            order = list(sides) if round_number % 2 else list(sides)[::-1]
            for name in order:
                result = measure(servers[name], opts["wrk"], CREATE, tokens_file, opts)
                errors = result.errors + result.non_2xx
                rps[name].append(result.rps)
                db_ms[name].append(result.db_cpu_ms)
                console.print(
                    f"  {round_number}/{rounds} {name:<5} {result.rps:>7,.0f} rps  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                    f"server {result.server_cpu_ms:.2f} ms, postgres {result.db_cpu_ms:.2f} ms "
                    f"CPU/request  other {result.other_cores:.2f} cores"
                    + (f"  [bold red]{errors} errors[/]" if errors else "")
                )
    finally:
        for server in servers.values():
            server.stop()
        lock.close()
    ratios = [n / b for n, b in zip(rps["new"], rps["base"], strict=True) if b]
    console.print(
        f"median rps: new {statistics.median(rps['new']):,.0f}, base "
        f"{statistics.median(rps['base']):,.0f}; median of the per-round ratios new/base "
        f"{statistics.median(ratios):.3f} ({', '.join(f'{r:.3f}' for r in ratios)}); "
        f"postgres CPU per request: new {statistics.median(db_ms['new']):.2f} ms, base "
        f"{statistics.median(db_ms['base']):.2f} ms"
    )


if __name__ == "__main__":
    cli()
