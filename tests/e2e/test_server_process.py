"""The real `byteor-cloud serve` process: ready on both databases, embedded self-migration,
body caps on the wire, structured logs with request ids, graceful shutdown."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers.processes import RunningProcess, start_server

pytestmark = pytest.mark.slow


def test_ready_on_its_database_and_stops_gracefully(live_server: RunningProcess) -> None:
    response = httpx.get(live_server.base_url + "/readyz", timeout=5)
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "object_store": "ok", "worker": "ok"}
    # uvicorn drains, runs the lifespan shutdown, then re-raises the signal it caught so a
    # supervisor sees how the process ended.
    assert live_server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    lines = [json.loads(line) for line in live_server.log().splitlines() if line.startswith("{")]
    assert any(line["message"] == "Application shutdown complete." for line in lines)
    ours = [
        line
        for line in lines
        if line["logger"] == "byteor_cloud.access"
        and line.get("request_id") == response.headers["x-request-id"]
    ]
    assert [(line["route"], line["status"]) for line in ours] == [("/readyz", 200)]


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[RunningProcess]:
    # Only a data directory: SQLite, a generated key, and self-migration on first start.
    server = start_server({"BYTEOR_CLOUD_DATA_DIR": str(tmp_path / "fresh")}, tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_embedded_default_migrates_itself_and_is_ready(
    embedded_server: RunningProcess, tmp_path: Path
) -> None:
    assert httpx.get(embedded_server.base_url + "/readyz", timeout=5).status_code == 200
    assert (tmp_path / "fresh" / "byteor-cloud.db").exists()
    assert (tmp_path / "fresh" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert embedded_server.stop(signal.SIGINT) in (0, -signal.SIGINT, 128 + signal.SIGINT)
    assert "Application shutdown complete." in embedded_server.log()


def _raw_request(base_url: str, request: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def test_declared_content_length_over_the_cap_is_refused_before_reading(
    embedded_server: RunningProcess,
) -> None:
    response = _raw_request(
        embedded_server.base_url,
        b"POST /api/v1/anything HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 999999999\r\n\r\n{}",
    )
    assert response.startswith(b"HTTP/1.1 413")
