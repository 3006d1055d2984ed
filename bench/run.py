"""``make bench``: Waypoint's goal list and goal create against baselines in the same process.

For each database: fresh schema, 100,000 goals with steps for 1,000 clients plus one client
with over 10,000 goals, then one uvicorn worker driven by wrk at 50 connections. See README.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Annotated
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
RESULTS = Path(__file__).resolve().parent / "results"
_BENCH_DEFAULTS = {
    "WAYPOINT_SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-abcdef",
    "WAYPOINT_ACCESS_TOKEN_MINUTES": "720",
    "WAYPOINT_VAR_DIR": str(VAR),
}


def bench_env() -> dict[str, str]:
    """The settings the benchmark's processes share, put in this process's environment where
    it has none of its own: the loader mints tokens here and the server checks them, so both
    need the same key. Each command calls it first; importing a bench module changes nothing
    (the test suite imports some)."""
    for name, value in _BENCH_DEFAULTS.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in _BENCH_DEFAULTS}


import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.panel import Panel  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.load import BIG_CLIENT_EMAIL, load, reset_schema, upgrade_schema  # noqa: E402
from bench.mixed import USERS as MIXED_USERS  # noqa: E402
from bench.mixed import mixed_checks, mixed_rows, run_mixed  # noqa: E402
from bench.overload import CONNECTIONS as OVERLOAD_CONNECTIONS  # noqa: E402
from bench.overload import (  # noqa: E402
    STEADY_CONNECTIONS,
    overload_checks,
    run_overload,
    run_steady,
    steady_checks,
)
from bench.receivers import Receivers  # noqa: E402
from bench.server import (  # noqa: E402
    CpuMeter,
    Server,
    renice_postgres_backends,
    set_session_priority,
)
from bench.sync_export import SYNC_PAGE, ExportRun, SyncWalk, measure_export, walk_sync  # noqa: E402
from bench.wrk import WrkResult, combine, ensure_wrk, paired_ratio, run_wrk  # noqa: E402

console = Console(width=max(Console().width, 132))
cli = typer.Typer(add_completion=False)

CREATE_TITLE = "wrk create"
CREATE_BODY = json.dumps({"title": CREATE_TITLE, "priority": "medium", "review_every_days": 7})
HOOKED_TITLE = "wrk create hooked"
HOOKED_BODY = json.dumps({"title": HOOKED_TITLE, "priority": "medium", "review_every_days": 7})
WEBHOOKS_PER_CLIENT = 10
# The run waits for the last webhook deliveries as long as the queue moves: it gives up when
# no delivery was made for STALL_SECONDS (the pair rounds leave 100,000-200,000 behind, about
# 10 minutes of work on a slow machine), or after DRAIN_SECONDS in all.
STALL_SECONDS = 60
DRAIN_SECONDS = 3600
NOISY_CORES = 0.25  # other processes' CPU use during a measurement that makes it noisy
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1/waypoint_bench"


@dataclass
class Scenario:
    key: str
    label: str
    method: str
    path: str
    big_client: bool = False  # one token (the client with >10,000 goals) instead of many
    body: str | None = None
    # Pages of 500 take tens of ms each: 50 connections would queue each request for over a
    # second; as many as a worker serves at once (WAYPOINT_MAX_CONCURRENT_REQUESTS) keeps it
    # saturated with latencies that say something.
    connections: int | None = None
    hooked: bool = False  # clients with WEBHOOKS_PER_CLIENT webhooks each


SCENARIOS = [
    Scenario("ceiling", "ceiling", "GET", "/bench/ceiling"),
    Scenario("list", "list", "GET", "/v1/goals?limit=50"),
    Scenario("first", "first page", "GET", "/v1/goals?limit=50", True),
    Scenario("deep", "deep page", "GET", "", True),
    Scenario("bare", "bare insert", "POST", "/bench/bare-insert", body=CREATE_BODY),
    Scenario("create", "create", "POST", "/v1/goals", body=CREATE_BODY),
    Scenario("hooked", "create + 10 webhooks", "POST", "/v1/goals", body=HOOKED_BODY, hooked=True),
    Scenario("sync_idle", "sync, nothing new", "GET", "", True),
    Scenario(
        "sync_first",
        "sync, first page of 500",
        "GET",
        f"/v1/sync?limit={SYNC_PAGE}",
        True,
        connections=10,
    ),
    Scenario("sync_last", "sync, last full page of 500", "GET", "", True, connections=10),
]
# Scenarios whose path is found at run time (a cursor), and how their request is shown.
DYNAMIC = {
    "deep": "/v1/goals?limit=50&cursor=…",
    "sync_idle": f"/v1/sync?limit={SYNC_PAGE}&cursor=<current>",
    "sync_last": f"/v1/sync?limit={SYNC_PAGE}&cursor=<before the last full page>",
}


@dataclass
class Check:
    name: str
    value: str
    target: str
    passed: bool


def regular_clients(conn: sa.Connection, skip: int, how_many: int) -> list[uuid.UUID]:
    """The ids of ``how_many`` clients other than the big one, after ``skip`` of them, in id
    order: the same clients for the tokens ``mint_tokens`` gives and the webhooks
    ``subscribe_webhooks`` adds."""
    from app.models import User

    users = User.__table__
    return list(
        conn.scalars(
            sa.select(users.c.id)
            .where(users.c.role == "client", users.c.email_key != BIG_CLIENT_EMAIL)
            .order_by(users.c.id)
            .offset(skip)
            .limit(how_many)
        ).all()
    )


def mint_tokens(url: str, how_many: int, skip: int = 0) -> tuple[list[str], str]:
    """Access tokens for ``how_many`` clients and for the big client, each with its own login
    family (as a password login would have), minted directly with the app's signing key."""
    from app.auth.scopes import RESOURCE_SCOPES, format_scopes
    from app.core.database_url import sync_url
    from app.core.security import create_access_token
    from app.models import AuthSession, RefreshToken, User, new_id

    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    users = User.__table__
    with engine.begin() as conn:
        big = conn.scalar(sa.select(users.c.id).where(users.c.email_key == BIG_CLIENT_EMAIL))
        many = regular_clients(conn, skip, how_many)
        now = dt.datetime.now(dt.UTC)
        scopes = format_scopes({"client", *(str(s) for s in RESOURCE_SCOPES)})
        tokens, families, logins = [], [], []
        for user_id in [*many, big]:
            family = new_id()
            families.append(
                {
                    "id": new_id(),
                    "family_id": family,
                    "user_id": user_id,
                    "token_hash": new_id().hex + new_id().hex,
                    "scope": " ".join(scopes),
                    "created_at": now,
                    "expires_at": now + dt.timedelta(days=1),
                }
            )
            # The login an access token names must exist (and stay unrevoked) for it to work.
            logins.append({"id": family, "user_id": user_id, "created_at": now})
            token, _ = create_access_token(
                user_id=user_id, role="client", scopes=scopes, session_id=family, now=now
            )
            tokens.append(token)
        conn.execute(sa.insert(RefreshToken.__table__), families)
        conn.execute(sa.insert(AuthSession.__table__), logins)
    engine.dispose()
    return tokens[:-1], tokens[-1]


