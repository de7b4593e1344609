"""Starting the project's real processes (API server, worker, agent) on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEOR_CLOUD_")}
    env.update(extra)
    return env


@dataclass
class RunningProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_until_ready(process: RunningProcess, path: str = "/readyz") -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"process exited early:\n{process.log()}")
        try:
            if httpx.get(process.base_url + path, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.stop(signal.SIGKILL)
    raise RuntimeError(f"process not ready in {STARTUP_TIMEOUT_S}s:\n{process.log()}")


def start_server(
    env: Mapping[str, str],
    log_dir: Path,
    *,
    args: tuple[str, ...] = ("serve",),
    bind_variable: str = "BYTEOR_CLOUD_API_BIND_ADDR",
    wait: bool = True,
) -> RunningProcess:
    """Start `byteor-cloud ARGS` on a free port and (by default) wait for /readyz 200."""
    port = free_port()
    log_path = log_dir / f"{args[0]}-{port}-{time.monotonic_ns()}.log"
    full_env = base_env({**env, bind_variable: f"127.0.0.1:{port}"})
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(VENV_BIN / "byteor-cloud"), *args],
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    running = RunningProcess(process, f"http://127.0.0.1:{port}", log_path)
    if wait:
        wait_until_ready(running)
    return running


def start_worker_process(
    env: Mapping[str, str], log_dir: Path, *, wait: bool = True
) -> RunningProcess:
    """Start `byteor-cloud worker` with the test job types loadable from tests/helpers."""
    tests_dir = str(Path(__file__).resolve().parent.parent)
    worker_env = {
        "BYTEOR_CLOUD_JOB_MODULES": "helpers.job_handlers",
        "BYTEOR_CLOUD_WORKER_POLL_INTERVAL_S": "0.05",
        "PYTHONPATH": tests_dir,
        **env,
    }
    return start_server(
        worker_env,
        log_dir,
        args=("worker",),
        bind_variable="BYTEOR_CLOUD_WORKER_BIND_ADDR",
        wait=wait,
    )
