"""Forged and broken bearer tokens: every one is 401 problem+json with WWW-Authenticate.

Tokens are built by hand (base64url + HMAC) so the tests do not trust the JWT library they check.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest

from tests.support.paths import ROOT
from tests.support.worlds import assert_problem

SECRET = "test-secret-key-that-is-long-enough-0123456789"  # conftest's WAYPOINT_SECRET_KEY


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims: dict, *, alg: str = "HS256", key: str = SECRET, header: dict | None = None):
    head = b64(json.dumps(header or {"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    if alg == "none":
        return f"{head}.{body}."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return f"{head}.{body}.{b64(hmac.new(key.encode(), signing_input, digest).digest())}"


def claims_for(user_id: str, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": "waypoint",
        "aud": "waypoint-api",
        "sub": user_id,
        "role": "client",
        "scope": "client goals:read",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def session_of(actor) -> str:
    """The login (``sid``) an actor's access token names."""
    body = actor.access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["sid"]


def assert_unauthorized(response):
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_hand_made_valid_token_works(client, make_user):
    """The control case: the forgeries below fail for their flaw, not for the way they're made."""
    ann = await make_user("client")
    token = sign(claims_for(ann.id, sid=session_of(ann)))
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == ann.id


FORGERIES = {
    "alg none": lambda uid: sign(claims_for(uid), alg="none"),
    "alg none, capitalised": lambda uid: sign(claims_for(uid), alg="none", header={"alg": "None"}),
    "HS384 with the right key": lambda uid: sign(claims_for(uid), alg="HS384"),
    "HS512 with the right key": lambda uid: sign(claims_for(uid), alg="HS512"),
    "wrong key": lambda uid: sign(claims_for(uid), key="another-secret-key-of-enough-length-42"),
    "empty key": lambda uid: sign(claims_for(uid), key=""),
    "missing exp": lambda uid: sign(claims_for(uid, exp=None)),
    "missing aud": lambda uid: sign(claims_for(uid, aud=None)),
    "missing iss": lambda uid: sign(claims_for(uid, iss=None)),
    "missing sub": lambda uid: sign(claims_for(uid, sub=None)),
    "missing jti": lambda uid: sign(claims_for(uid, jti=None)),
    "missing iat": lambda uid: sign(claims_for(uid, iat=None)),
    "missing typ": lambda uid: sign(claims_for(uid, typ=None)),
    "typ refresh": lambda uid: sign(claims_for(uid, typ="refresh")),
    "missing role": lambda uid: sign(claims_for(uid, role=None)),
    "missing scope": lambda uid: sign(claims_for(uid, scope=None)),
    "unknown role": lambda uid: sign(claims_for(uid, role="admin", scope="admin goals:read")),
    "role scope not granted": lambda uid: sign(claims_for(uid, scope="goals:read")),
    "role scope of another role": lambda uid: sign(claims_for(uid, scope="therapist")),
    "wrong aud": lambda uid: sign(claims_for(uid, aud="someone-else")),
    "wrong iss": lambda uid: sign(claims_for(uid, iss="evil")),
    "expired": lambda uid: sign(
        claims_for(uid, iat=int(time.time()) - 3600, exp=int(time.time()) - 5)
    ),
    "exp not a number": lambda uid: sign(claims_for(uid, exp="tomorrow")),
    "sub not a uuid": lambda uid: sign(claims_for(uid, sub="1")),
    "sub of nobody": lambda uid: sign(claims_for(str(uuid.uuid4()))),
    "scope not a string": lambda uid: sign(claims_for(uid, scope=["client"])),
    "payload not an object": lambda uid: sign([1, 2, 3]),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", list(FORGERIES))
async def test_forged_tokens_are_401(client, make_user, name):
    ann = await make_user("client")
    token = FORGERIES[name](ann.id)
    assert_unauthorized(await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}))


async def test_a_flipped_signature_is_401(client, make_user):
    ann = await make_user("client")
    head, body, signature = ann.access_token.split(".")
    middle = len(signature) // 2
    flipped = (
        signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    )
    for token in (f"{head}.{body}.{flipped}", f"{head}.{body}.", f"{head}.{body}"):
        assert_unauthorized(
            await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        )


async def test_a_tampered_payload_is_401(client, make_user):
    ann = await make_user("client", scope="goals:read")
    head, body, signature = ann.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["scope"] = "client goals:read goals:write"
    token = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    assert_unauthorized(await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}))


async def test_a_refresh_token_is_not_a_bearer_token(client, make_user):
    ann = await make_user("client")
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {ann.refresh_token}"})
    assert_unauthorized(r)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30",
        "Bearer wpt_not-a-real-personal-token",
        "Bearer ",
        "Bearer",
        "",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "bearer",
    ],
)
async def test_garbage_and_wrong_schemes_are_401(client, authorization):
    assert_unauthorized(await client.get("/v1/me", headers={"Authorization": authorization}))


async def test_a_valid_token_in_another_scheme_is_401(client, make_user):
    ann = await make_user("client")
    r = await client.get("/v1/me", headers={"Authorization": f"Token {ann.access_token}"})
    assert_unauthorized(r)


async def test_every_authenticated_route_refuses_a_forged_token(client, make_user):
    ann = await make_user("client")
    forged = {"Authorization": f"Bearer {sign(claims_for(ann.id), alg='none')}"}
    for method, path in (
        ("POST", "/v1/auth/logout"),
        ("GET", "/v1/me"),
        ("PATCH", "/v1/me"),
        ("GET", "/v1/me/tokens"),
        ("POST", "/v1/me/tokens"),
        ("DELETE", f"/v1/me/tokens/{uuid.uuid4()}"),
    ):
        r = await client.request(method, path, headers=forged, json={})
        assert_unauthorized(r)


def test_python_jose_is_confined_to_core_security():

    root = ROOT / "app"
    users = sorted(
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if any(
            line.strip().startswith(("import jose", "from jose"))
            for line in path.read_text().splitlines()
        )
    )
    assert users == ["app/core/security.py"]


def test_the_token_is_signed_with_hs256_and_typed():
    from app.core.security import ALGORITHMS, create_access_token, decode_access_token

    assert ALGORITHMS == ["HS256"]
    token, lifetime = create_access_token(
        user_id=uuid.uuid4(), role="client", scopes=["client"], session_id=None
    )
    head, body, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert header["alg"] == "HS256"
    assert {"sub", "role", "scope", "iat", "exp", "iss", "aud", "jti", "typ"} <= set(claims)
    assert claims["exp"] - claims["iat"] == lifetime == 900
    assert decode_access_token(token).role == "client"


async def test_a_signed_token_without_a_live_session_is_refused(client, make_user):
    """A valid signature is not enough: the token must name a login that was made and is live."""
    ann = await make_user("client")
    for sid in (None, str(uuid.uuid4()), "not-a-uuid"):
        token = sign(claims_for(ann.id, sid=sid))
        assert_unauthorized(
            await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        )
    # Someone else's live login does not make a token for Ann.
    bob = await make_user("client")
    token = sign(claims_for(ann.id, sid=session_of(bob)))
    assert_unauthorized(await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}))
