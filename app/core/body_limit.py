"""Refuses request bodies over the limit, counted as they stream in (not only Content-Length)."""

from __future__ import annotations

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_SECONDS = 10


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # What is still read (and dropped) of a refused body, so the client can finish sending
        # and read the 413: closing with its bytes unread makes the kernel reset the
        # connection, and a client still uploading then never sees the answer.
        self.drain_bytes = max(8 * max_bytes, 8 * 1024 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # A client that asked `Expect: 100-continue` sends nothing more: nothing to drain.
            drain = int(declared) <= self.drain_bytes and b"expect" not in headers
            await self._too_large(send, receive if drain else None, 0)
            return
        # Read the whole body (it is at most max_bytes) before the app sees any of it, so an
        # oversized body is refused before a single byte is parsed or written.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                more = message.get("more_body", False)
                await self._too_large(send, receive if more else None, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, receive: Receive | None, received: int) -> None:
        body = orjson.dumps(
            {
                "type": "/problems/payload-too-large",
                "title": "Payload too large",
                "status": 413,
                "detail": f"Request bodies are limited to {self.max_bytes} bytes.",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        if receive is None:
            await send({"type": "http.response.body", "body": body})
            return
        # The whole answer goes out now; the response ends (and the connection closes) only
        # once the rest of the body was read, up to drain_bytes and DRAIN_SECONDS.
        await send({"type": "http.response.body", "body": body, "more_body": True})
        with anyio.move_on_after(DRAIN_SECONDS):
            while received <= self.drain_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    break
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        await send({"type": "http.response.body", "body": b""})
