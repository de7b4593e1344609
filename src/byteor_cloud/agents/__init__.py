"""Agents: enrollment, runtime keys, heartbeats, liveness and desired state."""
