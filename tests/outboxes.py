"""Real servers that receive what the notifier sends: an SMTP server (aiosmtpd) and an HTTP
SMS/WhatsApp gateway (http.server), each on a free local port, collecting what arrives.

Plain context managers, usable anywhere (unit tests, browser tests, a shell)::

    with SmtpServer() as smtp, GatewayServer() as gateway:
        app.config.update(smtp.config(), **gateway.config())
        ...
        smtp.messages       # email.message.EmailMessage objects, in arrival order
        gateway.messages    # the JSON bodies {"to", "text", "channel"}, in arrival order

and as pytest fixtures `smtp` and `gateway` (imported by tests/conftest.py, so every test has
them): they point the session's `app` config at the server for the test and restore it after.
Browser tests serve that same `app` object (tests/browser/conftest.py `live_server`), so the
same fixtures work there; `deliver_outbox` runs the outbox job once, as the scheduler would.

`wait_for(n)` waits (bounded) until n messages have arrived: delivery that happens in another
thread (the urgent sender, a live server) is then awaited without sleeping for a fixed time.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from .servers import free_port

WAIT_S = 10.0


class _Collector:
    """What both servers share: a list filled by a server thread, and a bounded wait on it."""

    def __init__(self):
        self._arrived = threading.Condition()
        self.messages: list = []

    def _add(self, item) -> None:
        with self._arrived:
            self.messages.append(item)
            self._arrived.notify_all()

    def wait_for(self, count: int = 1, timeout: float = WAIT_S) -> list:
        """Wait until at least `count` messages arrived (at most `timeout` s); returns them.
        Fails the test if they did not come."""
        with self._arrived:
            done = self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
        if not done:
            pytest.fail(
                f"{type(self).__name__}: {len(self.messages)} message(s) arrived, expected {count}",
                pytrace=False,
            )
        return list(self.messages)


class SmtpServer(_Collector):
    """An SMTP server (aiosmtpd) on 127.0.0.1 and a free port.

    `.messages`: the received mails as `email.message.EmailMessage`; `.envelopes`: the SMTP
    envelopes (`.rcpt_tos`, `.mail_from`). `.host`, `.port`, `.url` (smtp://host:port).
    """

    host = "127.0.0.1"

    def __init__(self, port: int | None = None):
        super().__init__()
        self.envelopes: list = []
        self.port = port or free_port()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self._add(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted for delivery"

    def config(self) -> dict:
        """The app settings that send e-mail here."""
        return {
            "MAIL_SERVER": self.host,
            "MAIL_PORT": self.port,
            "MAIL_USE_TLS": False,
            "MAIL_USE_SSL": False,
            "MAIL_USERNAME": None,
        }

    def start(self) -> SmtpServer:
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class GatewayServer(_Collector):
    """An HTTP SMS/WhatsApp gateway on 127.0.0.1 and a free port.

    Answers every POST with `.status` (202 unless a test changes it, e.g. 503 to make the
    channel fail). `.requests`: every request as {"path", "headers", "json"} (failed ones
    too); `.messages`: the JSON bodies of the requests it accepted (2xx). `.url` is the SMS
    endpoint (/send), `.whatsapp_url` the WhatsApp one (/whatsapp).
    """

    host = "127.0.0.1"
    token = "rahasia-gateway"

    def __init__(self, port: int = 0):
        super().__init__()
        self.requests: list[dict] = []
        self.status = 202
        self._port = port
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self.server is not None, "the gateway is not started"
        return self.server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/send"

    @property
    def whatsapp_url(self) -> str:
        return f"http://{self.host}:{self.port}/whatsapp"

    def config(self, *, whatsapp: bool = False) -> dict:
        """The app settings that send SMS (and, with `whatsapp`, WhatsApp) here."""
        settings = {"SMS_GATEWAY_URL": self.url, "GATEWAY_TOKEN": self.token}
        if whatsapp:
            settings["WHATSAPP_GATEWAY_URL"] = self.whatsapp_url
        return settings

    def start(self) -> GatewayServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                payload = json.loads(self.rfile.read(length))
                status = gateway.status
                gateway.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": payload}
                )
                if status < 300:  # recorded before the answer: the sender may look at once
                    gateway._add(payload)
                body = json.dumps({"ok": status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((self.host, self._port), Handler)
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="test-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self._thread.join(timeout=10)
            self.server = None

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def deliver_outbox(app, now: datetime | None = None) -> dict:
    """Run the outbox job once (what the scheduler does every 30 s), in its own app context."""
    from queue_app.notify.jobs import deliver_outbox as job

    return job(app, now or datetime.now(UTC))


# --- fixtures (tests/conftest.py imports them, so every test module has them) ----------------


@pytest.fixture
def smtp(app, monkeypatch):
    """A real SMTP server for this test; the app's e-mail goes there."""
    with SmtpServer() as server:
        for key, value in server.config().items():
            monkeypatch.setitem(app.config, key, value)
        yield server


@pytest.fixture
def gateway(app, monkeypatch):
    """A real HTTP gateway for this test; the app's SMS go there (WhatsApp stays unset unless a
    test sets `app.config["WHATSAPP_GATEWAY_URL"] = gateway.whatsapp_url`, with monkeypatch)."""
    with GatewayServer() as server:
        for key, value in server.config().items():
            monkeypatch.setitem(app.config, key, value)
        yield server
