"""Config bundles: immutable, environment-scoped runtime posture attached to a version."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.errors import InvalidInput, NotFound
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.authoring import ConfigBundle, Version
from byteor_cloud.db.pagination import paginate

RUNTIME_KEY = re.compile(r"^[a-z0-9_.-]+$")
SECRET_NAME = re.compile(r"^[A-Z0-9_]+$")
SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/[^\x00-\x1f\x7f]*)$")
MAX_ENTRIES = 256
MAX_KEY = 128
MAX_VALUE = 1024

# Known runtime settings and their allowed values (PRODUCT.md §7); other keys (adapter
# settings) are free-form strings.
KNOWN_SETTINGS: dict[str, frozenset[str]] = {
    "profile": frozenset({"default", "low-latency", "isolated-core"}),
    "wait": frozenset({"spin", "backoff"}),
    "pinning": frozenset({"none", "balanced", "physical"}),
    "scheduling": frozenset({"other", "fifo", "rr"}),
}

# What a credential looks like: our own tokens, well-known key formats, private keys,
# JWTs, URLs with passwords, and long high-entropy strings. A false positive is cheap (use a
# secret_ref); a secret stored in a bundle is not.
_CREDENTIAL_PATTERNS = (
    re.compile(r"bc_(pat|oak|enr|agk|ses)_"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"),
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),
    re.compile(r"(ghp|gho|github_pat|xox[abpr]|sk_live|sk_test)_?[A-Za-z0-9]{10,}"),
)
_HIGH_ENTROPY = re.compile(r"^[A-Za-z0-9+/=_-]{32,}$")
_SECRET_KEY_NAME = re.compile(r"(password|passwd|secret|token|api[_.-]?key|credential)")


def looks_like_credential(key: str, value: str) -> bool:
    if any(p.search(value) for p in _CREDENTIAL_PATTERNS):
        return True
    if _HIGH_ENTROPY.match(value) and len(set(value)) >= 16:
        return True
    return bool(_SECRET_KEY_NAME.search(key)) and bool(value)


def _invalid(message: str, field: str, code: str = "invalid_bundle") -> InvalidInput:
    return InvalidInput(message, code=code, details={"field": field})


def validate_runtime_config(config: Mapping[str, str]) -> dict[str, str]:
    if len(config) > MAX_ENTRIES:
        raise _invalid(f"at most {MAX_ENTRIES} runtime_config keys", "runtime_config")
    result = {"profile": "default"}
    for key, value in config.items():
        field = f"runtime_config.{key}"
        if not RUNTIME_KEY.match(key) or len(key) > MAX_KEY:
            raise _invalid("keys must match [a-z0-9_.-]+ (128 chars at most)", field)
        if not isinstance(value, str) or len(value) > MAX_VALUE or _has_control(value):
            raise _invalid("values are strings of printable characters (1024 at most)", field)
        allowed = KNOWN_SETTINGS.get(key)
        if allowed is not None and value not in allowed:
            raise _invalid(f"{key} must be one of {sorted(allowed)}", field)
        if looks_like_credential(key, value):
            raise _invalid(
                "this value looks like a credential: use a secret_ref instead",
                field,
                code="secret_value_refused",
            )
        result[key] = value
    return result


def validate_secret_refs(refs: Mapping[str, str]) -> dict[str, str]:
    if len(refs) > MAX_ENTRIES:
        raise _invalid(f"at most {MAX_ENTRIES} secret_refs", "secret_refs")
    for name, ref in refs.items():
        field = f"secret_refs.{name}"
        if not SECRET_NAME.match(name) or len(name) > MAX_KEY:
            raise _invalid("names must match [A-Z0-9_]+", field)
        if not isinstance(ref, str) or len(ref) > MAX_VALUE or not SECRET_REF.match(ref):
            raise _invalid(
                "a reference is env:NAME or file:/absolute/path (never the secret itself)",
                field,
                code="secret_value_refused" if isinstance(ref, str) else "invalid_bundle",
            )
    return dict(refs)


def _has_control(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def bundle_hash(
    spec_hash: str, runtime_config: Mapping[str, str], secret_refs: Mapping[str, str]
) -> str:
    """`sha256:` of `bundle.v=1` then the sorted (by key bytes) `key=value` lines."""
    lines = [f"spec_hash={spec_hash}"]
    lines += [f"runtime_config.{k}={v}" for k, v in runtime_config.items()]
    lines += [f"secret_refs.{k}={v}" for k, v in secret_refs.items()]
    lines.sort(key=lambda line: line.split("=", 1)[0].encode())
    text = "bundle.v=1\n" + "".join(line + "\n" for line in lines)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


async def create_bundle(
    session: AsyncSession,
    scope: Scope,
    *,
    version_id: str,
    runtime_config: Mapping[str, str],
    secret_refs: Mapping[str, str],
) -> ConfigBundle:
    """A bundle for a `ready` version of the environment's own project."""
    assert scope.environment_id is not None
    assert scope.project_id is not None
    version = await session.get(Version, version_id) if is_id(version_id) else None
    if version is None or version.project_id != scope.project_id:
        raise _invalid(
            "version_id is not a version of this project",
            "version_id",
            code="version_not_in_project",
        )
    if version.status != "ready":
        raise _invalid(
            f"version v{version.number} is {version.status}, not ready",
            "version_id",
            code="version_not_ready",
        )
    config = validate_runtime_config(runtime_config)
    refs = validate_secret_refs(secret_refs)
    bundle = ConfigBundle(
        org_id=scope.org_id,
        project_id=scope.project_id,
        environment_id=scope.environment_id,
        version_id=version.id,
        runtime_config=config,
        secret_refs=refs,
        bundle_hash=bundle_hash(version.spec_hash, config, refs),
        created_by=scope.principal.user_id,
    )
    session.add(bundle)
    await session.flush()
    await audit.record(
        session,
        scope.principal,
        "config_bundle.create",
        AuditTarget(
            scope.org_id,
            "config_bundle",
            bundle.id,
            project_id=scope.project_id,
            environment_id=scope.environment_id,
        ),
        details={
            "version_id": version.id,
            "bundle_hash": bundle.bundle_hash,
            "secret_ref_names": sorted(refs),
        },
    )
    return bundle


async def list_bundles(
    session: AsyncSession, scope: Scope, *, page: PageRequest
) -> Page[ConfigBundle]:
    statement = select(ConfigBundle).where(
        ConfigBundle.org_id == scope.org_id, ConfigBundle.environment_id == scope.environment_id
    )
    return await paginate(
        session, statement, sort_key=[ConfigBundle.id], page=page, descending=True
    )


async def get_bundle(session: AsyncSession, scope: Scope, bundle_id: str) -> ConfigBundle:
    bundle = await session.get(ConfigBundle, bundle_id) if is_id(bundle_id) else None
    if bundle is None or bundle.environment_id != scope.environment_id:
        raise NotFound("config bundle not found", code="config_bundle_not_found")
    return bundle
