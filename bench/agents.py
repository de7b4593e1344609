"""Agent hot path against the real server: heartbeats/s and 304 desired-state polls/s,
each beside a bare Starlette hello-world served by uvicorn the same way, in the same run.

    .venv/bin/python bench/agents.py [--seconds 5] [--rounds 3] [--concurrency 16] [--backend both]

Goals: heartbeat ≥ 0.3× the hello-world rate; 304 desired-state ≥ 0.6×.
"""

from __future__ import annotations

import argparse
import asyncio
import json as jsonlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


async def load(
    url: str,
    *,
    method: str,
    seconds: float,
    concurrency: int,
    headers: dict[str, str],
    json: object | None,
    expect: int,
) -> float:
    """Requests per second: measured with wrk when installed (a C load generator, so the
    client is not the bottleneck), else with `concurrency` httpx keep-alive clients."""
    if shutil.which("wrk"):
        return wrk(
            url, method=method, seconds=seconds, concurrency=concurrency, headers=headers, json=json
        )
    return await httpx_load(
        url,
        method=method,
        seconds=seconds,
        concurrency=concurrency,
        headers=headers,
        json=json,
        expect=expect,
    )


def wrk(
    url: str,
    *,
    method: str,
    seconds: float,
    concurrency: int,
    headers: dict[str, str],
    json: object | None,
) -> float:
    script = Path(tempfile.mkdtemp()) / "request.lua"
    lines = [f'wrk.method = "{method}"']
    if json is not None:
        lines.append(f"wrk.body = [[{jsonlib.dumps(json)}]]")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    lines += [f'wrk.headers["{k}"] = [[{v}]]' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, int(seconds))}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    rate = errors = None
    for line in result.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            rate = float(line.split()[1])
        if "Non-2xx or 3xx responses" in line:
            errors = line.strip()
    if rate is None or errors is not None:
        raise RuntimeError(f"{url}: {errors or result.stdout}")
    return rate


async def httpx_load(
    url: str,
    *,
    method: str,
    seconds: float,
    concurrency: int,
    headers: dict[str, str],
    json: object | None,
    expect: int,
) -> float:
    """Requests per second completed by `concurrency` keep-alive clients for `seconds`."""
    done = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop:
                response = await client.request(method, url, headers=headers, json=json)
                if response.status_code != expect:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.monotonic() - started)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )


