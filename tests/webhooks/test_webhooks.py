"""Webhooks API and the outbox: who hears of what, written with the change.

Deliveries are looked at through `GET /v1/webhooks/{id}/deliveries` and the table; sending them
is tested in tests/webhooks/test_webhooks_delivery.py."""

import json

import pytest
import sqlalchemy as sa

from app.webhooks.fanout import fan_out_all
from tests.support.worlds import assert_problem, link

EVENTS = [
    "goal.created",
    "goal.updated",
    "goal.deleted",
    "step.completed",
    "review.created",
    "encouragement.created",
]
PUBLIC_URL = "https://hooks.example.com/waypoint"


async def subscribe(client, actor, events=EVENTS, url=PUBLIC_URL) -> dict:
    r = await client.post(
        "/v1/webhooks", json={"url": url, "events": events}, headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


async def deliveries(client, actor, webhook) -> list[dict]:
    r = await client.get(f"/v1/webhooks/{webhook['id']}/deliveries", headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def bodies(sync_engine, webhook) -> list[dict]:
    """The bodies of ``webhook``'s deliveries, once the events committed so far are fanned
    out (the worker's first step, not running in these tests)."""
    await fan_out_all()
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT body FROM webhook_deliveries WHERE webhook_id = :w ORDER BY created_at"
            ),
            {
                "w": webhook["id"].replace("-", "")
                if "sqlite" in str(sync_engine.url)
                else webhook["id"]
            },
        )
        return [json.loads(row.body) for row in rows]


async def test_create_shows_the_secret_once(client, make_user):
    owner = await make_user("client")
    r = await client.post(
        "/v1/webhooks",
        json={"url": PUBLIC_URL, "events": ["goal.created", "goal.created", "review.created"]},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) == {"id", "url", "events", "secret", "created_at"}
    assert created["url"] == PUBLIC_URL
    assert created["events"] == ["goal.created", "review.created"]
    assert len(created["secret"]) >= 32
    assert r.headers["location"] == f"/v1/webhooks/{created['id']}"
    listed = await client.get("/v1/webhooks", headers=owner.headers)
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert item == {
        "id": created["id"],
        "url": PUBLIC_URL,
        "events": ["goal.created", "review.created"],
        "active": True,
        "disabled_at": None,
        "created_at": created["created_at"],
    }
    assert created["secret"] not in listed.text


async def test_therapists_subscribe_too_and_lists_are_per_caller(client, make_user):
    therapist = await make_user("therapist")
    other = await make_user("client")
    hook = await subscribe(client, therapist, ["goal.updated"])
    assert [
        w["id"]
        for w in (await client.get("/v1/webhooks", headers=therapist.headers)).json()["items"]
    ] == [hook["id"]]
    assert (await client.get("/v1/webhooks", headers=other.headers)).json()["items"] == []


async def test_list_pages_newest_first(client, make_user):
    owner = await make_user("client")
    ids = [(await subscribe(client, owner, ["goal.created"]))["id"] for _ in range(3)]
    r = await client.get("/v1/webhooks?limit=2", headers=owner.headers)
    page = r.json()
    assert [w["id"] for w in page["items"]] == ids[::-1][:2]
    assert 'rel="next"' in r.headers["link"]
    rest = await client.get(
        f"/v1/webhooks?limit=2&cursor={page['next_cursor']}", headers=owner.headers
    )
    assert [w["id"] for w in rest.json()["items"]] == ids[:1]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": PUBLIC_URL, "events": ["goal.exploded"]}, "events"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL}, "events"),
        ({"url": "ftp://example.com/x", "events": ["goal.created"]}, "url"),
        ({"url": "not a url", "events": ["goal.created"]}, "url"),
        ({"url": "http://127.0.0.1:9000/hook", "events": ["goal.created"]}, "url"),
        ({"url": "http://localhost/hook", "events": ["goal.created"]}, "url"),
        ({"url": "http://[::ffff:127.0.0.1]/hook", "events": ["goal.created"]}, "url"),
        ({"url": "http://169.254.169.254/latest", "events": ["goal.created"]}, "url"),
        ({"url": "http://10.0.0.5/hook", "events": ["goal.created"]}, "url"),
        ({"url": PUBLIC_URL, "events": ["goal.created"], "secret": "mine"}, "secret"),
    ],
)
async def test_bad_subscriptions_are_422(client, make_user, body, field):
    owner = await make_user("client")
    r = await client.post("/v1/webhooks", json=body, headers=owner.headers)
    problem = assert_problem(r, 422, "validation-error")
    assert (
        any(field in err["loc"] for err in problem.get("errors") or [])
        or field in problem["detail"]
    )
    assert (await client.get("/v1/webhooks", headers=owner.headers)).json()["items"] == []


