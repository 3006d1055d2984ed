"""Operations endpoints and the OpenAPI document integrators generate clients from."""

import json
import re

import httpx
import pytest

from app.auth.scopes import Scope
from app.core import engines, sessions
from app.core.config import get_settings
from tests.support.paths import ROOT

AUTH_OPERATIONS = {
    ("post", "/v1/auth/register"): "auth_register",
    ("post", "/v1/auth/token"): "auth_token",
    ("post", "/v1/auth/logout"): "auth_logout",
    ("get", "/v1/me"): "me_get",
    ("patch", "/v1/me"): "me_update",
    ("post", "/v1/me/tokens"): "me_tokens_create",
    ("get", "/v1/me/tokens"): "me_tokens_list",
    ("delete", "/v1/me/tokens/{token_id}"): "me_tokens_delete",
    ("get", "/healthz"): "health_live",
    ("get", "/readyz"): "health_ready",
}
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}
COMMITTED = ROOT / "openapi" / "openapi.json"


@pytest.fixture
async def document(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_when_the_database_answers(client):
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_is_503_when_the_database_does_not_answer(app_instance, monkeypatch):
    from app.main import create_app

    monkeypatch.setenv("WAYPOINT_DATABASE_URL", "postgresql+psycopg://x@127.0.0.1:1/x")
    get_settings.cache_clear()
    sessions.forget_engines()
    try:
        broken = create_app()
        transport = httpx.ASGITransport(app=broken)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert r.json() == {"status": "unavailable"}
            assert (await c.get("/healthz")).status_code == 200
        await engines.dispose_engines()
    finally:
        get_settings.cache_clear()
        sessions.forget_engines()


async def test_docs_and_redoc_are_served(client):
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "/openapi.json" in docs.text
    redoc = await client.get("/redoc")
    assert redoc.status_code == 200
    assert "redoc" in redoc.text.lower()
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200


async def test_the_oauth2_password_flow_is_declared_with_every_scope(document):
    schemes = document["components"]["securitySchemes"]
    assert len(schemes) == 1
    (scheme,) = schemes.values()
    assert scheme["type"] == "oauth2"
    password = scheme["flows"]["password"]
    assert password["tokenUrl"] == "/v1/auth/token"
    assert set(password["scopes"]) == {str(s) for s in Scope}
    assert all(password["scopes"].values())


async def test_authenticated_operations_say_so(document):
    (scheme_name,) = document["components"]["securitySchemes"]
    public = {"/v1/auth/register", "/v1/auth/token", "/healthz", "/readyz", "/v1/fhir/metadata"}
    # The links sent by e-mail are followed without a login.
    public |= {
        "/v1/auth/password-reset",
        "/v1/auth/password-reset/confirm",
        "/v1/auth/verify-email",
        "/v1/auth/confirm-email",
        "/v1/notifications/unsubscribe/{token}",  # one click in a mail client, no login
    }
    for method, path, operation in operations(document):
        if path in public:
            assert "security" not in operation, (method, path)
            continue
        assert any(scheme_name in req for req in operation.get("security", [])), (method, path)
        assert "401" in operation["responses"], (method, path)


async def test_operation_ids_are_stable_and_readable(document):
    seen = {}
    for method, path, operation in operations(document):
        op_id = operation["operationId"]
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", op_id), op_id
        assert op_id not in seen, f"{op_id} used by {seen.get(op_id)} and {(method, path)}"
        seen[op_id] = (method, path)
    for (method, path), op_id in AUTH_OPERATIONS.items():
        assert document["paths"][path][method]["operationId"] == op_id


async def test_no_fastapi_validation_schemas_are_left(document):
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    assert '"ValidationError"' not in text
    assert "Problem" in document["components"]["schemas"]


async def test_every_error_is_declared_as_problem_json(document):
    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            if not code.isdigit() or int(code) < 400 or int(code) >= 500:
                continue
            if (path, code) == ("/v1/auth/token", "400"):
                # RFC 6749 section 5.2 prescribes its own JSON error body.
                assert response["content"] == {
                    "application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}
                }
                continue
            if path.startswith("/v1/fhir/"):
                # FHIR errors are OperationOutcomes.
                assert response["content"] == {
                    "application/fhir+json": {
                        "schema": {"$ref": "#/components/schemas/OperationOutcome"}
                    }
                }, (method, path, code)
                continue
            assert response["content"] == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (method, path, code)


async def test_the_token_endpoint_declares_its_form_body(document):
    operation = document["paths"]["/v1/auth/token"]["post"]
    content = operation["requestBody"]["content"]
    assert list(content) == ["application/x-www-form-urlencoded"]
    ref = content["application/x-www-form-urlencoded"]["schema"]["$ref"]
    form = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"grant_type", "username", "password", "scope", "refresh_token"} <= set(
        form["properties"]
    )
    assert set(operation["responses"]) == {"200", "400", "429", "503"}
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    token = document["components"]["schemas"]["TokenResponse"]
    assert set(token["required"]) >= {"access_token", "expires_in", "refresh_token", "scope"}


async def test_auth_success_responses_have_named_schemas(document):
    expected = {
        ("post", "/v1/auth/register"): ("201", "UserOut"),
        ("get", "/v1/me"): ("200", "UserOut"),
        ("patch", "/v1/me"): ("200", "UserOut"),
        ("post", "/v1/me/tokens"): ("201", "PersonalTokenCreated"),
        ("get", "/v1/me/tokens"): ("200", "PersonalTokenPage"),
        ("get", "/healthz"): ("200", "Health"),
    }
    for (method, path), (status, schema) in expected.items():
        response = document["paths"][path][method]["responses"][status]
        assert response["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{schema}"
        }
    for method, path in (("post", "/v1/auth/logout"), ("delete", "/v1/me/tokens/{token_id}")):
        assert "204" in document["paths"][path][method]["responses"]


async def test_committed_openapi_matches_served(client):
    served = (await client.get("/openapi.json")).json()
    committed = json.loads(COMMITTED.read_text())
    assert served == committed, "openapi/openapi.json is stale: run `make openapi`"
