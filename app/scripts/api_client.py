"""What ``waypoint sync`` and ``waypoint import`` share: an HTTP client that retries what is
worth retrying, and progress on standard error (a bar on a terminal, plain lines otherwise).

The token goes only into the ``Authorization`` header: it is never printed or logged."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class ApiError(Exception):
    """The API refused a request (4xx): its status and problem details."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        try:
            self.problem: dict[str, Any] = response.json()
        except ValueError:
            self.problem = {}
        super().__init__(self.describe())

    def describe(self) -> str:
        title = self.problem.get("title") or httpx.codes.get_reason_phrase(self.status_code)
        text = f"{self.status_code} {title}"
        if self.problem.get("detail"):
            text += f": {self.problem['detail']}"
        for error in self.problem.get("errors") or []:
            loc = ".".join(str(part) for part in error.get("loc", []) if part != "body")
            text += f" [{loc}: {error.get('msg')}]"
        return text


class Unreachable(Exception):
    """The server did not answer after every retry."""


class ApiClient:
    """``httpx.Client`` with the bearer token and retries: a network error, 429 (honouring
    ``Retry-After``), 502, 503 and 504 are tried again with exponential backoff and jitter."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        attempts: int = 8,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "waypoint-cli"},
            timeout=httpx.Timeout(30.0, connect=10.0),
        )
        self.attempts, self.backoff, self.max_wait, self.sleep = attempts, backoff, max_wait, sleep

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response (2xx or 3xx); ``ApiError`` for a refusal; ``Unreachable`` when every
        attempt failed."""
        last = "no attempt"
        for attempt in range(self.attempts):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                last = f"network error ({type(exc).__name__})"
                wait = self._backoff(attempt)
            else:
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code >= 400:
                        raise ApiError(response)
                    return response
                last = f"{response.status_code} from the server"
                wait = self._retry_after(response) or self._backoff(attempt)
            if attempt + 1 < self.attempts:
                self.sleep(min(wait, self.max_wait))
        raise Unreachable(f"{method} {path}: gave up after {self.attempts} attempts ({last})")

    def _backoff(self, attempt: int) -> float:
        return self.backoff * 2**attempt * (0.5 + random.random())

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        try:
            return max(0.0, float(response.headers.get("Retry-After", "")))
        except ValueError:
            return None


class Reporter:
    """Progress on standard error: a rich bar on a terminal, a plain line per step otherwise."""

    def __init__(self, what: str, total: int | None = None) -> None:
        self.what = what
        self.console = Console(stderr=True)
        self.bar: Progress | None = None
        if sys.stderr.isatty():
            self.bar = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                MofNCompleteColumn(), console=self.console, transient=True,
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(what, total=total)

    def advance(self, count: int, note: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=count, description=f"{self.what}: {note}")
        else:
            print(f"{self.what}: {note}", file=sys.stderr, flush=True)

    def warn(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
