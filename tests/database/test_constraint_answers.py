"""A write the database refuses is answered by the constraint it broke (app/core/constraints.py):
a taken external_id or e-mail is 409, a row removed by a concurrent request 404 (401 when it
was the caller's own account), anything else a fault, never a conflict it was not."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.core.constraints import CONFLICTS, violation_of
from app.core.sessions import new_session
from app.models import CareLink, Goal, User, metadata
from tests.support.mail import Inbox, SmtpServer
from tests.support.worlds import PASSWORD, assert_problem, link, new_goal


def unique_names() -> set[str]:
    names = set()
    for table in metadata.tables.values():
        names |= {str(index.name) for index in table.indexes if index.unique}
        names |= {
            str(constraint.name)
            for constraint in table.constraints
            if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint)
        }
    return names


def test_every_mapped_constraint_is_a_unique_one_of_the_schema():
    assert set(CONFLICTS) <= unique_names()


def test_no_module_but_the_handler_reads_integrity_errors():
    """A service that catches ``IntegrityError`` itself reads every violation as its one
    conflict (what a goal created during an erasure got): the handler tells them apart."""
    root = Path(__file__).resolve().parents[2] / "app"
    readers = [
        str(path.relative_to(root.parent))
        for path in sorted(root.rglob("*.py"))
        if "IntegrityError" in path.read_text(encoding="utf-8")
    ]
    assert readers == ["app/core/constraints.py"]


# --- the names, read from real driver errors on both databases --------------------------------


def refusal(sync_engine: sa.Engine, statement: Any, params: dict[str, Any]) -> Any:
    with sync_engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        with pytest.raises(sa.exc.IntegrityError) as caught:
            conn.execute(statement, params)
        conn.rollback()
    return violation_of(caught.value, metadata)


def user_row(**values: Any) -> dict[str, Any]:
    row = {
        "id": uuid.uuid4(), "email": "a@example.com", "email_key": "a@example.com",
        "display_name": "A", "role": "client", "timezone": "UTC", "password_hash": "x",
    }  # fmt: skip
    return row | values


def goal_row(client_id: Any, **values: Any) -> dict[str, Any]:
    row = {
        "id": uuid.uuid4(), "client_id": client_id, "title": "Walk", "status": "active",
        "visibility": "shared", "gas_weight": 1, "steps_total": 0, "steps_done": 0, "version": 1,
    }  # fmt: skip
    return row | values


async def test_each_constraint_is_told_by_its_name(client, make_user, sync_engine):
    patient = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, patient)
    ext = await new_goal(client, patient, title="Run", external_id="run-1")
    users, goals = User.__table__, Goal.__table__
    email = refusal(
        sync_engine, sa.insert(users), user_row(email_key=patient.email, email=patient.email)
    )
    assert (email.kind, email.name) == ("unique", "uq_users_email_key")
    taken = refusal(
        sync_engine, sa.insert(goals), goal_row(uuid.UUID(patient.id), external_id="run-1")
    )
    assert (taken.kind, taken.name) == ("unique", "uq_goals_client_id_external_id")
    pair = refusal(
        sync_engine,
        sa.insert(CareLink.__table__),
        {"id": uuid.uuid4(), "therapist_id": uuid.UUID(therapist.id),
         "client_id": uuid.UUID(patient.id)},
    )  # fmt: skip
    assert (pair.kind, pair.name) == ("unique", "uq_care_links_active_pair")
    same_id = refusal(
        sync_engine, sa.insert(goals), goal_row(uuid.UUID(patient.id), id=uuid.UUID(ext["id"]))
    )
    assert (same_id.kind, same_id.name) == ("unique", "pk_goals")
    gone = refusal(sync_engine, sa.insert(goals), goal_row(uuid.uuid4()))
    assert gone.kind == "foreign_key"
    # PostgreSQL names the foreign key; SQLite's message names none.
    assert gone.name in ("fk_goals_client_id_users", None)
    assert (gone.name is None) == (sync_engine.dialect.name == "sqlite")
    missing = refusal(sync_engine, sa.insert(goals), goal_row(uuid.UUID(patient.id), title=None))
    assert missing.kind == "not_null"


# --- the answers, through the API ------------------------------------------------------------


@pytest.fixture
def plain_client(app_instance):
    """A client that does not hold the app to its document: a 500 is what one test expects."""
    transport = httpx.ASGITransport(app=app_instance, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def erase_before_insert(monkeypatch, user_id: str, *, committed: bool) -> list[str]:
    """Remove the account ``user_id`` between a goal create's checks and its insert: committed
    by another transaction (an erase that won the race), or inside the create's own one."""
    import app.goals.service as goals

    original = goals.insert_goal_with_change
    calls: list[str] = []
    delete = sa.delete(User).where(User.id == uuid.UUID(user_id))

    async def racing(session, row, announce=None):
        calls.append(user_id)
        if committed:
            async with new_session(write=True) as other:
                await other.execute(delete)
                await other.commit()
        else:
            await session.execute(delete)
        await original(session, row, announce=announce)

    monkeypatch.setattr(goals, "insert_goal_with_change", racing)
    return calls


