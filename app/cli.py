"""The ``waypoint`` command."""

from __future__ import annotations

import asyncio
import json
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
            help="Event loop: asyncio (fair under overload) or uvloop (faster, but measured here "
            "to starve some connections when a worker is saturated: p99 ten times p50)."
        ),
    ] = EventLoop.ASYNCIO,
) -> None:
    """Run the API with uvicorn."""
    import uvicorn

    from app.core.config import settings_or_exit
    from app.core.logging import configure_logging

    settings = settings_or_exit()
    configure_logging(settings)
    trusted = [ip.strip() for ip in settings.trusted_proxies.split(",") if ip.strip()]
    uvicorn.run(
        "app.main:create_app",
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
    )


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
    from app.core.db import dispose_engines, new_session
    from app.core.errors import Conflict

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

    from app.core.db import dispose_engines, new_session
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


def main() -> None:
    cli()
