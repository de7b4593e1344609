"""Typed settings, read once from the environment (and an optional `.env`) at start-up.

Nothing else in the package reads the environment: the one `Settings` object is built by
the entry point and passed down. PRODUCT.md §2 fixes the variable names and defaults.
"""

from __future__ import annotations

import ipaddress
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_KEY_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


class DeploymentMode(StrEnum):
    combined = "combined"
    api = "api"
    worker = "worker"


class SettingsError(Exception):
    """A bad setting: the message is one line naming the variable."""


def _parse_bind_addr(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT, for example 127.0.0.1:8080")
    return host.strip("[]"), int(port)


class Settings(BaseSettings):
    """Every setting of the control plane, one field per variable of PRODUCT.md §2."""

    model_config = SettingsConfigDict(
        env_prefix="BYTEOR_CLOUD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    deployment_mode: DeploymentMode = Field(
        DeploymentMode.combined, description="`api`, `worker` or `combined` (both)"
    )
    bind_addr: str | None = Field(
        None, description="Alias setting both listen addresses; the explicit ones win"
    )
    api_bind_addr: str = Field("127.0.0.1:8080", description="API + UI listen address")
    worker_bind_addr: str = Field(
        "127.0.0.1:8081", description="Worker health/metrics listen address in `worker` mode"
    )
    trusted_proxies: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode
    ] = Field((), description="Comma-separated CIDRs whose X-Forwarded-For is believed")
    allow_org_creation: bool = Field(
        True, description="Whether any signed-in user may create organizations"
    )
    api_public_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "BYTEOR_CLOUD_API_PUBLIC_BASE_URL", "BYTEOR_CLOUD_PUBLIC_BASE_URL"
        ),
        description="Public API origin used in links and redirects (derived from the bind address)",
    )
    ui_public_base_url: str | None = Field(
        None, description="Public UI origin; OIDC callbacks live here (defaults to the API origin)"
    )
    data_dir: Path = Field(
        Path("./.byteor-cloud"),
        description="Embedded database, objects and the generated secret key",
    )
    database_url: str | None = Field(
        None, description="`postgresql://…` or `sqlite:///…` (default: SQLite in the data dir)"
    )
    database_schema: str = Field("public", description="PostgreSQL schema for all tables")
    storage_url: str | None = Field(
        None, description="`file://…` or `s3://bucket/prefix` (default: objects in the data dir)"
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint")
    secret_key: str | None = Field(
        None,
        repr=False,
        description="Master key; generated into the data dir when embedded, required on PostgreSQL",
    )
    oidc_issuer: str | None = Field(None, description="OIDC issuer URL")
    oidc_client_id: str | None = Field(None, description="OIDC client id")
    oidc_client_secret: str | None = Field(None, repr=False, description="OIDC client secret")
    redis_url: str | None = Field(None, description="Shared rate-limit state across API processes")
    run_demo_agents: bool = Field(False, description="Dev only: start simulated agents")
    demo_api_base_url: str = Field(
        "http://localhost:8080", description="The API the demo agents talk to"
    )
    max_request_body_bytes: int = Field(
        4 * 1024 * 1024, gt=0, description="Largest request body accepted (413 beyond)"
    )
    log_level: str = Field("INFO", description="Log level of the process")
    worker_concurrency: int = Field(4, ge=1, le=64, description="Jobs one worker runs at once")
    worker_poll_interval_s: float = Field(
        0.5, gt=0, le=60, description="How long an idle worker waits before looking for jobs"
    )
    worker_shutdown_grace_s: float = Field(
        20.0, ge=0, le=3600, description="Time running jobs get to finish on shutdown"
    )
    job_modules: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Extra comma-separated modules exposing register(registry): job plug-ins",
    )
    rate_limit_people_per_min: int = Field(
        600, ge=1, description="Requests per minute per person or API key credential"
    )
    rate_limit_agents_per_min: int = Field(
        240, ge=1, description="Requests per minute per agent credential"
    )
    rate_limit_artifact_uploads_per_min: int = Field(
        30, ge=1, description="Artifact uploads per minute per agent"
    )
    rate_limit_enrollment_per_min: int = Field(
        10, ge=1, description="Agent enrollments per minute per environment"
    )
    rate_limit_sign_in_per_min: int = Field(
        20, ge=1, description="Sign-in attempts per minute per client address"
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_cidrs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(
                ipaddress.ip_network(part.strip(), strict=False)
                for part in value.split(",")
                if part.strip()
            )
        return value

    @field_validator("job_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("api_bind_addr", "worker_bind_addr", "bind_addr")
    @classmethod
    def _valid_bind_addr(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_bind_addr(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("postgresql://", "postgresql+psycopg://", "postgres://", "sqlite://")
        ):
            raise ValueError("expected a postgresql:// or sqlite:/// URL")
        return value

    @field_validator("storage_url")
    @classmethod
    def _known_storage(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("file://", "s3://")):
            raise ValueError("expected a file:// or s3://bucket/prefix URL")
        return value

    @field_validator("database_schema")
    @classmethod
    def _plain_schema_name(cls, value: str) -> str:
        # The schema name is interpolated into search_path; allow identifiers only.
        if not value.replace("_", "a").isalnum() or not value[0].isalpha():
            raise ValueError("expected a plain identifier such as `public`")
        return value.lower()

    @field_validator("api_public_base_url", "ui_public_base_url", "demo_api_base_url")
    @classmethod
    def _http_origin(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.startswith(("http://", "https://")):
                raise ValueError("expected an http:// or https:// URL")
            return value.rstrip("/")
        return value

    @model_validator(mode="before")
    @classmethod
    def _bind_alias(cls, data: Any) -> Any:
        # BYTEOR_CLOUD_BIND_ADDR sets both addresses unless the explicit ones are given.
        if isinstance(data, dict) and data.get("bind_addr"):
            data.setdefault("api_bind_addr", data["bind_addr"])
            data.setdefault("worker_bind_addr", data["bind_addr"])
        return data

    @model_validator(mode="after")
    def _postgres_needs_secret(self) -> Settings:
        if self.uses_postgres and not self.secret_key:
            raise ValueError("BYTEOR_CLOUD_SECRET_KEY is required when the database is PostgreSQL")
        return self

    # Derived values -------------------------------------------------------------------

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None and self.database_url.startswith("postgres")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'byteor-cloud.db').resolve()}"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'objects').resolve()}"

    @property
    def api_address(self) -> tuple[str, int]:
        return _parse_bind_addr(self.api_bind_addr)

    @property
    def worker_address(self) -> tuple[str, int]:
        return _parse_bind_addr(self.worker_bind_addr)

    @property
    def effective_api_base_url(self) -> str:
        if self.api_public_base_url:
            return self.api_public_base_url
        host, port = self.api_address
        if host in ("0.0.0.0", "::"):  # noqa: S104 - a wildcard bind is reached via loopback
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def effective_ui_base_url(self) -> str:
        return self.ui_public_base_url or self.effective_api_base_url

    def master_key(self) -> str:
        """The master key: configured, or generated once into the embedded data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / SECRET_KEY_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once must not both write a different key.
            try:
                with path.open("x", encoding="ascii") as handle:
                    handle.write(secrets.token_urlsafe(48))
                path.chmod(0o600)
            except FileExistsError:
                pass
        return path.read_text(encoding="ascii").strip()


def _field_env_name(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "settings"
    if name.startswith("BYTEOR_CLOUD_"):
        return name
    return f"BYTEOR_CLOUD_{name.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings or raise SettingsError with one line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            raise SettingsError(f"{_field_env_name(error['loc'])}: {message}") from None
        raise SettingsError(message) from None
