"""Creating users and credentials for tests straight through the services (no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass

from byteor_cloud.db.session import Database
from byteor_cloud.identity import service as identity


@dataclass(frozen=True)
class TestUser:
    user_id: str
    email: str
    token: str

    __test__ = False

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_user(database: Database, email: str, *, admin: bool = False) -> TestUser:
    async with database.transaction() as session:
        user, _ = await identity.ensure_user(session, email=email, instance_admin=admin)
        token = await identity.create_personal_access_token(
            session, None, user_id=user.id, name="test"
        )
    return TestUser(user.id, user.email, token.plaintext)
