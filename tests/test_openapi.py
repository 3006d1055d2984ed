import json
from pathlib import Path

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


async def test_committed_openapi_matches_served(client):
    served = (await client.get("/openapi.json")).json()
    committed = json.loads(COMMITTED.read_text())
    assert served == committed, "openapi/openapi.json is stale: run `make openapi`"
