"""Getting a built deployment onto its agents: assignments with epochs, agents' status
reports (fenced by epoch), supersession, unreachable agents, and the deployment's status
derived from its targets. Lock order everywhere: deployment, then agent, then target."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.agents.rules import AgentStatus
from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import Conflict, InvalidInput, NotFound
from byteor_cloud.core.principal import SYSTEM, Principal
from byteor_cloud.db.models.agents import Agent
from byteor_cloud.db.models.deployments import Deployment, DeploymentTarget
from byteor_cloud.deployments.rules import (
    TARGET_IN_FLIGHT,
    DeploymentEvent,
    DeploymentStatus,
    Phased,
    ReportOutcome,
    Step,
    TargetState,
    apply_report,
    batch_ends,
    evaluate_rollback,
    evaluate_rollout,
)
from byteor_cloud.deployments.service import deployment_target, rollback, transition


def bundle_url(agent_id: str, digest: str) -> str:
    """Relative to the API origin the agent already knows (`BYTEOR_API_BASE_URL`)."""
    return f"/api/v1/agents/{agent_id}/bundles/{digest}"


def _target_audit(target: DeploymentTarget, deployment: Deployment) -> AuditTarget:
    return AuditTarget(
        deployment.org_id,
        "deployment_target",
        target.id,
        project_id=deployment.project_id,
        environment_id=deployment.environment_id,
    )


async def _record_target(
    session: AsyncSession,
    principal: Principal,
    deployment: Deployment,
    target: DeploymentTarget,
    before: str,
    **details: Any,
) -> None:
    await audit.record(
        session,
        principal,
        f"deployment_target.{target.state}",
        _target_audit(target, deployment),
        details={
            "deployment_id": deployment.id,
            "agent_id": target.agent_id,
            "from": before,
            "epoch": target.epoch,
            "phase": target.phase,
            **details,
        },
    )


async def _supersede(
    session: AsyncSession,
    agent_id: str,
    *,
    keep_deployment_id: str,
    states: frozenset[TargetState],
) -> None:
    """Targets of other deployments on this agent, in `states`, become `superseded`."""
    rows = (
        await session.execute(
            select(DeploymentTarget, Deployment)
            .join(Deployment, Deployment.id == DeploymentTarget.deployment_id)
            .where(
                DeploymentTarget.agent_id == agent_id,
                DeploymentTarget.deployment_id != keep_deployment_id,
                DeploymentTarget.state.in_(sorted(state.value for state in states)),
                DeploymentTarget.epoch.is_not(None),
            )
        )
    ).all()
    now = utcnow()
    for target, deployment in rows:
        before = target.state
        target.state = TargetState.superseded.value
        target.resume_state = None
        target.updated_at = now
        await _record_target(
            session, SYSTEM, deployment, target, before, superseded_by=keep_deployment_id
        )


async def assign(
    session: AsyncSession,
    deployment: Deployment,
    target: DeploymentTarget,
    *,
    digest: str,
    spec_hash: str,
    bundle_hash: str,
    credential: str | None,
    phase: str,
) -> None:
    """Give the agent its next epoch and this assignment (bumping its desired state)."""
    agent = await session.scalar(select(Agent).where(Agent.id == target.agent_id).with_for_update())
    if agent is None:  # deleted: its targets go with it
        return
    now = utcnow()
    agent.epoch += 1
    agent.desired_revision += 1
    agent.assignment = {
        "deployment_id": deployment.id,
        "epoch": agent.epoch,
        "spec_hash": spec_hash,
        "bundle_hash": bundle_hash,
        "bundle_digest": digest,
        "bundle_url": bundle_url(agent.id, digest),
        "approval_credential": credential,
    }
    before = target.state
    target.phase = phase
    target.epoch = agent.epoch
    target.state = TargetState.pending.value
    target.resume_state = None
    target.error = None
    target.assigned_at = now
    target.updated_at = now
    # An older assignment still on its way can never be reported on again (its epoch is
    # stale now): it is superseded at once rather than left to block its deployment.
    await _supersede(
        session,
        agent.id,
        keep_deployment_id=deployment.id,
        states=TARGET_IN_FLIGHT | {TargetState.unreachable},
    )
    await _record_target(
        session, SYSTEM, deployment, target, before, assigned=True, spec_hash=spec_hash
    )


async def assign_batch(session: AsyncSession, deployment: Deployment, batch: int) -> int:
    """Assign the rollout's `batch` (its targets not yet assigned); returns how many."""
    assert deployment.bundle_digest is not None
    targets = await session.scalars(
        select(DeploymentTarget)
        .where(
            DeploymentTarget.deployment_id == deployment.id,
            DeploymentTarget.batch == batch,
            DeploymentTarget.epoch.is_(None),
        )
        .order_by(DeploymentTarget.agent_id)
    )
    return await _assign_all(
        session,
        deployment,
        targets.all(),
        Assignment(deployment.bundle_digest, deployment.spec_hash, deployment.bundle_hash),
        credential=deployment.approval_credential,
        phase="rollout",
    )


