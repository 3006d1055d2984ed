"""Input never drives unbounded work: JSON bodies are bounded in depth and in values (422),
query strings in length (414) and in repeats (422), bearer tokens in length (401), cursors by
their length, forms by their field count and CSV imports by their rows. Each refusal is
problem+json and stores nothing; no input answers 5xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.auth.dependencies import MAX_TOKEN_CHARS
from app.core.query_bounds import MAX_QUERY_BYTES
from app.core.strict_json import MAX_DEPTH, MAX_VALUES, check_shape
from app.scripts import importer
from tests.support.hostile import (
    b64,
    build_world,
    caller_for,
    example,
    fill_path,
    json_operations,
    list_urls,
    row_counts,
)
from tests.support.worlds import assert_problem

JSON_BODY = {"content-type": "application/json"}


@pytest.fixture
async def world(client, make_user) -> dict[str, Any]:
    return await build_world(client, make_user)


@pytest.fixture
async def document(client) -> dict[str, Any]:
    return (await client.get("/openapi.json")).json()


def nested(depth: int, leaf: Any = 0) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def refusal(body: bytes) -> str | None:
    """The error type ``check_shape`` refuses ``body`` with, None when it lets it through."""
    try:
        check_shape(body)
    except Exception as exc:
        return exc.errors()[0]["type"]  # type: ignore[attr-defined]
    return None


# --- the measure itself -------------------------------------------------------------------------


def depth_of(value: Any) -> int:
    if isinstance(value, list | dict):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max((depth_of(child) for child in children), default=0)
    return 0


def counted_values(value: Any) -> int:
    """Opening brackets plus commas of ``value`` as JSON: what the bound counts."""
    if not isinstance(value, list | dict):
        return 0
    children = list(value.values() if isinstance(value, dict) else value)
    return 1 + max(len(children) - 1, 0) + sum(counted_values(c) for c in children)


# Text that looks like structure: brackets, quotes, escapes and commas inside strings must not
# count, whatever the encoding.
tricky_text = st.text(alphabet='[]{}",:\\ a\u0122\u2222\u015c\U0001f600', max_size=12)
leaves = st.none() | st.booleans() | st.integers() | tricky_text
documents = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    value=documents,
    depth=st.integers(0, 2 * MAX_DEPTH),
    encoding=st.sampled_from(["utf-8", "utf-16", "utf-16-be", "utf-32-le"]),
)
def test_the_bound_is_exactly_the_depth_and_the_values_of_the_document(value, depth, encoding):
    document = nested(depth, value)
    body = json.dumps(document, ensure_ascii=False).encode(encoding)
    too_deep = depth_of(document) > MAX_DEPTH
    too_wide = counted_values(document) >= MAX_VALUES
    expected = "json_too_large" if too_wide else "json_too_deep" if too_deep else None
    assert refusal(body) == expected


@pytest.mark.parametrize("width", [MAX_VALUES - 2, MAX_VALUES - 1])
def test_width_is_counted_to_the_value(width):
    values = list(range(width))  # width - 1 commas and one bracket
    expected = None if width - 1 + 1 < MAX_VALUES else "json_too_large"
    assert refusal(json.dumps(values).encode()) == expected
    assert refusal(json.dumps({str(i): i for i in range(width)}).encode()) == expected


structural = st.text(alphabet='[]{}",:\\ 0a', max_size=400)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(prefix=st.integers(0, 3000), rest=structural)
def test_whatever_the_bound_lets_through_parses_without_deep_recursion(prefix, rest):
    """Valid or not, a body the bound lets through never makes the parser recurse past it:
    the parser stops at the first error, and up to there the bound read what it reads."""
    body = ("[" * prefix + rest).encode()
    if refusal(body) is None:
        try:
            parsed = json.loads(body)
        except ValueError:
            return
        assert depth_of(parsed) <= MAX_DEPTH


# --- JSON bodies on the API ---------------------------------------------------------------------


async def test_a_body_nesting_5000_arrays_is_422_and_stores_nothing(client, world, sync_engine):
    before = row_counts(sync_engine)
    body = '{"title": ' + "[" * 5000 + "]" * 5000 + "}"
    r = await client.post(
        "/v1/goals", content=body, headers={**JSON_BODY, **world["client"].headers}
    )
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"] == [
        {
            "loc": ["body"],
            "msg": f"The body nests deeper than {MAX_DEPTH} levels.",
            "type": "json_too_deep",
        }
    ]
    assert row_counts(sync_engine) == before


async def test_depth_64_is_read_and_65_refused(client, world):
    headers = {**JSON_BODY, **world["client"].headers}
    inside = {"title": nested(MAX_DEPTH - 1)}
    r = await client.post("/v1/goals", content=json.dumps(inside), headers=headers)
    problem = assert_problem(r, 422)
    assert problem["errors"][0]["loc"][:2] == ["body", "title"]  # read, then validated
    beyond = {"title": nested(MAX_DEPTH)}
    r = await client.post("/v1/goals", content=json.dumps(beyond), headers=headers)
    assert assert_problem(r, 422)["errors"][0]["type"] == "json_too_deep"


async def test_a_body_of_too_many_values_is_422(client, world, sync_engine):
    before = row_counts(sync_engine)
    wide = {"title": "Walk", "gas_levels": {str(i): "x" for i in range(MAX_VALUES)}}
    r = await client.post(
        "/v1/goals", content=json.dumps(wide), headers={**JSON_BODY, **world["client"].headers}
    )
    assert assert_problem(r, 422)["errors"][0]["type"] == "json_too_large"
    assert row_counts(sync_engine) == before


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
        "application/json, text/plain",
        "text/plain",
        None,
    ],
)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
async def test_deep_bodies_never_answer_5xx_whatever_the_content_type(
    client, world, content_type, encoding
):
    body = ('{"title": ' + "[" * 3000 + "]" * 3000 + "}").encode(encoding)
    headers = dict(world["client"].headers)
    if content_type is not None:
        headers["content-type"] = content_type
    r = await client.post("/v1/goals", content=body, headers=headers)
    assert r.status_code in (400, 415, 422), r.text
    assert_problem(r, r.status_code)


def shaped(document: dict, schema: dict, ids: dict, draw: Any) -> Any:
    """A body with a hostile value (too deep, too wide or near either bound) at a random
    place: instead of the whole body, or as one of its fields (a field it has, or not)."""
    kind = draw(st.sampled_from(["deep", "wide", "near"]))
    if kind == "deep":
        value = nested(draw(st.integers(MAX_DEPTH + 1, 4 * MAX_DEPTH)), draw(leaves))
    elif kind == "wide":
        width = draw(st.integers(MAX_VALUES, MAX_VALUES + 50))
        value = draw(st.sampled_from([[0] * width, {str(i): None for i in range(width)}]))
    else:
        depth = draw(st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3))
        value = nested(depth, draw(st.lists(leaves, max_size=3)))
    base = example(document, schema, "", ids)
    if not isinstance(base, dict) or draw(st.booleans()):
        return value
    field = draw(st.sampled_from([*base, "unknown"]) if base else st.just("unknown"))
    return {**base, field: value}


async def test_nested_and_wide_bodies_on_every_route_never_answer_5xx_nor_store(
    client, world, document, sync_engine
):
    operations = json_operations(document)
    assert len(operations) >= 11  # every route that takes a body, read from the document
    ids = world["ids"]
    callers = {"client": world["client"].headers, "therapist": world["therapist"].headers}
    before = row_counts(sync_engine)

    def send(method: str, url: str, body: bytes, headers: dict) -> Any:
        return anyio.from_thread.run(
            lambda: client.request(method, url, content=body, headers=headers)
        )

    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        for method, path, operation in operations:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            body = json.dumps(shaped(document, schema, ids, data.draw)).encode()
            for who, caller in callers.items():
                headers = caller if operation.get("security") else {}
                r = send(method, fill_path(path, ids), body, {**JSON_BODY, **headers})
                assert r.status_code < 500, (method, path, who, r.text)
                assert r.status_code >= 400, (method, path, who, r.text)
                assert r.headers["content-type"].startswith("application/problem+json")

    await anyio.to_thread.run_sync(check)
    assert row_counts(sync_engine) == before


# --- query strings, tokens, cursors, forms ------------------------------------------------------


async def test_a_parameter_given_twice_is_422(client, world):
    headers = world["client"].headers
    r = await client.get("/v1/goals?limit=1&limit=2", headers=headers)
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"] == [
        {"loc": ["query", "limit"], "msg": "The parameter 'limit' appears more than once.",
         "type": "repeated_parameter"}
    ]  # fmt: skip
    r = await client.get("/v1/goals?status=active&status=completed", headers=headers)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", "status"]
    # Parameters a route does not take are ignored, as they always were.
    assert (await client.get("/v1/goals?x=1&x=2", headers=headers)).status_code == 200
    assert (await client.get("/v1/me?x=1&x=2", headers=headers)).status_code == 200


def query_parameters(document: dict, ids: dict[str, str]) -> list[tuple[str, str, dict]]:
    """(url, parameter name, operation) for every query parameter of every GET."""
    found = []
    for path, item in document["paths"].items():
        operation = item.get("get")
        for parameter in (operation or {}).get("parameters", []):
            if parameter["in"] == "query":
                found.append((fill_path(path, ids), parameter["name"], operation))
    return found


async def test_every_query_parameter_given_twice_is_refused(client, world, document):
    parameters = query_parameters(document, world["ids"])
    assert len(parameters) >= 20
    for url, name, operation in parameters:
        r = await client.get(
            url, params=[(name, "1"), (name, "1")], headers=caller_for(world, operation)
        )
        if url.startswith("/v1/fhir/"):  # FHIR's own error resource
            assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
        else:
            assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", name], (url, name)


@pytest.mark.parametrize("value", ["9" * 8000, "-" + "9" * 8000, "a" * 8000, "%" * 2000, "1e999"])
async def test_huge_query_values_never_answer_5xx(client, world, document, value):
    for url, name, operation in query_parameters(document, world["ids"]):
        r = await client.get(url, params={name: value}, headers=caller_for(world, operation))
        assert r.status_code in (200, 400, 414, 422), (url, name, r.text)


async def test_fhir_answers_a_repeated_parameter_with_an_outcome(client, world):
    r = await client.get(
        f"/v1/fhir/Goal?patient={world['client'].id}&patient={world['client'].id}",
        headers=world["client"].headers,
    )
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_a_query_string_over_the_bound_is_414_on_every_path(client, world):
    headers = world["client"].headers
    long_query = "x=" + "a" * (MAX_QUERY_BYTES - 1)
    for path in ("/v1/goals", "/v1/me", "/healthz", "/v1/no-such-path"):
        r = await client.get(f"{path}?{long_query}", headers=headers)
        problem = assert_problem(r, 414, "uri-too-long")
        assert str(MAX_QUERY_BYTES) in problem["detail"]
    r = await client.post(f"/v1/goals?{long_query}", json={"title": "x"}, headers=headers)
    assert_problem(r, 414)
    assert (await client.get("/v1/goals", headers=headers)).json()["items"][0]["title"] == "Walk"


async def test_the_longest_honest_query_string_is_within_the_bound(client, world):
    """Every filter of the goals list at its longest: an external_id of 200 four-byte
    characters (percent-encoded: 2,400 bytes) and a cursor of 512 characters."""
    params = {
        "client_id": world["client"].id,
        "status": "active",
        "external_id": "\U0001f600" * 200,
        "updated_since": "2026-01-31T09:30:00.123456789+14:00",
        "limit": "200",
        "cursor": "A" * 512,
    }
    r = await client.get("/v1/goals", params=params, headers=world["client"].headers)
    assert len(r.request.url.query) < MAX_QUERY_BYTES
    assert_problem(r, 400, "bad-request")  # the cursor, read and refused: not 414


async def test_a_bearer_token_over_the_bound_is_401_before_it_is_decoded(client, world):
    assert len(world["client"].access_token) < MAX_TOKEN_CHARS / 4
    token = await client.post(
        "/v1/me/tokens",
        json={"name": "all", "scopes": ["goals:read", "goals:write"]},
        headers=world["client"].headers,
    )
    assert len(token.json()["token"]) < MAX_TOKEN_CHARS / 4
    header = "e" + "A" * (MAX_TOKEN_CHARS * 10)
    for value in (header, "wpt_" + "A" * MAX_TOKEN_CHARS):
        r = await client.get("/v1/me", headers={"Authorization": f"Bearer {value}"})
        assert_problem(r, 401, "unauthorized")


async def test_a_cursor_nested_as_deep_as_its_length_allows_is_400(client, world, document):
    deepest = b64(json.loads("[" * 190 + "]" * 190))
    assert len(deepest) <= 512
    for url, operation in list_urls(document, world["ids"]):
        r = await client.get(url, params={"cursor": deepest}, headers=caller_for(world, operation))
        assert_problem(r, 400, "bad-request")
    r = await client.get("/v1/sync", params={"cursor": deepest}, headers=world["client"].headers)
    assert_problem(r, 400, "bad-request")
    r = await client.get(
        "/v1/fhir/Goal", params={"_cursor": deepest}, headers=world["client"].headers
    )
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


async def test_a_token_form_of_too_many_fields_is_an_oauth_invalid_request(client):
    form = "&".join(f"f{i}=1" for i in range(1001))
    r = await client.post(
        "/v1/auth/token",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request"  # in RFC 6749's words, as the route declares


def test_an_import_file_over_the_row_bound_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(importer, "MAX_ROWS", 3)
    path = tmp_path / "goals.csv"
    path.write_text("external_id,title\n" + "".join(f"g{i},Goal {i}\n" for i in range(3)))
    assert len(importer.read_rows(path)) == 3
    path.write_text("external_id,title\n" + "".join(f"g{i},Goal {i}\n" for i in range(4)))
    with pytest.raises(importer.BadFile, match="more than 3 rows"):
        importer.read_rows(path)
