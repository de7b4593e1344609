"""Settings: names, aliases and defaults of PRODUCT.md §2; bad values stop start-up."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest

from byteor_cloud.config import DeploymentMode, Settings, SettingsError, load_settings
from helpers.processes import VENV_BIN, base_env


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("BYTEOR_CLOUD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env from the repository


def test_defaults_match_the_specification() -> None:
    settings = load_settings()
    assert settings.deployment_mode is DeploymentMode.combined
    assert settings.api_bind_addr == "127.0.0.1:8080"
    assert settings.worker_bind_addr == "127.0.0.1:8081"
    assert settings.allow_org_creation is True
    assert settings.data_dir == Path("./.byteor-cloud")
    assert settings.database_schema == "public"
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith(".byteor-cloud/byteor-cloud.db")
    assert settings.effective_storage_url.endswith(".byteor-cloud/objects")
    assert settings.effective_api_base_url == "http://127.0.0.1:8080"
    assert settings.effective_ui_base_url == "http://127.0.0.1:8080"
    assert settings.run_demo_agents is False
    assert settings.demo_api_base_url == "http://localhost:8080"


def test_bind_addr_alias_sets_both_but_explicit_values_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BYTEOR_CLOUD_BIND_ADDR", "0.0.0.0:9000")
    settings = load_settings()
    assert settings.api_bind_addr == "0.0.0.0:9000"
    assert settings.worker_bind_addr == "0.0.0.0:9000"
    assert settings.effective_api_base_url == "http://127.0.0.1:9000"
    monkeypatch.setenv("BYTEOR_CLOUD_WORKER_BIND_ADDR", "127.0.0.1:9100")
    settings = load_settings()
    assert settings.api_bind_addr == "0.0.0.0:9000"
    assert settings.worker_bind_addr == "127.0.0.1:9100"


def test_public_base_url_alias_and_ui_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEOR_CLOUD_PUBLIC_BASE_URL", "https://api.example.com/")
    settings = load_settings()
    assert settings.effective_api_base_url == "https://api.example.com"
    assert settings.effective_ui_base_url == "https://api.example.com"
    monkeypatch.setenv("BYTEOR_CLOUD_API_PUBLIC_BASE_URL", "https://api2.example.com")
    monkeypatch.setenv("BYTEOR_CLOUD_UI_PUBLIC_BASE_URL", "https://cloud.example.com")
    settings = load_settings()
    assert settings.effective_api_base_url == "https://api2.example.com"
    assert settings.effective_ui_base_url == "https://cloud.example.com"


def test_trusted_proxies_parse_as_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEOR_CLOUD_TRUSTED_PROXIES", "10.0.0.0/8, ::1/128")
    settings = load_settings()
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BYTEOR_CLOUD_DEPLOYMENT_MODE", "both"),
        ("BYTEOR_CLOUD_API_BIND_ADDR", "localhost"),
        ("BYTEOR_CLOUD_WORKER_BIND_ADDR", "127.0.0.1:99999"),
        ("BYTEOR_CLOUD_TRUSTED_PROXIES", "not-a-network"),
        ("BYTEOR_CLOUD_ALLOW_ORG_CREATION", "perhaps"),
        ("BYTEOR_CLOUD_DATABASE_URL", "mysql://db/x"),
        ("BYTEOR_CLOUD_STORAGE_URL", "ftp://x"),
        ("BYTEOR_CLOUD_DATABASE_SCHEMA", "x; drop"),
        ("BYTEOR_CLOUD_UI_PUBLIC_BASE_URL", "cloud.example.com"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{name}: ")
    assert "\n" not in message


def test_postgres_refuses_to_start_without_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEOR_CLOUD_DATABASE_URL", "postgresql://db.example/x")
    with pytest.raises(SettingsError, match="BYTEOR_CLOUD_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("BYTEOR_CLOUD_SECRET_KEY", "k" * 40)
    assert load_settings().uses_postgres


def test_dotenv_file_supplies_settings_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "BYTEOR_CLOUD_API_BIND_ADDR=127.0.0.1:7000\nBYTEOR_CLOUD_ALLOW_ORG_CREATION=false\n"
    )
    settings = load_settings()
    assert settings.api_bind_addr == "127.0.0.1:7000"
    assert settings.allow_org_creation is False
    monkeypatch.setenv("BYTEOR_CLOUD_API_BIND_ADDR", "127.0.0.1:7001")
    assert load_settings().api_bind_addr == "127.0.0.1:7001"


def test_embedded_master_key_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    first = settings.master_key()
    assert len(first) >= 48
    assert settings.master_key() == first
    assert ((tmp_path / "data" / "secret.key").stat().st_mode & 0o777) == 0o600


def test_secret_key_never_appears_in_repr() -> None:
    settings = Settings(_env_file=None, secret_key="super-secret-value-123")  # type: ignore[call-arg]
    assert "super-secret-value-123" not in repr(settings)


def test_the_cli_stops_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "byteor-cloud"), "serve"],
        env=base_env({"BYTEOR_CLOUD_API_BIND_ADDR": "nowhere"}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: BYTEOR_CLOUD_API_BIND_ADDR: expected HOST:PORT, for example 127.0.0.1:8080"
    ]
