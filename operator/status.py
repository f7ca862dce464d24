"""An AlloyModel's status, decided from its Deployment and pods: a pure function, table-tested.

Ready         at least one pod's model is loaded (/ready answers)
Loading       a pod runs, its model is not loaded yet
Pending       pods wait for a node; the message is the scheduler's ("0/3 nodes are available: ...")
Failed        a container keeps crashing or cannot pull its image (with its last termination message),
              the rollout exceeded its deadline, or the spec is invalid (set by the handler)
ScaledToZero  no replicas wanted and none left
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alloy.operator.manifests import desired_replicas, endpoint
from alloy.resource import AlloyModel, AlloyModelStatus, Condition, Phase

Object = dict[str, Any]
STUCK_REASONS = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "InvalidImageName",
    "CreateContainerError",
}


def model_status(
    model: AlloyModel, deployment: Object | None, pods: list[Object], *, now: str
) -> AlloyModelStatus:
    """The operator's part of the status (the router's activity fields are left as they are)."""
    live = [pod for pod in pods if not pod.get("metadata", {}).get("deletionTimestamp")]
    ready = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    phase, message = _phase(model, deployment, live, ready)
    previous = {c.type: c for c in model.status.conditions}
    conditions = [
        _condition(previous, "Ready", ready > 0, "ModelLoaded" if ready else str(phase), message, now),
        _condition(previous, "Scheduled", all(_scheduled(pod) for pod in live), *_scheduling(live), now),
        _condition(
            previous,
            "Available",
            ready >= max(desired_replicas(model), 1),
            "MinimumReplicasAvailable" if ready else "NoReadyReplicas",
            f"{ready} ready",
            now,
        ),
    ]
    return model.status.model_copy(
        update={
            "phase": phase,
            "message": message,
            "model_id": model.model_spec.model_id,
            "replicas": len(live),
            "ready_replicas": ready,
            "selector": f"alloy.dev/model={model.metadata.name}",
            "endpoint": endpoint(model),
            "observed_generation": model.metadata.generation,
            "conditions": conditions,
        }
    )


def invalid_status(model_body: Object, reason: str, *, now: str) -> Object:
    """The status patch for a spec that does not validate."""
    message = f"invalid spec: {reason}"
    condition = Condition(
        type="Ready", status="False", reason="InvalidSpec", message=message, last_transition_time=now
    )
    generation = model_body.get("metadata", {}).get("generation")
    status = AlloyModelStatus(
        phase=Phase.FAILED, message=message, observed_generation=generation, conditions=[condition]
    )
    return status.model_dump(by_alias=True, exclude_none=True)


def _phase(model: AlloyModel, deployment: Object | None, pods: list[Object], ready: int) -> tuple[Phase, str]:
    desired = desired_replicas(model)
    if ready > 0:
        return Phase.READY, f"{ready}/{max(desired, ready)} replicas ready"
    if desired == 0:
        return (Phase.SCALED_TO_ZERO, "scaled to zero") if not pods else (Phase.PENDING, "scaling to zero")
    failure = _container_failure(pods) or _rollout_failure(deployment)
    if failure:
        return Phase.FAILED, failure
    unscheduled = [pod for pod in pods if not _scheduled(pod)]
    if unscheduled:
        return Phase.PENDING, _scheduling(unscheduled)[1]
    if pods:
        return Phase.LOADING, "loading the model"
    return Phase.PENDING, "creating pods"


def _container_failure(pods: Iterable[Object]) -> str | None:
    """A crash loop or image problem, with the container's last termination message if there is one."""
    for pod in pods:
        for container in pod.get("status", {}).get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") not in STUCK_REASONS:
                continue
            terminated = (container.get("lastState") or {}).get("terminated") or {}
            detail = terminated.get("message") or waiting.get("message") or ""
            exit_code = terminated.get("exitCode")
            code = f" (exit code {exit_code})" if exit_code is not None else ""
            return f"{waiting['reason']}{code}: {detail.strip()}".rstrip(": ")
    return None


def _rollout_failure(deployment: Object | None) -> str | None:
    for condition in ((deployment or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return f"rollout stalled: {condition.get('message', 'progress deadline exceeded')}"
    return None


def _scheduled(pod: Object) -> bool:
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled":
            return bool(condition.get("status") == "True")
    return bool(pod.get("spec", {}).get("nodeName"))


def _scheduling(pods: list[Object]) -> tuple[str, str]:
    """(reason, message) of the first pod the scheduler could not place, e.g. waiting for a GPU node."""
    for pod in pods:
        for condition in pod.get("status", {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") != "True":
                return condition.get("reason") or "Unschedulable", condition.get(
                    "message"
                ) or "waiting for a node"
    return ("Scheduled", "all pods scheduled") if pods else ("NoPods", "no pods")


def _condition(
    previous: dict[str, Condition], kind: str, ok: bool, reason: str, message: str, now: str
) -> Condition:
    status = "True" if ok else "False"
    before = previous.get(kind)
    since = before.last_transition_time if before is not None and before.status == status else now
    return Condition(type=kind, status=status, reason=reason, message=message, last_transition_time=since)
