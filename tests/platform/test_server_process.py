"""Behaviour only a real server process shows: which address the login throttle counts, what a
client uploading too much reads, how production refuses to start, the database file's mode.
Each test starts ``waypoint serve`` on a free loopback port with a fresh SQLite database."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys

import httpx
import pytest

from tests.support.servers import WAYPOINT, server_env


def failed_login(base: str, n: int, forwarded_for: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/auth/token",
        data={"grant_type": "password", "username": f"nobody{n}@example.com", "password": "x"},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=10,
    )


def test_forwarded_for_does_not_change_the_throttled_address_by_default(tmp_path, serve):
    base = serve(server_env(tmp_path, login_failures_per_address="3")).url
    statuses = [failed_login(base, n, f"203.0.113.{n}").status_code for n in range(4)]
    database = tmp_path / "var" / "waypoint.db"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in database.parent.glob("waypoint.db*")}
    assert statuses == [400, 400, 400, 429]
    # The database, its WAL and shared memory: readable by the service's user only.
    assert {"waypoint.db", "waypoint.db-wal", "waypoint.db-shm"} <= set(modes), modes
    assert set(modes.values()) == {0o600}, modes


def test_forwarded_for_is_believed_from_a_trusted_proxy(tmp_path, serve):
    env = server_env(tmp_path, login_failures_per_address="3", trusted_proxies="127.0.0.1")
    base = serve(env).url
    statuses = [failed_login(base, n, f"203.0.113.{n}").status_code for n in range(5)]
    # ... and each forwarded address still has its own limit.
    again = [failed_login(base, 10 + n, "198.51.100.1").status_code for n in range(4)]
    assert statuses == [400] * 5
    assert again == [400, 400, 400, 429]


def upload(base: str, body_size: int, *, chunked: bool) -> tuple[int, dict]:
    """Send a POST with a body of ``body_size`` bytes over a raw socket, then read the answer
    as a client would once it has sent everything."""
    host, port = base.removeprefix("http://").split(":")
    head = [
        "POST /v1/goals HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Authorization: Bearer not-even-checked",
    ]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_size}")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        chunk = b"x" * 65536
        sent = 0
        while sent < body_size:
            part = chunk[: body_size - sent]
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            sent += len(part)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < int(
            dict(
                line.split(": ", 1)
                for line in answer.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
            ).get("content-length", "0")
        ):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head_text, body = answer.split(b"\r\n\r\n", 1)
    status = int(head_text.split(b" ")[1])
    return status, json.loads(body)


def test_a_body_over_the_limit_is_answered_413_every_time(tmp_path, serve):
    base = serve(server_env(tmp_path), workers=2).url
    results = [upload(base, 2 * 1024 * 1024, chunked=n % 2 == 1) for n in range(20)]
    for status, problem in results:
        assert status == 413
        assert problem["type"] == "/problems/payload-too-large"
        assert problem["status"] == 413


@pytest.mark.parametrize(
    "secret",
    [None, "abcdefghijklmnopqrstuvwxyz01234"],  # missing; 31 bytes
)
@pytest.mark.parametrize(
    "command",
    [
        [WAYPOINT, "serve", "--port", "1"],
        [sys.executable, "-c", "import app.main as m; m.create_app()"],
    ],
)
def test_production_without_a_good_secret_is_one_line_and_exit_1(tmp_path, secret, command):
    env = server_env(tmp_path, env="production")
    del env["WAYPOINT_SECRET_KEY"]
    if secret is not None:
        env["WAYPOINT_SECRET_KEY"] = secret
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "WAYPOINT_SECRET_KEY" in lines[0] and "32 bytes" in lines[0]
    if secret is not None:  # not even a piece of it
        pieces = {secret[i : i + 4] for i in range(len(secret) - 3)}
        assert not any(piece in result.stderr + result.stdout for piece in pieces)


def test_a_malformed_setting_is_named_without_its_value(tmp_path):
    env = server_env(tmp_path, access_token_minutes="fifteen-secret-ish")
    result = subprocess.run(
        [WAYPOINT, "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "WAYPOINT_ACCESS_TOKEN_MINUTES" in result.stderr
    assert "fifteen" not in result.stderr