def control_plane_env(backend: str, data_dir: str, port: int) -> tuple[dict[str, str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEOR_CLOUD_")}
    env.update(
        {
            "BYTEOR_CLOUD_DATA_DIR": data_dir,
            "BYTEOR_CLOUD_API_BIND_ADDR": f"127.0.0.1:{port}",
            "BYTEOR_CLOUD_DEPLOYMENT_MODE": "api",
            "BYTEOR_CLOUD_LOG_LEVEL": "WARNING",
            "BYTEOR_CLOUD_RATE_LIMIT_AGENTS_PER_MIN": "1000000000",
            "BYTEOR_CLOUD_RATE_LIMIT_PEOPLE_PER_MIN": "1000000000",
        }
    )
    schema = ""
    if backend == "postgresql":
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        env.update(
            {
                "BYTEOR_CLOUD_DATABASE_URL": PG_URL,
                "BYTEOR_CLOUD_DATABASE_SCHEMA": schema,
                "BYTEOR_CLOUD_SECRET_KEY": "bench-master-key-0123456789",
            }
        )
    return env, schema


def setup_agent(base: str, env: dict[str, str]) -> tuple[str, str]:
    """Bootstrap a user, an org/project/env and an enrolled agent over the real API."""
    token = subprocess.run(
        [
            str(BIN / "byteor-cloud"),
            "admin",
            "bootstrap",
            "--email",
            "bench@example.com",
            "--print-token",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    people = {"Authorization": f"Bearer {token}"}
    org = httpx.post(f"{base}/api/v1/orgs", json={"name": "bench"}, headers=people).json()
    project = httpx.post(
        f"{base}/api/v1/orgs/{org['id']}/projects", json={"name": "p"}, headers=people
    ).json()
    path = f"{base}/api/v1/orgs/{org['id']}/projects/{project['id']}/environments"
    environment = httpx.post(path, json={"name": "dev"}, headers=people).json()
    env_path = f"{path}/{environment['id']}"
    enrollment = httpx.post(f"{env_path}/enrollment-tokens", json={}, headers=people).json()
    agent = httpx.post(
        f"{env_path}/agents",
        json={"hostname": "bench"},
        headers={"Authorization": f"Bearer {enrollment['token']}"},
    ).json()
    return agent["agent_id"], agent["api_key"]


async def measure(backend: str, seconds: float, concurrency: int, rounds: int) -> None:
    hello_port, api_port = free_port(), free_port()
    hello = start(
        [
            str(BIN / "uvicorn"),
            "bench.hello_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(hello_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        dict(os.environ),
    )
    data_dir = tempfile.mkdtemp()
    env, schema = control_plane_env(backend, data_dir, api_port)
    if backend == "postgresql":
        subprocess.run(  # noqa: ASYNC221 - setup, before anything is measured
            [str(BIN / "byteor-cloud"), "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
    server = start([str(BIN / "byteor-cloud"), "serve"], env)
    try:
        wait_ready(f"http://127.0.0.1:{hello_port}/", hello)
        base = f"http://127.0.0.1:{api_port}"
        wait_ready(f"{base}/readyz", server)
        agent_id, key = setup_agent(base, env)
        agent = {"Authorization": f"Bearer {key}"}
        beat = {"status": "ok", "metrics": {"records_in": 10, "records_out": 10}}
        state = httpx.get(  # noqa: ASYNC210 - setup, before anything is measured
            f"{base}/api/v1/agents/{agent_id}/desired-state", headers=agent
        )
        poll_headers = {**agent, "If-None-Match": state.headers["etag"]}
        hello_url = f"http://127.0.0.1:{hello_port}/"

        async def against_hello(
            url: str, method: str, headers: dict[str, str], body: object | None, expect: int
        ) -> tuple[float, float]:
            """(subject req/s, hello-world req/s), measured one after the other."""
            subject = await load(
                url,
                method=method,
                seconds=seconds,
                concurrency=concurrency,
                headers=headers,
                json=body,
                expect=expect,
            )
            baseline = await load(
                hello_url,
                method=method,
                seconds=seconds,
                concurrency=concurrency,
                headers={},
                json=body,
                expect=200,
            )
            return subject, baseline

        beats: list[tuple[float, float]] = []
        polls: list[tuple[float, float]] = []
        # Rounds alternate baseline and subject, so a slow spell of this noisy machine
        # lands on both; the median ratio is reported.
        for _ in range(rounds):
            beats.append(
                await against_hello(
                    f"{base}/api/v1/agents/{agent_id}/heartbeat", "POST", agent, beat, 200
                )
            )
            polls.append(
                await against_hello(
                    f"{base}/api/v1/agents/{agent_id}/desired-state", "GET", poll_headers, None, 304
                )
            )
    finally:
        for process in (hello, server):
            process.terminate()
            process.wait(timeout=30)
        if schema:
            from sqlalchemy import create_engine, text

            engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()
    report(backend, "heartbeat", beats, goal=0.3)
    report(backend, "desired 304", polls, goal=0.6)


def report(backend: str, name: str, rounds: list[tuple[float, float]], *, goal: float) -> None:
    """One line per path: each round's rates and ratio, then the median ratio."""
    ratios = [subject / baseline for subject, baseline in rounds]
    detail = "  ".join(
        f"{subject:6.0f}/{baseline:6.0f}={ratio:.2f}x"
        for (subject, baseline), ratio in zip(rounds, ratios, strict=True)
    )
    print(
        f"{backend:10s} {name:12s} median ratio {statistics.median(ratios):.2f}x "
        f"(goal >= {goal:.2f}x)   req/s subject/hello per round: {detail}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print(
            "wrk not found: measuring with httpx clients in this process, which saturate "
            "before the server does, so the ratios come out near 1x and mean little. "
            "Install wrk (apt-get install wrk) for the figures in docs/agents.md.",
            file=sys.stderr,
        )
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        asyncio.run(measure(backend, args.seconds, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
