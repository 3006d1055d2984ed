"""The response contract the suite's client enforces can fail."""

from __future__ import annotations

import httpx
import pytest

from tests.support.contract import ContractViolation, response_contract


def _response(method: str, path: str, status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request(method, f"http://t{path}"))


async def test_a_goal_missing_a_declared_field_is_refused(app_instance, client, make_user):
    me = await make_user("client")
    goal = (await client.post("/v1/goals", json={"title": "Walk"}, headers=me.headers)).json()
    contract = response_contract(app_instance)
    contract.check(_response("GET", f"/v1/goals/{goal['id']}", 200, goal))
    del goal["progress"]
    with pytest.raises(ContractViolation, match="progress"):
        contract.check(_response("GET", f"/v1/goals/{goal['id']}", 200, goal))


async def test_an_undeclared_status_is_refused(app_instance, client):
    contract = response_contract(app_instance)
    with pytest.raises(ContractViolation, match="does not declare"):
        contract.check(_response("GET", "/v1/goals", 418, {"type": "/problems/x"}))


async def test_the_suite_client_checks_what_it_receives(app_instance, client, make_user):
    contract = response_contract(app_instance)
    before = contract.checked
    me = await make_user("client")
    await client.get("/v1/goals", headers=me.headers)
    assert contract.checked >= before + 3  # register, token, the page
