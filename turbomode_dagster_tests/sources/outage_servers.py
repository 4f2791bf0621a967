"""Local stand-ins for broken data servers, for the outage drills: a closed port, a name that cannot
resolve, a listener that accepts and never answers, an HTTP server answering 429, and an IB Gateway
that completes the API handshake and start-up sync, then ignores every data request."""

from __future__ import annotations

import contextlib
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from curl_cffi import requests as curl_requests

UNRESOLVABLE_HOST = "nonexistent.invalid"  # RFC 6761: .invalid never resolves


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def silent_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """A port on 127.0.0.1 that accepts connections and never sends a byte; yields the port and the
    connections accepted so far."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        server.close()
        for conn in accepted:
            conn.close()


class TooManyRequests(BaseHTTPRequestHandler):
    """Answers every GET and POST with HTTP 429, counting the hits on the server."""

    def _refuse(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        body = b"Too Many Requests"
        self.send_response(429)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, *args: object) -> None:
        """Quiet: the drills assert on timings, not logs."""


@contextlib.contextmanager
def rate_limiting_server() -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on 127.0.0.1 answering 429 to everything; `.hits` counts requests."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), TooManyRequests)
    server.hits = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def route_yahoo_to(monkeypatch: pytest.MonkeyPatch, host_port: str) -> list[str]:
    """Send every HTTP request curl_cffi makes (yfinance's cookie, crumb, consent and chart requests)
    to `http://host_port` instead of Yahoo; returns the list of original URLs, appended as they go."""
    original = curl_requests.Session.request
    seen: list[str] = []

    def rerouted(self, method, url, *args, **kwargs):
        seen.append(url)
        parts = urlsplit(url)
        local = f"http://{host_port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
        return original(self, method, local, *args, **kwargs)

    monkeypatch.setattr(curl_requests.Session, "request", rerouted)
    return seen


def _message(*fields: str) -> bytes:
    """One IB API message: a 4-byte big-endian length, then NUL-terminated fields."""
    body = "".join(f"{field}\0" for field in fields).encode()
    return struct.pack(">I", len(body)) + body


# Start-up requests ib_insync waits for in connect, answered with their "end" message:
# reqPositions -> positionEnd, reqAccountUpdates -> accountDownloadEnd,
# reqAccountUpdatesMulti -> accountUpdateMultiEnd, reqExecutions -> execDetailsEnd.
_SYNC_REPLIES = {
    "61": lambda f: _message("62", "1"),
    "6": lambda f: _message("54", "1", f[3]),
    "76": lambda f: _message("74", "1", f[2]),
    "7": lambda f: _message("55", "1", f[2]),
}


def _client_messages(conn: socket.socket) -> Iterator[list[str] | None]:
    """The client's messages as field lists; None for the initial 'API\\0' + version handshake."""
    buffer = b""
    handshaken = False
    while data := conn.recv(65536):
        buffer += data
        if not handshaken:
            if len(buffer) < 8 or len(buffer) < 8 + struct.unpack(">I", buffer[4:8])[0]:
                continue
            buffer = buffer[8 + struct.unpack(">I", buffer[4:8])[0] :]
            handshaken = True
            yield None
        while len(buffer) >= 4 and len(buffer) >= 4 + (size := struct.unpack(">I", buffer[:4])[0]):
            yield buffer[4 : 4 + size].decode().split("\0")[:-1]
            buffer = buffer[4 + size :]


def _stalled_session(conn: socket.socket, ignored: list[str], answer_sync: bool) -> None:
    with contextlib.suppress(OSError):
        for fields in _client_messages(conn):
            if fields is None:
                conn.sendall(_message("176", "20261125 22:00:00 EST"))  # server version, connection time
            elif fields[0] == "71":  # startApi: the next order id and the managed accounts
                conn.sendall(_message("9", "1", "1") + _message("15", "1", "DU0000001"))
            elif answer_sync and fields[0] in _SYNC_REPLIES:
                conn.sendall(_SYNC_REPLIES[fields[0]](fields))
            else:
                ignored.append(fields[0])  # contract details, historical data (and the sync if told): no answer


@contextlib.contextmanager
def stalled_gateway(answer_sync: bool = True) -> Iterator[tuple[int, list[str]]]:
    """An IB Gateway on 127.0.0.1 that completes the API handshake, answers ib_insync's start-up sync
    requests only if `answer_sync`, and never answers a data request; yields the port and the message
    ids of the requests it has ignored."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    ignored: list[str] = []
    sessions: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn = server.accept()[0]
                sessions.append(conn)
                threading.Thread(target=_stalled_session, args=(conn, ignored, answer_sync), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1], ignored
    finally:
        server.close()
        for conn in sessions:
            conn.close()


class Overran(Exception):
    """A drill ran past its hard limit (the code under test did not bound its own time)."""


@contextlib.contextmanager
def hard_limit(seconds: float) -> Iterator[None]:
    """Raise `Overran` in the main thread after `seconds`, so a drill fails instead of hanging."""

    def overran(signum: int, frame: object) -> None:
        raise Overran(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, overran)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def wait_for_abandoned_calls(limit: float = 10.0) -> None:
    """Let calls abandoned at a deadline finish (their requests are capped), so none outlives its drill."""
    ends = time.monotonic() + limit
    for thread in threading.enumerate():
        if thread.name.startswith("deadline: "):
            thread.join(max(0.0, ends - time.monotonic()))
