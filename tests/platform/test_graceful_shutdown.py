"""SIGTERM under load: the server stops accepting, finishes the requests it took, and exits 0.

A real ``waypoint serve`` on a SQLite file takes writes from 30 connections at once; SIGTERM
arrives in the middle. Every answer that started must be complete (status line, headers and
the whole body), some must have been completed after the signal (in flight when it came), the
process must exit 0, and every 201 must be in the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time

import httpx

from tests.support.worlds import PASSWORD

TITLE = "written during shutdown"


class Answer:
    def __init__(self) -> None:
        self.status: int | None = None
        self.complete = False
        self.received = 0
        self.finished_at = 0.0


async def one_request(port: int, request: bytes) -> Answer | None:
    """One request on a fresh connection; None when the server no longer takes connections."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    answer = Answer()
    try:
        writer.write(request)
        await writer.drain()
        data = await reader.read()  # Connection: close, so the answer ends at EOF
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    finally:
        writer.close()
    answer.finished_at = time.monotonic()
    answer.received = len(data)
    head, sep, body = data.partition(b"\r\n\r\n")
    if sep:
        lines = head.decode("latin-1").split("\r\n")
        answer.status = int(lines[0].split()[1])
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int({k.lower(): v for k, v in headers.items()}.get("content-length", -1))
        answer.complete = length == len(body)
    return answer


def test_sigterm_finishes_in_flight_requests_and_exits_0(tmp_path, serve):
    database = tmp_path / "waypoint.db"
    env = {
        **os.environ,
        "WAYPOINT_DATABASE_URL": f"sqlite:///{database}",
        "WAYPOINT_VAR_DIR": str(tmp_path / "var"),
        "WAYPOINT_SHUTDOWN_TIMEOUT_SECONDS": "15",
        "WAYPOINT_MAX_QUEUE_WAIT_MS": "5000",  # queue rather than shed: more in flight
        "WAYPOINT_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = serve(env)
    base, port = server.url, server.port
    with httpx.Client(base_url=base, timeout=10) as http:
        email = "shutdown@example.com"
        http.post(
            "/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "S", "role": "client"},
        ).raise_for_status()
        token = http.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
        ).json()["access_token"]
    body = json.dumps({"title": TITLE}).encode()
    request = (
        f"POST /v1/goals HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body

    answers: list[Answer] = []
    under_way = asyncio.Event()

    async def connection_loop() -> None:
        while True:
            answer = await one_request(port, request)
            if answer is None:
                return
            answers.append(answer)
            if len(answers) >= 60:
                under_way.set()

    async def load() -> float:
        loops = [asyncio.create_task(connection_loop()) for _ in range(30)]
        # SIGTERM once the load is under way, so that it finds requests in flight.
        await asyncio.wait_for(under_way.wait(), 60)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*loops), 30)
        return signalled

    signalled = asyncio.run(load())
    exit_code = server.stop(timeout=30)  # already signalled: waits for the exit

    answered = [a for a in answers if a.received]
    cut = [a for a in answered if not a.complete]
    assert not cut, f"{len(cut)} answers cut off mid-response"
    assert exit_code == 0, server.output()[-2000:]
    created = [a for a in answered if a.status == 201]
    assert len(created) > 50
    assert {a.status for a in answered} <= {201, 503}
    after_signal = [a for a in created if a.finished_at > signalled]
    assert after_signal, "no request was in flight when SIGTERM came"
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT count(*) FROM goals WHERE title = ?", (TITLE,)).fetchone()[0]
    assert rows >= len(created)  # every acknowledged write is there
