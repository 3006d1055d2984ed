"""The ``waypoint`` command."""

from __future__ import annotations

import asyncio
import datetime
import json
import shutil
import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

cli = typer.Typer(help="Waypoint: therapy goal tracking API.", no_args_is_help=True)
console = Console()
ROOT = Path(__file__).resolve().parent.parent


class EventLoop(StrEnum):
    ASYNCIO = "asyncio"
    UVLOOP = "uvloop"


def alembic_config(url: str | None = None):  # noqa: ANN201
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if url:
        config.attributes["url"] = url
    return config


@cli.callback()
def check_settings() -> None:
    """Every command starts with the settings: a mistake in them is one line and exit 1."""
    from app.core.config import settings_or_exit

    settings_or_exit()


@cli.command()
def migrate(revision: str = "head") -> None:
    """Upgrade the database to the latest schema."""
    from alembic import command

    command.upgrade(alembic_config(), revision)
    console.print(f"[green]database at {revision}[/green]")


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    reload: bool = False,
    loop: Annotated[
        EventLoop,
        typer.Option(
            help="Event loop: asyncio (fair under overload) or uvloop (faster, but it starved "
            "some connections of a saturated worker in the benchmark: see bench/README.md)."
        ),
    ] = EventLoop.ASYNCIO,
) -> None:
    """Run the API with uvicorn.

    SIGTERM (or Ctrl-C): stop accepting, let in-flight requests finish (at most
    ``WAYPOINT_SHUTDOWN_TIMEOUT_SECONDS``), stop background workers, exit 0."""
    run_server(
        "app.main:create_app", host=host, port=port, workers=workers, reload=reload, loop=loop
    )


