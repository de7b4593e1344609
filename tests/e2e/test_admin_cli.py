"""`byteor-cloud admin bootstrap|create-user` and `audit verify` as real commands, and the
token they print working against a real server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from helpers.databases import TestDatabase
from helpers.processes import VENV_BIN, base_env, start_server

pytestmark = pytest.mark.slow


def cli(test_db: TestDatabase, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "byteor-cloud"), *args],
        env=base_env(test_db.env()),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bootstrap_prints_only_a_token_that_works(test_db: TestDatabase, tmp_path: Path) -> None:
    first = cli(test_db, "admin", "bootstrap", "--email", "Root@Example.com", "--print-token")
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip()
    assert first.stdout == token + "\n"
    assert token.startswith("bc_pat_")
    again = cli(test_db, "admin", "bootstrap", "--email", "root@example.com", "--print-token")
    assert again.returncode == 0
    assert again.stdout.strip() != token  # a new token for the same (found) administrator
    assert "already existed" in again.stderr
    user = cli(test_db, "admin", "create-user", "--email", "dev@example.com", "--print-token")
    assert user.returncode == 0
    server = start_server(test_db.env(), tmp_path)
    try:
        root = {"Authorization": f"Bearer {token}"}
        me = httpx.get(server.base_url + "/api/v1/me", headers=root, timeout=10).json()
        assert (me["email"], me["is_instance_admin"]) == ("root@example.com", True)
        assert (
            httpx.get(server.base_url + "/api/v1/admin/jobs", headers=root, timeout=10).status_code
            == 200
        )
        dev = {"Authorization": f"Bearer {user.stdout.strip()}"}
        assert (
            httpx.get(server.base_url + "/api/v1/admin/jobs", headers=dev, timeout=10).status_code
            == 403
        )
        org = httpx.post(
            server.base_url + "/api/v1/orgs", json={"name": "Acme"}, headers=dev, timeout=10
        ).json()
    finally:
        server.stop()
    verified = cli(test_db, "audit", "verify", "--org", org["id"])
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ok: 2 records")  # org.create, signing_key.create


def test_a_weak_password_is_refused_with_one_line(test_db: TestDatabase) -> None:
    result = cli(test_db, "admin", "create-user", "--email", "a@example.com", "--password", "short")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: password must be 12 to 256 characters"]
    assert result.stdout == ""
