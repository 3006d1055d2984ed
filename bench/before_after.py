"""``make bench``'s core scenarios, this checkout ("after") against another ("before"), in
interleaved rounds on SQLite and on PostgreSQL: the before/after figures of a refactoring.

Both servers (one worker each, as ``make bench`` runs them) serve the bench data that
``bench.run`` loaded (this checkout's ``var/bench/waypoint.db`` and ``waypoint_bench``; load
it first, e.g. ``python -m bench.run --no-core --no-steady --no-overload --no-mixed
--no-reminders``), migrated to this checkout's schema first; the older code must still
write it (the columns added since have server defaults or are nullable). In each round every
core scenario runs on both sides back to back, one server under load at a time, the side
that goes first alternating from round to round. The other checkout (``git worktree add
--detach ../base <commit>``) needs its own ``.venv``. Holds the benchmark lock like
``bench.run``:

    .venv/bin/python -m bench.before_after --base ../base \\
        --lock-file <main checkout>/var/bench/run.lock
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import httpx
import sqlalchemy as sa
import typer
from rich.table import Table

from bench.load import BIG_CLIENT_EMAIL
from bench.run import (
    DEFAULT_POSTGRES,
    NOISY_CORES,
    RESULTS,
    SCENARIOS,
    VAR,
    Check,
    Scenario,
    bench_env,
    console,
    count_goals_safely,
    deep_cursor,
    hold_bench_lock,
    measure,
    mint_tokens,
)
from bench.server import ROOT, Server
from bench.sync_export import SYNC_PAGE, walk_sync
from bench.wrk import WrkResult, combine, ensure_wrk, median, paired_ratio

cli = typer.Typer(add_completion=False)

# The core scenarios of ``make bench``, in its order (so list runs right after ceiling, deep
# after first page, create after bare insert, as the targets compare them).
CORE = ("ceiling", "list", "first", "deep", "bare", "create", "sync_idle")
SIDES = ("after", "before")
MIN_GOALS = 1000
# make bench's targets that compare core scenarios (``bench.run.checks``): name, a, b,
# target, at least (else at most), attribute; each the median of the rounds' own a / b.
RATIO_TARGETS = (
    ("list rps / ceiling rps", "list", "ceiling", 0.30, True, "rps"),
    ("create rps / bare insert rps", "create", "bare", 0.60, True, "rps"),
    ("deep p50 / first page p50", "deep", "first", 1.20, False, "p50_ms"),
)
LIST_P99_MS = 100.0


@dataclass
class Side:
    name: str
    checkout: Path
    commit: str
    server: Server | None = None
    paths: dict[str, str] = field(default_factory=dict)  # the cursors' requests, its own


def round_order(round_number: int) -> tuple[str, ...]:
    """Which side goes first: "after" in odd rounds, "before" in even ones."""
    return SIDES if round_number % 2 else SIDES[::-1]


def side_targets(results: dict[str, WrkResult]) -> list[Check]:
    """make bench's core targets for one side's results (``combine``d rounds): each ratio the
    median of the rounds' own ratios (``paired_ratio``), list p99 the median round's."""
    out = []
    for name, a, b, target, at_least, attr in RATIO_TARGETS:
        if a not in results or b not in results:
            out.append(Check(name, "not measured", "", False))
            continue
        value = paired_ratio(results[a], results[b], attr)
        passed = value >= target if at_least else value <= target
        out.append(Check(name, f"{value:.2f}", f"{'>=' if at_least else '<='} {target:.2f}",
                         passed))  # fmt: skip
    if "list" in results:
        p99 = results["list"].p99_ms
        out.append(Check("list p99", f"{p99:.1f} ms", f"< {LIST_P99_MS:.0f} ms", p99 < LIST_P99_MS))
    else:
        out.append(Check("list p99", "not measured", "", False))
    return out


def round_ratios(after: WrkResult, before: WrkResult, attr: str = "rps") -> list[float]:
    """after / before in each round (both sides ran back to back in it)."""
    return [
        getattr(a, attr) / getattr(b, attr) if getattr(b, attr) else 0.0
        for a, b in zip(after.per_round, before.per_round, strict=True)
    ]


@cli.command()
def main(
    base: Annotated[Path, typer.Option(help="The checkout to compare with (its own .venv).")],
    only: Annotated[str | None, typer.Option(help="sqlite or postgres")] = None,
    rounds: Annotated[int, typer.Option(min=1)] = 4,
    duration: Annotated[float, typer.Option(help="Seconds of load per scenario, side, round.")] = 5,
    warmup: Annotated[float, typer.Option(help="Seconds of unmeasured load before each.")] = 1,
    connections: Annotated[int, typer.Option(help="wrk connections.")] = 50,
    threads: Annotated[int, typer.Option(help="wrk threads.")] = 2,
    tokens: Annotated[int, typer.Option(help="Distinct clients' tokens wrk rotates.")] = 200,
    sqlite_path: Annotated[Path, typer.Option()] = VAR / "waypoint.db",
    postgres_url: Annotated[str, typer.Option(envvar="WAYPOINT_BENCH_POSTGRES_URL")] = (
        DEFAULT_POSTGRES
    ),
    lock_file: Annotated[Path, typer.Option(help="The benchmark lock to hold.")] = (
        VAR / "run.lock"
    ),
) -> None:
    """make bench's core scenarios: this checkout ("after") against ``--base`` ("before")."""
    bench_env()
    if only not in (None, "sqlite", "postgres"):
        raise typer.BadParameter("--only is sqlite or postgres")
    base = base.resolve()
    if not (base / ".venv" / "bin" / "python").exists():
        raise typer.BadParameter(f"{base} has no .venv (run make .venv/bin/waypoint there)")
    opts = {
        "rounds": rounds,
        "duration": duration,
        "warmup": warmup,
        "connections": connections,
        "threads": threads,
        "tokens": tokens,
        "nice": 0,
        "wrk": ensure_wrk(),
    }
    databases = [("sqlite", f"sqlite:///{sqlite_path.resolve()}"), ("postgres", postgres_url)]
    databases = [(name, url) for name, url in databases if only in (None, name)]
    lock = hold_bench_lock(lock_file)
    try:
        for name, url in databases:  # refuse before measuring anything
            _check_loaded(name, url, sqlite_path)
        commits = {"after": _commit(ROOT), "before": _commit(base)}
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
        report = [
            f"# make bench before and after, {stamp}\n",
            f"after: {ROOT} ({commits['after']}); before: {base} ({commits['before']}). "
            f"One worker per side, {connections} connections, wrk -t{threads}, {rounds} "
            f"rounds of {warmup:g} s warm-up + {duration:g} s per scenario and side; in each "
            "round every scenario ran on both sides back to back, the first side alternating.\n",
        ]
        for name, url in databases:
            sides = [Side("after", ROOT, commits["after"]), Side("before", base, commits["before"])]
            report.append(bench_database(name, url, sides, opts))
    finally:
        lock.close()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"before-after-{stamp}.md"
    out.write_text("\n".join(report))
    console.print(f"results written to {out}")


