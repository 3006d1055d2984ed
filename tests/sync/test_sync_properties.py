"""A stateful property test of the sync feed: random creates, updates, deletes, visibility and
care-link changes by a client and a therapist, and syncs by both with random page sizes. After
every sync each follower's mirror must equal what the lists show that caller."""

from __future__ import annotations

import functools
import itertools
import os
from typing import Any

import anyio
import anyio.from_thread
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from tests.support.syncing import apply, listed

_names = itertools.count()
OK = {200, 201, 204}


def build_machine(client: Any, make_user: Any) -> type[RuleBasedStateMachine]:
    def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return anyio.from_thread.run(functools.partial(fn, *args, **kwargs))

    async def request(method: str, path: str, actor: Any, **kwargs: Any) -> Any:
        r = await client.request(method, path, headers=actor.headers, **kwargs)
        assert r.status_code < 500, r.text
        return r

    class SyncMachine(RuleBasedStateMachine):
        @initialize()
        def accounts(self) -> None:
            self.patient = call(make_user, "client")
            self.therapist = call(make_user, "therapist")
            self.link_id: str | None = None
            self._link()
            self.goals: list[str] = []
            self.steps: list[str] = []
            self.notes: list[str] = []
            self.mirrors: dict[str, dict] = {self.patient.id: {}, self.therapist.id: {}}
            self.cursors: dict[str, str | None] = {self.patient.id: None, self.therapist.id: None}

        def _link(self) -> None:
            code = call(request, "POST", "/v1/care-invites", self.therapist).json()["code"]
            r = call(request, "POST", "/v1/care-links", self.patient, json={"code": code})
            assert r.status_code == 201, r.text
            self.link_id = r.json()["id"]

        def _pick(self, items: list[str], index: int) -> str | None:
            return items[index % len(items)] if items else None

        def _who(self, therapist: bool) -> Any:
            return self.therapist if therapist else self.patient

        @rule(private=st.booleans(), by_therapist=st.booleans())
        def create_goal(self, private: bool, by_therapist: bool) -> None:
            body: dict[str, Any] = {"title": f"Goal {next(_names)}"}
            if by_therapist:
                body["client_id"] = self.patient.id
            elif private:
                body["visibility"] = "private"
            r = call(request, "POST", "/v1/goals", self._who(by_therapist), json=body)
            assert r.status_code in (201, 404)
            if r.status_code == 201:
                self.goals.append(r.json()["id"])

        @rule(index=st.integers(0, 50), by_therapist=st.booleans())
        def update_goal(self, index: int, by_therapist: bool) -> None:
            goal = self._pick(self.goals, index)
            if goal:
                body = {"title": f"Renamed {next(_names)}"}
                call(request, "PATCH", f"/v1/goals/{goal}", self._who(by_therapist), json=body)

        @rule(index=st.integers(0, 50), private=st.booleans())
        def set_visibility(self, index: int, private: bool) -> None:
            goal = self._pick(self.goals, index)
            if goal:
                body = {"visibility": "private" if private else "shared"}
                r = call(request, "PATCH", f"/v1/goals/{goal}", self.patient, json=body)
                assert r.status_code in (200, 404)

        @rule(index=st.integers(0, 50))
        def delete_goal(self, index: int) -> None:
            goal = self._pick(self.goals, index)
            if goal:
                call(request, "DELETE", f"/v1/goals/{goal}", self.patient)
                self.goals.remove(goal)

        @rule(index=st.integers(0, 50), by_therapist=st.booleans())
        def add_step(self, index: int, by_therapist: bool) -> None:
            goal = self._pick(self.goals, index)
            if goal:
                r = call(
                    request, "POST", f"/v1/goals/{goal}/steps", self._who(by_therapist),
                    json={"title": f"Step {next(_names)}"},
                )  # fmt: skip
                if r.status_code == 201:
                    self.steps.append(r.json()["id"])

        @rule(index=st.integers(0, 50), done=st.booleans(), delete=st.booleans())
        def change_step(self, index: int, done: bool, delete: bool) -> None:
            step = self._pick(self.steps, index)
            if step and delete:
                call(request, "DELETE", f"/v1/steps/{step}", self.patient)
                self.steps.remove(step)
            elif step:
                body = {"status": "done" if done else "todo"}
                call(request, "PATCH", f"/v1/steps/{step}", self.patient, json=body)

        @rule(index=st.integers(0, 50), by_therapist=st.booleans(), rating=st.integers(0, 10))
        def add_review(self, index: int, by_therapist: bool, rating: int) -> None:
            goal = self._pick(self.goals, index)
            if goal:
                call(
                    request, "POST", f"/v1/goals/{goal}/reviews", self._who(by_therapist),
                    json={"rating": rating},
                )  # fmt: skip

        @rule(index=st.integers(0, 50), by_therapist=st.booleans(), on_goal=st.booleans())
        def encourage(self, index: int, by_therapist: bool, on_goal: bool) -> None:
            body: dict[str, Any] = {"message": f"Go {next(_names)}"}
            if by_therapist:
                body["client_id"] = self.patient.id
            goal = self._pick(self.goals, index)
            if on_goal and goal:
                body["goal_id"] = goal
            r = call(request, "POST", "/v1/encouragements", self._who(by_therapist), json=body)
            if r.status_code == 201:
                self.notes.append(r.json()["id"])

        @rule(index=st.integers(0, 50))
        def read_note(self, index: int) -> None:
            note = self._pick(self.notes, index)
            if note:
                call(request, "POST", f"/v1/encouragements/{note}/read", self.patient)

        @rule(by_therapist=st.booleans())
        def toggle_link(self, by_therapist: bool) -> None:
            if self.link_id is None:
                self._link()
                return
            r = call(request, "DELETE", f"/v1/care-links/{self.link_id}", self._who(by_therapist))
            assert r.status_code == 204
            self.link_id = None

        @rule(therapist=st.booleans(), limit=st.sampled_from([1, 2, 5, 500]))
        def sync(self, therapist: bool, limit: int) -> None:
            actor = self._who(therapist)
            mirror = self.mirrors[actor.id]
            cursor = self.cursors[actor.id]
            while True:
                params: dict[str, Any] = {"limit": limit}
                if cursor:
                    params["cursor"] = cursor
                r = call(request, "GET", "/v1/sync", actor, params=params)
                assert r.status_code == 200, r.text
                page = r.json()
                assert len(page["changes"]) <= limit
                apply(mirror, page["changes"])
                cursor = page["next_cursor"]
                if not page["has_more"]:
                    break
            self.cursors[actor.id] = cursor
            assert mirror == call(listed, client, actor.headers)

    return SyncMachine


async def test_followers_mirror_what_the_lists_show(client, make_user):
    machine = build_machine(client, make_user)
    config = settings(
        max_examples=int(os.environ.get("WAYPOINT_SYNC_EXAMPLES", "30")),
        stateful_step_count=30,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    await anyio.to_thread.run_sync(lambda: run_state_machine_as_test(machine, settings=config))
