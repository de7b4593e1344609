"""`byteor-cloud`: server, database and admin commands (operator commands join later)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from byteor_cloud import __version__
from byteor_cloud.cli.admin import admin_app, audit_app
from byteor_cloud.cli.spec import app as spec_app
from byteor_cloud.config import DeploymentMode, Settings, SettingsError, load_settings

app = typer.Typer(
    no_args_is_help=True,
    help="ByteOr Cloud control plane.",
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema commands.")
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(audit_app, name="audit")
app.add_typer(spec_app, name="spec", help="Offline pipeline-plan tools (validate, hash, …).")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve() -> None:
    """Run the processes BYTEOR_CLOUD_DEPLOYMENT_MODE asks for (default: combined)."""
    settings = _settings()
    _run_mode(settings)


@app.command()
def api() -> None:
    """Run the API + UI process only (deployment mode `api`)."""
    _run_mode(_settings(deployment_mode=DeploymentMode.api))


@app.command()
def worker() -> None:
    """Run the worker process only (deployment mode `worker`)."""
    _run_mode(_settings(deployment_mode=DeploymentMode.worker))


def _run_mode(settings: Settings) -> None:
    from byteor_cloud.server import serve

    serve(settings)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Migrate the configured database to `revision` (default: head)."""
    from byteor_cloud.db import migrate

    settings = _settings()
    migrate.upgrade(
        settings.effective_database_url,
        schema=settings.database_schema,
        revision=revision,
        master_key=settings.master_key(),
    )
    typer.echo(f"database at {revision}")


@db_app.command("check")
def db_check() -> None:
    """Exit 1 unless the migration tree has one head and the models match a migrated database."""
    from byteor_cloud.db import migrate

    settings = _settings()
    heads = migrate.script_heads()
    if len(heads) != 1:
        typer.echo(f"error: the migration tree has {len(heads)} heads: {heads}", err=True)
        raise typer.Exit(1)
    differences = migrate.schema_differences(
        settings.effective_database_url, schema=settings.database_schema
    )
    if differences:
        typer.echo("error: models and migrations disagree:", err=True)
        for difference in differences:
            typer.echo(f"  {difference}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: one head ({heads[0]}); models match migrations")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive interrupt
        sys.exit(130)
    except DBAPIError as exc:
        # One line naming the failure class, never the URL (it may carry a password).
        typer.echo(f"error: database unavailable ({type(exc.orig).__name__})", err=True)
        sys.exit(3)
