"""``waypoint sync`` and ``waypoint import`` against a real server process."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import httpx
import pytest

from app.scripts.api_client import ApiClient, ApiError, Unreachable
from app.scripts.mirror import run_sync
from tests.support.servers import WAYPOINT, Server
from tests.support.syncing import listed, mirrored, register


@pytest.fixture
def live_server(app_instance, serve) -> Server:  # app_instance: empty tables first
    return serve(workers=1, migrate=False)  # the suite's database, already migrated


async def _account(server: Server, scopes: list[str]):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        patient = await register(http, "client", f"cli-{os.urandom(4).hex()}")
        r = await http.post("/v1/me/tokens", json={"name": "script", "scopes": scopes},
                            headers=patient.headers)  # fmt: skip
        assert r.status_code == 201, r.text
        patient.pat = r.json()["token"]
        patient.pat_headers = {"Authorization": f"Bearer {patient.pat}"}
        return patient


def _run(server: Server, token: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WAYPOINT_TOKEN": token}
    return subprocess.run(
        [WAYPOINT, *args, "--url", server.url], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def _run_without_token(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WAYPOINT_TOKEN"}
    return subprocess.run([WAYPOINT, *args], env=env, capture_output=True, text=True)


READ = ["goals:read", "reviews:read", "encouragements:read"]


async def test_sync_mirrors_then_applies_changes_and_deletions(live_server, tmp_path):
    patient = await _account(live_server, READ)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        goals = []
        for n in range(3):
            r = await http.post("/v1/goals", json={"title": f"G{n}"}, headers=patient.headers)
            goals.append(r.json())
        await http.post(f"/v1/goals/{goals[0]['id']}/steps", json={"title": "S"},
                        headers=patient.headers)  # fmt: skip
        mirror = tmp_path / "mirror.db"
        result = _run(live_server, patient.pat, "sync", "--into", str(mirror), "--limit", "2")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "synced: 4 upserts, 0 deletes"
        assert patient.pat not in result.stdout + result.stderr
        assert "sync: page" in result.stderr  # plain progress lines when not on a terminal
        assert mirrored(mirror) == await listed(http, patient.headers)
        # only what changed since
        await http.delete(f"/v1/goals/{goals[0]['id']}", headers=patient.headers)
        await http.patch(f"/v1/goals/{goals[1]['id']}", json={"title": "Renamed"},
                         headers=patient.headers)  # fmt: skip
        result = _run(live_server, patient.pat, "sync", "--into", str(mirror))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "synced: 1 upserts, 2 deletes"
        assert mirrored(mirror) == await listed(http, patient.headers)
        result = _run(live_server, patient.pat, "sync", "--into", str(mirror))
        assert result.stdout.strip() == "synced: 0 upserts, 0 deletes"


async def test_a_killed_sync_resumes_from_its_last_stored_page(live_server, tmp_path):
    patient = await _account(live_server, READ)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        for n in range(7):
            await http.post("/v1/goals", json={"title": f"G{n}"}, headers=patient.headers)

        class KilledAfterTwoPages(ApiClient):
            calls = 0

            def request(self, method, path, **kwargs):
                self.calls += 1
                if self.calls == 3:
                    raise KeyboardInterrupt  # the process dies here
                return super().request(method, path, **kwargs)

        mirror = tmp_path / "mirror.db"
        with pytest.raises(KeyboardInterrupt), KilledAfterTwoPages(live_server.url, patient.pat) \
                as api:  # fmt: skip
            run_sync(api, mirror, 2)
        assert len(mirrored(mirror)) == 4  # two pages stored with their cursor
        with ApiClient(live_server.url, patient.pat) as api:
            result = run_sync(api, mirror, 2)
        assert result.upserts == 3  # the rest only
        assert mirrored(mirror) == await listed(http, patient.headers)


async def test_sync_with_a_bad_token_fails_without_printing_it(live_server, tmp_path):
    result = _run(live_server, "wpt_not-a-real-token", "sync", "--into", str(tmp_path / "m.db"))
    assert result.returncode == 1
    assert "401" in result.stderr and "wpt_not-a-real-token" not in result.stderr + result.stdout
    result = _run_without_token("sync", "--into", str(tmp_path / "m.db"))
    assert result.returncode == 2 and "WAYPOINT_TOKEN" in result.stderr


def test_requests_are_retried_with_backoff_honouring_retry_after():
    answers = iter([
        httpx.Response(503, headers={"Retry-After": "1"}),
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.ConnectError("refused"),
        httpx.Response(200, json={"ok": True}),
    ])  # fmt: skip
    seen_tokens = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_tokens.append(request.headers["Authorization"])
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    waits: list[float] = []
    api = ApiClient("http://api.invalid", "secret", sleep=waits.append, backoff=0.5)
    api.http._transport = httpx.MockTransport(handler)
    assert api.request("GET", "/v1/sync").json() == {"ok": True}
    assert waits[:2] == [1.0, 2.0] and 0.25 <= waits[2] <= 3.0
    assert seen_tokens == ["Bearer secret"] * 4
    # a refusal is not retried; a server that never recovers is given up on
    api.http._transport = httpx.MockTransport(lambda r: httpx.Response(422, json={"title": "x"}))
    with pytest.raises(ApiError):
        api.request("GET", "/v1/sync")
    api = ApiClient("http://api.invalid", "secret", sleep=waits.append, attempts=3)
    api.http._transport = httpx.MockTransport(lambda r: httpx.Response(503))
    with pytest.raises(Unreachable):
        api.request("GET", "/v1/sync")


async def test_import_creates_updates_and_reports_bad_rows(live_server, tmp_path):
    patient = await _account(live_server, ["goals:read", "goals:write"])
    csv_file = tmp_path / "goals.csv"
    csv_file.write_text(
        "external_id,title,description,priority,review_every_days,target_date\n"
        'run,Run a 5k,"Start slow,\nthen build up",high,7,2027-03-01\n'
        "sleep,Sleep by 11,,low,,\n"
        "bad,Bad priority,,urgent,,\n"
        ",No id,,,,\n"
    )
    result = _run(live_server, patient.pat, "import", str(csv_file))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "imported: 2 created, 0 updated, 0 unchanged, 2 failed"
    )
    assert "line 5: 422" in result.stderr and "priority" in result.stderr
    assert "line 6: external_id is required" in result.stderr
    assert patient.pat not in result.stdout + result.stderr
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        items = (await http.get("/v1/goals", headers=patient.headers)).json()["items"]
        goals = {g["external_id"]: g for g in items}
        assert set(goals) == {"run", "sleep"}
        assert goals["run"]["description"] == "Start slow,\nthen build up"
        assert goals["run"]["review_every_days"] == 7
        # a rerun creates nothing twice and leaves equal goals alone
        result = _run(live_server, patient.pat, "import", str(csv_file))
        assert result.stdout.strip().splitlines()[-1] == (
            "imported: 0 created, 0 updated, 2 unchanged, 2 failed"
        )
        csv_file.write_text("external_id,title,priority\nrun,Run a 10k,high\nsleep,Sleep by 11,\n")
        result = _run(live_server, patient.pat, "import", str(csv_file))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "imported: 0 created, 1 updated, 1 unchanged, 0 failed"
        run = (await http.get(f"/v1/goals/{goals['run']['id']}", headers=patient.headers)).json()
        assert run["title"] == "Run a 10k" and run["version"] == 2
        assert run["description"] == "Start slow,\nthen build up"  # empty cell: not given
        result = _run(live_server, patient.pat, "import", str(tmp_path / "missing.csv"))
        assert result.returncode == 1 and "cannot read" in result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise(monkeypatch, capsys):
    from app.scripts.api_client import Reporter

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    reporter = Reporter("sync")
    assert reporter.bar is not None  # rich's progress bar, drawn on standard error
    reporter.advance(500, "page 1")
    reporter.close()
    assert capsys.readouterr().out == ""  # standard output keeps only the summary
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    reporter = Reporter("sync")
    assert reporter.bar is None
    reporter.advance(500, "page 1, 500 upserts, 0 deletes")
    reporter.close()
    assert sys.stderr.getvalue() == "sync: page 1, 500 upserts, 0 deletes\n"
