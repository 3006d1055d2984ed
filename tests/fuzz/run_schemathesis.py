"""Fuzz the API with Schemathesis, as `.ci/run` does after `make test`.

Starts `waypoint serve` on a free loopback port with a fresh SQLite database, registers a
client and a therapist (linked, with a goal and a step, so that paths have something to find),
then runs Schemathesis once with each one's token: every phase, a fixed seed, a bounded number
of examples. Checks and their exceptions are in `schemathesis.toml` next to this file.

    .venv/bin/python tests/fuzz/run_schemathesis.py [--max-examples N] [--seed S]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PASSWORD = "fuzzing passphrase 123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(var: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYPOINT_")}
    env |= {
        "WAYPOINT_ENV": "test",
        "WAYPOINT_DATABASE_URL": f"sqlite:///{var / 'waypoint.db'}",
        "WAYPOINT_SECRET_KEY": "schemathesis-run-secret-key-0123456789abcdef",
        "WAYPOINT_VAR_DIR": str(var),
        "WAYPOINT_ARGON2_TIME_COST": "1",
        "WAYPOINT_ARGON2_MEMORY_COST": "1024",
        "WAYPOINT_ARGON2_PARALLELISM": "1",
        # Fuzzed logins fail by the hundred; the throttle is tested elsewhere.
        "WAYPOINT_LOGIN_FAILURES_PER_ACCOUNT": "1000000",
        "WAYPOINT_LOGIN_FAILURES_PER_ADDRESS": "1000000",
        "WAYPOINT_LOG_LEVEL": "WARNING",
    }
    subprocess.run([BIN / "waypoint", "migrate"], env=env, check=True, capture_output=True)
    port = free_port()
    log = open(var / "server.log", "wb")  # noqa: SIM115  (closed below)
    process = subprocess.Popen(
        [BIN / "waypoint", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start:\n" + (var / "server.log").read_text())
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


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
