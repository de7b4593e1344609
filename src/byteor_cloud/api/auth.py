"""Who is calling. Until identity lands (issue T1) no credential is accepted, so every
route that needs a principal answers 401."""

from __future__ import annotations

from byteor_cloud.core.errors import Unauthenticated


async def require_instance_admin() -> None:
    """The instance administrator: refuses everyone until T1 wires credentials."""
    raise Unauthenticated("authentication required", code="unauthenticated")
