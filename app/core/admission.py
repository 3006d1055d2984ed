"""Admission: at most N requests of a worker are being served at once; the rest wait their turn
in arrival order, and a request that could not be answered within ``max_wait`` is refused.

Without a limit every request a worker accepts starts at once and they take turns on the event
loop at each await (a database round trip, a pool checkout). Under load that is unfair: a
request can wait several rounds of everybody else's work, and waits for a pooled connection are
not served in order. With a few admitted at a time the slowest answers come much closer to the
typical ones and fewer database sessions compete for the same cores (bench/README.md, "Overload
and mixed load"). The limit also keeps a worker from asking its pools for more connections than
they hold.

Load shedding. A request waits in two places before its first line runs: in the event loop
(every task ready before it goes first; on SQLite a page of goals runs start to end without
yielding, so there the whole backlog waits in the loop), and here, for a turn. Each part is
estimated:

- the loop's part from its lag, how late a timer that should run every ``LAG_PROBE_SECONDS``
  runs. Sustained lag is the least of the last ``SUSTAINED_PROBES`` probes' (a lone stall, a
  garbage collection or a thread preempted on a busy machine, is not overload). On SQLite
  admitted requests run start to end inside one turn of the loop, so a turn that has admitted
  ``BURST`` requests since the last probe counts as lag how overdue that probe is now: the lag
  is seen while the turn lasts, not after it;
- the wait for a turn from the number waiting and the running average of the time a request
  holds its turn.

The rule has two strengths, and the worker only uses the strict one under real overload:

- **relaxed** (always): refuse when the plain estimate, ``RELAXED_LOOP_TURNS`` turns of the
  lagging loop plus the mean wait for a turn, exceeds ``SURGE`` times ``max_wait``: hopeless
  even if the estimate were twice too high. Anything less waits for its turn, and if it does
  wait ``max_wait`` after all it is refused then: proof that the worker is overloaded. A worker
  that keeps up with its load (a fixed number of clients, each waiting for its answer) has a
  queue that cannot outgrow the clients; a moment's slowdown (a slow query, a busy machine)
  raises the estimate for a while, but not the waits beyond the bound.
- **strict** (while overloaded): refuse when ``LOOP_TURNS`` turns of the lagging loop plus
  ``QUEUE_SPREAD`` times the mean wait exceeds ``max_wait``. Waits spread well beyond their
  mean, and when far more requests arrive than the worker serves, every admitted request waits
  at the edge of what the rule lets in; only this margin keeps the slowest admitted answers
  inside the bound. Both factors were chosen by running the overload rows of ``make bench``
  (bench/README.md).

The worker is overloaded for ``OVERLOAD_HOLD_SECONDS`` after the relaxed rule refused a request
or a request waited ``max_wait`` for a turn after all, and for as long after that as the strict
rule keeps refusing at least half of what arrives. The strict rule alone, applied always,
refused a few percent of a load the worker answered well within the bound (issue 18), and so
did the plain estimate against the bound itself (a short run of slow requests raised it): the
margins are for overload, not for the ordinary spread of a busy worker.

A refused request gets 503 + ``Retry-After`` (answered after a paced delay, see ``_shed``); one
that has waited ``max_wait`` for a turn after all is refused then. A refusal costs little, so
under overload the backlog drains, the admitted keep their latency and the excess learns at
once that it should come back. docs/hardening-concurrency.md describes the rule for operators.

``/healthz``, ``/readyz`` and ``/metrics`` never queue: they tell an operator or a load balancer
how the worker is doing, which matters most when it is saturated.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

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
# Turns of a lagging loop a request waits before it reaches admission: its bytes are read in
# one, its task starts in the next (relaxed); under overload the backlog makes it several more
# (strict; found with the SQLite overload row, where the whole backlog waits in the loop).
RELAXED_LOOP_TURNS = 2
SURGE = 2.0  # how far beyond the bound the plain estimate goes before a request is hopeless
LOOP_TURNS = 8
QUEUE_SPREAD = 3.0  # the longest waits for a turn against the estimated mean (strict rule)
OVERLOAD_HOLD_SECONDS = 1.0
# Weight of each decision in the share of requests refused (about the last 50 decisions).
_REFUSED_SMOOTHING = 0.02


class ShedRule:
    """Whether a request arriving now is refused: the relaxed rule always, the strict one
    while the worker is overloaded (see the module's docstring). Time is given by the caller,
    so the rule is tested with a fake clock."""

    def __init__(self, limit: int, max_wait: float) -> None:
        self.limit = limit
        self.max_wait = max_wait
        self.service_seconds = 0.0  # running average of the time a request holds its turn
        self.refused_share = 0.0  # running share of arrivals refused
        self.overloaded_until = float("-inf")

    def expected_wait(self, waiting: int) -> float:
        """The mean wait for a turn of a request arriving behind ``waiting`` others."""
        return (waiting + 1) * self.service_seconds / self.limit

    def overloaded(self, now: float) -> bool:
        return now < self.overloaded_until

    def refuse(self, now: float, lag: float, waiting: int | None) -> bool:
        """``waiting``: how many wait for a turn, or None when a turn is free."""
        queue = 0.0 if waiting is None else self.expected_wait(waiting)
        if RELAXED_LOOP_TURNS * lag + queue > SURGE * self.max_wait:
            self.overloaded_until = now + OVERLOAD_HOLD_SECONDS
            return self._count(refused=True)
        if self.overloaded(now) and LOOP_TURNS * lag + QUEUE_SPREAD * queue > self.max_wait:
            self._count(refused=True)
            if self.refused_share >= 0.5:  # still far more arrive than the worker serves
                self.overloaded_until = now + OVERLOAD_HOLD_SECONDS
            return True
        return self._count(refused=False)

    def timed_out(self, now: float) -> None:
        """A request waited ``max_wait`` for a turn after all: the estimate fell short."""
        self.overloaded_until = now + OVERLOAD_HOLD_SECONDS
        self._count(refused=True)

    def served(self, held: float) -> None:
        self.service_seconds += _SMOOTHING * (held - self.service_seconds)

    def _count(self, refused: bool) -> bool:
        self.refused_share += _REFUSED_SMOOTHING * (refused - self.refused_share)
        return refused


_in_flight = 0


def requests_in_flight() -> int:
    """Requests this process is serving or holding in line (background work yields to them)."""
    return _in_flight


class LoopClock(Protocol):
    """What admission asks of the event loop: its time, and timers for the lag probe."""

    def time(self) -> float: ...

    def call_soon(self, callback: Callable[..., object], *args: Any) -> object: ...

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> object: ...


class AdmissionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        max_wait_ms: float = 250,
        *,
        loop_clock: LoopClock | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.max_wait = max_wait_ms / 1000
        self.rule = ShedRule(limit, self.max_wait)
        self._turns: asyncio.Semaphore | None = None  # made on first use, on the serving loop
        self.waiting = 0
        self.active = 0
        self.loop_lag = 0.0  # the sustained lag: the least of the last probes'
        self._recent_lags: collections.deque[float] = collections.deque(maxlen=SUSTAINED_PROBES)
        self._probe_due = float("inf")  # when the next lag probe should run (loop time)
        self._admitted_since_probe = 0
        self._loop_clock = loop_clock  # the running loop, unless a test moves time by hand
        metrics.watch_queue(self)

    def _clock(self) -> LoopClock:
        return self._loop_clock or asyncio.get_running_loop()

    def current_lag(self) -> float:
        """The sustained lag or, in a turn of the loop that has admitted a burst of requests
        since the last probe, how overdue that probe is now (seen while the turn lasts)."""
        if self._admitted_since_probe >= BURST:
            overdue = self._clock().time() - self._probe_due
            return max(self.loop_lag, overdue)
        return self.loop_lag

    def _start_lag_probe(self) -> None:
        loop = self._clock()

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
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.limit)  # first come, first served (3.11+)
            self._start_lag_probe()
        turns = self._turns
        loop = self._clock()
        queueing = turns.locked()  # every turn taken: this request would wait for one
        if self.rule.refuse(loop.time(), self.current_lag(), self.waiting if queueing else None):
            await self._shed(scope, send, paced=True)
            return
        if queueing:
            self.waiting += 1
            try:
                async with asyncio.timeout(self.max_wait):
                    await turns.acquire()
            except TimeoutError:
                self.rule.timed_out(loop.time())
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
            self.rule.served(time.perf_counter() - started)

    async def _shed(self, scope: Scope, send: Send, paced: bool = False) -> None:
        scope["waypoint.shed"] = True
        metrics.SHED.inc()
        if paced:
            # Refused without waiting for a turn, but answered after a delay of a fifth to
            # two fifths of the bound: a client that ignores Retry-After and asks again at
            # once (a load generator, a naive retry loop) would otherwise turn refusals into a
            # storm of cheap requests that starves the admitted ones. The delay is random:
            # refused together, answered together and back together, such clients came in
            # waves as large as the backlog. bench/README.md ("Overload and mixed load")
            # keeps what each choice did to the overload row.
            await asyncio.sleep(self.max_wait * random.uniform(0.2, 0.4))
        # Fresh messages each time: outer middlewares add headers to the message they are given.
        await send({"type": "http.response.start", "status": 503, "headers": [*_SHED_HEADERS]})
        await send({"type": "http.response.body", "body": _SHED_BODY})
