"""One delivery attempt: resolve the target, check every address, connect to the checked one.

The name is resolved once per attempt (``getaddrinfo``); if any address it yields is refused
(see ``addresses.refusal``) the attempt fails without a connection. Otherwise the connection
goes to the first checked address: the HTTP client's network backend is handed that address
for the host (``PinnedBackend``), so no second lookup happens that a rebinding DNS server could
answer differently. The URL keeps its host name, so ``Host``, TLS SNI and certificate checks
are those of the name. Connections are kept alive per origin; a kept connection was opened to
an address checked at the time, and every new attempt still resolves and checks first.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from app.webhooks.addresses import IPAddress, literal_address, refusal

TIMEOUT_SECONDS = 10.0
USER_AGENT = "Waypoint-Webhooks/1"

# (host, port) -> the checked address to connect to, for the attempt running in this task.
_PINNED: contextvars.ContextVar[dict[tuple[str, int], str] | None] = contextvars.ContextVar(
    "waypoint_webhook_pinned", default=None
)


class Refused(Exception):
    """The target resolved to an address webhooks may not reach."""


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to the address the current attempt checked for the host."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        pinned = _PINNED.get() or {}
        address = pinned.get((host, port))
        if address is None:  # never connect to an address nobody checked
            raise httpcore.ConnectError(f"no checked address for {host}:{port}")
        return await self._inner.connect_tcp(
            address, port, timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def new_http_client() -> httpx.AsyncClient:
    """The client a delivery worker sends with: pinned connections, no redirects, no proxy
    from the environment, 10 s per operation (the attempt as a whole is bounded too)."""
    transport = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64), trust_env=False
    )
    pool = transport._pool  # httpx offers no public way to choose the network backend
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=pool._ssl_context,
        max_connections=64,
        max_keepalive_connections=64,
        keepalive_expiry=5.0,
        network_backend=PinnedBackend(),
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


async def resolve(host: str, port: int) -> list[IPAddress]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = literal_address(str(sockaddr[0]).split("%", 1)[0])
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


async def checked_address(host: str, port: int, *, allow_private: bool) -> IPAddress:
    """The address to connect to; ``Refused`` when any address of the name is refused."""
    try:
        addresses = await resolve(host, port)
    except OSError as exc:
        raise Refused(f"name resolution failed: {exc.strerror or exc}") from None
    if not addresses:
        raise Refused("the name has no address")
    if not allow_private:
        for address in addresses:
            if (reason := refusal(address)) is not None:
                raise Refused(f"target address refused ({reason})")
    return addresses[0]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


MAX_ANSWER_BYTES = 64 * 1024


async def _drain(response: httpx.Response) -> None:
    """Read a short answer to its end, so the connection can be kept for the next delivery;
    a long one is not read (the connection is then closed instead)."""
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > MAX_ANSWER_BYTES:
            return


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
) -> AttemptResult:
    """POST ``body`` to ``url``: any 2xx within the time limit delivers; redirects do not."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            address = await checked_address(host, port, allow_private=allow_private)
            token = _PINNED.set({(host, port): str(address)})
            try:
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    await _drain(response)
            finally:
                _PINNED.reset(token)
    except Refused as exc:
        return AttemptResult(None, str(exc))
    except TimeoutError:
        return AttemptResult(None, f"no answer within {TIMEOUT_SECONDS:g} s")
    except httpx.HTTPError as exc:
        return AttemptResult(None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return AttemptResult(status, None)
    if 300 <= status < 400:
        return AttemptResult(status, f"HTTP {status} (redirects are not followed)")
    return AttemptResult(status, f"HTTP {status}")
