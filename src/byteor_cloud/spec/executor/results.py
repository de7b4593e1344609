"""The reference executor's vocabulary: limits, audit actions, results, errors, input.

The §11 limits live here: at most 10,000 audit actions and 128 MiB of input per run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from byteor_cloud.core.errors import DomainError
from byteor_cloud.spec.jsonvalues import JsonObject, NotJsonError, canonical_json, normalise

MAX_ACTIONS = 10_000
MAX_INPUT_BYTES = 128 * 1024 * 1024


class ExecutionError(DomainError):
    """A run that cannot proceed."""

    default_code = "execution_failed"


class InvalidRecord(ExecutionError):
    """An input record that is not a JSON object."""

    default_code = "invalid_record"


class LimitExceeded(ExecutionError):
    """A §11 limit stopped the run (`too_many_actions` or `input_too_large`)."""

    def __init__(self, message: str, *, code: str, actions: tuple[AuditAction, ...] = ()) -> None:
        super().__init__(message, code=code)
        self.actions = actions


@dataclass(frozen=True, slots=True)
class ExecutionLimits:
    """Per-run limits; the defaults are those of §11."""

    max_actions: int = MAX_ACTIONS
    max_input_bytes: int = MAX_INPUT_BYTES


@dataclass(frozen=True, slots=True)
class AuditAction:
    """One entry of the replay audit's `actions`."""

    action: str
    role: str
    input_lane: str
    output_lane: str
    stage: str
    target: str
    decision: str

    def as_dict(self) -> dict[str, str]:
        """The audit JSON shape."""
        return {
            "action": self.action,
            "role": self.role,
            "input_lane": self.input_lane,
            "output_lane": self.output_lane,
            "stage": self.stage,
            "target": self.target,
            "decision": self.decision,
        }


@dataclass(frozen=True, slots=True)
class Emitted:
    """A record that reached an egress."""

    egress: str
    record: JsonObject


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """Outputs in emission order, the audit actions, and what was read."""

    outputs: tuple[Emitted, ...]
    actions: tuple[AuditAction, ...]
    records_in: int
    input_bytes: int

    def actions_json(self) -> list[dict[str, str]]:
        """The actions as audit JSON objects."""
        return [action.as_dict() for action in self.actions]


def read_records(
    records: Iterable[bytes | str | Mapping[str, Any]], max_bytes: int
) -> tuple[list[JsonObject], int]:
    """Parse input records (JSON text lines or mappings) within the input byte limit."""
    parsed: list[JsonObject] = []
    total = 0
    for index, raw in enumerate(records):
        if isinstance(raw, bytes | str):
            data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
            total += len(data)
            if total > max_bytes:
                raise LimitExceeded(f"input exceeds {max_bytes} bytes", code="input_too_large")
            value = _parse_record(data, index)
        else:
            value = _check_record(raw, index)
            total += len(canonical_json(value).encode("utf-8"))
            if total > max_bytes:
                raise LimitExceeded(f"input exceeds {max_bytes} bytes", code="input_too_large")
        parsed.append(value)
    return parsed, total


def _parse_record(data: bytes, index: int) -> JsonObject:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise InvalidRecord(f"record {index} is not valid JSON") from None
    return _check_record(value, index)


def _check_record(value: object, index: int) -> JsonObject:
    try:
        checked = normalise(value)
    except (NotJsonError, RecursionError):
        raise InvalidRecord(f"record {index} is not a JSON value") from None
    if not isinstance(checked, dict):
        raise InvalidRecord(f"record {index} is not a JSON object")
    return checked