async def test_private_targets_allowed_by_the_setting(client, make_user, monkeypatch):
    from app.core.config import get_settings

    monkeypatch.setenv("WAYPOINT_WEBHOOKS_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    try:
        owner = await make_user("client")
        hook = await subscribe(client, owner, ["goal.created"], "http://127.0.0.1:9/hook")
        assert hook["url"] == "http://127.0.0.1:9/hook"
    finally:
        monkeypatch.delenv("WAYPOINT_WEBHOOKS_ALLOW_PRIVATE")
        get_settings.cache_clear()


@pytest.mark.parametrize("who", ["owner", "other_client", "therapist", "anonymous"])
async def test_delete_and_deliveries_are_the_owners_only(client, make_user, who):
    owner = await make_user("client")
    callers = {
        "owner": owner,
        "other_client": await make_user("client"),
        "therapist": await make_user("therapist"),
    }
    await link(client, callers["therapist"], owner)
    hook = await subscribe(client, owner)
    headers = callers[who].headers if who in callers else {}
    listed = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers)
    deleted = await client.delete(f"/v1/webhooks/{hook['id']}", headers=headers)
    if who == "owner":
        assert listed.status_code == 200 and listed.json() == {"items": [], "next_cursor": None}
        assert deleted.status_code == 204
        gone = await client.delete(f"/v1/webhooks/{hook['id']}", headers=headers)
        assert_problem(gone, 404, "not-found")
        return
    status = 401 if who == "anonymous" else 404
    assert_problem(listed, status)
    assert_problem(deleted, status)
    still = await client.get("/v1/webhooks", headers=owner.headers)
    assert [w["id"] for w in still.json()["items"]] == [hook["id"]]


async def test_unknown_and_malformed_ids_are_404(client, make_user):
    owner = await make_user("client")
    for raw in ("nope", "0196b0a4-0000-7000-8000-000000000000"):
        assert_problem(await client.delete(f"/v1/webhooks/{raw}", headers=owner.headers), 404)
        assert_problem(
            await client.get(f"/v1/webhooks/{raw}/deliveries", headers=owner.headers), 404
        )


async def test_subscribers_hear_only_what_they_may_see(client, make_user, sync_engine):
    owner = await make_user("client")
    therapist = await make_user("therapist")
    unlinked = await make_user("therapist")
    other = await make_user("client")
    await link(client, therapist, owner)
    actors = {"owner": owner, "therapist": therapist, "unlinked": unlinked, "other": other}
    hooks = {name: await subscribe(client, actor) for name, actor in actors.items()}

    h = owner.headers
    shared = (await client.post("/v1/goals", json={"title": "shared"}, headers=h)).json()
    private = (
        await client.post(
            "/v1/goals", json={"title": "private", "visibility": "private"}, headers=h
        )
    ).json()
    for goal in (shared, private):
        step = (
            await client.post(f"/v1/goals/{goal['id']}/steps", json={"title": "s"}, headers=h)
        ).json()
        r = await client.patch(f"/v1/steps/{step['id']}", json={"status": "done"}, headers=h)
        assert r.status_code == 200, r.text
        r = await client.post(f"/v1/goals/{goal['id']}/reviews", json={"rating": 7}, headers=h)
        assert r.status_code == 201, r.text
        r = await client.patch(f"/v1/goals/{goal['id']}", json={"title": "renamed"}, headers=h)
        assert r.status_code == 200, r.text
    note = await client.post(
        "/v1/encouragements",
        json={"client_id": owner.id, "message": "Well done"},
        headers=therapist.headers,
    )
    assert note.status_code == 201, note.text
    for goal in (shared, private):
        assert (await client.delete(f"/v1/goals/{goal['id']}", headers=h)).status_code == 204

    owner_events = [b["type"] for b in await bodies(sync_engine, hooks["owner"])]
    # The only step of each goal done: the "all steps done" celebration is the client's alone.
    assert owner_events.count("goal.created") == 2
    assert owner_events.count("step.completed") == 2
    assert owner_events.count("review.created") == 2
    assert owner_events.count("goal.updated") == 2
    assert owner_events.count("goal.deleted") == 2
    assert owner_events.count("encouragement.created") >= 3  # the note and the celebrations
    therapist_bodies = await bodies(sync_engine, hooks["therapist"])
    therapist_events = sorted(b["type"] for b in therapist_bodies)
    assert therapist_events == sorted(
        ["goal.created", "step.completed", "review.created", "goal.updated",
         "encouragement.created", "goal.deleted"]
    )  # fmt: skip
    assert private["id"] not in json.dumps(therapist_bodies)
    (heard_note,) = [b for b in therapist_bodies if b["type"] == "encouragement.created"]
    assert heard_note["data"]["id"] == note.json()["id"]
    assert await bodies(sync_engine, hooks["unlinked"]) == []
    assert await bodies(sync_engine, hooks["other"]) == []
    # The API's view of the same: newest first, pending.
    listed = await deliveries(client, owner, hooks["owner"])
    assert sorted(d["event"] for d in listed) == sorted(owner_events)
    stamps = [d["created_at"] for d in listed]
    assert stamps == sorted(stamps, reverse=True)
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in listed)
    assert all(d["next_attempt_at"] is not None and d["delivered_at"] is None for d in listed)
    assert set(listed[0]) == {
        "id", "event", "status", "attempts", "last_status_code", "last_error",
        "next_attempt_at", "delivered_at", "created_at",
    }  # fmt: skip


