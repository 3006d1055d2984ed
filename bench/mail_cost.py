"""What the mail outbox costs the requests around it, measured in process.

1. A goal create (a request that sends no mail) with the outbox's machinery on (its session
   listeners attached and an idle mail worker polling) against off, in interleaved rounds:
   CPU time of this process per create.
2. A registration (which queues the verification message) against one Argon2id hash with
   the production parameters: how much of the registration is the hash.

    .venv/bin/python -m bench.mail_cost                      # a throwaway SQLite file
    .venv/bin/python -m bench.mail_cost postgresql+psycopg://postgres@127.0.0.1/some_db
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _environment(url: str | None) -> str:
    directory = Path(tempfile.mkdtemp(prefix="waypoint-mail-cost-"))
    url = url or f"sqlite:///{directory / 'waypoint.db'}"
    os.environ.update(
        {
            "WAYPOINT_DATABASE_URL": url,
            "WAYPOINT_VAR_DIR": str(directory / "var"),
            "WAYPOINT_SECRET_KEY": "mail-cost-bench-secret-0123456789-0123456789",
            "WAYPOINT_LOG_LEVEL": "WARNING",
            "WAYPOINT_MAX_QUEUE_WAIT_MS": "60000",
            "WAYPOINT_MAIL_WORKER": "false",  # started by hand below, for the "on" rounds
        }
    )
    return url


async def main(url: str | None, rounds: int = 20, creates: int = 100) -> None:
    url = _environment(url)
    import httpx
    import sqlalchemy as sa
    from alembic import command
    from sqlalchemy.orm import Session

    from app.cli import alembic_config
    from app.core.database_url import sync_url
    from app.core.security import hash_password
    from app.mail.outbox import forget_queued_mail, wake_mail_workers
    from app.mail.worker import MailWorker
    from app.main import create_app

    if url.startswith("postgresql"):
        engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    command.upgrade(alembic_config(sync_url(url)), "head")
    app = create_app()
    listeners = (("after_commit", wake_mail_workers), ("after_rollback", forget_queued_mail))

    def mail(on: bool) -> None:
        for name, listener in listeners:
            attached = sa.event.contains(Session, name, listener)
            if on and not attached:
                sa.event.listen(Session, name, listener)
            elif not on and attached:
                sa.event.remove(Session, name, listener)

    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        form = {"email": "bench@example.com", "password": "bench password 123",
                "display_name": "B", "role": "client"}  # fmt: skip
        assert (await client.post("/v1/auth/register", json=form)).status_code == 201
        token = await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": form["email"],
                  "password": form["password"]},
        )  # fmt: skip
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        async def create_block() -> float:
            started = time.process_time()
            for i in range(creates):
                r = await client.post("/v1/goals", json={"title": f"g{i}"}, headers=headers)
                assert r.status_code == 201, r.text
            return (time.process_time() - started) / creates * 1000

        # A reset for an address with an account against one without (no enumeration: the
        # same answer in about the same time), interleaved; a fresh address each time, so
        # the per-address throttle never answers.
        for i in range(30):
            r = await client.post(
                "/v1/auth/register",
                json={**form, "email": f"known{i}@example.com"},
            )
            assert r.status_code == 201, r.text
        known, unknown = [], []
        for i in range(30):
            pair = [(f"known{i}@example.com", known), (f"unknown{i}@example.com", unknown)]
            for address, into in pair if i % 2 else reversed(pair):  # each goes first in turn
                started = time.perf_counter()
                r = await client.post("/v1/auth/password-reset", json={"email": address})
                assert r.status_code == 202, r.text
                into.append((time.perf_counter() - started) * 1000)
        print("password reset request, wall ms, median of 30 (interleaved):")
        print(f"  known address {statistics.median(known):.2f}, "
              f"unknown {statistics.median(unknown):.2f}")  # fmt: skip

        await create_block()  # warm-up
        per_create: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(rounds):
            for on in (False, True) if round_ % 2 == 0 else (True, False):
                mail(on)
                stop = asyncio.Event()
                worker = asyncio.create_task(MailWorker(poll_seconds=1.0).run(stop)) if on else None
                per_create[on].append(await create_block())
                if worker is not None:
                    stop.set()
                    await worker
        mail(True)
        off, on = (statistics.median(per_create[k]) for k in (False, True))
        ratios = [b / a for a, b in zip(per_create[False], per_create[True], strict=True)]
        print(f"goal create, CPU ms per request (median of {rounds} rounds of {creates}):")
        print(f"  mail machinery off {off:.3f}, on {on:.3f}; "
              f"per-round ratio on/off median {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f})")  # fmt: skip

    # Registration against the production hash (pwdlib's Argon2id defaults).
    for name in ("ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM"):
        os.environ.pop(f"WAYPOINT_{name}", None)
    from app.core.config import get_settings
    from app.core.security import password_hasher

    get_settings.cache_clear()
    password_hasher.cache_clear()
    app = create_app()
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    registrations, hashes = [], []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for i in range(10):
            started = time.perf_counter()
            hash_password("a password of some length")
            hashes.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            r = await client.post(
                "/v1/auth/register",
                json={"email": f"r{i}@example.com", "password": "bench password 123",
                      "display_name": "R", "role": "client"},
            )  # fmt: skip
            assert r.status_code == 201, r.text
            registrations.append((time.perf_counter() - started) * 1000)
    hash_ms, register_ms = statistics.median(hashes), statistics.median(registrations)
    print("registration (queues the verification message), wall ms, median of 10:")
    print(f"  register {register_ms:.1f}, one Argon2id hash {hash_ms:.1f}: "
          f"the hash is {hash_ms / register_ms:.0%} of it")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
