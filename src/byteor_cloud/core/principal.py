"""Who is acting: the principal behind a request, job or command (no framework imports)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from byteor_cloud.core.permissions import Role


class CredentialKind(StrEnum):
    session = "session"
    personal_access_token = "pat"  # noqa: S105 - a credential kind, not a secret
    org_api_key = "oak"
    agent_key = "agk"
    system = "system"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    `user_id` is always the person responsible: the user for sessions and tokens, the
    creator for an org API key (which acts with its own role but counts as that person).
    """

    credential_kind: CredentialKind
    credential_id: str
    user_id: str | None
    name: str
    is_instance_admin: bool = False
    # Set for org API keys: the key's own binding.
    api_key_org_id: str | None = None
    api_key_project_id: str | None = None
    api_key_role: Role | None = None

    @property
    def credential(self) -> str:
        """A stable string naming the credential (idempotency scope, rate-limit key)."""
        return f"{self.credential_kind.value}:{self.credential_id}"

    @property
    def actor_type(self) -> str:
        if self.credential_kind is CredentialKind.org_api_key:
            return "api_key"
        if self.credential_kind is CredentialKind.agent_key:
            return "agent"
        if self.credential_kind is CredentialKind.system:
            return "system"
        return "user"

    @property
    def actor_id(self) -> str:
        if self.credential_kind in (CredentialKind.org_api_key, CredentialKind.agent_key):
            return self.credential_id
        return self.user_id or self.credential_id


SYSTEM = Principal(CredentialKind.system, "system", None, "system")
