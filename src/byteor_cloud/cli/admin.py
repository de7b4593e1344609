"""`byteor-cloud admin …` and `audit verify`: instance commands that work on the database
directly (no API credential needed: shell access to the server is the credential)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from byteor_cloud.audit import service as audit
from byteor_cloud.audit.chain import VerifyResult
from byteor_cloud.config import Settings, SettingsError, load_settings
from byteor_cloud.core.errors import DomainError
from byteor_cloud.db.session import Database
from byteor_cloud.identity import service as identity
from byteor_cloud.server import prepare_database

admin_app = typer.Typer(no_args_is_help=True, help="Instance administration.")
audit_app = typer.Typer(no_args_is_help=True, help="Audit log tools.")

T = TypeVar("T")
Email = Annotated[str, typer.Option("--email", help="The user's email address")]
Password = Annotated[
    str | None, typer.Option("--password", help="Local sign-in password (12+ characters)")
]
PrintToken = Annotated[
    bool, typer.Option("--print-token", help="Print a new personal access token, and only it")
]


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        database = Database(settings.effective_database_url, schema=settings.database_schema)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def _ensure(email: str, password: str | None, print_token: bool, *, admin: bool) -> None:
    settings = _settings()
    prepare_database(settings)  # the embedded default may not have started yet

    async def work(database: Database) -> tuple[bool, str | None]:
        async with database.transaction() as session:
            user, created = await identity.ensure_user(
                session, email=email, password=password, instance_admin=admin
            )
            token = None
            if print_token:
                name = "bootstrap" if admin else "create-user"
                token = (
                    await identity.create_personal_access_token(
                        session, None, user_id=user.id, name=f"{name} (CLI)"
                    )
                ).plaintext
            return created, token

    created, token = _run(settings, work)
    if token is not None:
        sys.stdout.write(token + "\n")  # stdout is the token and nothing else
    what = "instance administrator" if admin else "user"
    typer.echo(f"{what} {email} {'created' if created else 'already existed'}", err=True)


@admin_app.command("bootstrap")
def bootstrap(email: Email, password: Password = None, print_token: PrintToken = False) -> None:
    """Create (or find) the instance administrator."""
    _ensure(email, password, print_token, admin=True)


@admin_app.command("create-user")
def create_user(email: Email, password: Password = None, print_token: PrintToken = False) -> None:
    """Create (or find) an ordinary user: no instance rights, no memberships."""
    _ensure(email, password, print_token, admin=False)


@audit_app.command("verify")
def verify(
    org_id: Annotated[str, typer.Option("--org", help="Organization id")],
) -> None:
    """Check an organization's audit hash chain; exit 1 at the first bad record."""
    settings = _settings()

    async def work(database: Database) -> VerifyResult:
        async with database.transaction(readonly=True) as session:
            return await audit.verify_chain(session, org_id=org_id)

    result = _run(settings, work)
    if result.ok:
        typer.echo(f"ok: {result.checked} records, chain intact")
        return
    typer.echo(
        f"error: chain broken at seq {result.first_bad_seq} ({result.reason}); "
        f"{result.checked} records verified before it",
        err=True,
    )
    raise typer.Exit(1)