def subscribe_webhooks(url: str, skip: int, how_many: int, targets: list[str]) -> int:
    """``len(targets)`` webhooks (``goal.created``) for each of the clients ``mint_tokens``
    gives with the same ``skip`` and ``how_many``; replaces earlier ones and their deliveries."""
    from app.core.database_url import sync_url
    from app.models import Webhook, WebhookDelivery, WebhookEvent, new_id

    hooks = Webhook.__table__
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.delete(WebhookEvent.__table__))
        conn.execute(sa.delete(WebhookDelivery.__table__))
        conn.execute(sa.delete(hooks))
        clients = regular_clients(conn, skip, how_many)
        now = dt.datetime.now(dt.UTC)
        rows = [
            {"id": new_id(), "user_id": client, "url": target, "events": ["goal.created"],
             "secret": f"whsec_bench_{i}", "active": True, "failing_since": None,
             "disabled_at": None, "created_at": now}
            for client in clients
            for i, target in enumerate(targets)
        ]  # fmt: skip
        conn.execute(sa.insert(hooks), rows)
    engine.dispose()
    return len(clients)


def delivery_states(url: str) -> dict[str, int]:
    """Deliveries by status, and ``events``: the outbox's events not yet fanned out."""
    from app.core.database_url import sync_url
    from app.models import WebhookDelivery, WebhookEvent

    table = WebhookDelivery.__table__
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.status, sa.func.count()).group_by(table.c.status))
        states = {status: n for status, n in rows}
        states["events"] = conn.scalar(sa.select(sa.func.count()).select_from(WebhookEvent))
    engine.dispose()
    return states


