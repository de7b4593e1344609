"""Route classes and their limits, as data built from the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from byteor_cloud.config import Settings

WINDOW_S = 60.0


class RouteClass(StrEnum):
    """What a limit is counted per; the comment names the subject callers pass."""

    people = "people"  # a person's session or token, or an organization API key
    agents = "agents"  # an agent credential
    artifact_uploads = "artifact_uploads"  # an agent, on artifact upload routes
    enrollment = "enrollment"  # an environment, on agent enrollment
    sign_in = "sign_in"  # a client address (see api/client_address.py)


@dataclass(frozen=True)
class RateLimitPolicy:
    """At most `limit` requests in any `window_s` seconds."""

    limit: int
    window_s: float


# The settings field holding each class's per-minute limit.
LIMIT_SETTING: Mapping[RouteClass, str] = MappingProxyType(
    {
        RouteClass.people: "rate_limit_people_per_min",
        RouteClass.agents: "rate_limit_agents_per_min",
        RouteClass.artifact_uploads: "rate_limit_artifact_uploads_per_min",
        RouteClass.enrollment: "rate_limit_enrollment_per_min",
        RouteClass.sign_in: "rate_limit_sign_in_per_min",
    }
)


def build_policies(settings: Settings) -> Mapping[RouteClass, RateLimitPolicy]:
    """One policy per route class, from the `rate_limit_*_per_min` settings."""
    return MappingProxyType(
        {
            route_class: RateLimitPolicy(int(getattr(settings, field)), WINDOW_S)
            for route_class, field in LIMIT_SETTING.items()
        }
    )