async def test_data_is_exactly_the_objects_own_get(client, make_user, sync_engine):
    owner = await make_user("client")
    hook = await subscribe(client, owner)
    h = owner.headers
    goal = (
        await client.post("/v1/goals", json={"title": "Walk", "priority": "high"}, headers=h)
    ).json()
    step = (
        await client.post(f"/v1/goals/{goal['id']}/steps", json={"title": "s"}, headers=h)
    ).json()
    await client.patch(f"/v1/steps/{step['id']}", json={"status": "done"}, headers=h)
    review = (
        await client.post(f"/v1/goals/{goal['id']}/reviews", json={"rating": 5}, headers=h)
    ).json()
    await client.patch(f"/v1/goals/{goal['id']}", json={"description": "daily"}, headers=h)
    await fan_out_all()
    with sync_engine.connect() as conn:
        raw = [
            row.body
            for row in conn.execute(
                sa.text("SELECT body FROM webhook_deliveries ORDER BY created_at")
            )
        ]
    by_type = {}
    for text in raw:
        body = json.loads(text)
        assert set(body) == {"id", "type", "created_at", "data"}
        assert body["created_at"].endswith("Z")
        by_type.setdefault(body["type"], []).append((text, body))
    created_text, created = by_type["goal.created"][0]
    assert created["data"] == goal  # the 201 answer is the GET document at creation
    updated_text, updated = by_type["goal.updated"][0]
    now = await client.get(f"/v1/goals/{goal['id']}", headers=h)
    assert updated["data"] == now.json()
    # byte for byte: the body embeds the GET's own serialization
    assert now.content in updated_text.encode()
    step_now = await client.get(f"/v1/steps/{step['id']}", headers=h)
    assert by_type["step.completed"][0][1]["data"] == step_now.json()
    assert step_now.content in by_type["step.completed"][0][0].encode()
    review_now = await client.get(f"/v1/reviews/{review['id']}", headers=h)
    assert by_type["review.created"][0][1]["data"] == review_now.json()
    assert await client.delete(f"/v1/goals/{goal['id']}", headers=h)
    await fan_out_all()
    with sync_engine.connect() as conn:
        last = conn.execute(
            sa.text("SELECT body FROM webhook_deliveries ORDER BY created_at DESC")
        ).first()
    assert json.loads(last.body)["type"] == "goal.deleted"
    assert json.loads(last.body)["data"] == {"id": goal["id"]}
    assert hook  # subscribed to all


async def test_only_subscribed_events_and_active_webhooks(client, make_user, sync_engine):
    owner = await make_user("client")
    reviews_only = await subscribe(client, owner, ["review.created"])
    gone = await subscribe(client, owner, ["goal.created"])
    assert (
        await client.delete(f"/v1/webhooks/{gone['id']}", headers=owner.headers)
    ).status_code == 204
    disabled = await subscribe(client, owner, ["goal.created"])
    with sync_engine.begin() as conn:
        conn.execute(sa.text("UPDATE webhooks SET active = false"))
        conn.execute(sa.text("UPDATE webhooks SET active = true WHERE url = 'x'"))
    await client.post("/v1/goals", json={"title": "Walk"}, headers=owner.headers)
    with sync_engine.connect() as conn:  # no one listens: not even an event is written
        assert conn.execute(sa.text("SELECT count(*) FROM webhook_events")).scalar() == 0
    await fan_out_all()
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar() == 0
    assert reviews_only and disabled


