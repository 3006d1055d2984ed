"""The server under test: the benchmark's app (``python -m bench.serve``, one worker unless
told) in a child process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(
        self,
        database_url: str,
        env: dict[str, str],
        log_path: Path,
        nice: int = 0,
        workers: int = 1,
        checkout: Path = ROOT,
    ) -> None:
        """``checkout``: another worktree's code (its own ``.venv``), to measure it against
        this one on the same database."""
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.checkout = checkout
        python = Path(sys.executable) if checkout == ROOT else checkout / ".venv" / "bin" / "python"
        flags = ["--workers", str(workers), "--port", str(self.port)]
        if (checkout / "bench" / "serve.py").exists():
            self.args = [str(python), "-m", "bench.serve", *flags]
            legacy = {}
        else:
            # A checkout from before the baselines moved to bench/ mounted them in the app
            # itself when this setting was on.
            self.args = [str(python.parent / "waypoint"), "serve", *flags]
            legacy = {"WAYPOINT_ENABLE_BENCH_ROUTES": "true"}
        if nice:
            self.args = ["nice", "-n", str(nice), *self.args]
        self.database_url = database_url
        self.env = {
            **os.environ,
            **env,
            **legacy,
            "WAYPOINT_DATABASE_URL": database_url,
            "WAYPOINT_LOG_LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.args, env=self.env, cwd=self.checkout, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited at start; see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not become ready; see {self.log_path}")

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn's workers), Linux /proc."""
    total, pids = 0, [pid]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                pids.append(int(proc.name))
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def set_session_priority(nice: int) -> int | None:
    """Linux schedules each session (autogroup) as a unit, so a process's own nice value only
    counts against its siblings; give this session (runner, server, wrk) the nice value and
    return the previous one, or None where that is not possible."""
    path = Path("/proc/self/autogroup")
    try:
        previous = int(path.read_text().split("nice")[1])
        path.write_text(str(nice))
    except (OSError, ValueError, IndexError):
        return None
    return previous


def renice_postgres_backends(url: str, nice: int) -> int:
    """Give the benchmark database's PostgreSQL backends the benchmark's priority (local
    server only; used with --nice on a machine shared with other work)."""
    import sqlalchemy as sa

    from app.core.database_url import sync_url

    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        pids = conn.scalars(
            sa.text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
    engine.dispose()
    done = 0
    for pid in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
            done += 1
        except OSError:
            continue
    return done


def _total_busy_seconds() -> float:
    """CPU time all processes spent busy since boot (Linux /proc/stat), in seconds."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _postgres_seconds() -> dict[int, float]:
    """CPU time of every ``postgres`` process, by pid."""
    found: dict[int, float] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "postgres":
                    found[int(proc.name)] = cpu_seconds(int(proc.name))
            except OSError:
                continue
    return found


class CpuMeter:
    """Who used the CPU during a measurement: the server, PostgreSQL, wrk, and everyone else
    (other processes on the machine make the figures noisy; the report says how much)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def _sample(self) -> tuple[float, float, float, dict[int, float], float]:
        import resource

        return (
            time.monotonic(),
            _total_busy_seconds(),
            cpu_seconds(self.server_pid),
            _postgres_seconds(),
            sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),  # wrk, once waited for
        )

    def __enter__(self) -> CpuMeter:
        self._start = self._sample()
        return self

    def __exit__(self, *_: object) -> None:
        t0, busy0, server0, pg0, children0 = self._start
        t1, busy1, server1, pg1, children1 = self._sample()
        self.wall = t1 - t0
        self.server = server1 - server0
        # Backends that exited meanwhile take their time with them; new ones count in full.
        self.postgres = max(0.0, sum(s - pg0.get(pid, 0.0) for pid, s in pg1.items()))
        self.wrk = children1 - children0
        self.other = max(0.0, (busy1 - busy0) - self.server - self.postgres - self.wrk)

    def cores(self, seconds: float) -> float:
        return seconds / self.wall if self.wall else 0.0
