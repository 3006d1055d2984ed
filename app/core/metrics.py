"""Prometheus metrics: what an operator needs to see how the service is doing.

``GET /metrics`` (text format, official ``prometheus-client``) is served to loopback and to the
networks in ``WAYPOINT_METRICS_ALLOW``, before admission (it never waits for a turn), and
waits at most ``SCRAPE_HOOK_TIMEOUT_SECONDS`` for the values it reads from the database.
``waypoint serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory, so every worker
writes its values there and any worker's scrape reports one set.

Labels carry only route templates, methods, status classes and fixed words: never an id, an
e-mail or anything a user wrote.

Adding a metric elsewhere (``app/webhooks/queue_metrics.py`` does so for the delivery queue)::

    from app.core import metrics
    DUE = metrics.gauge("waypoint_webhook_deliveries_due", "Deliveries due.", mode="mostrecent")

    async def measure_delivery_queue() -> None:  # runs at each scrape, in the scraping worker
        DUE.set(await count_due_deliveries())

and list the hook in ``app.wiring.SCRAPE_HOOKS`` (``create_app`` hands it to the endpoint).

A value every worker measures alike (a table's rows) is ``mostrecent``; the default
``livesum`` would add the workers' measurements up.

Counters and histograms come straight from ``prometheus_client`` (``Counter``, ``Histogram``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import ipaddress
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response
from app.core.logging import route_template

log = structlog.get_logger("waypoint.metrics")
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
SHED_ROUTE = "shed"  # the route label of requests refused by admission (not routed)
RESPONSE_STARTED = "waypoint.response_started"  # in the scope once the response has begun

GaugeMode = Literal["livesum", "liveall", "max", "min", "sum", "all", "mostrecent"]


def gauge(name: str, documentation: str, labels: tuple[str, ...] = (), mode: GaugeMode = "livesum"):  # noqa: ANN201
    """A gauge. ``livesum``: the workers' values added up, dead workers left out (counts of
    things in progress); ``mostrecent``: the last value set by any worker (a measurement taken
    at scrape time)."""
    return Gauge(name, documentation, labels, multiprocess_mode=mode)


# -- requests -------------------------------------------------------------------------------
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1, 2.5, 5, 10)
REQUEST_DURATION = Histogram(
    "waypoint_request_duration_seconds",
    "Time from a request's arrival (before admission) to the end of its response.",
    ("route", "method", "status"),
    buckets=BUCKETS,
)
IN_FLIGHT = gauge("waypoint_requests_in_flight", "Requests being served (admitted).")
QUEUED = gauge("waypoint_requests_queued", "Requests waiting for a turn (admission).")
SHED = Counter(
    "waypoint_requests_shed",
    "Requests refused with 503 at once because they would have waited too long for a turn.",
)
# -- database -------------------------------------------------------------------------------
DB_CHECKED_OUT = gauge(
    "waypoint_db_connections_checked_out", "Pooled database connections in use.", ("pool",)
)
DB_ERRORS = Counter(
    "waypoint_db_errors",
    "Database faults answered 503 (connect, connection_lost, timeout, pool_timeout, "
    "unavailable, locked, aborted).",
    ("kind",),
)
TRANSACTION_RETRIES = Counter(
    "waypoint_transaction_retries",
    "Requests run again because the database aborted their transaction (sqlstate 40P01: "
    "deadlock, 40001: serialization failure).",
    ("sqlstate",),
)
# -- logins ---------------------------------------------------------------------------------
LOGIN_FAILURES = Counter(
    "waypoint_login_failures", "Password logins refused (wrong e-mail/password)."
)
LOGIN_THROTTLED = Counter(
    "waypoint_login_throttled", "Password logins refused because of too many recent failures."
)

ScrapeHook = Callable[[], Awaitable[None]]
_hook_tasks: dict[ScrapeHook, asyncio.Task[None]] = {}
SCRAPE_HOOK_TIMEOUT_SECONDS = 1.0


async def run_scrape_hooks(hooks: Sequence[ScrapeHook]) -> None:
    """Start the hooks (gauges measured on demand, such as a queue's depth read from the
    database) together and wait for them at most ``SCRAPE_HOOK_TIMEOUT_SECONDS``.

    A late hook is left to finish in the background rather than cancelled: cancelling a query
    that a frozen PostgreSQL does not answer makes psycopg try to cancel it on that same server
    and then wait for it again, so a scrape under ``asyncio.timeout`` waited many times its
    timeout (tests/database/test_postgres_faults.py). A hook still running is not started
    again, so a database that does not answer holds at most one connection per hook and
    worker; its gauges keep their last values meanwhile."""
    loop = asyncio.get_running_loop()
    waiting = []
    for hook in hooks:
        task = _hook_tasks.get(hook)
        if task is None or task.done() or task.get_loop() is not loop:
            task = _hook_tasks[hook] = loop.create_task(hook(), name=f"scrape:{hook.__name__}")
            task.add_done_callback(_report_hook_failure)
        waiting.append(task)
    if not waiting:
        return
    _, late = await asyncio.wait(waiting, timeout=SCRAPE_HOOK_TIMEOUT_SECONDS)
    for task in late:
        log.warning("scrape_hook_late", hook=task.get_name().removeprefix("scrape:"))


def _report_hook_failure(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:  # a failed measurement must not hide the others
        # The type only: a database error's message can carry its URL or a query's values.
        hook = task.get_name().removeprefix("scrape:")
        log.warning("scrape_hook_failed", hook=hook, error_type=type(exc).__name__)


# -- cheap on the hot path ------------------------------------------------------------------
# In multiprocess mode every change of a value is a locked write into a memory-mapped file:
# observing each request's duration and keeping the in-flight and pool gauges current that way
# cost a visible share of the cheapest request (bench/README.md, "Figures behind the code's
# comments"). So a request only adds to plain counters in this process; they reach the shared
# values at each scrape and once a second (``refresh``), and the gauges are sampled then rather
# than kept current.
_FLUSH_SECONDS = 1.0
_BOUNDS = (*BUCKETS, float("inf"))


class _Pending:
    __slots__ = ("child", "counts", "total")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.counts = [0] * len(_BOUNDS)
        self.total = 0.0


_pending: dict[tuple[str, str, int], _Pending] = {}
_queues: weakref.WeakSet[Any] = weakref.WeakSet()  # admission middlewares (active, waiting)
_pools: dict[str, weakref.ref[Any]] = {}


def watch_queue(admission: Any) -> None:
    """Report ``admission.active`` and ``admission.waiting`` as in flight and queued."""
    _queues.add(admission)


def watch_pool(name: str, pool: Any) -> None:
    """Report ``pool.checkedout()`` as the checked-out connections of pool ``name``."""
    _pools[name] = weakref.ref(pool)


def refresh() -> None:
    """Move this process's pending observations into the shared values and sample gauges."""
    for entry in _pending.values():
        if entry.total or any(entry.counts):
            counts, entry.counts = entry.counts, [0] * len(_BOUNDS)
            total, entry.total = entry.total, 0.0
            # prometheus_client's per-bucket values (not cumulative) and sum, added in bulk.
            for index, n in enumerate(counts):
                if n:
                    entry.child._buckets[index].inc(n)
            entry.child._sum.inc(total)
    IN_FLIGHT.set(sum(q.active for q in _queues))
    QUEUED.set(sum(q.waiting for q in _queues))
    for name, ref in list(_pools.items()):
        pool = ref()
        if pool is not None:
            DB_CHECKED_OUT.labels(name).set(pool.checkedout())