def drain_deliveries(url: str, receivers: Receivers) -> dict[str, int]:
    """Wait (the server still running) until no event waits and no delivery is pending; what
    the receivers got."""
    started = moved = dt.datetime.now()
    left = None
    while True:
        states = delivery_states(url)
        now = dt.datetime.now()
        waited = (now - started).total_seconds()
        if not (states.get("pending") or states["events"]) or waited > DRAIN_SECONDS:
            break
        if (states.get("pending", 0), states["events"]) != left:
            left, moved = (states.get("pending", 0), states["events"]), now
        elif (now - moved).total_seconds() > STALL_SECONDS:
            break  # stalled: the check below fails
        time.sleep(1)
    events = states.pop("events")
    counts = receivers.snapshot()
    console.print(
        f"  webhook deliveries: {sum(states.values()):,} in the outbox "
        f"({events:,} events not fanned out), "
        f"{states.get('delivered', 0):,} delivered, {states.get('pending', 0):,} pending, "
        f"{states.get('failed', 0):,} failed; receivers got {len(counts):,} distinct "
        f"({sum(counts.values()):,} requests); drained in {waited:.0f} s after the last round"
    )
    return {
        "outbox": sum(states.values()),
        "delivered": states.get("delivered", 0),
        "received": len(counts),
        "duplicates": sum(counts.values()) - len(counts),
    }


def count_goals(url: str, title: str | None = None) -> int:
    from app.core.database_url import sync_url
    from app.models import Goal

    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    query = sa.select(sa.func.count()).select_from(Goal.__table__)
    if title is not None:
        query = query.where(Goal.__table__.c.title == title)
    with engine.connect() as conn:
        n = conn.scalar(query) or 0
    engine.dispose()
    return n