def run_server(
    factory: str, *, host: str, port: int, workers: int, reload: bool, loop: EventLoop
) -> None:
    """Serve the app that ``factory`` (``module:function``) builds, as ``waypoint serve`` does
    (the benchmark serves its own app through this too)."""
    import uvicorn

    from app.core.config import settings_or_exit
    from app.core.logging import configure_logging

    settings = settings_or_exit()
    configure_logging(settings)
    if settings.public_url is None:  # links in messages name the address served on
        import os

        os.environ["WAYPOINT_PUBLIC_URL"] = f"http://{host}:{port}"
    trusted = [ip.strip() for ip in settings.trusted_proxies.split(",") if ip.strip()]
    metrics_directory = prepare_metrics_directory()
    # uvicorn raises the signal it stopped on once more after a graceful shutdown, so the
    # process would end "killed by SIGTERM" (143). A shutdown asked for and completed is a
    # success: exit 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            loop=loop.value,
            access_log=False,  # our middleware writes one JSON line per request
            log_config=None,  # uvicorn's own lines go through configure_logging's JSON handler
            # X-Forwarded-For and -Proto only from the proxies the operator names (uvicorn
            # would otherwise trust them from loopback, and a client could pick its address).
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or None,
            timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        )
    finally:
        if metrics_directory is not None:
            shutil.rmtree(metrics_directory, ignore_errors=True)


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def prepare_metrics_directory() -> str | None:
    """Every worker writes its metric values into ``PROMETHEUS_MULTIPROC_DIR`` and a scrape of
    any worker reads them all. Unless the operator set one, a fresh directory per server run
    (values of an earlier run must not be added to this one's)."""
    import os
    import tempfile

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    directory = tempfile.mkdtemp(prefix="waypoint-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


@cli.command()
def openapi(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Print (or write) the OpenAPI document the app serves."""
    from app.main import create_app

    text = json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        console.print(f"wrote {output}")


@cli.command("create-user")
def create_user(
    email: str,
    display_name: str,
    role: Annotated[str, typer.Option(help="client or therapist")] = "client",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)] = "",
    timezone: str = "UTC",
) -> None:
    """Create an account from the command line."""
    from pydantic import ValidationError

    from app.auth.schemas import RegisterRequest
    from app.auth.service import register
    from app.core.engines import dispose_engines
    from app.core.errors import Conflict
    from app.core.sessions import new_session

    try:
        data = RegisterRequest(
            email=email,
            password=password,
            display_name=display_name,
            role=role,  # type: ignore[arg-type]
            timezone=timezone,
        )
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            field = ".".join(str(part) for part in error["loc"])
            console.print(f"[red]{field}: {error['msg']}[/red]")
        raise typer.Exit(2) from None

    async def run() -> None:
        try:
            async with new_session(write=True) as session:
                user = await register(session, data)
                await session.commit()
                console.print(f"created {user.role} {user.email} ({user.id})")
        finally:
            await dispose_engines()

    try:
        asyncio.run(run())
    except Conflict as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None


@cli.command("seed-demo")
def seed_demo() -> None:
    """Create a demo therapist and client with goals, steps, reviews and an encouragement."""
    from rich.table import Table

    from app.core.engines import dispose_engines
    from app.core.sessions import new_session
    from app.demo.seed import seed_demo as run_seed

    async def run():  # noqa: ANN202
        async with new_session(write=True) as session:
            result = await run_seed(session)
            await session.commit()
        await dispose_engines()
        return result

    result = asyncio.run(run())
    if not result.created:
        console.print("[yellow]The demo accounts already exist; nothing was changed.[/yellow]")
    table = Table(title="Waypoint demo logins")
    for column in ("role", "e-mail", "password"):
        table.add_column(column)
    for login in result.logins:
        table.add_row(login.role, login.email, login.password or "(unchanged)")
    console.print(table)
    if result.created:
        console.print(f"Sam's first goal: /v1/goals/{result.goal_ids[0]}/progress.svg")


reminders_cli = typer.Typer(help="Review reminders and lagging-behind alerts.")
cli.add_typer(reminders_cli, name="reminders")


def _instant(text: str) -> datetime.datetime:
    """An RFC 3339 instant with its offset (a naive time says no instant)."""
    try:
        at = datetime.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise typer.BadParameter("not an RFC 3339 instant") from None
    if at.tzinfo is None:
        raise typer.BadParameter("give the offset, e.g. 2027-03-28T07:00:00Z")
    return at.astimezone(datetime.UTC)


@reminders_cli.command("run")
def reminders_run(
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Run as of this RFC 3339 instant (default: now).", show_default=False
        ),
    ] = None,
) -> None:
    """Run the scheduler once on the configured database: what is due as of --at and not yet
    done. Safe beside the servers' own workers: nothing is sent twice."""
    from app.core.clock import utcnow
    from app.core.engines import dispose_engines
    from app.reminders.runner import run_once
    from app.wiring import BEFORE_COMMIT

    when = _instant(at) if at else utcnow()

    async def run() -> str:
        try:
            return (await run_once(when, BEFORE_COMMIT)).summary()
        finally:
            await dispose_engines()

    print(asyncio.run(run()))


def main() -> None:
    cli()


Url = Annotated[str, typer.Option(help="The API's base URL.")]
Token = Annotated[
    str,
    typer.Option(
        envvar="WAYPOINT_TOKEN",
        show_default=False,
        show_envvar=True,
        help="A personal access token or an access token (default: $WAYPOINT_TOKEN).",
    ),
]


@cli.command()
def sync(
    into: Annotated[Path, typer.Option(help="The SQLite file to mirror into.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Changes per page.")] = 500,
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Mirror everything the token may see into a local SQLite file; later runs apply only
    what changed since (deletions included). A killed run resumes where it stopped."""
    from app.scripts.api_client import ApiClient, ApiError, Unreachable
    from app.scripts.mirror import run_sync

    _require_token(token)
    try:
        with ApiClient(url, token) as api:
            result = run_sync(api, into, limit)
    except (ApiError, Unreachable) as exc:
        _fail(str(exc))
    print(result.summary())


@cli.command(name="import")
def import_goals(
    csv_file: Annotated[Path, typer.Argument(metavar="GOALS_CSV", help="CSV with a header row.")],
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
) -> None:
    """Upsert goals by external_id from a CSV file (columns: external_id, title, description,
    motivation, success_criteria, category, priority, target_date, review_every_days,
    visibility, and for a therapist client_id). Exit status 1 when any row failed."""
    from app.scripts.api_client import ApiClient, ApiError, Unreachable
    from app.scripts.importer import BadFile, run_import

    _require_token(token)
    try:
        with ApiClient(url, token) as api:
            result = run_import(api, csv_file)
    except (ApiError, Unreachable, BadFile) as exc:
        _fail(str(exc))
    print(result.summary())
    if result.failed:
        raise typer.Exit(1)


def _require_token(token: str) -> None:
    if not token:
        _fail("no token: pass --token or set WAYPOINT_TOKEN", status=2)


def _fail(message: str, status: int = 1) -> None:
    Console(stderr=True).print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(status)