async def test_a_rolled_back_change_announces_nothing(client, make_user, sync_engine):
    """The deliveries are written by the unit of work's before-commit hook, in the change's own
    transaction: an error answer rolls both back."""
    owner = await make_user("client")
    await subscribe(client, owner, ["goal.created", "goal.updated"])
    goal = (
        await client.post(
            "/v1/goals", json={"title": "Walk", "external_id": "a"}, headers=owner.headers
        )
    ).json()
    other = (await client.post("/v1/goals", json={"title": "Run"}, headers=owner.headers)).json()
    # The PATCH changes the title, then the unique external_id refuses the write: 409.
    r = await client.patch(
        f"/v1/goals/{other['id']}",
        json={"title": "Sprint", "external_id": "a"},
        headers=owner.headers,
    )
    assert_problem(r, 409)
    await fan_out_all()
    with sync_engine.connect() as conn:
        events = [
            json.loads(row.body)["type"]
            for row in conn.execute(sa.text("SELECT body FROM webhook_deliveries"))
        ]
    assert sorted(events) == ["goal.created", "goal.created"]
    assert goal


async def test_rollback_after_the_hook_leaves_no_delivery(
    app_instance, client, make_user, sync_engine
):
    """Even once the hook wrote the rows, a transaction that does not commit leaves none."""
    import uuid

    from app.core.sessions import new_session
    from app.core.unit_of_work import CommitContext
    from app.resources import load_documents
    from app.webhooks.events import record_event
    from app.webhooks.outbox import write_outbox

    owner = await make_user("client")
    await subscribe(client, owner, ["goal.deleted"])
    async with new_session(write=True) as session:
        record_event(session, "goal.deleted", object_id=uuid.uuid4(), client_id=uuid.UUID(owner.id),
                     shared=True, document={"id": "x"})  # fmt: skip
        await write_outbox(CommitContext(session, "SCRIPT", 201), load_documents)
        count = await session.scalar(sa.text("SELECT count(*) FROM webhook_events"))
        assert count == 1
        await session.rollback()
    assert await fan_out_all() == 0
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM webhook_events")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar() == 0


async def test_deleting_a_webhook_deletes_its_deliveries_only(client, make_user, sync_engine):
    """Deliveries hang on their owner, not on a foreign key to the webhook: the service
    deletes a webhook's own deliveries with it, and a listing shows one webhook's only."""
    owner = await make_user("client")
    first = await subscribe(client, owner, ["goal.created"])
    second = await subscribe(client, owner, ["goal.created", "goal.updated"])
    goal = (await client.post("/v1/goals", json={"title": "Walk"}, headers=owner.headers)).json()
    r = await client.patch(
        f"/v1/goals/{goal['id']}",
        json={"title": "Walk daily"},
        headers={**owner.headers, "If-Match": f'"{goal["version"]}"'},
    )
    assert r.status_code == 200, r.text
    assert [d["event"] for d in await deliveries(client, owner, first)] == ["goal.created"]
    assert [d["event"] for d in await deliveries(client, owner, second)] == [
        "goal.updated",
        "goal.created",
    ]
    assert (
        await client.delete(f"/v1/webhooks/{first['id']}", headers=owner.headers)
    ).status_code == 204
    assert await bodies(sync_engine, first) == []
    second_types = [b["type"] for b in await bodies(sync_engine, second)]
    assert second_types == ["goal.created", "goal.updated"]


# -- the fan-out: events become deliveries later, by the rule as of the change ---------------
async def pending_events(sync_engine) -> int:
    with sync_engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM webhook_events")).scalar()


async def test_a_link_ended_before_the_fan_out_still_hears_what_it_saw(
    client, make_user, sync_engine
):
    """The therapist was linked when the goal was created: they hear of it, though the link
    ends before the worker fans the event out."""
    owner = await make_user("client")
    therapist = await make_user("therapist")
    care = await link(client, therapist, owner)
    hook = await subscribe(client, therapist, ["goal.created"])
    goal = (await client.post("/v1/goals", json={"title": "Walk"}, headers=owner.headers)).json()
    assert await pending_events(sync_engine) == 1
    r = await client.delete(f"/v1/care-links/{care['id']}", headers=owner.headers)
    assert r.status_code == 204, r.text
    heard = await bodies(sync_engine, hook)
    assert [b["data"]["id"] for b in heard] == [goal["id"]]


