"""The overload scenario: 400 connections on one worker, far more than it can serve; and the
steady scenario beside it: 50 connections, which the worker can serve within the bound.

wrk drives ``GET /v1/goals?limit=50`` at 400 connections (rotating tokens, counting every
status). The worker admits what it can serve within ``WAYPOINT_MAX_QUEUE_WAIT_MS`` (default
settings) and sheds the rest with 503. Meanwhile, from this process:

- four sampler connections send the same request as wrk, one after the other, and record each
  answer's status and latency as a client sees it (wrk reports one latency distribution for
  all answers, 200s and 503s mixed): the admitted p99 comes from these;
- a probe asks ``/healthz`` every 100 ms and records how long each answer took.

The server's own histogram (``/metrics``, 2xx answers of ``/v1/goals``) is reported beside the
client-side figures.

The steady scenario drives the same request at 50 connections (default settings too): a load
the worker answers well within ``WAYPOINT_MAX_QUEUE_WAIT_MS``, so not one request may be
refused (issue 18: 1.3-1.7 % were).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server import Server
from bench.wrk import WrkResult, run_wrk

PATH = "/v1/goals?limit=50"
CONNECTIONS = 400
STEADY_CONNECTIONS = 50
SAMPLERS = 4
ADMITTED_P99_TARGET_MS = 250
SHED_P99_TARGET_MS = 300  # a 503 never waits longer than the queue bound (250 ms) and change
HEALTH_TARGET_MS = 1000


@dataclass
class OverloadResult:
    wrk: WrkResult
    admitted_ms: list[float] = field(default_factory=list)
    shed_ms: list[float] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)
    health_ms: list[float] = field(default_factory=list)
    server_admitted_p99_ms: float | None = None


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


class _Sampler(threading.Thread):
    def __init__(self, base_url: str, tokens: list[str], offset: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.base_url, self.tokens, self.offset, self.stop = base_url, tokens, offset, stop
        self.answers: list[tuple[str, float]] = []

    def run(self) -> None:
        i = self.offset
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            while not self.stop.is_set():
                i = (i + 7) % len(self.tokens)
                headers = {"Authorization": f"Bearer {self.tokens[i]}"}
                began = time.perf_counter()
                try:
                    status = str(http.get(PATH, headers=headers).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.answers.append((status, (time.perf_counter() - began) * 1000))


class _HealthProbe(threading.Thread):
    def __init__(self, base_url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base_url, self.stop = base_url, stop
        self.ms: list[float] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=5) as http:
            while not self.stop.is_set():
                began = time.perf_counter()
                try:
                    ok = http.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.ms.append((time.perf_counter() - began) * 1000 if ok else 5000.0)
                self.stop.wait(0.1)


def server_histogram(base_url: str) -> dict[float, float]:
    """Cumulative bucket counts of admitted (2xx) ``GET /v1/goals`` answers, by upper bound."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if (
                s.name == "waypoint_request_duration_seconds_bucket"
                and labels.get("route") == "/v1/goals"
                and labels.get("method") == "GET"
                and labels.get("status") == "2xx"
            ):
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0) + s.value
    return buckets