async def assign_rollback(
    session: AsyncSession, deployment: Deployment, previous: Deployment
) -> int:
    """Reassign every target this deployment reached (and not since taken over by a newer
    deployment) to the previous deployment's spec and config under a fresh epoch."""
    assert deployment.rollback_digest is not None
    targets = await session.scalars(
        select(DeploymentTarget)
        .where(
            DeploymentTarget.deployment_id == deployment.id,
            DeploymentTarget.epoch.is_not(None),
            DeploymentTarget.state != TargetState.superseded.value,
        )
        .order_by(DeploymentTarget.agent_id)
    )
    return await _assign_all(
        session,
        deployment,
        targets.all(),
        Assignment(deployment.rollback_digest, previous.spec_hash, previous.bundle_hash),
        credential=deployment.rollback_credential,
        phase="rollback",
    )


@dataclass(frozen=True)
class Assignment:
    digest: str
    spec_hash: str
    bundle_hash: str


async def _assign_all(
    session: AsyncSession,
    deployment: Deployment,
    targets: Sequence[DeploymentTarget],
    what: Assignment,
    *,
    credential: str | None,
    phase: str,
) -> int:
    for target in targets:
        await assign(
            session,
            deployment,
            target,
            digest=what.digest,
            spec_hash=what.spec_hash,
            bundle_hash=what.bundle_hash,
            credential=credential,
            phase=phase,
        )
    return len(targets)


def _batch_count(deployment: Deployment, total: int) -> int:
    strategy = deployment.strategy
    if strategy.get("type") != "phased":
        return 1
    return len(batch_ends(total, Phased.model_validate(strategy).batches))


async def advance(session: AsyncSession, deployment: Deployment) -> None:
    """Derive the deployment's next status from its targets (the caller holds its lock):
    complete, fail (and auto-roll back), or start the next batch after the bake time."""
    status = DeploymentStatus(deployment.status)
    targets = (
        await session.scalars(
            select(DeploymentTarget).where(DeploymentTarget.deployment_id == deployment.id)
        )
    ).all()
    if status is DeploymentStatus.rolling_back:
        if deployment.rollback_digest is None:
            return  # still building
        step = evaluate_rollback(TargetState(t.state) for t in targets if t.phase == "rollback")
        if step is Step.complete:
            await transition(session, SYSTEM, deployment, DeploymentEvent.rollback_completed)
        elif step is Step.fail:
            await transition(
                session,
                SYSTEM,
                deployment,
                DeploymentEvent.rollback_failed,
                reason="an agent failed to activate the rollback",
            )
        return
    if status is not DeploymentStatus.deploying:
        return
    batch_count = _batch_count(deployment, len(targets))
    while True:
        progress = evaluate_rollout(
            strategy=deployment.strategy,
            batches=[(t.batch, TargetState(t.state)) for t in targets],
            current_batch=deployment.current_batch,
            batch_count=batch_count,
            batch_done_at=deployment.batch_done_at,
            now=utcnow(),
        )
        if progress.step is Step.batch_done:
            deployment.batch_done_at = utcnow()
            continue  # a bake time of 0 starts the next batch at once
        if progress.step is Step.next_batch:
            deployment.current_batch += 1
            deployment.batch_done_at = None
            deployment.updated_at = utcnow()
            await assign_batch(session, deployment, deployment.current_batch)
            await audit.record(
                session,
                SYSTEM,
                "deployment.batch_started",
                deployment_target(deployment),
                details={"batch": deployment.current_batch},
            )
            return
        if progress.step is Step.complete:
            await transition(session, SYSTEM, deployment, DeploymentEvent.rollout_completed)
        elif progress.step is Step.fail:
            await _fail_rollout(session, deployment, progress.failures)
        return


async def _fail_rollout(session: AsyncSession, deployment: Deployment, failures: int) -> None:
    budget = deployment.strategy.get("max_failures", 0)
    await transition(
        session,
        SYSTEM,
        deployment,
        DeploymentEvent.rollout_failed,
        reason=f"{failures} agent(s) failed; the strategy allows {budget}",
    )
    if deployment.strategy.get("type") == "phased" and deployment.strategy.get("auto_rollback"):
        # A first deployment has nothing to restore: it stays failed (audited above).
        with contextlib.suppress(Conflict):
            await rollback(session, SYSTEM, deployment, reason="automatic rollback after failures")


