"""Register, /v1/me and PATCH /v1/me: shapes as documented, and bad input."""

import datetime as dt
import uuid

import sqlalchemy as sa

from app.auth.schemas import UserOut
from tests.support.worlds import PASSWORD, assert_problem, login

USER_FIELDS = set(UserOut.model_fields)


def registration(**overrides):
    body = {
        "email": "Ada.Lovelace@Example.com",
        "password": PASSWORD,
        "display_name": "Ada",
        "role": "client",
        "timezone": "Europe/Berlin",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def test_register_answers_the_user_and_never_the_password(client, sync_engine):
    r = await client.post("/v1/auth/register", json=registration())
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == USER_FIELDS
    assert uuid.UUID(body["id"])
    assert body["email"] == "Ada.Lovelace@example.com"  # the domain part is normalized
    assert body["display_name"] == "Ada"
    assert body["role"] == "client"
    assert body["timezone"] == "Europe/Berlin"
    assert body["created_at"].endswith("Z")
    created = dt.datetime.fromisoformat(body["created_at"])
    assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert PASSWORD not in r.text
    with sync_engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_register_a_therapist_with_the_default_timezone(client):
    r = await client.post("/v1/auth/register", json=registration(role="therapist", timezone=None))
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "therapist"
    assert r.json()["timezone"] == "UTC"


async def test_duplicate_email_is_409_whatever_the_case(client, sync_engine):
    assert (await client.post("/v1/auth/register", json=registration())).status_code == 201
    again = await client.post(
        "/v1/auth/register",
        json=registration(email="ADA.LOVELACE@example.COM", role="therapist"),
    )
    assert_problem(again, 409, "conflict")
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 1


async def test_bad_registrations_are_422_and_create_nothing(client, sync_engine):
    cases = [
        registration(password="short9char"[:9]),
        registration(email="not-an-email"),
        registration(role="admin"),
        registration(role="therapist ") | {"role": "Therapist"},
        registration(timezone="Mars/Olympus_Mons"),
        registration(display_name="   "),
        registration(display_name="x" * 101),
        registration() | {"id": str(uuid.uuid4())},
        registration() | {"is_admin": True},
        registration() | {"created_at": "2026-01-01T00:00:00Z"},
        {"email": "a@example.com"},
        [],
    ]
    for body in cases:
        r = await client.post("/v1/auth/register", json=body)
        problem = assert_problem(r, 422, "validation-error")
        assert problem["errors"], problem
        for error in problem["errors"]:
            assert set(error) == {"loc", "msg", "type"}
        assert PASSWORD not in r.text
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 0


async def test_short_password_names_the_field(client):
    r = await client.post("/v1/auth/register", json=registration(password="123456789"))
    problem = assert_problem(r, 422, "validation-error")
    assert ["body", "password"] in [e["loc"] for e in problem["errors"]]
    assert "123456789" not in r.text
    ten = await client.post("/v1/auth/register", json=registration(password="1234567890"))
    assert ten.status_code == 201


async def test_me_answers_the_callers_account(client, make_user):
    # Registered and logged in (make_user), a therapist and a client each read their own.
    for role, timezone in (("therapist", "America/New_York"), ("client", "UTC")):
        ann = await make_user(role, timezone=timezone)
        r = await client.get("/v1/me", headers=ann.headers)
        assert r.status_code == 200
        body = r.json()
        assert set(body) == USER_FIELDS
        assert body == {
            "id": ann.id,
            "email": ann.email,
            "display_name": ann.display_name,
            "role": role,
            "timezone": timezone,
            "created_at": body["created_at"],
            "email_verified": False,
        }


async def test_me_without_a_token_is_401(client):
    r = await client.get("/v1/me")
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


async def test_patch_me_changes_only_what_is_sent(client, make_user):
    ann = await make_user("client")
    r = await client.patch("/v1/me", headers=ann.headers, json={"display_name": "  Ann B.  "})
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "Ann B."
    assert r.json()["timezone"] == "UTC"
    r = await client.patch("/v1/me", headers=ann.headers, json={"timezone": "Asia/Tokyo"})
    assert r.status_code == 200
    assert set(r.json()) == USER_FIELDS
    assert r.json()["display_name"] == "Ann B."
    assert r.json()["timezone"] == "Asia/Tokyo"
    again = (await client.get("/v1/me", headers=ann.headers)).json()
    assert again == r.json()


async def test_patch_me_refuses_bad_input_and_changes_nothing(client, make_user):
    ann = await make_user("client")
    before = (await client.get("/v1/me", headers=ann.headers)).json()
    for body in (
        {"timezone": "Not/AZone"},
        {"display_name": ""},
        {"email": "other@example.com"},
        {"role": "therapist"},
        {"id": str(uuid.uuid4())},
        {"password": "a new long password"},
        {"created_at": "2020-01-01T00:00:00Z"},
    ):
        r = await client.patch("/v1/me", headers=ann.headers, json=body)
        assert_problem(r, 422, "validation-error")
    assert (await client.get("/v1/me", headers=ann.headers)).json() == before
    # The old password still works: nothing was mass-assigned.
    assert (await login(client, ann.email)).status_code == 200


async def test_patch_me_without_a_token_is_401(client):
    r = await client.patch("/v1/me", json={"display_name": "x"})
    assert_problem(r, 401, "unauthorized")


async def test_me_of_an_erased_account_is_401(client, make_user, sync_engine):
    ann = await make_user("client")
    with sync_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM refresh_tokens"))
        conn.execute(sa.text("DELETE FROM users"))
    assert_problem(await client.get("/v1/me", headers=ann.headers), 401, "unauthorized")
