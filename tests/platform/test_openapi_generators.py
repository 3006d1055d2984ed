"""The OpenAPI document in the shape client generators need: named enums, a readable token form,
request defaults that do not make a field required to send, GAS levels that generate, and the
400 of an unreadable body declared everywhere a body is taken."""

import pytest

from app.core.openapi import PLAIN_TEXT_PATTERN
from tests.support.worlds import assert_problem

ENUMS = {
    "Priority": ["low", "medium", "high"],
    "Visibility": ["shared", "private"],
    "GoalStatus": ["proposed", "active", "on_hold", "completed", "cancelled"],
    "AchievementStatus": [
        "in_progress",
        "improving",
        "worsening",
        "no_change",
        "achieved",
        "sustaining",
        "not_achieved",
        "no_progress",
        "not_attainable",
    ],
    "StepStatus": ["todo", "done"],
    "Role": ["client", "therapist"],
    "Trend": ["improving", "steady", "worsening"],
    "EncouragementKind": ["note", "celebration"],
    "AccessAction": ["read", "create", "update", "delete"],
    "OAuthErrorCode": [
        "invalid_request",
        "invalid_grant",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_client",
    ],
}
GAS = {"-2": "Stays in", "-1": "Door", "0": "Corner", "1": "Shop", "2": "Shop, alone"}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
async def document(client):
    return (await client.get("/openapi.json")).json()


def walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, i))


def body_schemas(document):
    for item in document["paths"].values():
        for method, operation in item.items():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield method, media["schema"]["$ref"].rsplit("/", 1)[1]


async def test_enums_are_named_components_and_nothing_inlines_one(document):
    schemas = document["components"]["schemas"]
    for name, values in ENUMS.items():
        assert schemas[name]["enum"] == values, name
        assert schemas[name]["type"] == "string", name
    named = {f"#/components/schemas/{n}" for n in schemas if "enum" in schemas[n]}
    inline = [
        path
        for path, node in walk(document)
        if isinstance(node, dict)
        and "enum" in node
        and path[:-1] != ("components", "schemas")  # a named enum
        and path[-1] != "propertyNames"  # the GAS levels' keys
    ]
    assert inline == []
    refs = {node for path, node in walk(document) if path and path[-1] == "$ref"}
    assert named <= refs


async def test_the_token_form_has_a_readable_name(document):
    schemas = document["components"]["schemas"]
    assert not [name for name in schemas if name.startswith("Body_")]
    content = document["paths"]["/v1/auth/token"]["post"]["requestBody"]["content"]
    ref = content["application/x-www-form-urlencoded"]["schema"]["$ref"]
    assert ref == "#/components/schemas/TokenRequest"
    assert schemas["TokenRequest"]["title"] == "TokenRequest"
    assert "grant_type" in schemas["TokenRequest"]["properties"]


async def test_every_json_body_is_described_by_its_own_model(document):
    # The renamed token form once took the place of another model of the same name, so two
    # JSON operations described the OAuth form as their body.
    from app.main import create_app

    schemas = document["components"]["schemas"]
    checked = 0
    for route in create_app().routes:
        body = getattr(route, "body_field", None)
        if body is None or not route.include_in_schema:
            continue
        model = body.field_info.annotation
        fields = {field.alias or name for name, field in model.model_fields.items()}
        for method in route.methods:
            content = document["paths"][route.path][method.lower()]["requestBody"]["content"]
            if "application/json" in content:
                ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
                assert set(schemas[ref]["properties"]) == fields, (route.path, ref)
                checked += 1
    assert checked > 10


async def test_request_fields_with_defaults_are_optional_and_carry_no_default(document):
    schemas = document["components"]["schemas"]
    for _, name in body_schemas(document):
        schema = schemas[name]
        for field, prop in schema.get("properties", {}).items():
            # openapi-typescript reads `default` as "always there": the field became required.
            assert "default" not in prop, (name, field)
    create = schemas["GoalCreate"]
    assert {"gas_weight", "visibility"}.isdisjoint(create["required"])
    assert "Default when left out: `1`" in create["properties"]["gas_weight"]["description"]
    assert '`"shared"`' in create["properties"]["visibility"]["description"]
    # Responses keep theirs: a token's type is always there.
    assert schemas["TokenResponse"]["properties"]["token_type"]["default"] == "bearer"


async def test_gas_levels_are_a_map_of_exactly_the_five_levels(document):
    gas = document["components"]["schemas"]["GasLevels"]
    assert "properties" not in gas  # generators name properties after keys: "-2" == "2"
    assert gas["propertyNames"] == {"enum": list(GAS)}
    assert gas["additionalProperties"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 500,
        "pattern": PLAIN_TEXT_PATTERN,  # no control characters (app/core/schemas.py)
    }
    assert gas["minProperties"] == gas["maxProperties"] == 5


async def test_gas_levels_wire_format_is_unchanged(client, make_user):
    ann = await make_user("client")
    r = await client.post("/v1/goals", json={"title": "G", "gas_levels": GAS}, headers=ann.headers)
    assert r.status_code == 201, r.text
    assert r.json()["gas_levels"] == GAS
    got = await client.get(f"/v1/goals/{r.json()['id']}", headers=ann.headers)
    assert got.json()["gas_levels"] == GAS  # (key order is not part of JSON: jsonb sorts)
    for bad in (
        {k: v for k, v in GAS.items() if k != "0"},  # a level missing
        {**GAS, "3": "More"},  # another key
        {**GAS, "1": ""},
        {**GAS, "1": "x" * 501},
    ):
        r = await client.post(
            "/v1/goals", json={"title": "G", "gas_levels": bad}, headers=ann.headers
        )
        assert_problem(r, 422, "validation-error")


async def test_every_json_body_declares_400_as_problem_json(document):
    seen = 0
    for item in document["paths"].values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                seen += 1
                assert operation["responses"]["400"]["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, operation["operationId"]
    assert seen >= 10


@pytest.mark.parametrize(("method", "path"), [("post", "/v1/auth/register"), ("post", "/v1/goals")])
async def test_a_body_that_is_not_utf8_json_is_a_400_problem(client, make_user, method, path):
    ann = await make_user("client")
    r = await client.request(
        method,
        path,
        content=b'{"title": "\xff"}',
        headers={**ann.headers, "content-type": "application/json"},
    )
    assert_problem(r, 400, "bad-request")
