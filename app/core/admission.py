"""Admission: at most N requests of a worker are being served at once; the rest wait their turn
in arrival order.

Without it every request a worker accepts starts at once and they take turns on the event loop
at each await (a database round trip, a pool checkout). Under load that is unfair: a request
can wait several rounds of everybody else's work, and waits for a pooled connection are not
served in order. Measured with 50 connections on one PostgreSQL worker (bench/README.md), a
page of goals had p99 at 2-3 times p50; with 10 admitted at a time the p99 fell to 1.3-1.6
times p50, and throughput rose (fewer database sessions competing for the same cores).

The limit also keeps a worker from asking its pools for more connections than they hold.

Load shedding: the queue is bounded by the time a request would wait. A request waits in two
places: in the event loop, before its first line runs (every task ready before it goes first;
on SQLite a page of goals runs start to end without yielding, so there the whole backlog waits
here), and here, for a turn.

- The loop's share is estimated from its lag, how late a timer that should run every 20 ms
  runs, in two ways. Sustained lag: the least of the last three probes' (a lone stall, a
  garbage collection or a thread preempted on a busy machine, is not overload; a loop late
  three times in a row is: with two, one request of 11,854 of the light mixed load was
  refused on PostgreSQL). Live lag, on SQLite's account: admitted requests run start to end inside
  one turn of the loop there, so 400 requests read in one turn were admitted one after the
  other (the turn limit never binds when each finishes before the next starts) and that turn
  lasted 100-400 ms before any probe could say so. A turn in which ``BURST`` requests have
  been admitted since the last probe counts as lag how overdue that probe is now. A request
  waits several turns of a lagging loop (until its socket is read, until its task starts, then
  each await); ``LOOP_TURNS`` (8) was measured, not derived: with 400 connections on one
  SQLite worker, assuming 2 turns gave an admitted p99 of 400 ms, 8 gave 60 ms (client side,
  ``make bench``). The lag of one probe alone (a decaying maximum, before) refused 17 and 122
  requests of a light mixed load (``make bench``, 130 rps on two workers) at each stall.
- The wait for a turn is estimated from the number waiting and the average time a request
  holds its turn. That is a mean and waits spread well beyond it, so a request queues only when
  three times the estimate fits: on one PostgreSQL worker under 400 connections, queueing up
  to the estimate itself gave an admitted p99 of 289 ms with the default 250 ms bound, twice
  it 193-249 ms, three times 141 ms (and more requests admitted, 670/s against 510/s).

A request whose waits together exceed ``max_wait`` is refused without waiting for a turn (503 +
``Retry-After``; answered after a paced delay, see ``_shed``), and one that has waited
``max_wait`` for a turn after all is refused then. A refusal costs a fraction of a millisecond,
so under overload the backlog drains, the admitted keep their latency and the excess learns at
once that it should come back.

``/healthz``, ``/readyz`` and ``/metrics`` never queue: they tell an operator or a load balancer
how the worker is doing, which matters most when it is saturated.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core import metrics

UNQUEUED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_SECONDS = 1
_SHED_BODY = orjson.dumps(
    {
        "type": "/problems/service-unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The server is busy. Try again shortly.",
    }
)
_SHED_HEADERS = (
    (b"content-type", b"application/problem+json"),
    (b"content-length", str(len(_SHED_BODY)).encode()),
    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
)
# Weight of the newest service time in the running average (about the last 20 requests).
_SMOOTHING = 0.05
LAG_PROBE_SECONDS = 0.02
SUSTAINED_PROBES = 3  # a lag counts when this many probes in a row saw it
BURST = 8  # admissions since the last probe that make an overdue turn a burst
LOOP_TURNS = 8  # turns of a lagging loop a request waits (measured, see the module's docstring)
QUEUE_SPREAD = 3.0  # the longest waits for a turn against the estimated mean


_in_flight = 0


def requests_in_flight() -> int:
    """Requests this process is serving or holding in line (background work yields to them)."""
    return _in_flight


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, limit: int, max_wait_ms: float = 250) -> None:
        self.app = app
        self.limit = limit
        self.max_wait = max_wait_ms / 1000
        self._turns: asyncio.Semaphore | None = None  # made on first use, on the serving loop
        self.waiting = 0
        self.active = 0
        self._service_seconds = 0.0  # running average of the time a request holds its turn
        self.loop_lag = 0.0  # the sustained lag: the least of the last probes'
        self._recent_lags: collections.deque[float] = collections.deque(maxlen=SUSTAINED_PROBES)
        self._probe_due = float("inf")  # when the next lag probe should run (loop time)
        self._admitted_since_probe = 0
        metrics.watch_queue(self)

    def expected_wait(self) -> float:
        """How long a request arriving now would wait for a turn, by the running average."""
        return (self.waiting + 1) * self._service_seconds / self.limit

    def current_lag(self) -> float:
        """The sustained lag or, in a turn of the loop that has admitted a burst of requests
        since the last probe, how overdue that probe is now (seen while the turn lasts)."""
        if self._admitted_since_probe >= BURST:
            overdue = asyncio.get_running_loop().time() - self._probe_due
            return max(self.loop_lag, overdue)
        return self.loop_lag

    def _start_lag_probe(self) -> None:
        loop = asyncio.get_running_loop()

        def probe(due: float) -> None:
            now = loop.time()
            self._recent_lags.append(now - due)
            self.loop_lag = min(self._recent_lags)
            self._admitted_since_probe = 0
            self._probe_due = now + LAG_PROBE_SECONDS
            loop.call_at(self._probe_due, probe, self._probe_due)

        loop.call_soon(probe, loop.time())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNQUEUED_PATHS:
            await self.app(scope, receive, send)
            return
        global _in_flight
        _in_flight += 1
        try:
            await self._admit(scope, receive, send)
        finally:
            _in_flight -= 1

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNQUEUED_PATHS:
            await self.app(scope, receive, send)
            return
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.limit)  # first come, first served (3.11+)
            self._start_lag_probe()
        turns = self._turns
        loop_wait = LOOP_TURNS * self.current_lag()
        if loop_wait > self.max_wait:  # waited too long in the loop already
            await self._shed(scope, send, paced=True)
            return
        if turns.locked():  # every turn taken: queue, unless the wait would be too long
            if loop_wait + QUEUE_SPREAD * self.expected_wait() > self.max_wait:
                await self._shed(scope, send, paced=True)
                return
            self.waiting += 1
            try:
                async with asyncio.timeout(self.max_wait):
                    await turns.acquire()
            except TimeoutError:
                await self._shed(scope, send)
                return
            finally:
                self.waiting -= 1
        else:
            await turns.acquire()
        self.active += 1
        self._admitted_since_probe += 1
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            turns.release()
            self.active -= 1
            held = time.perf_counter() - started
            self._service_seconds += _SMOOTHING * (held - self._service_seconds)

    async def _shed(self, scope: Scope, send: Send, paced: bool = False) -> None:
        scope["waypoint.shed"] = True
        metrics.SHED.inc()
        if paced:
            # Refused without waiting for a turn, but answered after a delay of a fifth to
            # two fifths of the bound: a client that ignores Retry-After and asks again at
            # once (a load generator, a naive retry loop) would otherwise turn refusals into a
            # storm of cheap requests that starves the admitted ones. Measured with 400 wrk
            # connections on one PostgreSQL worker: 7,000 refusals a second, 130 admitted (p99
            # 491 ms in the server) without pacing. The delay is random: refused together,
            # answered together, back together, a herd that came in waves of 400 requests
            # read in one turn of the loop (503 p99 550-650 ms with a fixed delay of half the
            # bound). On one SQLite worker, 503 p99 was 298-311 ms with a delay of a quarter
            # to half the bound, 257-260 ms with a fifth to two fifths (admitted p99 71-80 ms).
            await asyncio.sleep(self.max_wait * random.uniform(0.2, 0.4))
        # Fresh messages each time: outer middlewares add headers to the message they are given.
        await send({"type": "http.response.start", "status": 503, "headers": [*_SHED_HEADERS]})
        await send({"type": "http.response.body", "body": _SHED_BODY})
