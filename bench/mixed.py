"""The mixed-load scenario: a day of app traffic on two workers, then a look at the memory.

Virtual users (clients of the benchmark data, each with its own token) run in a closed loop
with a short pause between requests, each request drawn at random from the mix below: goal
lists and single goals, creates, steps added and ticked off, reviews, encouragements to
themselves, the unread encouragements, the reviews due, and now and then a password login.
Every answer must be the expected 2xx; the report gives the count, p50 and p99 of each request
type, and the server's resident memory (uvicorn's supervisor and both workers) after a warm-up
and at the end.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.overload import percentile
from bench.server import Server, tree_rss_bytes

WORKERS = 2
USERS = 16
THINK_SECONDS = 0.04  # each user pauses 0-40 ms between requests: busy workers, not overloaded
WARMUP_SECONDS = 5
RSS_GROWTH_LIMIT = 0.10
BENCH_PASSWORD = "bench password 1234"  # bench/load.py gives every user this password
# (request type, weight): what a day of app traffic looks like, reads first.
MIX = (
    ("list goals", 30),
    ("get goal", 12),
    ("create goal", 10),
    ("add step", 10),
    ("step done", 12),
    ("review", 8),
    ("encourage", 8),
    ("list encouragements", 6),
    ("reviews due", 3),
    ("login", 1),
)


@dataclass
class MixedResult:
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, dict[str, int]] = field(default_factory=dict)
    rss_start: int = 0
    rss_end: int = 0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def error_count(self) -> int:
        return sum(sum(v.values()) for v in self.errors.values())


class _User:
    def __init__(self, http: httpx.AsyncClient, token: str, clients: int, rng: random.Random):
        self.http, self.rng, self.clients = http, rng, clients
        self.headers = {"Authorization": f"Bearer {token}"}
        self.goals: list[str] = []
        self.steps: list[str] = []

    async def act(self, kind: str) -> httpx.Response:
        http, h, rng = self.http, self.headers, self.rng
        if kind in ("get goal", "add step", "review") and not self.goals:
            kind = "create goal"
        if kind == "step done" and not self.steps:
            kind = "add step" if self.goals else "create goal"
        if kind == "list goals":
            r = await http.get("/v1/goals?limit=50", headers=h)
            if r.status_code == 200:
                self.goals = [g["id"] for g in r.json()["items"]][:20] or self.goals
            return r
        if kind == "get goal":
            return await http.get(f"/v1/goals/{rng.choice(self.goals)}", headers=h)
        if kind == "create goal":
            body = {"title": "Walk to the park", "priority": "medium", "review_every_days": 7}
            r = await http.post("/v1/goals", json=body, headers=h)
            if r.status_code == 201:
                self.goals.append(r.json()["id"])
            return r
        if kind == "add step":
            goal = rng.choice(self.goals)
            r = await http.post(f"/v1/goals/{goal}/steps", json={"title": "Shoes on"}, headers=h)
            if r.status_code == 201:
                self.steps.append(r.json()["id"])
            elif r.status_code == 422:  # the goal has its 200 steps: take another one
                self.goals.remove(goal)
                return await self.act("create goal")
            return r
        if kind == "step done":
            step = self.steps.pop(rng.randrange(len(self.steps)))
            return await http.patch(f"/v1/steps/{step}", json={"status": "done"}, headers=h)
        if kind == "review":
            body = {"rating": rng.randint(0, 10), "gas_score": rng.randint(-2, 2)}
            return await http.post(
                f"/v1/goals/{rng.choice(self.goals)}/reviews", json=body, headers=h
            )
        if kind == "encourage":
            return await http.post(
                "/v1/encouragements", json={"message": "One step at a time"}, headers=h
            )
        if kind == "list encouragements":
            return await http.get("/v1/encouragements?unread=true&limit=20", headers=h)
        if kind == "reviews due":
            return await http.get("/v1/reviews/due", headers=h)
        email = f"client{rng.randrange(self.clients)}@bench.example"
        form = {"grant_type": "password", "username": email, "password": BENCH_PASSWORD}
        return await http.post("/v1/auth/token", data=form)


async def _drive(
    base_url: str, tokens: list[str], clients: int, seconds: float, result: MixedResult | None
) -> None:
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=USERS, max_keepalive_connections=USERS)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:

        async def user(n: int) -> None:
            rng = random.Random(n)
            me = _User(http, tokens[n % len(tokens)], clients, rng)
            while time.monotonic() < deadline:
                await asyncio.sleep(rng.uniform(0, THINK_SECONDS))
                kind = rng.choices(kinds, weights)[0]
                began = time.perf_counter()
                try:
                    r = await me.act(kind)
                    outcome = str(r.status_code) if r.status_code >= 300 else None
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if result is None:
                    continue
                result.latencies.setdefault(kind, []).append((time.perf_counter() - began) * 1000)
                if outcome is not None:
                    errors = result.errors.setdefault(kind, {})
                    errors[outcome] = errors.get(outcome, 0) + 1

        await asyncio.gather(*(user(n) for n in range(USERS)))


def run_mixed(
    database_url: str,
    env: dict[str, str],
    log_path: Path,
    tokens_file: Path,
    clients: int,
    duration: float,
    nice: int = 0,
) -> MixedResult:
    tokens = [t for t in tokens_file.read_text().splitlines() if t]
    result = MixedResult()
    with Server(database_url, env, log_path, nice, workers=WORKERS) as server:
        asyncio.run(_drive(server.base_url, tokens, clients, WARMUP_SECONDS, None))
        result.rss_start = tree_rss_bytes(server.pid)
        began = time.monotonic()
        asyncio.run(_drive(server.base_url, tokens, clients, duration, result))
        result.seconds = time.monotonic() - began
        result.rss_end = tree_rss_bytes(server.pid)
    return result


def mixed_rows(r: MixedResult) -> list[tuple[str, int, float, float, int]]:
    """(request type, count, p50 ms, p99 ms, errors), in the order of the mix."""
    return [
        (
            kind,
            len(r.latencies.get(kind, [])),
            percentile(r.latencies.get(kind, []), 50),
            percentile(r.latencies.get(kind, []), 99),
            sum(r.errors.get(kind, {}).values()),
        )
        for kind, _ in MIX
    ]


def mixed_checks(r: MixedResult) -> list[tuple[str, str, str, bool]]:
    growth = (r.rss_end - r.rss_start) / r.rss_start if r.rss_start else 0.0
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(r.errors.items())) or "none"
    return [
        (
            "mixed: no errors",
            f"{r.error_count:,} of {r.requests:,} ({detail})",
            "0",
            r.requests > 0 and r.error_count == 0,
        ),
        (
            "mixed: server RSS end / start",
            f"{r.rss_end / 2**20:.0f} / {r.rss_start / 2**20:.0f} MiB ({growth:+.1%})",
            f"within {RSS_GROWTH_LIMIT:.0%}",
            r.rss_start > 0 and abs(growth) <= RSS_GROWTH_LIMIT,
        ),
    ]