def bench_database(name: str, url: str, sides: list[Side], opts: dict) -> str:
    console.rule(f"[bold]{name}[/]  {url.split('@')[-1]}")
    # This checkout's schema, which the older code must still write (checked below).
    migrate = [str(ROOT / ".venv" / "bin" / "waypoint"), "migrate"]
    subprocess.run(migrate, env={**os.environ, "WAYPOINT_DATABASE_URL": url}, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    depth = _big_client_goals(url) - 100  # bench.run loads the deep page's depth + 100
    many, big = mint_tokens(url, opts["tokens"])
    VAR.mkdir(parents=True, exist_ok=True)
    many_file, big_file = VAR / f"tokens-ab-{name}.txt", VAR / f"token-big-ab-{name}.txt"
    many_file.write_text("\n".join(many) + "\n")
    big_file.write_text(big + "\n")
    # As bench.run's core scenarios: the queue bound lifted (throughput, every connection busy).
    env = {**bench_env(), "WAYPOINT_MAX_QUEUE_WAIT_MS": "60000"}
    by_key = {s.key: s for s in SCENARIOS}
    notes: list[str] = []
    try:
        for side in sides:
            log = VAR / f"server-ab-{name}-{side.name}.log"
            side.server = Server(url, env, log, checkout=side.checkout).__enter__()
            side.paths = _cursor_paths(side.server.base_url, big, depth)
        scenarios: list[Scenario] = []
        for key in CORE:
            unable = [
                f"{side.name}: {why}"
                for side in sides
                if (why := _cannot(side, by_key[key], many[0], big, key)) is not None
            ]
            if unable:
                note = f"{by_key[key].label} skipped on both sides ({'; '.join(unable)})"
                console.print(f"  [bold yellow]{note}[/]")
                notes.append(note)
                continue
            scenarios.append(by_key[key])
        console.print(
            f"  {len(many)} clients' tokens, deep page {depth:,} goals deep; scenarios: "
            + ", ".join(s.label for s in scenarios)
        )
        measured: dict[str, dict[str, list[WrkResult]]] = {
            side.name: {s.key: [] for s in scenarios} for side in sides
        }
        named = {side.name: side for side in sides}
        for round_number in range(1, opts["rounds"] + 1):
            for scenario in scenarios:
                for side_name in round_order(round_number):
                    side = named[side_name]
                    assert side.server is not None
                    one = scenario
                    if scenario.key in side.paths:
                        one = Scenario(scenario.key, scenario.label, "GET",
                                       side.paths[scenario.key], True)  # fmt: skip
                    tokens = big_file if one.big_client else many_file
                    result = measure(side.server, opts["wrk"], one, tokens, opts)
                    measured[side_name][scenario.key].append(result)
                    _print_one(round_number, opts["rounds"], scenario, side_name, result, name)
    finally:
        for side in sides:
            if side.server is not None:
                side.server.stop()
    results = {
        side: {key: combine(runs) for key, runs in by_scenario.items()}
        for side, by_scenario in measured.items()
    }
    return render(name, [side.name for side in sides], results, scenarios, notes, opts)


def render(
    name: str,
    sides: list[str],
    results: dict[str, dict[str, WrkResult]],
    scenarios: list[Scenario],
    notes: list[str],
    opts: dict,
) -> str:
    """Print the comparison and the targets per side; return the same as Markdown."""
    after, before = results["after"], results["before"]
    pg = name == "postgres"
    cpu = "CPU ms/req (server + PG)" if pg else "CPU ms/req"
    columns = (
        "scenario",
        "rps before",
        "rps after",
        "after / before",
        "per round",
        f"{cpu} before",
        f"{cpu} after",
        "p99 ms before / after",
        "errors",
    )
    table = Table(title=f"{name}: median of {opts['rounds']} rounds of {opts['duration']:g} s")
    for column in columns:
        table.add_column(column, justify="left" if column == "scenario" else "right")
    md = [f"## {name}\n", "| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    noisy = 0.0
    for s in scenarios:
        a, b = after[s.key], before[s.key]
        ratios = round_ratios(a, b)
        cells = [
            s.label,
            f"{b.rps:,.0f}",
            f"{a.rps:,.0f}",
            f"{median(ratios):.3f}",
            ", ".join(f"{r:.2f}" for r in ratios),
            _cpu(b, pg),
            _cpu(a, pg),
            f"{b.p99_ms:.1f} / {a.p99_ms:.1f}",
            f"{b.errors} / {a.errors}" if a.errors or b.errors else "0",
        ]
        table.add_row(*cells, style="bold red" if a.errors or b.errors else None)
        md.append("| " + " | ".join(cells) + " |")
        noisy = max(noisy, a.other_cores, b.other_cores)
    console.print(table)
    for note in notes:
        md.append(f"\n{note}.")
    verdicts = Table(title=f"{name}: make bench targets per side (median of the rounds' ratios)")
    for column in ("check", "target", *(f"{side}" for side in ("before", "after"))):
        verdicts.add_column(column)
    md += ["", "| check | target | before | after |", "|---|---|---|---|"]
    found = {side: side_targets(results[side]) for side in sides}
    for b_check, a_check in zip(found["before"], found["after"], strict=True):
        shown = [f"{c.value} {'PASS' if c.passed else 'FAIL'}" for c in (b_check, a_check)]
        colored = [
            f"{c.value} {'[green]PASS[/]' if c.passed else '[bold red]FAIL[/]'}"
            for c in (b_check, a_check)
        ]
        verdicts.add_row(a_check.name, a_check.target, *colored)
        md.append(f"| {a_check.name} | {a_check.target} | {' | '.join(shown)} |")
    console.print(verdicts)
    if noisy > NOISY_CORES:
        warning = (
            f"Other processes kept up to {noisy:.1f} of {os.cpu_count()} cores busy during "
            "these measurements: absolute figures are low and ratios are noisy."
        )
        console.print(f"[yellow]{warning}[/]")
        md.append(f"\n> {warning}")
    return "\n".join(md) + "\n"


def _cpu(r: WrkResult, pg: bool) -> str:
    return f"{r.server_cpu_ms:.2f} + {r.db_cpu_ms:.2f}" if pg else f"{r.server_cpu_ms:.2f}"


def _print_one(
    number: int, rounds: int, scenario: Scenario, side: str, r: WrkResult, database: str
) -> None:
    flag = f"  [bold red]{r.errors} ERRORS {r.statuses}[/]" if r.errors else ""
    if r.other_cores > NOISY_CORES:
        flag += f"  [yellow]others {r.other_cores:.1f} cores[/]"
    console.print(
        f"  {number}/{rounds} {scenario.label:<18} {side:<6} {r.rps:>7,.0f} rps  "
        f"p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:8.2f} ms  CPU {r.server_cpu_ms:.2f}"
        f"{f' + PG {r.db_cpu_ms:.2f}' if database == 'postgres' else ''} ms/req{flag}"
    )


def _cursor_paths(base_url: str, big: str, depth: int) -> dict[str, str]:
    """The deep page and the idle follower's requests, found through this side's own API as
    bench.run finds them (the cursor's format is the side's own)."""
    cursor = deep_cursor(base_url, big, depth)
    if cursor is None:
        raise RuntimeError(f"could not walk {depth:,} goals deep on {base_url}")
    walk = walk_sync(base_url, big)
    return {
        "deep": f"/v1/goals?limit=50&cursor={quote(cursor)}",
        "sync_idle": f"/v1/sync?limit={SYNC_PAGE}&cursor={quote(walk.current_cursor or '')}",
    }


def _cannot(side: Side, scenario: Scenario, token: str, big: str, key: str) -> str | None:
    """One request of the scenario on this side: None when it answers 2xx, else why not
    (e.g. older code that cannot write the newer schema)."""
    assert side.server is not None
    path = side.paths.get(key, scenario.path)
    headers = {"Authorization": f"Bearer {big if scenario.big_client else token}"}
    if scenario.body is not None:
        headers["Content-Type"] = "application/json"
    try:
        r = httpx.request(scenario.method, side.server.base_url + path, headers=headers,
                          content=scenario.body, timeout=30)  # fmt: skip
    except httpx.HTTPError as e:
        return f"{scenario.method} {scenario.path or key}: {e!r}"
    if 200 <= r.status_code < 300:
        if key == "sync_idle" and r.json().get("changes"):
            console.print(f"  [yellow]{side.name}: the idle follower's page is not empty[/]")
        return None
    return f"{scenario.method} {scenario.path or key} -> {r.status_code} {r.text[:160]!r}"


def _check_loaded(name: str, url: str, sqlite_path: Path) -> None:
    """Refuse unless bench.run loaded this database (and before migrating: ``waypoint
    migrate`` would create an empty SQLite file)."""
    hint = (
        f"load the bench data first: .venv/bin/python -m bench.run --only {name} --no-core "
        "--no-steady --no-overload --no-mixed --no-reminders"
        + (f" --postgres-url {url}" if name == "postgres" and url != DEFAULT_POSTGRES else "")
    )
    if name == "sqlite" and not sqlite_path.exists():
        raise typer.BadParameter(f"{sqlite_path} does not exist; {hint}")
    goals, big = count_goals_safely(url), _big_client_goals(url)
    if goals < MIN_GOALS or big <= 100:
        raise typer.BadParameter(
            f"{name}: {goals:,} goals, {big:,} of them the big client's (the deep page); {hint}"
        )


def _big_client_goals(url: str) -> int:
    from app.core.database_url import sync_url

    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT count(*) FROM goals g JOIN users u ON u.id = g.client_id "
                    "WHERE u.email_key = :big"
                ),
                {"big": BIG_CLIENT_EMAIL},
            ).scalar_one()
    except sa.exc.SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


def _commit(checkout: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout,
                          capture_output=True, text=True, check=False)  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "app"], cwd=checkout,
                           capture_output=True, text=True, check=False)  # fmt: skip
    return (done.stdout.strip() or "unknown") + (" + uncommitted app/" if dirty.stdout else "")


if __name__ == "__main__":
    cli()
