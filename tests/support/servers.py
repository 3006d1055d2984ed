"""Real server processes for the tests that need one: ``waypoint serve`` as a child process on
a free loopback port. Tests ask the root conftest's ``serve`` fixture for one; the fuzzing
script, which runs outside pytest, uses ``running_server`` directly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from tests.support.paths import ROOT

WAYPOINT = str(Path(sys.executable).with_name("waypoint"))


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``waypoint serve`` process: ``url`` once it answers ``/readyz``; everything it
    prints goes to ``log_path`` (read it with ``output()``)."""

    def __init__(self, env: Mapping[str, str], *, workers: int, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [WAYPOINT, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
                + ["--workers", str(workers)],
                env=dict(env),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, seconds: float = 60) -> None:
        # Polling a child process that has its own clock: the one wait here that is real time.
        deadline = time.monotonic() + seconds
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.output()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not start: {self.output()[-2000:]}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the server (unless it already exited) and wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@contextlib.contextmanager
def running_server(
    env: Mapping[str, str] | None = None, *, workers: int = 1, migrate: bool = True
) -> Iterator[Server]:
    """Migrate (unless told not to), serve, yield the ready server, stop it. ``env`` defaults
    to this process's environment, that is the suite's test database."""
    env = dict(os.environ if env is None else env)
    if migrate:
        done = subprocess.run(
            [WAYPOINT, "migrate"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    log_dir = Path(tempfile.mkdtemp(prefix="waypoint-server-"))
    server = Server(env, workers=workers, log_path=log_dir / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