async def test_a_goal_created_while_its_own_account_is_erased_is_401(
    client, make_user, monkeypatch, sync_engine
):
    patient = await make_user("client")
    calls = erase_before_insert(monkeypatch, patient.id, committed=True)
    r = await client.post("/v1/goals", json={"title": "Walk"}, headers=patient.headers)
    assert calls, "the race was not run"
    problem = assert_problem(r, 401, "unauthorized")
    assert problem["detail"] == "The account no longer exists."
    with sync_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(Goal.__table__)) == 0


async def test_a_goal_proposed_for_a_client_erased_meanwhile_is_404(
    client, make_user, monkeypatch, sync_engine
):
    patient = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, patient)
    calls = erase_before_insert(monkeypatch, patient.id, committed=False)
    r = await client.post(
        "/v1/goals", json={"title": "Walk", "client_id": patient.id}, headers=therapist.headers
    )
    assert calls, "the race was not run"
    assert_problem(r, 404, "not-found")
    with sync_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(Goal.__table__)) == 0
        assert conn.scalar(sa.select(User.id).where(User.id == uuid.UUID(patient.id)))


async def test_an_external_id_taken_meanwhile_is_409_on_create_and_update(
    client, make_user, monkeypatch
):
    import app.goals.service as goals

    patient = await make_user("client")
    await new_goal(client, patient, title="Run", external_id="run-1")
    other = await new_goal(client, patient, title="Swim")

    async def free(*_: Any) -> None:  # the check passed before the other request committed
        return None

    monkeypatch.setattr(goals, "_ensure_external_id_free", free)
    r = await client.post(
        "/v1/goals", json={"title": "Jog", "external_id": "run-1"}, headers=patient.headers
    )
    problem = assert_problem(r, 409, "conflict")
    assert problem["detail"] == "This client already has a goal with that external_id."
    r = await client.patch(
        f"/v1/goals/{other['id']}", json={"external_id": "run-1"}, headers=patient.headers
    )
    assert assert_problem(r, 409)["detail"] == problem["detail"]


async def test_an_email_registered_meanwhile_is_409(client, make_user, monkeypatch):
    import app.auth.service as auth

    first = await make_user("client")

    async def free(*_: Any) -> bool:
        return False

    monkeypatch.setattr(auth, "_email_taken", free)
    r = await client.post(
        "/v1/auth/register",
        json={"email": first.email.upper(), "password": "a long passphrase",
              "display_name": "Twin", "role": "client"},
    )  # fmt: skip
    problem = assert_problem(r, 409, "conflict")
    assert problem["detail"] == "An account with this e-mail already exists."


async def test_an_unexpected_constraint_is_a_fault_not_a_conflict(
    plain_client, make_user, monkeypatch, sync_engine
):
    import app.goals.service as goals

    patient = await make_user("client")
    fixed = uuid.uuid4()
    monkeypatch.setattr(goals, "new_id", lambda: fixed)  # a bug: every goal gets one id
    r = await plain_client.post("/v1/goals", json={"title": "Walk"}, headers=patient.headers)
    assert r.status_code == 201, r.text
    r = await plain_client.post("/v1/goals", json={"title": "Run"}, headers=patient.headers)
    assert_problem(r, 500, "internal-error")
    with sync_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(Goal.__table__)) == 1


@pytest.fixture
async def inbox(app_instance):
    server = SmtpServer().start()
    yield Inbox(server)
    server.stop()


async def test_an_address_confirmed_after_another_account_took_it_is_409(
    client, make_user, monkeypatch, inbox
):
    from app.account import repository

    user = await make_user("client")
    new = "wanted@example.com"
    r = await client.post(
        "/v1/me/email", json={"new_email": new, "current_password": PASSWORD}, headers=user.headers
    )
    assert r.status_code == 202, r.text
    token = await inbox.last_token(new, "confirm-email")
    r = await client.post(
        "/v1/auth/register",
        json={"email": new, "password": "a long passphrase", "display_name": "Quick",
              "role": "client"},
    )  # fmt: skip
    assert r.status_code == 201, r.text

    async def free(*_: Any) -> bool:  # the check passed before the registration committed
        return False

    monkeypatch.setattr(repository, "email_key_taken", free)
    r = await client.post("/v1/auth/confirm-email", json={"token": token})
    problem = assert_problem(r, 409, "conflict")
    assert problem["detail"] == "An account with this e-mail already exists."
    assert (await client.get("/v1/me", headers=user.headers)).json()["email"] == user.email
