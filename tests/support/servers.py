"""Real server processes for the tests that need one: a free loopback port and ``waypoint
serve`` on the test database."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

WAYPOINT = str(Path(sys.executable).parent / "waypoint")


def server_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a server on its own SQLite database under ``tmp_path``: only the
    caller's ``settings`` (``login_failures_per_address="3"``) on top of cheap test values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYPOINT_")}
    env |= {
        "WAYPOINT_ENV": "test",
        "WAYPOINT_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'waypoint.db'}",
        "WAYPOINT_SECRET_KEY": "server-process-test-secret-0123456789abcdef",
        "WAYPOINT_VAR_DIR": str(tmp_path / "var"),
        "WAYPOINT_ARGON2_TIME_COST": "1",
        "WAYPOINT_ARGON2_MEMORY_COST": "1024",
        "WAYPOINT_ARGON2_PARALLELISM": "1",
        "WAYPOINT_LOG_LEVEL": "WARNING",
    }
    env |= {f"WAYPOINT_{k.upper()}": v for k, v in settings.items()}
    return env


@contextlib.contextmanager
def running_server(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    """Migrate, serve on a free loopback port, yield the base URL, stop."""
    subprocess.run([WAYPOINT, "migrate"], env=env, check=True, capture_output=True, timeout=60)
    port = free_port()
    process = subprocess.Popen(
        [WAYPOINT, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        if workers > 1:  # let every worker come up, not only the first
            time.sleep(1.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``waypoint serve`` as a separate process on the test database, on a free port."""

    def __init__(self, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [waypoint_command(), "serve", "--port", str(self.port), "--workers", str(workers)],
            env={**os.environ, "WAYPOINT_LOG_LEVEL": "WARNING", **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise AssertionError(f"the server did not start: {self.log.read()[-2000:]!r}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except Exception:
            self.process.kill()
        self.log.close()


def waypoint_command() -> str:
    return str(Path(sys.executable).with_name("waypoint"))