def histogram_p99_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    counts = sorted((bound, after[bound] - before.get(bound, 0)) for bound in after)
    if not counts or counts[-1][1] <= 0:
        return None
    target = 0.99 * counts[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in counts:
        if count >= target:
            if bound == float("inf"):
                return lower_bound * 1000
            share = (target - lower_count) / max(count - lower_count, 1e-9)
            return (lower_bound + share * (bound - lower_bound)) * 1000
        lower_bound, lower_count = bound, count
    return None


def run_overload(
    wrk: str,
    database_url: str,
    env: dict[str, str],
    log_path: Path,
    tokens_file: Path,
    duration: float,
    nice: int = 0,
) -> OverloadResult:
    tokens = [t for t in tokens_file.read_text().splitlines() if t]
    with Server(database_url, env, log_path, nice) as server:

        def drive(seconds: float) -> WrkResult:
            return run_wrk(
                wrk, server.base_url, tokens_file, "GET", PATH, duration=seconds,
                connections=CONNECTIONS, threads=2, nice=nice,
            )  # fmt: skip

        drive(2)  # warm-up: the worker learns how long a turn lasts
        before = server_histogram(server.base_url)
        stop = threading.Event()
        samplers = [_Sampler(server.base_url, tokens, n * 31, stop) for n in range(SAMPLERS)]
        probe = _HealthProbe(server.base_url, stop)
        for thread in (*samplers, probe):
            thread.start()
        try:
            result = OverloadResult(wrk=drive(duration))
        finally:
            stop.set()
            for thread in (*samplers, probe):
                thread.join(15)
        result.server_admitted_p99_ms = histogram_p99_ms(before, server_histogram(server.base_url))
    for sampler in samplers:
        for status, ms in sampler.answers:
            if status == "200":
                result.admitted_ms.append(ms)
            elif status == "503":
                result.shed_ms.append(ms)
            else:
                result.other[status] = result.other.get(status, 0) + 1
    result.health_ms = probe.ms
    return result


@dataclass
class SteadyResult:
    wrk: WrkResult
    server_p99_ms: float | None = None


def run_steady(
    wrk: str,
    database_url: str,
    env: dict[str, str],
    log_path: Path,
    tokens_file: Path,
    duration: float,
    nice: int = 0,
) -> SteadyResult:
    with Server(database_url, env, log_path, nice) as server:

        def drive(seconds: float) -> WrkResult:
            return run_wrk(
                wrk, server.base_url, tokens_file, "GET", PATH, duration=seconds,
                connections=STEADY_CONNECTIONS, threads=2, nice=nice,
            )  # fmt: skip

        drive(2)  # warm-up, as for the overload
        before = server_histogram(server.base_url)
        result = SteadyResult(wrk=drive(duration))
        result.server_p99_ms = histogram_p99_ms(before, server_histogram(server.base_url))
    return result


def steady_checks(r: SteadyResult) -> list[tuple[str, str, str, bool]]:
    statuses = r.wrk.statuses
    ok = statuses.get(200, 0)
    other = {s: n for s, n in statuses.items() if s != 200}
    socket_errors = sum(r.wrk.socket_errors.values())
    server = f"{r.server_p99_ms:.0f}" if r.server_p99_ms is not None else "-"
    return [
        (
            f"steady ({STEADY_CONNECTIONS} connections): only 200",
            f"200: {ok:,}, other: {sum(other.values())} {other or ''}, socket errors: "
            f"{socket_errors}; p99 {r.wrk.p99_ms:.0f} ms (wrk), {server} ms (server)",
            "0 other",
            ok > 0 and not other and socket_errors == 0,
        )
    ]


def overload_checks(r: OverloadResult) -> list[tuple[str, str, str, bool]]:
    """(check, value, target, passed) rows for the PASS/FAIL table."""
    statuses = r.wrk.statuses
    admitted, shed = statuses.get(200, 0), statuses.get(503, 0)
    unexpected = {s: n for s, n in statuses.items() if s not in (200, 503)}
    socket_errors = sum(r.wrk.socket_errors.values())
    admitted_p99 = percentile(r.admitted_ms, 99)
    shed_p99 = percentile(r.shed_ms, 99)
    health_max = max(r.health_ms, default=0.0)
    other = sum(unexpected.values()) + sum(r.other.values())
    server = f"{r.server_admitted_p99_ms:.0f}" if r.server_admitted_p99_ms is not None else "-"
    return [
        (
            "overload: admitted p99 (client; server)",
            f"{admitted_p99:.0f} ms; {server} ms ({len(r.admitted_ms):,} sampled)",
            f"< {ADMITTED_P99_TARGET_MS} ms",
            bool(r.admitted_ms) and admitted_p99 < ADMITTED_P99_TARGET_MS,
        ),
        (
            "overload: 503 answers p99",
            f"{shed_p99:.0f} ms ({len(r.shed_ms):,} sampled)",
            f"< {SHED_P99_TARGET_MS} ms",
            shed_p99 < SHED_P99_TARGET_MS,
        ),
        (
            "overload: only 200 or 503, no socket errors",
            f"200: {admitted:,}, 503: {shed:,}, other: {other}, socket errors: {socket_errors}",
            "only 200 / 503",
            admitted > 0 and not unexpected and not r.other and socket_errors == 0,
        ),
        (
            "overload: /healthz slowest of probes",
            f"{health_max:.0f} ms ({len(r.health_ms)} probes)",
            f"< {HEALTH_TARGET_MS} ms",
            bool(r.health_ms) and health_max < HEALTH_TARGET_MS,
        ),
    ]
