"""Agent liveness states and runtime-key scopes, as data (pure)."""

from __future__ import annotations

from enum import StrEnum


class AgentStatus(StrEnum):
    pending = "pending"  # enrolled, never heard from
    online = "online"
    offline = "offline"  # not heard from for MISSED_INTERVALS heartbeat intervals


class LivenessEvent(StrEnum):
    heartbeat = "heartbeat"
    lapse = "lapse"


TRANSITIONS: dict[tuple[AgentStatus, LivenessEvent], AgentStatus] = {
    (AgentStatus.pending, LivenessEvent.heartbeat): AgentStatus.online,
    (AgentStatus.online, LivenessEvent.heartbeat): AgentStatus.online,
    (AgentStatus.offline, LivenessEvent.heartbeat): AgentStatus.online,
    (AgentStatus.online, LivenessEvent.lapse): AgentStatus.offline,
}

MISSED_INTERVALS = 3


def next_status(status: AgentStatus, event: LivenessEvent) -> AgentStatus:
    """The status after `event`; events that do not apply leave the status as it is."""
    return TRANSITIONS.get((status, event), status)


class AgentScope(StrEnum):
    heartbeat = "agent:heartbeat"
    deployment_read = "agent:deployment_read"
    signing_keys_read = "agent:signing_keys_read"
    artifact_upload = "agent:artifact_upload"


ALL_SCOPES = tuple(scope.value for scope in AgentScope)
