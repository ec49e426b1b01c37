"""A loopback HTTP server that replays scripted answers, for faults a real server will not make
on demand: a status with Retry-After, a body trickled byte by byte, a partial-response warning.

Bodies are the real APIs' wire format, written out in each test; every request is recorded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    trickle_seconds: float = 0.0  # pause before each byte of the body


class ScriptedServer:
    """Answers requests in order from `answers`; the last answer repeats."""

    def __init__(self, answers: list[Answer]):
        self.answers = list(answers)
        self.requests: list[tuple[float, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                owner.requests.append((time.monotonic(), self.path))
                i = min(len(owner.requests), len(owner.answers)) - 1
                a = owner.answers[i]
                self.send_response(a.status)
                for k, v in {"Content-Type": "application/json", **a.headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(a.body)))
                self.end_headers()
                try:
                    if a.trickle_seconds:
                        for b in a.body:
                            time.sleep(a.trickle_seconds)
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                    else:
                        self.wfile.write(a.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
