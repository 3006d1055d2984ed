"""A worker serves at most ``max_concurrent_requests`` at once; the others wait in arrival order."""

import asyncio

import httpx

from app.core.admission import AdmissionMiddleware
from app.core.config import get_settings


def _probe(entered: list[str], gates: dict[str, asyncio.Event]):
    async def app(scope, receive, send):
        name = scope["path"].strip("/")
        entered.append(name)
        await gates[name].wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})

    return app


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_requests_beyond_the_limit_wait_and_enter_in_arrival_order():
    entered: list[str] = []
    names = ["a", "b", "c", "d", "e"]
    gates = {name: asyncio.Event() for name in names}
    app = AdmissionMiddleware(_probe(entered, gates), limit=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        tasks = []
        for name in names:
            tasks.append(asyncio.create_task(client.get(f"/{name}")))
            await _settle()
        assert entered == ["a", "b"]
        gates["b"].set()
        await _settle()
        assert entered == ["a", "b", "c"]
        gates["a"].set()
        gates["c"].set()
        await _settle()
        assert entered == ["a", "b", "c", "d", "e"]
        gates["d"].set()
        gates["e"].set()
        responses = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert [r.text for r in responses] == names


async def test_lifespan_is_not_held_back():
    seen: list[str] = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    app = AdmissionMiddleware(inner, limit=1)
    await app({"type": "lifespan"}, None, None)
    await app({"type": "lifespan"}, None, None)
    assert seen == ["lifespan", "lifespan"]


async def test_the_app_admits_as_many_as_the_setting_says(app_instance):
    limits = [
        m.kwargs["limit"] for m in app_instance.user_middleware if m.cls is AdmissionMiddleware
    ]
    assert limits == [get_settings().max_concurrent_requests] == [10]