async def test_a_link_or_webhook_made_after_the_change_does_not_hear_of_it(
    client, make_user, sync_engine
):
    """Linked, or subscribed, only after the goal was created (but before the fan-out): the
    event was not theirs to hear."""
    owner = await make_user("client")
    late_therapist = await make_user("therapist")
    therapist_hook = await subscribe(client, late_therapist, ["goal.created"])
    own_first = await subscribe(client, owner, ["goal.created"])
    await client.post("/v1/goals", json={"title": "Walk"}, headers=owner.headers)
    assert await pending_events(sync_engine) == 1
    await link(client, late_therapist, owner)
    own_late = await subscribe(client, owner, ["goal.created"])
    assert await bodies(sync_engine, therapist_hook) == []
    assert await bodies(sync_engine, own_late) == []
    assert [b["type"] for b in await bodies(sync_engine, own_first)] == ["goal.created"]


async def test_the_deliveries_listing_shows_every_change_committed_before_it(
    client, make_user, sync_engine
):
    """No worker runs here: the listing fans out what is waiting, so a change's delivery is
    listed as soon as the change is acknowledged."""
    owner = await make_user("client")
    hook = await subscribe(client, owner, ["goal.created"])
    await client.post("/v1/goals", json={"title": "Walk"}, headers=owner.headers)
    assert await pending_events(sync_engine) == 1
    listed = await deliveries(client, owner, hook)
    assert [(d["event"], d["status"], d["attempts"]) for d in listed] == [
        ("goal.created", "pending", 0)
    ]
    assert await pending_events(sync_engine) == 0


async def test_an_erased_client_leaves_no_event_waiting(client, make_user, sync_engine):
    """The events hold the client's data until fanned out: erasing the account erases them."""
    owner = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, owner)
    hook = await subscribe(client, therapist, ["goal.created"])
    await client.post("/v1/goals", json={"title": "Walk"}, headers=owner.headers)
    assert await pending_events(sync_engine) == 1
    assert (await client.delete("/v1/me", headers=owner.headers)).status_code == 204
    assert await pending_events(sync_engine) == 0
    assert await bodies(sync_engine, hook) == []


async def test_events_fan_out_in_batches_oldest_first(client, make_user, sync_engine):
    from app.webhooks.fanout import fan_out

    owner = await make_user("client")
    hooks = [await subscribe(client, owner, ["goal.created"]) for _ in range(3)]
    titles = [f"g{i}" for i in range(5)]
    for title in titles:
        await client.post("/v1/goals", json={"title": title}, headers=owner.headers)
    assert await fan_out(batch=2) == (2, 6)
    assert await pending_events(sync_engine) == 3
    assert await fan_out(batch=10) == (3, 9)
    assert await fan_out() == (0, 0)
    for hook in hooks:
        heard = [b["data"]["title"] for b in await bodies(sync_engine, hook)]
        assert heard == titles
        ids = [d["id"] for d in await deliveries(client, owner, hook)]
        assert len(set(ids)) == 5


async def test_erasing_a_client_erases_every_delivery_about_them(client, make_user, sync_engine):
    """A therapist's delivery holds the client's goal: it goes with the client's account;
    the therapist's deliveries about another client stay."""
    owner = await make_user("client")
    other = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, owner)
    await link(client, therapist, other)
    hook = await subscribe(client, therapist, ["goal.created"])
    for who in (owner, other):
        r = await client.post("/v1/goals", json={"title": "Walk"}, headers=who.headers)
        assert r.status_code == 201, r.text
    assert len(await deliveries(client, therapist, hook)) == 2
    assert (await client.delete("/v1/me", headers=owner.headers)).status_code == 204
    heard = await bodies(sync_engine, hook)
    assert [b["data"]["client_id"] for b in heard] == [other.id]


async def test_fanning_out_everything_stops_after_its_batches(client, make_user, sync_engine):
    """A listing under a flood of writes does not chase it: at most ``batches`` batches."""
    owner = await make_user("client")
    hook = await subscribe(client, owner, ["goal.created"])
    for title in ("a", "b", "c"):
        await client.post("/v1/goals", json={"title": title}, headers=owner.headers)
    assert await fan_out_all(batches=2, batch=1) == 2
    assert await pending_events(sync_engine) == 1
    assert len(await bodies(sync_engine, hook)) == 3


async def test_only_the_owner_s_listing_fans_out(client, make_user, sync_engine):
    """The ownership check comes first: another user's request for the listing is a 404 and
    writes nothing."""
    owner = await make_user("client")
    other = await make_user("client")
    hook = await subscribe(client, owner, ["goal.created"])
    await client.post("/v1/goals", json={"title": "Walk"}, headers=owner.headers)
    r = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=other.headers)
    assert_problem(r, 404)
    assert await pending_events(sync_engine) == 1
    assert len(await deliveries(client, owner, hook)) == 1
    assert await pending_events(sync_engine) == 0