async def keep_metrics_fresh(stop: asyncio.Event) -> None:
    """Background worker: this process's observations reach the shared values once a second."""
    while not stop.is_set():
        refresh()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _FLUSH_SECONDS)
    refresh()


class RequestMetricsMiddleware:
    """Observes each request's duration by route template, method and status class.

    Its own cost per request is small next to a request's (tests/platform/test_metrics.py
    prints it; bench/README.md, "Figures behind the code's comments")."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                scope[RESPONSE_STARTED] = True  # from now on the request cannot be run again
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = SHED_ROUTE if scope.get("waypoint.shed") else route_template(scope)
        key = (route, scope["method"], status // 100)
        entry = _pending.get(key)
        if entry is None:
            child = REQUEST_DURATION.labels(route, scope["method"], f"{status // 100}xx")
            entry = _pending[key] = _Pending(child)
        entry.counts[bisect.bisect_left(_BOUNDS, seconds)] += 1
        entry.total += seconds


# -- the endpoint ---------------------------------------------------------------------------
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def allowed_networks(extra: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return (*_LOOPBACK, *(ipaddress.ip_network(net, strict=False) for net in extra))


def may_scrape(host: str | None, networks: tuple[Any, ...]) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def exposition() -> bytes:
    """The current values in Prometheus text format (all workers' in multiprocess mode)."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_endpoint(
    networks: tuple[Any, ...], scrape_hooks: Sequence[ScrapeHook] = ()
) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics`` for the clients in ``networks``, running ``scrape_hooks`` first."""

    async def serve_metrics(request: Request) -> Response:
        if not may_scrape(request.client.host if request.client else None, networks):
            return problem_response(403, "forbidden", "Forbidden", "Metrics are not served here.")
        await run_scrape_hooks(scrape_hooks)
        refresh()
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return serve_metrics


def mark_worker_gone() -> None:
    """At a worker's exit: its last observations are kept, its live gauges (in flight,
    queued, connections) stop counting."""
    refresh()
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
