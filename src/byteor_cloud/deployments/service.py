"""Plans and deployments: resolve targets, create behind the policy's approval, cancel,
roll back. Services flush, never commit; every change is audited in its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import Conflict, InvalidInput, NotFound
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.principal import Principal
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.agents import Agent
from byteor_cloud.db.models.authoring import ConfigBundle, Version
from byteor_cloud.db.models.deployments import Deployment, DeploymentTarget
from byteor_cloud.db.models.tenancy import Environment
from byteor_cloud.db.pagination import paginate
from byteor_cloud.db.scoped import (
    find,
    get_in_environment,
    in_environment,
    in_project,
    page_in_environment,
)
from byteor_cloud.deployments.rules import (
    FINISHED,
    IN_FLIGHT,
    AllAtOnce,
    DeploymentEvent,
    DeploymentStatus,
    Phased,
    TargetSelector,
    TargetState,
    batch_ends,
    batch_of,
    next_status,
    plan_hash,
    strategy_document,
)
from byteor_cloud.jobs.queue import enqueue
from byteor_cloud.tenancy.rules import EnvironmentPolicy
from byteor_cloud.tenancy.service import DELETION_BLOCKERS

# Bounds: one deployment addresses at most this many agents (a plan lists each).
MAX_TARGETS = 5_000


@dataclass(frozen=True)
class PlannedTarget:
    agent: Agent
    batch: int
    current: dict[str, Any] | None

    @property
    def change(self) -> str:
        return "install" if self.current is None else "update"


@dataclass(frozen=True)
class Plan:
    version: Version
    bundle: ConfigBundle
    environment: Environment
    policy: EnvironmentPolicy
    selector: dict[str, Any]
    strategy: dict[str, Any]
    plan_hash: str
    targets: list[PlannedTarget]

    @property
    def requires_approval(self) -> bool:
        return self.policy.deploy_requires_approval


def deployment_target(deployment: Deployment) -> AuditTarget:
    return AuditTarget.in_environment("deployment", deployment)


def policy_of(environment: Environment) -> EnvironmentPolicy:
    return EnvironmentPolicy.model_validate(environment.policy)


async def environment_of(session: AsyncSession, scope: Scope, *, lock: bool = False) -> Environment:
    statement = select(Environment).where(
        Environment.id == scope.environment_id, Environment.org_id == scope.org_id
    )
    if lock:
        # Serialises creations and approvals in one environment for the in-flight cap
        # (FOR UPDATE on PostgreSQL; SQLite has one writer).
        statement = statement.with_for_update()
    environment = await session.scalar(statement)
    if environment is None:
        raise NotFound("environment not found")
    return environment


async def _version_and_bundle(
    session: AsyncSession, scope: Scope, version_id: str, bundle_id: str
) -> tuple[Version, ConfigBundle]:
    version = await find(session, in_project(Version, scope), version_id)
    if version is None:
        raise InvalidInput(
            "no such version in this project",
            code="unknown_version",
            details={"field": "version_id"},
        )
    if version.status != "ready":
        raise InvalidInput(
            f"the version is {version.status}; only ready versions deploy",
            code="version_not_ready",
            details={"field": "version_id"},
        )
    bundle = await find(session, in_environment(ConfigBundle, scope), bundle_id)
    if bundle is None:
        raise InvalidInput(
            "no such config bundle in this environment",
            code="unknown_bundle",
            details={"field": "bundle_id"},
        )
    if bundle.version_id != version.id:
        raise InvalidInput(
            "the config bundle belongs to another version",
            code="bundle_version_mismatch",
            details={"field": "bundle_id"},
        )
    return version, bundle


async def resolve_agents(
    session: AsyncSession, scope: Scope, selector: TargetSelector
) -> list[Agent]:
    """Every enrolled agent of the environment the selector matches, whatever its
    liveness, by id. Unknown ids are an error rather than silently dropped."""
    statement = select(Agent).where(
        Agent.org_id == scope.org_id, Agent.environment_id == scope.environment_id
    )
    if selector.agent_ids is not None:
        statement = statement.where(Agent.id.in_(selector.agent_ids))
    for key, value in (selector.labels or {}).items():
        statement = statement.where(Agent.labels[key].as_string() == value)
    agents = list(
        (await session.scalars(statement.order_by(Agent.id).limit(MAX_TARGETS + 1))).all()
    )
    if len(agents) > MAX_TARGETS:
        raise InvalidInput(
            f"a deployment addresses at most {MAX_TARGETS} agents",
            code="too_many_targets",
            details={"field": "targets"},
        )
    if selector.agent_ids is not None and len(agents) != len(selector.agent_ids):
        found = {agent.id for agent in agents}
        raise InvalidInput(
            "some agent ids are not agents of this environment",
            code="unknown_agents",
            details={
                "field": "targets.agent_ids",
                "unknown": sorted(set(selector.agent_ids) - found)[:20],
            },
        )
    return agents


def current_of(agent: Agent) -> dict[str, Any] | None:
    """What the agent runs now: its assignment (our truth) or, before any, what it reported."""
    source = agent.assignment or agent.running
    if not source or not source.get("spec_hash"):
        return None
    return {
        "deployment_id": source.get("deployment_id"),
        "spec_hash": source.get("spec_hash"),
        "bundle_hash": source.get("bundle_hash"),
    }


async def make_plan(
    session: AsyncSession,
    scope: Scope,
    *,
    version_id: str,
    bundle_id: str,
    selector: TargetSelector,
    strategy: AllAtOnce | Phased,
) -> Plan:
    """Resolve the targets and the intent hash; nothing is written."""
    environment = await environment_of(session, scope)
    version, bundle = await _version_and_bundle(session, scope, version_id, bundle_id)
    agents = await resolve_agents(session, scope, selector)
    selector_doc = selector.normalised()
    strategy_doc = strategy_document(strategy)
    ends = batch_ends(len(agents), strategy.batches if isinstance(strategy, Phased) else [100])
    return Plan(
        version=version,
        bundle=bundle,
        environment=environment,
        policy=policy_of(environment),
        selector=selector_doc,
        strategy=strategy_doc,
        plan_hash=plan_hash(
            spec_hash=version.spec_hash,
            bundle_hash=bundle.bundle_hash,
            selector=selector_doc,
            strategy=strategy_doc,
        ),
        targets=[
            PlannedTarget(agent, batch_of(index, ends), current_of(agent))
            for index, agent in enumerate(agents)
        ],
    )


async def inflight_count(session: AsyncSession, environment_id: str) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(Deployment)
            .where(
                Deployment.environment_id == environment_id,
                Deployment.status.in_(sorted(status.value for status in IN_FLIGHT)),
            )
        )
    ) or 0


async def check_inflight_cap(session: AsyncSession, environment: Environment) -> None:
    """409 `inflight_cap` when one more in-flight deployment would pass the cap. The caller
    holds the environment row lock."""
    count = await inflight_count(session, environment.id)
    if count >= environment.max_inflight_deployments:
        raise Conflict(
            f"{count} deployment(s) already in flight (the environment allows "
            f"{environment.max_inflight_deployments})",
            code="inflight_cap",
            details={
                "in_flight": count,
                "max_inflight_deployments": environment.max_inflight_deployments,
            },
        )


async def create_deployment(
    session: AsyncSession,
    scope: Scope,
    *,
    version_id: str,
    bundle_id: str,
    selector: TargetSelector,
    strategy: AllAtOnce | Phased,
    expected_plan_hash: str | None,
) -> Deployment:
    """Create the deployment and its targets: `pending_approval` with an approval request
    when the policy requires one, else `approved` with its bundle build enqueued."""
    # Imported here: approvals.service builds on this module (transitions, the cap).
    from byteor_cloud.approvals import service as approvals

    await environment_of(session, scope, lock=True)
    plan = await make_plan(
        session,
        scope,
        version_id=version_id,
        bundle_id=bundle_id,
        selector=selector,
        strategy=strategy,
    )
    if expected_plan_hash is not None and expected_plan_hash != plan.plan_hash:
        raise Conflict(
            "the plan changed since it was shown; review the new plan",
            code="plan_changed",
            details={"plan_hash": plan.plan_hash},
        )
    if not plan.targets:
        raise InvalidInput(
            "the selector matches no agent", code="no_targets", details={"field": "targets"}
        )
    status = DeploymentStatus.pending_approval
    if not plan.requires_approval:
        await check_inflight_cap(session, plan.environment)
        status = DeploymentStatus.approved
    now = utcnow()
    deployment = Deployment(
        org_id=scope.org_id,
        project_id=plan.version.project_id,
        environment_id=plan.environment.id,
        version_id=plan.version.id,
        bundle_id=plan.bundle.id,
        spec_hash=plan.version.spec_hash,
        bundle_hash=plan.bundle.bundle_hash,
        capabilities=sorted(plan.version.capabilities),
        selector=plan.selector,
        strategy=plan.strategy,
        plan_hash=plan.plan_hash,
        status=status.value,
        requested_by=scope.principal.user_id,
        requested_via=scope.principal.credential,
        current_batch=0,
        revision=1,
        created_at=now,
        updated_at=now,
    )
    session.add(deployment)
    await session.flush()
    session.add_all(
        DeploymentTarget(
            org_id=deployment.org_id,
            environment_id=deployment.environment_id,
            deployment_id=deployment.id,
            agent_id=target.agent.id,
            agent_name=target.agent.name,
            batch=target.batch,
            phase="rollout",
            state=TargetState.pending.value,
            previous=target.current,
            updated_at=now,
        )
        for target in plan.targets
    )
    await audit.record(
        session,
        scope.principal,
        "deployment.create",
        deployment_target(deployment),
        details={
            "status": status.value,
            "plan_hash": plan.plan_hash,
            "version_id": plan.version.id,
            "bundle_id": plan.bundle.id,
            "targets": len(plan.targets),
            "requires_approval": plan.requires_approval,
        },
    )
    if plan.requires_approval:
        approval = await approvals.request_for_deployment(
            session, scope.principal, deployment, plan
        )
        deployment.approval_id = approval.id
    else:
        await enqueue_build(session, deployment, purpose="rollout")
    await session.flush()
    return deployment


async def enqueue_build(session: AsyncSession, deployment: Deployment, *, purpose: str) -> None:
    # Imported here: the job module builds on this one.
    from byteor_cloud.deployments.jobs import BundleBuild

    await enqueue(
        session,
        BundleBuild(deployment_id=deployment.id, purpose=purpose),
        dedupe_key=f"bundle_build:{deployment.id}:{purpose}:{deployment.revision}",
    )


async def transition(
    session: AsyncSession,
    principal: Principal,
    deployment: Deployment,
    event: DeploymentEvent,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> DeploymentStatus:
    """Move the deployment by `event` (409 when not allowed) and audit it."""
    before = DeploymentStatus(deployment.status)
    after = next_status(before, event)
    now = utcnow()
    deployment.status = after.value
    deployment.status_reason = reason
    deployment.revision += 1
    deployment.updated_at = now
    if after in FINISHED:
        deployment.finished_at = now
    await audit.record(
        session,
        principal,
        f"deployment.{after.value}",
        deployment_target(deployment),
        details={"from": before.value, "event": event.value, "reason": reason, **(details or {})},
    )
    await session.flush()
    return after


async def get_deployment(
    session: AsyncSession, scope: Scope, deployment_id: str, *, lock: bool = False
) -> Deployment:
    return await get_in_environment(
        session, Deployment, scope, deployment_id, what="deployment", lock=lock
    )


async def list_deployments(
    session: AsyncSession, scope: Scope, *, page: PageRequest, status: DeploymentStatus | None
) -> Page[Deployment]:
    return await page_in_environment(session, Deployment, scope, page=page, status=status)


async def list_targets(
    session: AsyncSession, scope: Scope, deployment_id: str, *, page: PageRequest
) -> Page[DeploymentTarget]:
    deployment = await get_deployment(session, scope, deployment_id)
    statement = select(DeploymentTarget).where(
        DeploymentTarget.deployment_id == deployment.id,
        DeploymentTarget.org_id == scope.org_id,
    )
    return await paginate(session, statement, sort_key=[DeploymentTarget.agent_id], page=page)


async def target_counts(session: AsyncSession, deployment_id: str) -> dict[str, int]:
    rows = await session.execute(
        select(DeploymentTarget.state, func.count())
        .where(DeploymentTarget.deployment_id == deployment_id)
        .group_by(DeploymentTarget.state)
    )
    return {str(state): int(count) for state, count in rows.all()}


async def cancel(
    session: AsyncSession, scope: Scope, deployment_id: str, *, reason: str | None
) -> Deployment:
    """Cancel a deployment that has not reached agents (pending approval, approved, building)."""
    deployment = await get_deployment(session, scope, deployment_id, lock=True)
    await transition(
        session,
        scope.principal,
        deployment,
        DeploymentEvent.cancel,
        reason=reason or "cancelled by an operator",
    )
    return deployment


async def previous_active(session: AsyncSession, deployment: Deployment) -> Deployment | None:
    """The environment's newest `active` deployment other than this one: what a rollback of
    this one restores."""
    result: Deployment | None = await session.scalar(
        select(Deployment)
        .where(
            Deployment.environment_id == deployment.environment_id,
            Deployment.status == DeploymentStatus.active.value,
            Deployment.id != deployment.id,
            Deployment.id < deployment.id,
        )
        .order_by(Deployment.id.desc())
        .limit(1)
    )
    return result


async def rollback(
    session: AsyncSession, principal: Principal, deployment: Deployment, *, reason: str
) -> Deployment:
    """Restore, on the agents this deployment reached, the deployment that was active
    before it. No approval is needed (restoring an approved state); the rollback bundle
    gets a system-issued credential when the environment requires one."""
    if deployment.previous_deployment_id is None or not await _reached_agents(session, deployment):
        raise Conflict(
            "there is no earlier deployment to restore on this deployment's agents",
            code="nothing_to_roll_back",
        )
    await transition(session, principal, deployment, DeploymentEvent.rollback, reason=reason)
    deployment.rollback_digest = None
    deployment.rollback_key = None
    deployment.rollback_credential = None
    await enqueue_build(session, deployment, purpose="rollback")
    return deployment


async def request_rollback(
    session: AsyncSession, scope: Scope, deployment_id: str, *, reason: str | None
) -> Deployment:
    deployment = await get_deployment(session, scope, deployment_id, lock=True)
    return await rollback(
        session, scope.principal, deployment, reason=reason or "rolled back by an operator"
    )


async def _reached_agents(session: AsyncSession, deployment: Deployment) -> bool:
    count = await session.scalar(
        select(func.count())
        .select_from(DeploymentTarget)
        .where(
            DeploymentTarget.deployment_id == deployment.id,
            DeploymentTarget.epoch.is_not(None),
            DeploymentTarget.state != TargetState.superseded.value,
        )
    )
    return bool(count)


async def active_deployments_blocker(session: AsyncSession, scope: Scope) -> str | None:
    """Deleting a tenant with an active or in-flight deployment needs ?force=true."""
    statuses = sorted(status.value for status in IN_FLIGHT | {DeploymentStatus.active})
    statement = (
        select(func.count())
        .select_from(Deployment)
        .where(Deployment.org_id == scope.org_id, Deployment.status.in_(statuses))
    )
    if scope.project_id is not None:
        statement = statement.where(Deployment.project_id == scope.project_id)
    if scope.environment_id is not None:
        statement = statement.where(Deployment.environment_id == scope.environment_id)
    count = await session.scalar(statement) or 0
    return f"{count} active or in-flight deployment(s)" if count else None


if active_deployments_blocker not in DELETION_BLOCKERS:
    DELETION_BLOCKERS.append(active_deployments_blocker)
