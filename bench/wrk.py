"""Running wrk with the token-rotating script, and reading what it printed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "lua" / "rotate.lua"


class WrkMissing(RuntimeError):
    pass


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's packages when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
            subprocess.run(install, env=env, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise WrkMissing(
        "wrk is not installed. Install it with `sudo apt-get install wrk` (Debian/Ubuntu) "
        "or `brew install wrk` (macOS), then run `make bench` again."
    )


@dataclass
class WrkResult:
    requests: int = 0
    duration_s: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0
    # Filled in by the runner: CPU per request of the server and of PostgreSQL, and how many
    # cores other processes on the machine kept busy meanwhile (noise).
    server_cpu_ms: float = 0.0
    db_cpu_ms: float = 0.0
    other_cores: float = 0.0
    warmup_statuses: dict[int, int] = field(default_factory=dict)
    rounds: int = 1
    # Each round's own figures, in order (``combine``): a ratio of two scenarios measured one
    # right after the other in every round is taken round by round (``paired_ratio``).
    per_round: list[WrkResult] = field(default_factory=list)
    raw: str = ""

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        """Everything that is not a 2xx answer: other statuses and socket errors."""
        bad_status = sum(n for status, n in self.statuses.items() if not 200 <= status < 300)
        return max(bad_status, self.non_2xx) + sum(self.socket_errors.values())


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def paired_ratio(a: WrkResult, b: WrkResult, attr: str) -> float:
    """``a``'s ``attr`` over ``b``'s, as the median of the rounds' own ratios: the two were
    measured back to back in each round, so a slow spell of the machine (its speed moves by
    20-50 % between rounds a minute apart) falls on both sides of one ratio instead of on one
    side of the medians. Without rounds of both, the ratio of the medians."""
    pairs = [
        (getattr(x, attr), getattr(y, attr)) for x, y in zip(a.per_round, b.per_round, strict=False)
    ]
    if not pairs or len(pairs) != len(a.per_round) or len(pairs) != len(b.per_round):
        x, y = getattr(a, attr), getattr(b, attr)
        return x / y if y else 0.0
    return median([x / y if y else 0.0 for x, y in pairs])


def combine(rounds: list[WrkResult]) -> WrkResult:
    """One scenario measured in several rounds: the median round's rps, p50 and p99 (so one
    disturbed round moves nothing), counts summed, CPU per request over all rounds."""

    def summed(maps: list[dict]) -> dict:
        total: dict = {}
        for one in maps:
            for key, n in one.items():
                total[key] = total.get(key, 0) + n
        return total

    requests = sum(r.requests for r in rounds)

    def per_request(attr: str) -> float:
        return sum(getattr(r, attr) * r.requests for r in rounds) / requests if requests else 0.0

    return WrkResult(
        requests=requests,
        duration_s=sum(r.duration_s for r in rounds),
        rps=median([r.rps for r in rounds]),
        p50_ms=median([r.p50_ms for r in rounds]),
        p99_ms=median([r.p99_ms for r in rounds]),
        max_ms=max(r.max_ms for r in rounds),
        statuses=summed([r.statuses for r in rounds]),
        socket_errors=summed([r.socket_errors for r in rounds]),
        non_2xx=sum(r.non_2xx for r in rounds),
        server_cpu_ms=per_request("server_cpu_ms"),
        db_cpu_ms=per_request("db_cpu_ms"),
        other_cores=max(r.other_cores for r in rounds),
        warmup_statuses=summed([r.warmup_statuses for r in rounds]),
        rounds=len(rounds),
        per_round=list(rounds),
    )


def run_wrk(
    wrk: str,
    base_url: str,
    tokens_file: Path,
    method: str,
    path: str,
    *,
    body: str | None = None,
    duration: float,
    connections: int,
    threads: int,
    nice: int = 0,
) -> WrkResult:
    args = [
        *(["nice", "-n", str(nice)] if nice else []),
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(SCRIPT),
        base_url,
        "--",
        str(tokens_file),
        method,
        path,
    ]
    if body is not None:
        args.append(body)
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()}")
    return parse(proc.stdout)


def parse(text: str) -> WrkResult:
    result = WrkResult(raw=text)
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        result.rps = float(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        result.non_2xx = int(m.group(1))
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    ):
        result.socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True)
        )
    for status, count in re.findall(r"^BENCH status (\d+) (\d+)$", text, re.M):
        result.statuses[int(status)] = int(count)
    if m := re.search(r"^BENCH summary (\d+) (\d+)", text, re.M):
        result.requests = int(m.group(1))
        result.duration_s = int(m.group(2)) / 1e6
    if m := re.search(r"^BENCH latency (\d+) (\d+) (\d+)$", text, re.M):
        result.p50_ms, result.p99_ms, result.max_ms = (int(v) / 1000 for v in m.groups())
    else:  # fall back on wrk's own latency distribution
        for pct, attr in (("50", "p50_ms"), ("99", "p99_ms")):
            if m := re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
                scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
                setattr(result, attr, float(m.group(1)) * scale)
    return result
