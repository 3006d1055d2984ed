"""A clock the test moves by hand (the root conftest's ``fake_clock`` fixture).

``install(module)`` makes the ``time.monotonic()`` that ``module`` calls read the fake clock
(every other ``time`` function stays real); ``install_utcnow(module)`` makes the ``utcnow()``
it calls run ahead of the real one by as much as the fake clock was advanced. A test about "at
most once a second" or "retry when due" advances time instead of sleeping through it.

``FakeLoopClock`` is an event loop's time and timers for code that is handed one (admission's
lag probe): a test stalls "the loop" by advancing it and runs the next turn's timers by hand."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


class _Time:
    """Stands in for the ``time`` module inside one module under test."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    def monotonic(self) -> float:
        return self._clock.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class FakeClock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: float = 1_000.0) -> None:
        self._monkeypatch = monkeypatch
        self._start = start
        self.now = start

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def install(self, *modules: ModuleType) -> FakeClock:
        """Until the test ends, ``module.time.monotonic()`` is this clock."""
        for module in modules:
            self._monkeypatch.setattr(module, "time", _Time(self))
        return self

    def install_utcnow(self, *modules: ModuleType) -> FakeClock:
        """Until the test ends, ``module.utcnow()`` is the real time plus every ``advance``."""

        def utcnow() -> dt.datetime:
            return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.now - self._start)

        for module in modules:
            self._monkeypatch.setattr(module, "utcnow", utcnow)
        return self


class FakeLoopClock:
    """``time``, ``call_soon`` and ``call_at`` of an event loop whose turns the test runs:
    ``advance`` is a turn that takes that long (no timer runs meanwhile), ``run_due`` is the
    next turn (every timer due by now runs, in order of its time)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, Callable[..., object], tuple[Any, ...]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        self.call_at(self.now, callback, *args)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> None:
        heapq.heappush(self._timers, (when, next(self._order), callback, args))

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def run_due(self) -> int:
        """Run the timers due by now (not those they set for later); how many ran."""
        due = []
        while self._timers and self._timers[0][0] <= self.now:
            due.append(heapq.heappop(self._timers))
        for _when, _order, callback, args in due:
            callback(*args)
        return len(due)
