"""Fuzz the API with Schemathesis, as `.ci/run` does after `make test`.

Starts `waypoint serve` on a free loopback port with a fresh SQLite database, registers a
client and a therapist (linked, with a goal and a step, so that paths have something to find),
then runs Schemathesis once with each one's token: every phase, a fixed seed, a bounded number
of examples. Checks and their exceptions are in `schemathesis.toml` next to this file.

    .venv/bin/python -m tests.support.fuzz.run_schemathesis [--max-examples N] [--seed S]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.servers import running_server, server_env

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PASSWORD = "fuzzing passphrase 123"


@contextlib.contextmanager
def server(var: Path) -> Iterator[str]:
    # Fuzzed logins fail by the hundred; the throttle is tested elsewhere.
    env = server_env(
        var, login_failures_per_account="1000000", login_failures_per_address="1000000"
    )
    with running_server(env) as served:
        yield served.url


def account(http: httpx.Client, role: str) -> str:
    email = f"fuzz-{role}@example.com"
    r = http.post(
        "/v1/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": f"Fuzz {role}", "role": role},
    )
    r.raise_for_status()
    r = http.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    )
    r.raise_for_status()
    return r.json()["access_token"]


def world(base: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as http:
        tokens = {role: account(http, role) for role in ("client", "therapist")}
        client = {"Authorization": f"Bearer {tokens['client']}"}
        therapist = {"Authorization": f"Bearer {tokens['therapist']}"}
        code = http.post("/v1/care-invites", headers=therapist).json()["code"]
        http.post("/v1/care-links", json={"code": code}, headers=client).raise_for_status()
        goal = http.post("/v1/goals", json={"title": "Walk"}, headers=client)
        goal.raise_for_status()
        http.post(
            f"/v1/goals/{goal.json()['id']}/steps", json={"title": "Shoes"}, headers=client
        ).raise_for_status()
    return tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    args = parser.parse_args()
    started = time.monotonic()
    failed = False
    with tempfile.TemporaryDirectory(prefix="waypoint-fuzz-") as tmp, server(Path(tmp)) as base:
        tokens = world(base)
        for role, token in tokens.items():
            print(f"== Schemathesis as the {role}", flush=True)
            result = subprocess.run(
                [
                    BIN / "schemathesis",
                    "--config-file",
                    HERE / "schemathesis.toml",
                    "run",
                    f"{base}/openapi.json",
                    "--header",
                    f"Authorization: Bearer {token}",
                    "--phases",
                    args.phases,
                    "--seed",
                    str(args.seed),
                    "--max-examples",
                    str(args.max_examples),
                    "--generation-database",
                    "none",
                    "--no-color",
                ],
                cwd=tmp,
            )
            failed |= result.returncode != 0
    print(
        f"== Schemathesis: {'FAILED' if failed else 'passed'} in {time.monotonic() - started:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
