"""Webhook deliveries reaching a real HTTP receiver on loopback: signature, headers, retries,
redirects, refused targets, disabling, several workers, and a server killed after a commit.

The receiver is a threaded ``http.server`` in this process; the delivery worker runs in the
test's event loop (``DeliveryWorker.run_once``) or in real ``waypoint serve`` processes."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.webhooks.fanout import fan_out_all
from tests.support.paths import ROOT
from tests.support.webhooks import Receiver, subscribe
from tests.support.worlds import PASSWORD

GUIDE = ROOT / "docs" / "integrators.md"
WAYPOINT = str(Path(sys.executable).with_name("waypoint"))


def documented_signature_check():
    """The receiver's function exactly as docs/integrators.md shows it."""
    text = GUIDE.read_text()
    match = re.search(r"<!-- webhook-signature-check.*?-->\n```python\n(.*?)```", text, re.S)
    assert match, "docs/integrators.md lost its signature check"
    namespace: dict = {}
    exec(match.group(1), namespace)
    return namespace["verify_waypoint_signature"]


verify_waypoint_signature = documented_signature_check()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def allow_private(monkeypatch):
    from app.core.config import get_settings

    monkeypatch.setenv("WAYPOINT_WEBHOOKS_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("WAYPOINT_WEBHOOKS_ALLOW_PRIVATE")
    get_settings.cache_clear()


@pytest.fixture
async def worker(fake_clock):
    """The delivery worker, its module's ``utcnow`` on the fake clock (``run_until`` moves it)."""
    import app.webhooks.worker as worker_module
    from app.webhooks.worker import DeliveryWorker

    fake_clock.install_utcnow(worker_module)
    w = DeliveryWorker(retry_seconds=0.05, allow_private=True, yield_to_requests=False)
    yield w
    await w.aclose()


async def new_goal(client, actor, title="Walk") -> dict:
    r = await client.post("/v1/goals", json={"title": title}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def deliveries(client, actor, hook) -> list[dict]:
    r = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def run_until(worker, done, clock, step: float = 1.0, turns: int = 200):
    """Run the worker until ``done()``; when nothing is due, move the fake clock (installed in
    the worker's module) on by ``step`` seconds so that the next retry is."""
    for _ in range(turns):
        if done():
            return
        if not await worker.run_once():
            clock.advance(step)
    raise AssertionError("deliveries did not happen")


async def test_delivery_reaches_the_receiver_signed(
    allow_private, client, make_user, receiver, worker
):
    owner = await make_user("client")
    hook = await subscribe(client, owner, receiver.url)
    goal = await new_goal(client, owner)
    assert await worker.run_once() == 1
    (request,) = receiver.requests
    headers = request["headers"]
    assert request["path"] == "/hook"
    assert headers["Content-Type"] == "application/json"
    assert headers["Waypoint-Event"] == "goal.created"
    body = json.loads(request["body"])
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["type"] == "goal.created"
    assert body["data"] == goal
    signature = headers["Waypoint-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    assert abs(int(signature[2:].split(",")[0]) - time.time()) < 60
    assert verify_waypoint_signature(hook["secret"], request["body"], signature)
    assert not verify_waypoint_signature(hook["secret"], request["body"] + b" ", signature)
    assert not verify_waypoint_signature("whsec_wrong", request["body"], signature)
    old = "t=1000000000," + signature.split(",")[1]
    assert not verify_waypoint_signature(hook["secret"], request["body"], old)
    (delivery,) = await deliveries(client, owner, hook)
    assert delivery["id"] == headers["Waypoint-Delivery"]
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 204
    assert delivery["last_error"] is None
    assert delivery["next_attempt_at"] is None
    assert delivery["delivered_at"] is not None
    assert await worker.run_once() == 0  # delivered once
    assert len(receiver.requests) == 1


async def test_each_webhook_gets_its_own_delivery_of_one_event(
    allow_private, client, make_user, receiver, worker, fake_clock
):
    """The body's ``id`` is the event's (the same for every webhook that hears it); the
    ``Waypoint-Delivery`` header names the delivery to this webhook."""
    owner = await make_user("client")
    first = await subscribe(client, owner, receiver.url)
    second = await subscribe(client, owner, receiver.url + "?second")
    await new_goal(client, owner)
    await run_until(worker, lambda: len(receiver.requests) == 2, fake_clock)
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert bodies[0]["id"] == bodies[1]["id"]
    assert len(set(receiver.delivery_ids())) == 2
    listed = {(await deliveries(client, owner, hook))[0]["id"] for hook in (first, second)}
    assert listed == set(receiver.delivery_ids())
    for request in receiver.requests:
        secret = first["secret"] if request["path"] == "/hook" else second["secret"]
        assert verify_waypoint_signature(
            secret, request["body"], request["headers"]["Waypoint-Signature"]
        )


async def test_deliveries_page_newest_first(allow_private, client, make_user, receiver):
    owner = await make_user("client")
    hook = await subscribe(client, owner, receiver.url)
    for i in range(5):
        await new_goal(client, owner, f"g{i}")
    seen, cursor = [], None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        r = await client.get(f"/v1/webhooks/{hook['id']}/deliveries{query}", headers=owner.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert 'rel="next"' in r.headers["link"]
    assert len({d["id"] for d in seen}) == 5
    stamps = [d["created_at"] for d in seen]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == 5


async def test_retries_after_500s_keep_the_delivery_id(
    allow_private, client, make_user, receiver, worker, fake_clock
):
    receiver.statuses.extend([500, 503])
    owner = await make_user("client")
    hook = await subscribe(client, owner, receiver.url)
    await new_goal(client, owner)
    before = time.time()
    assert await worker.run_once() == 1
    (first,) = await deliveries(client, owner, hook)
    assert first["status"] == "pending" and first["attempts"] == 1
    assert first["last_status_code"] == 500 and first["last_error"] == "HTTP 500"
    next_at = dt.datetime.fromisoformat(first["next_attempt_at"]).timestamp()
    assert before + 0.05 <= next_at <= time.time() + 0.05 * 1.2 + 0.01
    await run_until(worker, lambda: len(receiver.requests) == 3, fake_clock)
    ids = receiver.delivery_ids()
    assert ids == [first["id"]] * 3
    assert len({r["body"] for r in receiver.requests}) == 1  # the same body every time
    for request in receiver.requests:
        assert verify_waypoint_signature(
            hook["secret"], request["body"], request["headers"]["Waypoint-Signature"]
        )
    (done,) = await deliveries(client, owner, hook)
    assert done["status"] == "delivered" and done["attempts"] == 3
    assert done["last_status_code"] == 204


def test_backoff_doubles_from_the_setting_with_jitter():
    from app.webhooks.worker import retry_delay

    for attempts, base in [(1, 30), (2, 60), (3, 120), (7, 1920)]:
        delays = [retry_delay(attempts, 30) for _ in range(200)]
        assert all(base <= d < base * 1.2 for d in delays)
        assert len(set(delays)) > 1  # jittered


async def test_eight_attempts_then_failed(
    allow_private, client, make_user, receiver, worker, fake_clock
):
    receiver.default = 500
    owner = await make_user("client")
    hook = await subscribe(client, owner, receiver.url)
    await new_goal(client, owner)
    # Backoff from 0.05 s doubles up to 0.05 * 2**6 = 3.2 s (plus jitter) before the 8th.
    await run_until(worker, lambda: len(receiver.requests) == 8, fake_clock)
    final = (await deliveries(client, owner, hook))[0]
    assert final["status"] == "failed"
    assert final["attempts"] == 8
    assert final["last_status_code"] == 500
    assert final["next_attempt_at"] is None and final["delivered_at"] is None
    assert len(receiver.requests) == 8
    assert len(set(receiver.delivery_ids())) == 1
    fake_clock.advance(3600)
    assert await worker.run_once() == 0


async def test_redirects_are_not_followed(allow_private, client, make_user, receiver, worker):
    receiver.statuses.append(302)
    owner = await make_user("client")
    hook = await subscribe(client, owner, receiver.url)
    await new_goal(client, owner)
    await worker.run_once()
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    (delivery,) = await deliveries(client, owner, hook)
    assert delivery["status"] == "pending" and delivery["last_status_code"] == 302
    assert "redirect" in delivery["last_error"]


async def test_no_answer_within_the_time_limit_is_a_failed_attempt(
    allow_private, client, make_user, receiver, worker, monkeypatch
):
    import app.webhooks.sender as sender

    monkeypatch.setattr(sender, "TIMEOUT_SECONDS", 0.3)
    # The receiver answers after 30 s (its thread is a daemon: nothing waits for it); the
    # round ends long before, however slow the machine.
    receiver.delay = 30
    owner = await make_user("client")
    hook = await subscribe(client, owner, receiver.url)
    await new_goal(client, owner)
    started = time.monotonic()
    await worker.run_once()
    assert time.monotonic() - started < 15
    (delivery,) = await deliveries(client, owner, hook)
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert "no answer" in delivery["last_error"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_private_targets_are_refused_when_sent(
    allow_private, client, make_user, receiver, host
):
    """Created while the setting allowed it, then sent by a worker that does not allow it:
    checked after resolution, nothing connects."""
    from app.webhooks.worker import DeliveryWorker

    worker = DeliveryWorker(allow_private=False, yield_to_requests=False)
    try:
        owner = await make_user("client")
        hook = await subscribe(client, owner, f"http://{host}:{receiver.port}/hook")
        await new_goal(client, owner)
        assert await worker.run_once() == 1
        assert receiver.requests == []
        (delivery,) = await deliveries(client, owner, hook)
        assert delivery["status"] == "pending" and delivery["attempts"] == 1
        assert delivery["last_status_code"] is None
        assert "refused" in delivery["last_error"] and "loopback" in delivery["last_error"]
    finally:
        await worker.aclose()


async def test_the_connection_goes_to_the_checked_address(
    allow_private, client, make_user, receiver, worker, monkeypatch, fake_clock
):
    """The name is resolved once per attempt, by the check; the HTTP client connects to that
    address and never looks the name up again (a rebinding DNS gets no second question)."""
    import app.webhooks.sender as sender

    lookups = []

    async def resolve(host, port):
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        assert "rebind.test" not in str(host), "a second lookup of the name"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(sender, "resolve", resolve)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    owner = await make_user("client")
    await subscribe(client, owner, f"http://rebind.test:{receiver.port}/hook")
    await new_goal(client, owner)
    await new_goal(client, owner, "Run")
    await run_until(worker, lambda: len(receiver.requests) == 2, fake_clock)
    assert lookups == ["rebind.test", "rebind.test"]  # once per attempt
    assert {r["headers"]["Host"] for r in receiver.requests} == {f"rebind.test:{receiver.port}"}


async def test_unchecked_connections_are_impossible():
    """The client's network backend refuses any host the current attempt did not check."""
    import httpcore

    from app.webhooks.sender import PinnedBackend

    with pytest.raises(httpcore.ConnectError):
        await PinnedBackend().connect_tcp("example.com", 80)


async def test_a_webhook_failing_for_days_is_disabled(
    allow_private, client, make_user, receiver, worker, sync_engine, fake_clock
):
    receiver.default = 500
    owner = await make_user("client")
    failing = await subscribe(client, owner, receiver.url)
    healthy_receiver = Receiver()
    try:
        healthy = await subscribe(client, owner, healthy_receiver.url)
        await new_goal(client, owner)
        await worker.run_once()
        with sync_engine.connect() as conn:
            rows = dict(conn.execute(sa.text("SELECT url, failing_since FROM webhooks")).all())
        assert rows[receiver.url] is not None and rows[healthy_receiver.url] is None
        # Three days later the first failure is still the last word: the next failure disables.
        with sync_engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE webhooks SET failing_since = :at WHERE failing_since IS NOT NULL"),
                {
                    "at": dt.datetime.now(dt.UTC).replace(tzinfo=None)
                    - dt.timedelta(days=3, minutes=1)
                },
            )
        fake_clock.advance(1)  # the retry (after 0.05 s, plus jitter) is due
        assert await worker.run_once() == 1
        listed = {
            w["id"]: w
            for w in (await client.get("/v1/webhooks", headers=owner.headers)).json()["items"]
        }
        assert listed[failing["id"]]["active"] is False
        assert listed[failing["id"]]["disabled_at"] is not None
        assert listed[healthy["id"]]["active"] is True
        # It hears nothing more; its pending delivery fails without a request.
        await new_goal(client, owner, "Run")
        sent = len(receiver.requests)
        fake_clock.advance(1)  # the failing webhook's retry is due too
        await run_until(worker, lambda: len(healthy_receiver.requests) == 2, fake_clock)
        await worker.run_once()
        assert len(receiver.requests) == sent
        (only,) = await deliveries(client, owner, failing)
        assert only["status"] == "failed" and only["last_error"] == "the webhook is disabled"
    finally:
        healthy_receiver.close()


async def test_a_delivery_whose_webhook_is_gone_fails_without_a_request(
    allow_private, client, make_user, receiver, worker, sync_engine
):
    """Deliveries have no foreign key to their webhook (the service deletes them with it); a
    delivery whose webhook row is gone anyway (deleted between a claim and its attempt) is
    marked failed, not claimed again after every lease."""
    owner = await make_user("client")
    hook = await subscribe(client, owner, receiver.url)
    await new_goal(client, owner)
    assert await fan_out_all() == 1  # the delivery exists, then its webhook row goes
    gone = sa.text("DELETE FROM webhooks WHERE id = :w").bindparams(
        sa.bindparam("w", type_=sa.Uuid())
    )
    with sync_engine.begin() as conn:
        conn.execute(gone, {"w": uuid.UUID(hook["id"])})
    assert await worker.run_once() == 1
    assert receiver.requests == []
    with sync_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, last_error FROM webhook_deliveries")).all()
    assert [tuple(row) for row in rows] == [("failed", "the webhook is disabled")]
    assert await worker.run_once() == 0


async def test_two_workers_deliver_each_delivery_once(
    allow_private, client, make_user, receiver, sync_engine, monkeypatch
):
    """Two workers (two connections: on PostgreSQL FOR UPDATE SKIP LOCKED, on SQLite one
    claimer at a time) share the queue: every delivery reaches the receiver exactly once."""
    from app.webhooks.worker import BATCH, DeliveryWorker

    owner = await make_user("client")
    for _ in range(10):
        await subscribe(client, owner, receiver.url)
    goals = [await new_goal(client, owner, f"g{i}") for i in range(BATCH // 5)]
    expected = 10 * len(goals)
    # Quick retries: on a starved machine the receiver may drop a connection.
    workers = [
        DeliveryWorker(allow_private=True, yield_to_requests=False, retry_seconds=0.05)
        for _ in range(2)
    ]
    # Smaller batches, so the two really interleave their claims.
    import app.webhooks.worker as worker_module

    tasks = []
    original = worker_module.BATCH
    worker_module.BATCH = 8
    failed: set[uuid.UUID] = set()  # deliveries with an attempt that did not get through
    sent = worker_module.post

    async def watched_post(http, url, body, headers, **options):
        result = await sent(http, url, body, headers, **options)
        if not result.delivered:
            failed.add(uuid.UUID(headers["Waypoint-Delivery"]))
        return result

    monkeypatch.setattr(worker_module, "post", watched_post)
    try:
        tasks = [asyncio.create_task(w.run()) for w in workers]
        await wait_for(lambda: len(receiver.requests) >= expected, seconds=60)
    finally:
        worker_module.BATCH = original
        for task in tasks:
            task.cancel()
        # A worker cancelled in the middle of a COMMIT once took the cancellation for a
        # database error and went on forever: the stop is bounded, so that fails, not hangs.
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks, return_exceptions=True)
    assert all(task.cancelled() for task in tasks)
    counts = collections.Counter(receiver.delivery_ids())
    assert len(counts) == expected
    assert set(counts.values()) == {1}
    # A claim counts the attempt in its row as it is made, so a second claim of a delivery,
    # even one the cancellation cut short before it was sent, shows here. The only second
    # claim allowed is a retry after a first attempt that failed (on a starved machine the
    # receiver can drop a connection or miss the time limit); the retry's success clears the
    # row's error, so the attempts seen failing are the witness.
    with sync_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, attempts FROM webhook_deliveries")).all()
    assert len(rows) == expected
    claimed_again = {uuid.UUID(str(row.id)) for row in rows if row.attempts > 1}
    assert claimed_again <= failed, claimed_again - failed


def server_env(**settings: str) -> dict[str, str]:
    """The suite's environment (its test database), loopback receivers allowed."""
    return {**os.environ, "WAYPOINT_WEBHOOKS_ALLOW_PRIVATE": "true", **settings}


async def wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_a_server_killed_after_the_commit_delivers_after_restart(
    app_instance, receiver, sync_engine, serve
):
    """The first server answers 201 and is killed at once (its worker is off, so nothing can
    have been sent); the event committed with the goal is fanned out and delivered by the next
    server's worker, started by the app's lifespan."""
    server = serve(server_env(WAYPOINT_WEBHOOK_WORKER="false"), migrate=False)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        email = "killed@example.com"
        r = await http.post(
            "/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "K", "role": "client"},
        )
        assert r.status_code == 201, r.text
        token = (
            await http.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": email, "password": PASSWORD},
            )
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        hook = await http.post(
            "/v1/webhooks",
            json={"url": receiver.url, "events": ["goal.created"]},
            headers=auth,
        )
        assert hook.status_code == 201, hook.text
        goal = await http.post("/v1/goals", json={"title": "Survive"}, headers=auth)
        assert goal.status_code == 201, goal.text
    server.stop(signal.SIGKILL)
    assert receiver.requests == []
    with sync_engine.connect() as conn:  # the event committed with the goal, not yet fanned out
        assert conn.execute(sa.text("SELECT count(*) FROM webhook_events")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar() == 0

    server = serve(server_env(WAYPOINT_WEBHOOK_POLL_SECONDS="30"), migrate=False)
    await wait_for(lambda: len(receiver.requests) == 1)
    body = json.loads(receiver.requests[0]["body"])
    assert body["data"]["id"] == goal.json()["id"]
    # A commit in this process wakes its worker at once (the poll interval is 30 s here).
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        r = await http.post("/v1/goals", json={"title": "Again"}, headers=auth)
        assert r.status_code == 201
    await wait_for(lambda: len(receiver.requests) == 2, seconds=5)
    server.stop()
    with sync_engine.connect() as conn:
        statuses = conn.execute(sa.text("SELECT status FROM webhook_deliveries")).scalars().all()
    assert statuses == ["delivered", "delivered"]


async def test_the_worker_yields_49_times_its_round_while_requests_are_served(monkeypatch):
    """2 % of the process's time while requests are served, however long a round took (a
    slow machine's included: no cap that would raise the share), and no longer than requests
    are in flight."""
    from app.webhooks import worker as module

    clock = {"now": 0.0, "slept": 0.0}
    in_flight = {"until": float("inf")}  # requests are served until this (fake) time

    async def fake_sleep(seconds):
        clock["now"] += seconds
        clock["slept"] += seconds

    monkeypatch.setattr(module.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(module.asyncio, "sleep", fake_sleep)
    monkeypatch.setattr(module, "requests_in_flight", lambda: clock["now"] < in_flight["until"])
    w = module.DeliveryWorker(allow_private=True)
    try:
        await w._yield(0.5)  # a slow round: 24.5 s of sleep
        assert clock["slept"] == pytest.approx(0.5 * module.BUSY_SLEEP_FACTOR)
        clock.update(now=0.0, slept=0.0)
        in_flight["until"] = 1.0  # the burst ends after 1 s: the worker goes on at once
        await w._yield(0.5)
        assert 1.0 <= clock["slept"] <= 1.0 + module.IDLE_CHECK_SECONDS
        clock.update(now=0.0, slept=0.0)
        in_flight["until"] = 0.0  # idle: no sleep at all
        await w._yield(0.5)
        assert clock["slept"] == 0.0
    finally:
        await w.aclose()


async def test_a_failing_fan_out_does_not_stop_the_deliveries_already_made(
    allow_private, client, make_user, receiver, worker, monkeypatch
):
    from app.webhooks import worker as module

    owner = await make_user("client")
    await subscribe(client, owner, receiver.url)
    await new_goal(client, owner)
    assert await fan_out_all() == 1  # one delivery made
    await new_goal(client, owner, title="Run")  # one event waiting

    async def broken(**kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("no such column"))

    working = module.fan_out
    monkeypatch.setattr(module, "fan_out", broken)
    assert await worker.run_once() == 1
    assert worker.fanned == 0
    assert len(receiver.requests) == 1
    monkeypatch.setattr(module, "fan_out", working)
    assert await worker.run_once() == 1  # the waiting event, once the fan-out works again
    assert len(receiver.requests) == 2