async def report_status(
    session: AsyncSession,
    principal: Principal,
    *,
    agent_id: str,
    deployment_id: str,
    epoch: int,
    state: TargetState,
    error: str | None,
    tuning: dict[str, Any] | None,
) -> DeploymentTarget:
    """An agent's report on its assignment: fenced by epoch (older → 409 `stale_epoch`),
    repeats accepted, skips allowed, never backwards."""
    found = await session.scalar(
        select(DeploymentTarget.deployment_id).where(
            DeploymentTarget.deployment_id == deployment_id, DeploymentTarget.agent_id == agent_id
        )
    )
    if found is None:
        raise NotFound("this deployment has no target on this agent", code="not_assigned")
    deployment = await session.scalar(
        select(Deployment).where(Deployment.id == deployment_id).with_for_update()
    )
    agent = await session.scalar(select(Agent).where(Agent.id == agent_id).with_for_update())
    target = await session.scalar(
        select(DeploymentTarget)
        .where(
            DeploymentTarget.deployment_id == deployment_id, DeploymentTarget.agent_id == agent_id
        )
        .with_for_update()
    )
    if deployment is None or agent is None or target is None:
        raise NotFound("this deployment has no target on this agent", code="not_assigned")
    if epoch < agent.epoch:
        raise Conflict(
            f"epoch {epoch} is stale: the agent's current assignment is epoch {agent.epoch}",
            code="stale_epoch",
            details={"epoch": epoch, "current_epoch": agent.epoch},
        )
    if target.epoch is None or epoch != target.epoch:
        raise InvalidInput(
            f"epoch {epoch} was never assigned for this deployment",
            code="unknown_epoch",
            details={"field": "epoch", "current_epoch": agent.epoch},
        )
    current = TargetState(target.state)
    if current is TargetState.unreachable:
        current = TargetState(target.resume_state or TargetState.pending.value)
    outcome = apply_report(current, state)
    before = target.state
    now = utcnow()
    if outcome is ReportOutcome.repeated and before == state.value:
        return target
    target.state = state.value
    target.resume_state = None
    target.updated_at = now
    if error is not None:
        target.error = error
    if tuning is not None:
        target.tuning = tuning
    await _record_target(session, principal, deployment, target, before, error=error)
    if state is TargetState.active:
        await _supersede(
            session,
            agent.id,
            keep_deployment_id=deployment.id,
            states=frozenset({TargetState.active}),
        )
    await advance(session, deployment)
    return target


async def mark_unreachable(session: AsyncSession, deployment: Deployment) -> int:
    """Assigned targets still in flight on agents that went offline become `unreachable`;
    unreachable targets whose agent is back return to their last state."""
    rows = (
        await session.execute(
            select(DeploymentTarget, Agent.status)
            .join(Agent, Agent.id == DeploymentTarget.agent_id)
            .where(
                DeploymentTarget.deployment_id == deployment.id,
                DeploymentTarget.epoch.is_not(None),
                DeploymentTarget.state.in_(
                    sorted(s.value for s in TARGET_IN_FLIGHT | {TargetState.unreachable})
                ),
            )
        )
    ).all()
    changed = 0
    now = utcnow()
    for target, agent_status in rows:
        offline = agent_status == AgentStatus.offline.value
        before = target.state
        if offline and TargetState(before) in TARGET_IN_FLIGHT:
            target.resume_state, target.state = before, TargetState.unreachable.value
        elif not offline and before == TargetState.unreachable.value:
            target.state, target.resume_state = (
                target.resume_state or TargetState.pending.value,
                None,
            )
        else:
            continue
        target.updated_at = now
        changed += 1
        await _record_target(session, SYSTEM, deployment, target, before)
    return changed


ACTIVE_PHASES = (DeploymentStatus.deploying.value, DeploymentStatus.rolling_back.value)


async def progress_all(session: AsyncSession, *, limit: int) -> list[str]:
    """The ids of deployments the progression sweep looks at."""
    return list(
        (
            await session.scalars(
                select(Deployment.id)
                .where(Deployment.status.in_(ACTIVE_PHASES))
                .order_by(Deployment.id)
                .limit(limit)
            )
        ).all()
    )


async def progress_one(session: AsyncSession, deployment_id: str) -> None:
    deployment = await session.scalar(
        select(Deployment).where(Deployment.id == deployment_id).with_for_update()
    )
    if deployment is None or deployment.status not in ACTIVE_PHASES:
        return
    await mark_unreachable(session, deployment)
    await advance(session, deployment)
