"""A clock the test moves by hand (the root conftest's ``fake_clock`` fixture).

``install(module)`` makes the ``time.monotonic()`` that ``module`` calls read the fake clock
(every other ``time`` function stays real); ``install_utcnow(module)`` makes the ``utcnow()``
it calls run ahead of the real one by as much as the fake clock was advanced. A test about "at
most once a second" or "retry when due" advances time instead of sleeping through it."""

from __future__ import annotations

import datetime as dt
import time
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
