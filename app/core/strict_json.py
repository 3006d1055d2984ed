"""JSON request bodies are parsed once, here, strictly: a key given twice, a document nested
too deep or holding too many values is refused (422) before FastAPI or a service sees it.

A client that sends ``visibility`` twice should hear about it, so every object's keys are
checked. The parsed body is handed to FastAPI as the request's JSON, so it costs one parse, as
before, and the checks little more. Bodies that are not valid JSON are left to FastAPI, which
answers them as it always has.

Python's parser recurses once per level of nesting: thousands of ``[`` in a body used to end
in ``RecursionError`` (500). The shape is therefore measured before parsing, in passes over the
bytes made by C code, and a body over either bound never reaches the parser.
"""

from __future__ import annotations

import email.message
import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

# The deepest document this API accepts is three levels (a goal's ``gas_levels`` inside its
# body); 64 leaves any honest client far inside while the parser's recursion stays shallow.
MAX_DEPTH = 64
# The widest body the API accepts holds a few dozen values (a webhook's event list). Ten
# thousand is far beyond any of them, and few enough to parse and validate cheaply, where a
# body of ``[0,0,...]`` at the size limit would be half a million.
MAX_VALUES = 10_000

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return result


def _refused(kind: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("body",), "msg": message}])


def _outside_strings(body: bytes) -> bytes:
    """The bytes of ``body`` that are not inside a JSON string (an unterminated string runs to
    the end). Escaped backslashes go first, pairwise from the left as JSON reads them, then
    escaped quotes; every quote left opens or closes a string."""
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(unescaped.split(b'"')[0::2])


def check_shape(body: bytes) -> None:
    """422 when the JSON in ``body`` nests deeper than ``MAX_DEPTH`` or holds more than
    ``MAX_VALUES`` values (counted as its commas and opening brackets, an upper bound).

    The passes read bytes as UTF-8, where no byte of a non-ASCII character can be mistaken
    for a quote or a bracket; a body in another encoding ``json.loads`` would accept (UTF-16,
    UTF-32) is measured in UTF-8."""
    encoding = json.detect_encoding(body)
    if encoding not in ("utf-8", "utf-8-sig"):
        try:
            body = body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
        except UnicodeError:
            return  # json.loads cannot decode it either: it never starts parsing
    opens = body.count(b"[") + body.count(b"{")
    if opens <= MAX_DEPTH and opens + body.count(b",") < MAX_VALUES:
        return  # brackets and commas inside strings counted too: it cannot be over either
    structure = _outside_strings(body)
    opens = structure.count(b"[") + structure.count(b"{")
    if opens + structure.count(b",") >= MAX_VALUES:
        raise _refused("json_too_large", f"The body holds more than {MAX_VALUES} values.")
    depth = 0
    # At most 2 * opens + 1 brackets are looked at: a close below depth 0 is where the parser
    # stops (the JSON is not valid), so nothing after it can be reached.
    for bracket in structure.translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in _OPEN else -1
        if depth > MAX_DEPTH:
            raise _refused("json_too_deep", f"The body nests deeper than {MAX_DEPTH} levels.")
        if depth < 0:
            return


def read_as_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body with this ``Content-Type`` as JSON: the very rule it
    applies (``fastapi.routing``), so no JSON body reaches its parser unchecked. Without a
    content type FastAPI does not read JSON (its strict content type default)."""
    if content_type == "application/json":
        return True  # nearly every request: no header parsing needed
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


async def parse_json_body(request: Request) -> None:
    """Parse a JSON body strictly before FastAPI reads it (``Request.json()`` keeps it)."""
    if request.method not in ("POST", "PUT", "PATCH") or not read_as_json(
        request.headers.get("content-type")
    ):
        return
    body = await request.body()
    if not body:
        return
    check_shape(body)
    try:
        parsed = json.loads(body, object_pairs_hook=_unique_keys)
    except RecursionError:  # not reached within the bounds above; should the stack be small
        raise _refused("json_too_deep", "The body nests too deep.") from None
    except DuplicateKey as duplicate:
        raise RequestValidationError(
            [
                {
                    "type": "duplicate_key",
                    "loc": ("body", duplicate.key),
                    "msg": f"The key '{duplicate.key}' appears more than once in an object.",
                }
            ]
        ) from None
    except ValueError:  # not JSON (or not UTF-8): FastAPI answers it as before
        return
    request._json = parsed  # what Starlette's Request.json() returns from now on
