"""Hostile input never reaches the database: control characters in any text (generated from the
OpenAPI document, so a new field cannot be forgotten), crafted cursors and far-off instants on
every list. Each answer is a 4xx problem, never a 5xx, and nothing is stored."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.hostile import (
    b64,
    build_world,
    caller_for,
    example,
    fill_path,
    json_operations,
    list_urls,
    resolve,
    row_counts,
    text_paths,
    with_value,
)
from tests.support.worlds import assert_problem

HOSTILE = ["a\u0000b", "\u0007", "x\u001by", "tab\u000bvertical", "\u001f", "lone\ud800"]
JSON_BODY = {"content-type": "application/json"}


@pytest.fixture
async def world(client, make_user) -> dict[str, Any]:
    return await build_world(client, make_user)


@pytest.fixture
async def document(client) -> dict[str, Any]:
    return (await client.get("/openapi.json")).json()


# --- control characters ----------------------------------------------------------------------


async def test_every_text_field_of_every_body_refuses_control_characters(
    client, world, document, sync_engine
):
    ids = world["ids"]
    before = row_counts(sync_engine)
    tried = 0
    for method, path, operation in json_operations(document):
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        base = example(document, schema, "", ids)
        fields = text_paths(document, schema)
        # Bodies without any text: deletions, and settings that are all booleans and numbers.
        no_text = method == "delete" or path == "/v1/me/notification-settings"
        assert fields or no_text, (method, path)
        for field in fields:
            for hostile in HOSTILE:
                body = with_value(document, schema, base, field, hostile)
                r = await client.request(
                    method,
                    fill_path(path, ids),
                    content=json.dumps(body).encode(),
                    headers={**JSON_BODY, **caller_for(world, operation)},
                )
                if field == ("token",):
                    # A link's token is judged by its route, never a validation error.
                    assert_problem(r, 400, "invalid-token")
                    tried += 1
                    continue
                problem = assert_problem(r, 422, "validation-error")
                located = [e["loc"] for e in problem["errors"]]
                assert any(loc[:2] == ["body", field[0]] for loc in located), (
                    method,
                    path,
                    field,
                    located,
                )
                tried += 1
    assert tried >= 30 * len(HOSTILE)  # every text field of the API, not a handful
    assert row_counts(sync_engine) == before  # nothing stored


async def test_registration_display_name_with_nul_is_refused(client, sync_engine):
    before = row_counts(sync_engine)
    r = await client.post(
        "/v1/auth/register",
        json={
            "email": "nul@example.com",
            "password": "a long passphrase",
            "display_name": "Ann\u0000",
            "role": "client",
        },
    )
    problem = assert_problem(r, 422)
    assert problem["errors"][0]["loc"] == ["body", "display_name"]
    assert row_counts(sync_engine) == before


async def test_text_keeps_tabs_and_newlines(client, world):
    r = await client.post(
        "/v1/goals",
        json={"title": "Walk\tfar", "description": "line one\r\nline two\n"},
        headers=world["client"].headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "line one\r\nline two\n"


async def test_token_endpoint_form_fields_refuse_control_characters(client, world, document):
    form = document["paths"]["/v1/auth/token"]["post"]["requestBody"]["content"]
    schema = resolve(document, form["application/x-www-form-urlencoded"]["schema"])
    names = list(schema["properties"])
    assert {"grant_type", "username", "password", "refresh_token"} <= set(names)
    base = {"grant_type": "password", "username": world["client"].email, "password": "x" * 12}
    for name in names:
        for hostile in ("a\u0000b", "\u0007"):
            r = await client.post("/v1/auth/token", data={**base, name: hostile})
            assert r.status_code == 400, (name, r.text)
            assert r.json()["error"] == "invalid_request"
            assert name in r.json()["error_description"]
    # the raw form as the issue reported it
    r = await client.post(
        "/v1/auth/token",
        content=b"grant_type=password&username=a%00b&password=whatever",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_text_query_parameters_refuse_control_characters(client, world, document):
    for path, item in document["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path:
            continue
        for parameter in operation.get("parameters", []):
            schema = resolve(document, parameter["schema"])
            if parameter["in"] != "query" or schema.get("type") != "string":
                continue
            if "enum" in schema or "format" in schema:
                continue
            for hostile in ("a\u0000b", "\u0007"):
                r = await client.get(
                    path,
                    params={parameter["name"]: hostile},
                    headers=caller_for(world, operation),
                )
                assert r.status_code in (400, 422), (path, parameter["name"], r.text)
                if path.startswith("/v1/fhir/"):  # FHIR's own error resource
                    assert r.json()["resourceType"] == "OperationOutcome", r.text
                else:
                    assert_problem(r, r.status_code)


# --- cursors and instants on every list ------------------------------------------------------


CRAFTED = [
    b64([123]),
    b64([1, 2]),
    b64(["x", 1]),
    b64([1, "x"]),
    b64([2**40, "00000000-0000-0000-0000-000000000000"]),
    b64(["a\u0000b", "00000000-0000-0000-0000-000000000000"]),
    b64([None, None]),
    b64({"a": 1}),
    b64([[], {}]),
    b64([True]),
    "not base64 at all!",
    "é",
    "=",
]


# Far instants: refused by every list whose first key is a time or a day. The therapist's
# client list sorts by name, where such a string is merely a name that sorts early.
FAR_INSTANTS = [
    b64(["0001-01-01T00:00:00+14:00", "00000000-0000-0000-0000-000000000000"]),
    b64(["9999-12-31T23:59:59-14:00", "00000000-0000-0000-0000-000000000000"]),
    b64(["0001-01-01", "00000000-0000-0000-0000-000000000000"]),
]


def caller_for_list(world: dict, operation: dict) -> dict[str, str]:
    return caller_for(world, operation)


async def test_crafted_cursors_are_400_on_every_list(client, world, document):
    urls = list_urls(document, world["ids"])
    assert len(urls) >= 9  # care links, tokens, steps, reviews, due, encouragements, clients...
    for url, operation in urls:
        headers = caller_for_list(world, operation)
        ok = await client.get(url, headers=headers)
        assert ok.status_code == 200, (url, ok.text)
        for cursor in CRAFTED:
            r = await client.get(url, params={"cursor": cursor}, headers=headers)
            assert_problem(r, 400, "bad-request")
        for cursor in FAR_INSTANTS:
            r = await client.get(url, params={"cursor": cursor}, headers=headers)
            if url == "/v1/clients":
                assert r.status_code == 200, r.text
            else:
                assert_problem(r, 400, "bad-request")


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0.5",
        "1700000000",
        "2026-01-01",
        "2026-01-01T00:00:00",
        "tomorrow",
    ],
)
async def test_updated_since_takes_rfc3339_within_the_calendar(client, world, value):
    r = await client.get(
        "/v1/goals", params={"updated_since": value}, headers=world["client"].headers
    )
    problem = assert_problem(r, 422)
    assert problem["errors"][0]["loc"] == ["query", "updated_since"]


async def test_updated_since_accepts_offsets_and_fractions(client, world):
    for value in ("2000-01-01T00:00:00Z", "2000-01-01T02:00:00.123456+02:00"):
        r = await client.get(
            "/v1/goals", params={"updated_since": value}, headers=world["client"].headers
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
instants = st.datetimes(
    timezones=st.sampled_from([dt.timezone(dt.timedelta(hours=h)) for h in (-14, 0, 14)])
).map(lambda d: d.isoformat())
cursor_values = st.one_of(
    st.text(max_size=80),
    json_values.map(b64),
    st.lists(st.one_of(instants, st.uuids().map(str), st.integers(), st.text()), max_size=3).map(
        b64
    ),
)


async def test_junk_cursors_and_instants_never_answer_5xx(client, world, document):
    urls = list_urls(document, world["ids"])

    def get(url: str, params: dict, headers: dict):
        return anyio.from_thread.run(lambda: client.get(url, params=params, headers=headers))

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(cursor=cursor_values, since=st.one_of(instants, st.text(max_size=40)))
    def check(cursor: str, since: str) -> None:
        for url, operation in urls:
            headers = caller_for_list(world, operation)
            r = get(url, {"cursor": cursor}, headers)
            assert r.status_code in (200, 400, 422), (url, cursor, r.text)
            if r.status_code != 200:
                assert r.headers["content-type"].startswith("application/problem+json")
        r = get("/v1/goals", {"updated_since": since}, world["client"].headers)
        assert r.status_code in (200, 422), (since, r.text)

    await anyio.to_thread.run_sync(check)
