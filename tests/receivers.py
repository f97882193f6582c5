"""A real HTTP server on 127.0.0.1 standing in for an upstream API or a webhook."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b'{"ok": true}'
    delay: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many tries in flight connect at once

    def handle_error(self, request, client_address) -> None:
        """A client that went away (a killed worker) is part of the tests, not an error."""


class Receiver:
    """Records every request; answers with the scripted answers in order, then the default."""

    def __init__(self, default: Answer | None = None, respond=None):
        """respond(request) may return an Answer for a request (a fake Jira routes by path)."""
        self.default = default or Answer()
        self.respond = respond
        self.received: list[Received] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request's arrival
        self.in_flight = 0
        self.peak_in_flight = 0  # the most requests it was answering at once
        self._script: deque[Answer] = deque()
        self._changed = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *answers: Answer) -> None:
        with self._changed:
            self._script.extend(answers)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until at least count requests arrived; fail the test at the deadline."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} requests within {timeout}s, got {len(self.received)}"
                    )
                self._changed.wait(left)
            return list(self.received)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _next_answer(self, request: Received) -> Answer:
        answer = self.respond(request) if self.respond else None
        with self._changed:
            return answer or (self._script.popleft() if self._script else self.default)

    def to(self, path: str) -> list[Received]:
        """What arrived on path (query string ignored)."""
        with self._changed:
            return [r for r in self.received if r.path.split("?")[0] == path]

    def _record(self, request: Received, arrived: float) -> None:
        with self._changed:
            self.received.append(request)
            self.arrivals.append(arrived)
            self._changed.notify_all()

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def do_POST(self) -> None:
                with receiver._changed:
                    receiver.in_flight += 1
                    receiver.peak_in_flight = max(receiver.peak_in_flight, receiver.in_flight)
                try:
                    self._answer()
                finally:
                    with receiver._changed:
                        receiver.in_flight -= 1

            def _answer(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the client died mid-request (a killed worker): nothing arrived
                request = Received(self.command, self.path, dict(self.headers.items()), body)
                answer = receiver._next_answer(request)
                receiver._record(request, arrived)
                if answer.delay:
                    time.sleep(answer.delay)  # a slow upstream, on purpose
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_PATCH = do_POST

            def log_message(self, *args) -> None:
                pass

        return Handler
