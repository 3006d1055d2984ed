"""PostgreSQL stopped, restarted and frozen under a real server process.

The test starts its own PostgreSQL cluster (``initdb``/``pg_ctl`` on a free port in a temporary
directory, as the ``postgres`` user when run as root) and ``waypoint serve`` against it, so it
can do to the database what an outage does: while it is stopped or frozen (SIGSTOP) requests
answer 503 + Retry-After within a bounded time, ``/readyz`` 503 and ``/healthz`` 200 at once;
once it is back requests succeed again without restarting the server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port
from tests.support.worlds import PASSWORD, assert_problem

LOG_NAME = "waypoint-postgres-faults-server.log"
CONNECT_TIMEOUT_S = 2  # libpq's minimum
STATEMENT_TIMEOUT_MS = 1000
# A request's database work is cut after connect + statement timeout (3 s); a write's retry of
# its ping on a fresh connection can add one more connect timeout.
BOUND_S = CONNECT_TIMEOUT_S + STATEMENT_TIMEOUT_MS / 1000 + CONNECT_TIMEOUT_S + 1.5
# A scrape waits for its database measurements at most metrics.SCRAPE_HOOK_TIMEOUT_SECONDS.
SCRAPE_BOUND_S = 2.0


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> tuple[int, ...]:
    part = path.split("/")[4]
    return tuple(int(p) for p in part.split(".") if p.isdigit())


BIN = _postgres_bin()
pytestmark = pytest.mark.skipif(
    BIN is None, reason="PostgreSQL server binaries (initdb, pg_ctl) are not installed here"
)


class Cluster:
    """A throwaway PostgreSQL cluster. initdb refuses to run as root: then as ``postgres``."""

    def __init__(self) -> None:
        assert BIN is not None
        self.dir = Path(tempfile.mkdtemp(prefix="waypoint-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                pytest.skip("running as root and runuser is missing: initdb cannot run")
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self.run(
            str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c full_page_writes=off"
        )
        self.run(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
            str(self.dir / "log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self.run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, ...)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[1]) == postmaster:
                    children.append(int(proc.name))
        return [postmaster, *children]

    def signal(self, sig: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        try:
            self.signal(signal.SIGCONT)
            self.stop()
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def served(cluster, serve) -> Iterator[tuple[Cluster, str]]:
    env = {
        **os.environ,
        "WAYPOINT_DATABASE_URL": cluster.url,
        "WAYPOINT_VAR_DIR": str(cluster.dir / "var"),
        "WAYPOINT_DB_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT_S),
        "WAYPOINT_DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
        "WAYPOINT_DB_POOL_TIMEOUT_SECONDS": "1",
        "WAYPOINT_READY_TIMEOUT_SECONDS": "0.5",
        "WAYPOINT_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = serve(env)
    try:
        yield cluster, server.url
    finally:
        server.stop(timeout=20)
        # Kept for a look after a failure (the cluster's directory is removed).
        shutil.copy(server.log_path, Path(tempfile.gettempdir()) / LOG_NAME)


def account(base: str) -> dict[str, str]:
    email = f"outage{time.monotonic_ns()}@example.com"
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.post(
            "/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Outage", "role": "client"},
        )
        assert r.status_code == 201, r.text
        t = http.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
        )
        assert t.status_code == 200, t.text
    return {"Authorization": f"Bearer {t.json()['access_token']}"}


def timed(http: httpx.Client, method: str, path: str, **kwargs) -> tuple[httpx.Response, float]:
    began = time.perf_counter()
    r = http.request(method, path, **kwargs)
    return r, time.perf_counter() - began


def assert_unavailable(r: httpx.Response, seconds: float) -> None:
    assert_problem(r, 503, "service-unavailable")
    assert int(r.headers["Retry-After"]) >= 1
    assert seconds < BOUND_S, f"answered after {seconds:.1f} s"


def queue_measured_at(scrape: str) -> float:
    """The webhook queue gauges' last measurement time (Unix time) in a scrape."""
    for line in scrape.splitlines():
        if line.startswith("waypoint_webhook_queue_measured_timestamp_seconds "):
            return float(line.split()[1])
    raise AssertionError("no webhook queue measurement")


def assert_recovers(http: httpx.Client, headers: dict[str, str], within: float = 15) -> None:
    deadline = time.monotonic() + within
    while True:
        r = http.get("/v1/goals", headers=headers)
        if r.status_code == 200:
            break
        assert r.status_code == 503, r.text  # never a 500 meanwhile
        assert time.monotonic() < deadline, "no recovery"
        time.sleep(0.2)
    created = http.post("/v1/goals", json={"title": "After"}, headers=headers)
    assert created.status_code == 201, created.text
    assert http.get("/readyz").status_code == 200


def test_a_stopped_database_answers_503_and_recovers_without_restart(served):
    cluster, base = served
    headers = account(base)
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.post("/v1/goals", json={"title": "Before"}, headers=headers).status_code == 201
        assert http.get("/v1/goals", headers=headers).status_code == 200  # pools filled

        cluster.stop()
        for method, path, body in (("GET", "/v1/goals", None), ("POST", "/v1/goals", "Down")):
            kwargs = {"json": {"title": body}} if body else {}
            for _ in range(2):  # the pooled connections are lost, then connections refused
                r, seconds = timed(http, method, path, headers=headers, **kwargs)
                assert_unavailable(r, seconds)
        r, seconds = timed(http, "GET", "/readyz")
        assert r.status_code == 503 and seconds < 2
        r, seconds = timed(http, "GET", "/healthz")
        assert r.status_code == 200 and seconds < 1
        scrape, seconds = timed(http, "GET", "/metrics")
        assert scrape.status_code == 200 and seconds < SCRAPE_BOUND_S, f"{seconds:.1f} s"
        assert 'waypoint_db_errors_total{kind="' in scrape.text

        cluster.start()
        assert_recovers(http, headers)
        titles = {g["title"] for g in http.get("/v1/goals", headers=headers).json()["items"]}
        assert titles == {"Before", "After"}  # nothing refused with 503 was written


def test_a_frozen_database_answers_503_within_a_bounded_time(served):
    cluster, base = served
    headers = account(base)
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get("/v1/goals", headers=headers).status_code == 200
        assert http.post("/v1/goals", json={"title": "Warm"}, headers=headers).status_code == 201

        measured = queue_measured_at(http.get("/metrics").text)
        assert measured > time.time() - 5
        cluster.signal(signal.SIGSTOP)
        try:
            # The queue gauges' query waits on the frozen database (on a pooled connection);
            # the scrape does not, and a second scrape starts no second query meanwhile.
            for _ in range(2):
                scrape, seconds = timed(http, "GET", "/metrics")
                assert scrape.status_code == 200 and seconds < SCRAPE_BOUND_S, f"{seconds:.1f} s"
                # Kept: the last measurement before the freeze.
                assert queue_measured_at(scrape.text) == measured
            for method, path, body in (
                ("GET", "/v1/goals", None),
                ("POST", "/v1/goals", "Frozen"),
                ("GET", "/v1/goals", None),
            ):
                kwargs = {"json": {"title": body}} if body else {}
                r, seconds = timed(http, method, path, headers=headers, **kwargs)
                assert_unavailable(r, seconds)
                h, h_seconds = timed(http, "GET", "/healthz")
                assert h.status_code == 200 and h_seconds < 1
            r, seconds = timed(http, "GET", "/readyz")
            assert r.status_code == 503 and seconds < 2
        finally:
            cluster.signal(signal.SIGCONT)
        assert_recovers(http, headers)
        assert queue_measured_at(http.get("/metrics").text) > measured
