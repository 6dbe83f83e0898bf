"""Request bodies are capped before authentication, without being read (issue 12, finding 10).

A real uvicorn server on loopback and raw sockets: the test client would buffer the body."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from suanli.api.app import create_app
from suanli.settings import Settings

DECLARED_BYTES = 300 << 20
CHUNK_BYTES = 64 << 10
MAX_SENT_BYTES = 16 << 20  # give up sending here: far past the 1 MiB limit
ANSWER_TIMEOUT_S = 10


@pytest.fixture
def server(database, clock) -> Iterator[tuple[str, int]]:  # type: ignore[no-untyped-def]
    settings = Settings(auto_migrate=False, run_scheduler=False, search_index=False)
    app = create_app(settings, database=database, clock=clock)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield "127.0.0.1", port
    uv.should_exit = True
    thread.join(timeout=ANSWER_TIMEOUT_S)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _read_answer(sock: socket.socket) -> bytes:
    sock.settimeout(ANSWER_TIMEOUT_S)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_declared_huge_body_is_refused_before_it_is_sent(server) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection(server, timeout=ANSWER_TIMEOUT_S) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n{\"name\": " % DECLARED_BYTES)
        answer = _read_answer(sock)  # only the headers and 9 bytes went out: no 300 MB read
    assert _status(answer) == 413, answer
    assert b"application/problem+json" in answer


def test_a_chunked_body_is_cut_at_the_limit_before_authentication(server) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection(server, timeout=ANSWER_TIMEOUT_S) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sent, chunk = 0, b"x" * CHUNK_BYTES
        sock.setblocking(False)
        answer = b""
        while sent < MAX_SENT_BYTES and not answer:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            except BlockingIOError:
                time.sleep(0.01)  # the server stopped reading: its answer is on the way
            try:
                answer = sock.recv(65536)
            except BlockingIOError:
                pass
        sock.setblocking(True)
        if not answer:
            sock.sendall(b"0\r\n\r\n")
            answer = _read_answer(sock)
    assert _status(answer) == 413, answer  # not the 401 an unauthenticated request gets
    assert sent < MAX_SENT_BYTES


def test_small_bodies_and_bulk_routes_pass(server) -> None:  # type: ignore[no-untyped-def]
    import httpx

    base = f"http://{server[0]}:{server[1]}"
    assert httpx.post(f"{base}/v1/jobs", json={"name": "x"}).status_code == 401
    logs = "x" * (3 << 20)  # an agent's report may carry up to 4 MiB of logs
    bulk = httpx.post(f"{base}/v1/agents/CN.A1-0/leases/CN.L1-0/report",
                      json={"fence": 0, "state": "running", "logs": logs})
    assert bulk.status_code == 401, bulk.text
    big = httpx.post(f"{base}/v1/jobs", json={"name": "x", "command": ["echo", logs]})
    assert big.status_code == 413 and big.json()["status"] == 413
