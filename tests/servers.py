"""Real server processes for the tests that need one: a free loopback port and ``waypoint
serve`` on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


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
