"""``python -m bench.serve``: the benchmark's app (``bench/app.py``: the API and its two
baselines) served exactly as ``waypoint serve`` serves the API."""

from __future__ import annotations

import argparse

from app.cli import EventLoop, run_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--loop", choices=[loop.value for loop in EventLoop], default="asyncio")
    args = parser.parse_args()
    run_server(
        "bench.app:create_bench_app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        reload=False,
        loop=EventLoop(args.loop),
    )


if __name__ == "__main__":
    main()
