"""Webhook receivers for the benchmark: tiny HTTP/1.1 servers on loopback, in a thread of the
benchmark process with their own asyncio loop, answering every POST ``204`` (keep-alive) and
counting each ``Waypoint-Delivery`` they receive."""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any


class _Protocol(asyncio.Protocol):
    def __init__(self, counts: collections.Counter[str]) -> None:
        self.counts = counts
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length, delivery = 0, ""
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"waypoint-delivery":
                    delivery = value.strip().decode()
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.counts[delivery] += 1
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")


class Receivers:
    """``n`` receivers; ``urls`` to subscribe, ``counts`` per delivery id."""

    def __init__(self, n: int) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers = [self._call(self._serve()) for _ in range(n)]
        self.urls = [
            f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook" for server in self.servers
        ]

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _serve(self) -> asyncio.Server:
        return await self.loop.create_server(lambda: _Protocol(self.counts), "127.0.0.1", 0)

    def snapshot(self) -> collections.Counter[str]:
        async def copy() -> collections.Counter[str]:
            return collections.Counter(self.counts)

        return self._call(copy())

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
