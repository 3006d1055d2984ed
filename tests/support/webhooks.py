"""A webhook receiver on loopback and the subscription helper, for the tests that watch
deliveries arrive (webhooks, metrics)."""

from __future__ import annotations

import collections
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers ``statuses`` in
    turn (then ``default``)."""

    def __init__(self, statuses=(), default=204, delay=0.0):
        self.statuses = collections.deque(statuses)
        self.default = default
        self.delay = delay
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    status = receiver.statuses.popleft() if receiver.statuses else receiver.default
                # A slow receiver; one closed meanwhile leaves without answering.
                if receiver.delay and receiver.closing.wait(receiver.delay):
                    return
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"{receiver.base}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def delivery_ids(self) -> list[str]:
        with self.lock:
            return [r["headers"]["Waypoint-Delivery"] for r in self.requests]


async def subscribe(client, actor, url, events=("goal.created",)) -> dict:
    r = await client.post(
        "/v1/webhooks", json={"url": url, "events": list(events)}, headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return r.json()
