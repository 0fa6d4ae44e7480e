"""A real HTTP server that receives webhooks, for the webhook tests: it checks every request's
signature with the endpoint's secret, records what came, and answers with the statuses it is
told to (one per request, then 200), optionally after a delay."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from queue_app.webhooks import signing


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str = ""
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200

    def record(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    def uids(self) -> list[str]:
        return [r.headers["X-QueueApp-Delivery"] for r in self.received]


def serve(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = dict(self.headers.items())  # as spelled by the sender
            ok = signing.verify(
                receiver.secret,
                headers.get("X-QueueApp-Timestamp", ""),
                body,
                headers.get("X-QueueApp-Signature", ""),
            )
            receiver.record(Received(self.path, headers, body, ok))
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            status = receiver.answer()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks/queue"
    return server, thread
