"""Query strings: bounded in length (414), and no parameter of a route given twice (422).

Every request's query string is split into parameters before a route runs, whether the route
takes any or not, so its length is what bounds that work; uvicorn's own limit on a request
line is not one to rely on (it depends on the server and the proxy in front of it).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

# The longest query string this API reads is a goals page with every filter: a 512-character
# cursor, a 200-character external_id percent-encoded (up to 2,400 bytes) and a few short
# values, under 3,200 bytes. Twice that and more still answers any honest client.
MAX_QUERY_BYTES = 8192


class QueryStringLimitMiddleware:
    """Answers 414 problem+json to a query string over ``max_bytes``, before it is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_QUERY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or len(scope.get("query_string", b"")) <= self.max_bytes:
            await self.app(scope, receive, send)
            return
        body = orjson.dumps(
            {
                "type": "/problems/uri-too-long",
                "title": "URI too long",
                "status": 414,
                "detail": f"Query strings are limited to {self.max_bytes} bytes.",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 414,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def refuse_repeated_parameters(request: Request, names: Iterable[str]) -> None:
    """422 when one of the route's query parameters (``names``) is given more than once: the
    last would silently win, as a key given twice in a JSON body would (also refused)."""
    if not request.scope.get("query_string"):
        return
    parameters = request.query_params
    repeated = [name for name in names if len(parameters.getlist(name)) > 1]
    if repeated:
        raise RequestValidationError(
            [
                {
                    "type": "repeated_parameter",
                    "loc": ("query", name),
                    "msg": f"The parameter '{name}' appears more than once.",
                }
                for name in repeated
            ]
        )