def deep_cursor(base_url: str, token: str, depth: int) -> str | None:
    """Walk the big client's goals through the API until ``depth`` goals lie behind us."""
    seen, cursor = 0, None
    with httpx.Client(base_url=base_url, timeout=30) as http:
        while seen < depth:
            limit = min(200, depth - seen)
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            r = http.get("/v1/goals", params=params, headers={"Authorization": f"Bearer {token}"})
            if r.status_code != 200:
                console.print(f"[red]walking pages failed: GET /v1/goals -> {r.status_code}[/]")
                return None
            page = r.json()
            seen += len(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                console.print(f"[red]the big client has only {seen} goals[/]")
                return None
    return cursor


def measure(server: Server, wrk: str, scenario: Scenario, tokens: Path, opts: dict) -> WrkResult:
    def go(duration: float) -> WrkResult:
        return run_wrk(
            wrk,
            server.base_url,
            tokens,
            scenario.method,
            scenario.path,
            body=scenario.body,
            duration=duration,
            connections=scenario.connections or opts["connections"],
            threads=opts["threads"],
            nice=opts["nice"],
        )

    warm = go(opts["warmup"]) if opts["warmup"] > 0 else WrkResult()
    if opts["nice"] and server.database_url.startswith("postgresql"):
        renice_postgres_backends(server.database_url, opts["nice"])
    with CpuMeter(server.pid) as cpu:
        result = go(opts["duration"])
    per_request = 1000 / max(result.requests, 1)
    result.server_cpu_ms = cpu.server * per_request
    result.db_cpu_ms = cpu.postgres * per_request
    result.other_cores = cpu.cores(cpu.other)
    result.warmup_statuses = warm.statuses
    return result


def bench_database(
    name: str, url: str, opts: dict
) -> tuple[dict[str, WrkResult], list[Check], str]:
    console.rule(f"[bold]{name}[/]  {url.split('@')[-1]}")
    if opts["reuse"] and count_goals_safely(url) >= opts["goals"]:
        console.print("reusing the loaded data (--reuse), its schema upgraded to head")
        upgrade_schema(url)
    else:
        started = dt.datetime.now()
        reset_schema(url)
        data = load(url, goals=opts["goals"], clients=opts["clients"], big_goals=opts["deep"] + 100)
        seconds = (dt.datetime.now() - started).total_seconds()
        console.print(
            f"loaded {data.goals:,} goals and {data.steps:,} steps for "
            f"{len(data.clients):,} clients + 1 big client in {seconds:.1f} s"
        )
    # Two sets of clients: the plain create's, and the hooked create's (10 webhooks each).
    per_set = min(opts["tokens"], max(opts["clients"] // 2, 1))
    many, big = mint_tokens(url, per_set)
    hooked, _ = mint_tokens(url, per_set, skip=per_set)
    VAR.mkdir(parents=True, exist_ok=True)
    many_file, big_file = VAR / f"tokens-{name}.txt", VAR / f"token-big-{name}.txt"
    hooked_file = VAR / f"tokens-hooked-{name}.txt"
    many_file.write_text("\n".join(many) + "\n")
    big_file.write_text(big + "\n")
    hooked_file.write_text("\n".join(hooked) + "\n")
    created_before = count_goals(url, CREATE_TITLE)

    results: dict[str, WrkResult] = {}
    found: list[Check] = []
    if opts["core"]:
        receivers = Receivers(WEBHOOKS_PER_CLIENT)
        subscribe_webhooks(url, per_set, per_set, receivers.urls)
        hooked_before = count_goals(url, HOOKED_TITLE)
        try:
            results, walk, export, webhooks = core_scenarios(
                name, url, big, many_file, big_file, opts, hooked_file, receivers
            )
        finally:
            receivers.close()
        created_after = count_goals(url, CREATE_TITLE)
        hooked_goals = count_goals(url, HOOKED_TITLE) - hooked_before
        webhooks["expected"] = WEBHOOKS_PER_CLIENT * hooked_goals
        found = checks(results, created_after - created_before, webhooks)
        found += sync_export_checks(results, walk, export)
    extra_md = []
    if opts["steady"]:
        extra_md.append(steady_scenario(name, url, many_file, opts, found))
    if opts["overload"]:
        extra_md.append(overload_scenario(name, url, many_file, opts, found))
    if opts["mixed"]:
        extra_md.append(mixed_scenario(name, url, many_file, opts, found))
    if opts["reminders"]:
        extra_md.append(reminders_scenario(name, url, found))
    return results, found, "\n".join(extra_md)


def core_scenarios(
    name: str,
    url: str,
    big: str,
    many_file: Path,
    big_file: Path,
    opts: dict,
    hooked_file: Path,
    receivers: Receivers,
) -> tuple[dict[str, WrkResult], SyncWalk, ExportRun, dict[str, int]]:
    # These scenarios measure throughput with every connection always busy (a closed loop):
    # shedding would only swap work for cheap 503s, so the queue bound is lifted here; the
    # overload scenario measures shedding.
    env = {**bench_env(), "WAYPOINT_MAX_QUEUE_WAIT_MS": "60000"}
    env["WAYPOINT_WEBHOOKS_ALLOW_PRIVATE"] = "true"  # the receivers are on loopback
    with Server(url, env, VAR / f"server-{name}.log", opts["nice"]) as server:
        cursor = deep_cursor(server.base_url, big, opts["deep"])
        walk = walk_sync(server.base_url, big)
        console.print(
            f"  initial sync of the big client: {walk.objects:,} objects in {walk.pages} pages, "
            f"{walk.objects_per_second:,.0f} objects/s (one follower, pages one after another)"
        )
        export = measure_export(server.base_url, big, server.pid)
        console.print(
            f"  export of the big client: {export.objects:,} objects, {export.megabytes:.1f} MB "
            f"in {export.seconds:.2f} s ({export.objects_per_second:,.0f} objects/s); server "
            f"RSS {export.rss_before_mb:.1f} -> peak {export.rss_peak_mb:.1f} MB "
            f"(+{export.growth_mb:.1f} MB)"
        )
        paths = {
            "deep": f"/v1/goals?limit=50&cursor={quote(cursor)}" if cursor else None,
            "sync_idle": f"/v1/sync?limit={SYNC_PAGE}&cursor={quote(walk.current_cursor or '')}",
            "sync_last": f"/v1/sync?limit={SYNC_PAGE}&cursor={quote(walk.last_full_cursor)}"
            if walk.last_full_cursor
            else None,
        }
        scenarios = [s for s in SCENARIOS if s.key not in paths or paths[s.key] is not None]
        rounds: dict[str, list[WrkResult]] = {s.key: [] for s in scenarios}
        # The scenarios take turns, round after round, so that a slow spell of the machine
        # falls on all of them rather than on one side of a ratio.
        for round_number in range(1, opts["rounds"] + 1):
            for scenario in scenarios:
                if scenario.key in paths:
                    path = paths[scenario.key]
                    assert path is not None
                    scenario = Scenario(
                        scenario.key, scenario.label, "GET", path, True,
                        connections=scenario.connections,
                    )  # fmt: skip
                tokens = big_file if scenario.big_client else many_file
                tokens = hooked_file if scenario.hooked else tokens
                result = measure(server, opts["wrk"], scenario, tokens, opts)
                rounds[scenario.key].append(result)
                flag = f"  [bold red]{result.errors} ERRORS[/]" if result.errors else ""
                if result.other_cores > NOISY_CORES:
                    flag += f"  [yellow]other processes busy: {result.other_cores:.1f} cores[/]"
                step = f"{round_number}/{opts['rounds']}"
                console.print(
                    f"  {step} {scenario.label:<28} {result.rps:>7,.0f} rps"
                    f"  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms{flag}"
                )
        results = {key: combine(measured) for key, measured in rounds.items()}
        pairs = hooked_pairs(server, opts, many_file, hooked_file)
        if pairs:
            results["hooked_pair"], results["create_pair"] = (
                combine([hooked for hooked, _ in pairs]),
                combine([create for _, create in pairs]),
            )
        return results, walk, export, drain_deliveries(url, receivers)


def hooked_pairs(
    server: Server, opts: dict, many_file: Path, hooked_file: Path
) -> list[tuple[WrkResult, WrkResult]]:
    """Issue 12's target compares two scenarios whose difference (a few percent) is smaller
    than the machine's swings between rounds (the same scenario moved by 20-60 % from one
    round to the next in runs of 2026-11-30, even twice in a row): ``--pair-rounds`` more
    rounds of just these two, back to back, in turns (create first, then the hooked create
    first, ...), so that a drift favours neither. Their ratio is the median of the pairs'."""
    create = next(s for s in SCENARIOS if s.key == "create")
    hooked = next(s for s in SCENARIOS if s.key == "hooked")
    pairs = []
    for number in range(opts["pair_rounds"]):
        order = [(create, many_file), (hooked, hooked_file)]
        if number % 2:
            order.reverse()
        measured = {scenario.key: measure(server, opts["wrk"], scenario, tokens, opts)
                    for scenario, tokens in order}  # fmt: skip
        pairs.append((measured["hooked"], measured["create"]))
        ratio = measured["hooked"].rps / max(measured["create"].rps, 1e-9)
        console.print(
            f"  pair {number + 1}/{opts['pair_rounds']} create {measured['create'].rps:7,.0f} rps"
            f"  create + 10 webhooks {measured['hooked'].rps:7,.0f} rps  ratio {ratio:.2f}"
            f"{'  (hooked first)' if number % 2 else ''}"
        )
    return pairs


def sync_export_checks(
    results: dict[str, WrkResult], walk: SyncWalk, export: ExportRun
) -> list[Check]:
    """Issue 11's targets: the idle follower, the initial sync, the export's memory."""
    out: list[Check] = []
    if "sync_idle" in results and "ceiling" in results:
        value = results["sync_idle"].rps / max(results["ceiling"].rps, 1e-9)
        out.append(Check("sync nothing new rps / ceiling rps", f"{value:.2f}", ">= 0.50",
                         value >= 0.5))  # fmt: skip
    if "sync_first" in results and "list" in results:
        objects = results["sync_first"].rps * SYNC_PAGE
        goals = results["list"].rps * 50
        value = objects / max(goals, 1e-9)
        out.append(Check("sync objects/s / list goals/s",
                         f"{value:.2f} ({objects:,.0f} / {goals:,.0f})", ">= 0.60",
                         value >= 0.6))  # fmt: skip
    if "sync_last" in results and "sync_first" in results:
        value = results["sync_last"].p50_ms / max(results["sync_first"].p50_ms, 1e-9)
        out.append(Check("sync last page p50 / first page p50", f"{value:.2f}", "<= 1.20",
                         value <= 1.2))  # fmt: skip
    out.append(Check("export: server RSS growth",
                     f"{export.growth_mb:.1f} MB ({export.objects:,} objects, "
                     f"{export.objects_per_second:,.0f}/s)", "< 30 MB",
                     export.growth_mb < 30))  # fmt: skip
    out.append(Check("initial sync walked (objects/s, informative)",
                     f"{walk.objects_per_second:,.0f} ({walk.objects:,} in {walk.pages} pages)",
                     "-", walk.objects > 0))  # fmt: skip
    return out


def overload_scenario(name: str, url: str, tokens: Path, opts: dict, found: list[Check]) -> str:
    console.print(
        f"  overload: {OVERLOAD_CONNECTIONS} connections, one worker, "
        f"{opts['overload_duration']:.0f} s"
    )
    r = run_overload(
        opts["wrk"], url, bench_env(), VAR / f"server-{name}-overload.log", tokens,
        opts["overload_duration"], opts["nice"],
    )  # fmt: skip
    console.print(
        f"  overload: {r.wrk.rps:,.0f} answers/s, wrk p50 {r.wrk.p50_ms:.1f} ms "
        f"p99 {r.wrk.p99_ms:.1f} ms (200s and 503s together), statuses {r.wrk.statuses}"
    )
    rows = overload_checks(r)
    found.extend(Check(*row) for row in rows)
    return (
        f"overload ({name}): {r.wrk.rps:,.0f} answers/s, statuses {r.wrk.statuses}, "
        f"wrk p50/p99 of all answers {r.wrk.p50_ms:.1f}/{r.wrk.p99_ms:.1f} ms\n"
    )


def steady_scenario(name: str, url: str, tokens: Path, opts: dict, found: list[Check]) -> str:
    console.print(
        f"  steady: {STEADY_CONNECTIONS} connections, one worker, default settings, "
        f"{opts['steady_duration']:.0f} s"
    )
    r = run_steady(
        opts["wrk"], url, bench_env(), VAR / f"server-{name}-steady.log", tokens,
        opts["steady_duration"], opts["nice"],
    )  # fmt: skip
    found.extend(Check(*row) for row in steady_checks(r))
    return (
        f"steady ({name}): {r.wrk.rps:,.0f} answers/s, statuses {r.wrk.statuses}, "
        f"wrk p50/p99 {r.wrk.p50_ms:.1f}/{r.wrk.p99_ms:.1f} ms\n"
    )


def mixed_scenario(name: str, url: str, tokens: Path, opts: dict, found: list[Check]) -> str:
    console.print(f"  mixed load: {MIXED_USERS} users, two workers, {opts['mixed_duration']:.0f} s")
    r = run_mixed(
        url, bench_env(), VAR / f"server-{name}-mixed.log", tokens, opts["clients"],
        opts["mixed_duration"], opts["nice"],
    )  # fmt: skip
    table = Table(title=f"{name}: mixed load, {r.requests / max(r.seconds, 1e-9):,.0f} rps")
    columns = ("request", "count", "p50 ms", "p99 ms", "errors")
    for column in columns:
        table.add_column(column, justify="left" if column == "request" else "right")
    md = [f"**{name}: mixed load** ({r.requests:,} requests in {r.seconds:.0f} s)\n"]
    md += ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    for kind, count, p50, p99, errors in mixed_rows(r):
        cells = [kind, f"{count:,}", f"{p50:.1f}", f"{p99:.1f}", str(errors)]
        table.add_row(*cells, style="bold red" if errors else None)
        md.append("| " + " | ".join(cells) + " |")
    console.print(table)
    found.extend(Check(*row) for row in mixed_checks(r))
    return "\n".join(md) + "\n"


def reminders_scenario(name: str, url: str, found: list[Check]) -> str:
    """The reminder sweep at 1 % and 10 % of clients due, and review creation with and
    without the reminder work (bench/reminders.py), in a process of its own."""
    import subprocess
    import sys

    console.print("  reminders: the scheduler's sweep and review creation, in process")
    done = subprocess.run(
        [sys.executable, "-m", "bench.reminders", url, "--json"],
        cwd=ROOT, env={**os.environ, **bench_env()}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        found.append(Check("reminders scenario", "failed to run", "runs", False))
        console.print(done.stderr[-2000:])
        return ""
    rows = [Check(*row) for row in json.loads(done.stdout.strip().splitlines()[-1])]
    found.extend(rows)
    md = [f"**{name}: reminders** (in process, CPU time)\n", "| check | value | target |"]
    md += ["|---|---|---|"] + [f"| {c.name} | {c.value} | {c.target} |" for c in rows]
    return "\n".join(md) + "\n"


def count_goals_safely(url: str) -> int:
    try:
        return count_goals(url)
    except sa.exc.SQLAlchemyError:
        return 0


def checks(
    results: dict[str, WrkResult], durable: int, webhooks: dict[str, int] | None = None
) -> list[Check]:
    out: list[Check] = []

    def ratio(name: str, a: str, b: str, target: float, at_least: bool, attr: str) -> None:
        if a not in results or b not in results:
            out.append(Check(name, "not measured", "", False))
            return
        # Scenario a runs right after b in every round: the median of the rounds' ratios
        # (``paired_ratio``); the ratio of the two medians is shown next to it.
        value = paired_ratio(results[a], results[b], attr)
        x, y = getattr(results[a], attr), getattr(results[b], attr)
        of_medians = x / y if y else 0.0
        passed = value >= target if at_least else value <= target
        # The same ratio from CPU time per request (server + PostgreSQL), which other work on
        # the machine disturbs far less than rps and latency.
        cpu_a, cpu_b = (results[k].server_cpu_ms + results[k].db_cpu_ms for k in (a, b))
        by_cpu = (cpu_b / cpu_a if attr == "rps" else cpu_a / cpu_b) if cpu_a and cpu_b else 0.0
        shown = f"{value:.2f} (medians {of_medians:.2f}, by CPU {by_cpu:.2f})"
        out.append(Check(name, shown, f"{'>=' if at_least else '<='} {target:.2f}", passed))

    ratio("list rps / ceiling rps", "list", "ceiling", 0.30, True, "rps")
    ratio("create rps / bare insert rps", "create", "bare", 0.60, True, "rps")
    ratio("deep p50 / first page p50", "deep", "first", 1.20, False, "p50_ms")
    if "hooked_pair" in results:  # the pair rounds (``hooked_pairs``)
        ratio("create + 10 webhooks rps / create rps", "hooked_pair", "create_pair", 0.90, True,
              "rps")  # fmt: skip
    else:
        ratio("create + 10 webhooks rps / create rps", "hooked", "create", 0.90, True, "rps")
    if webhooks is not None:
        made = webhooks["received"]
        out.append(
            Check(
                "webhook deliveries made (received / expected)",
                f"{made:,} / {webhooks['expected']:,} ({webhooks['duplicates']:,} repeated)",
                "all, by the end of the run",
                made == webhooks["expected"] == webhooks["delivered"] and made > 0,
            )
        )
    if "list" in results:
        p99 = results["list"].p99_ms
        out.append(Check("list p99", f"{p99:.1f} ms", "< 100 ms", p99 < 100))
    if "create" in results:
        create = results["create"]
        acked = create.ok + sum(n for s, n in create.warmup_statuses.items() if 200 <= s < 300)
        out.append(
            Check(
                "creates durable (rows / 201s)",
                f"{durable:,} / {acked:,}",
                "rows >= 201s",
                durable >= acked and acked > 0,
            )
        )
    bad = [key for key, r in results.items() if r.errors]
    out.append(
        Check(
            "no errors or non-2xx",
            ", ".join(f"{k}: {results[k].errors}" for k in bad) or "none",
            "none",
            not bad,
        )
    )
    return out


def render(name: str, results: dict[str, WrkResult], found: list[Check], opts: dict) -> str:
    """Print the tables and return the same as Markdown."""
    labels = {s.key: s.label for s in SCENARIOS}
    requests = {
        s.key: f"{s.method} {s.path or DYNAMIC[s.key]}" + (" (big)" if s.big_client else "")
        for s in SCENARIOS
    }
    for key in ("create", "hooked"):  # the pair rounds (``hooked_pairs``)
        labels[f"{key}_pair"] = f"{labels[key]} (pairs)"
        requests[f"{key}_pair"] = requests[key]
    table = Table(title=f"{name}: {opts['connections']} connections, wrk -t{opts['threads']}, "
                  f"median of {opts['rounds']} rounds of {opts['duration']:.0f} s")  # fmt: skip
    columns = (
        "scenario",
        "request",
        "rps",
        "p50 ms",
        "p99 ms",
        "server CPU ms/req",
        "PG CPU ms/req",
        "other cores",
        "errors",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:2] else "right")
    md = [
        f"**{name}**\n",
        "| " + " | ".join(columns) + " |",
        "|---|---|" + "---:|" * (len(columns) - 2),
    ]
    for key, r in results.items():
        cells = [
            labels[key],
            requests[key],
            f"{r.rps:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.server_cpu_ms:.2f}",
            f"{r.db_cpu_ms:.2f}" if name == "postgres" else "-",
            f"{r.other_cores:.2f}",
            str(r.errors),
        ]
        style = "bold red" if r.errors else None
        table.add_row(*cells, style=style)
        md.append("| " + " | ".join(cells) + " |")
    console.print(table)
    verdicts = Table(title=f"{name}: targets")
    for column in ("check", "value", "target", "result"):
        verdicts.add_column(column)
    md += ["", "| check | value | target | result |", "|---|---:|---|---|"]
    for c in found:
        verdict = "[green]PASS[/]" if c.passed else "[bold red]FAIL[/]"
        verdicts.add_row(c.name, c.value, c.target, verdict)
        md.append(f"| {c.name} | {c.value} | {c.target} | {'PASS' if c.passed else 'FAIL'} |")
    console.print(verdicts)
    noisy = max((r.other_cores for r in results.values()), default=0.0)
    if noisy > NOISY_CORES:
        warning = (
            f"Other processes kept up to {noisy:.1f} of {os.cpu_count()} cores busy during "
            "these measurements: absolute figures are low and ratios are noisy."
        )
        console.print(Panel(f"[yellow]{warning}[/]"))
        md.append(f"\n> {warning}")
    return "\n".join(md) + "\n"


@cli.command()
def main(
    duration: Annotated[float, typer.Option(help="Seconds of load per scenario and round.")] = 5,
    warmup: Annotated[float, typer.Option(help="Seconds of unmeasured load before each.")] = 1,
    rounds: Annotated[
        int, typer.Option(min=1, help="Rounds; each scenario's median round is reported.")
    ] = 3,
    pair_rounds: Annotated[
        int,
        typer.Option(
            min=0,
            help="Extra rounds of create and create + 10 webhooks only, in turns; the "
            "webhooks target is the median of their ratios (0: the main rounds').",
        ),
    ] = 8,
    connections: Annotated[int, typer.Option(help="wrk connections.")] = 50,
    threads: Annotated[int, typer.Option(help="wrk threads (the machine has 2 cores).")] = 2,
    only: Annotated[str | None, typer.Option(help="sqlite or postgres")] = None,
    goals: Annotated[int, typer.Option(help="Goals over the regular clients.")] = 100_000,
    clients: Annotated[int, typer.Option(help="Regular clients.")] = 1_000,
    deep: Annotated[int, typer.Option(help="Depth of the deep page (big client).")] = 10_000,
    tokens: Annotated[int, typer.Option(help="Distinct clients' tokens wrk rotates.")] = 200,
    sqlite_path: Annotated[Path, typer.Option()] = VAR / "waypoint.db",
    postgres_url: Annotated[str, typer.Option(envvar="WAYPOINT_BENCH_POSTGRES_URL")] = (
        DEFAULT_POSTGRES
    ),
    reuse: Annotated[bool, typer.Option(help="Keep already loaded data.")] = False,
    core: Annotated[
        bool, typer.Option(help="The six scenarios of issue 3 (ceiling, list, ..., create).")
    ] = True,
    steady: Annotated[
        bool, typer.Option(help="50 connections on one worker: nothing may be shed.")
    ] = True,
    steady_duration: Annotated[float, typer.Option(help="Seconds of steady load.")] = 10,
    overload: Annotated[bool, typer.Option(help="400 connections on one worker: shedding.")] = True,
    overload_duration: Annotated[float, typer.Option(help="Seconds of overload.")] = 10,
    mixed: Annotated[
        bool, typer.Option(help="A day of app traffic on two workers: errors, p99, memory.")
    ] = True,
    mixed_duration: Annotated[float, typer.Option(help="Seconds of mixed load.")] = 60,
    reminders: Annotated[
        bool, typer.Option(help="The reminder sweep (1 % and 10 % due) and review creation.")
    ] = True,
    nice: Annotated[
        int,
        typer.Option(
            help="Run the server, wrk and the benchmark's PostgreSQL backends at this nice "
            "value (e.g. -10, needs root) when the machine is shared with other work."
        ),
    ] = 0,
) -> None:
    """Benchmark GET and POST /v1/goals against the ceiling and bare-insert baselines."""
    bench_env()
    if only not in (None, "sqlite", "postgres"):
        raise typer.BadParameter("--only is sqlite or postgres")
    opts = {
        "duration": duration,
        "warmup": warmup,
        "rounds": rounds,
        "pair_rounds": pair_rounds,
        "connections": connections,
        "threads": threads,
        "goals": goals,
        "clients": clients,
        "deep": deep,
        "tokens": tokens,
        "reuse": reuse,
        "nice": nice,
        "core": core,
        "steady": steady,
        "steady_duration": steady_duration,
        "overload": overload,
        "overload_duration": overload_duration,
        "mixed": mixed,
        "reminders": reminders,
        "mixed_duration": mixed_duration,
        "wrk": ensure_wrk(),
    }
    lock = hold_bench_lock()
    previous_priority = set_session_priority(nice) if nice else None
    if nice and previous_priority is None:
        console.print("[yellow]could not change this session's priority (needs root)[/]")
    databases = [("sqlite", f"sqlite:///{sqlite_path.resolve()}"), ("postgres", postgres_url)]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    report = [
        f"# make bench, {stamp}, {platform.node()}, nproc {os.cpu_count()}, "
        f"commit {_code_version()}\n"
    ]
    failed = False
    summary: dict[str, object] = {"when": stamp, "options": {**opts, "wrk": "wrk"}}
    for name, url in databases:
        if only and name != only:
            continue
        results, found, extra = bench_database(name, url, opts)
        report.append(render(name, results, found, opts))
        if extra:
            report.append(extra)
        summary[name] = {
            "results": {k: {**asdict(r), "raw": None} for k, r in results.items()},
            "checks": [asdict(c) for c in found],
        }
        failed |= not all(c.passed for c in found)
    if previous_priority is not None:
        set_session_priority(previous_priority)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stamp}.md").write_text("\n".join(report))
    (RESULTS / f"{stamp}.json").write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"results written to {RESULTS / stamp}.md and .json")
    if failed:
        console.print(Panel("[bold red]Some targets FAILED (see the tables above).[/]"))
    lock.close()


def _code_version() -> str:
    """The commit measured, and whether app/ had uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (
        " + uncommitted changes in app/" if git("status", "--porcelain", "app") else ""
    )


def hold_bench_lock(path: Path | None = None) -> IO[str]:
    """Runs share var/bench and the PostgreSQL database: a second one waits for the first.
    ``path``: the lock file (default ``var/bench/run.lock``); the caller keeps the handle
    open for as long as it measures."""
    import fcntl

    path = path or VAR / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        console.print(f"[yellow]{path} is held (a benchmark runs); waiting for it[/]")
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


if __name__ == "__main__":
    cli()
