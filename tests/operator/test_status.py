"""The status an AlloyModel shows, decided from its Deployment and pods (no cluster needed)."""

from __future__ import annotations

from typing import Any

import pytest

from alloy.operator.status import model_status
from alloy.resource import AlloyModel, Condition, Phase

NOW = "2026-11-22T10:00:00Z"


def model(replicas: int | None = 1, **status: Any) -> AlloyModel:
    return AlloyModel.model_validate(
        {
            "metadata": {"name": "zit", "namespace": "models", "uid": "u", "generation": 4},
            "spec": {"task": "text-to-image", "source": {"path": "/m"}, "replicas": replicas},
            "status": status,
        }
    )


def deployment(ready: int = 0, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"status": {"readyReplicas": ready, "conditions": conditions or []}}


def pod(
    *,
    scheduled: bool = True,
    message: str = "",
    waiting: dict[str, Any] | None = None,
    terminated: dict[str, Any] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    condition = {"type": "PodScheduled", "status": "True" if scheduled else "False"}
    if not scheduled:
        condition |= {"reason": "Unschedulable", "message": message}
    container: dict[str, Any] = {
        "name": "runtime",
        "state": {"waiting": waiting} if waiting else {"running": {}},
    }
    if terminated:
        container["lastState"] = {"terminated": terminated}
    metadata = {"deletionTimestamp": NOW} if deleting else {}
    return {"metadata": metadata, "status": {"conditions": [condition], "containerStatuses": [container]}}


GPU_SHORTAGE = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available."


@pytest.mark.parametrize(
    ("replicas", "dep", "pods", "phase", "message"),
    [
        (0, None, [], Phase.SCALED_TO_ZERO, "scaled to zero"),
        (0, deployment(), [pod(deleting=True)], Phase.SCALED_TO_ZERO, "scaled to zero"),
        (0, deployment(), [pod()], Phase.PENDING, "scaling to zero"),
        (1, None, [], Phase.PENDING, "creating pods"),
        (1, deployment(), [pod(scheduled=False, message=GPU_SHORTAGE)], Phase.PENDING, GPU_SHORTAGE),
        (1, deployment(), [pod()], Phase.LOADING, "loading the model"),
        (2, deployment(ready=1), [pod(), pod()], Phase.READY, "1/2 replicas ready"),
        (
            1,
            deployment(),
            [
                pod(
                    waiting={"reason": "CrashLoopBackOff", "message": "back-off 5m0s"},
                    terminated={"exitCode": 1, "message": "model failed to load: OSError: no such repo"},
                )
            ],
            Phase.FAILED,
            "CrashLoopBackOff (exit code 1): model failed to load: OSError: no such repo",
        ),
        (
            1,
            deployment(),
            [pod(waiting={"reason": "ImagePullBackOff", "message": "pull access denied"})],
            Phase.FAILED,
            "ImagePullBackOff: pull access denied",
        ),
        (
            1,
            deployment(
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": "ReplicaSet has timed out progressing.",
                    }
                ]
            ),
            [],
            Phase.FAILED,
            "rollout stalled: ReplicaSet has timed out progressing.",
        ),
    ],
)
def test_phase_and_message(
    replicas: int, dep: dict[str, Any] | None, pods: list[dict[str, Any]], phase: Phase, message: str
) -> None:
    status = model_status(model(replicas), dep, pods, now=NOW)
    assert (status.phase, status.message) == (phase, message)


def test_counts_endpoint_selector_and_generation() -> None:
    status = model_status(model(2), deployment(ready=1), [pod(), pod(), pod(deleting=True)], now=NOW)
    assert (status.replicas, status.ready_replicas) == (2, 1)
    assert status.endpoint == "http://alloy-zit.models.svc:80"
    assert status.selector == "alloy.dev/model=zit"
    assert status.observed_generation == 4 and status.model_id == "zit"


def test_conditions_keep_their_transition_time_until_they_change() -> None:
    earlier = "2026-11-22T09:00:00Z"
    before = model(
        1,
        conditions=[
            {"type": "Ready", "status": "False", "lastTransitionTime": earlier},
            {"type": "Scheduled", "status": "True", "lastTransitionTime": earlier},
        ],
    )
    status = model_status(before, deployment(ready=1), [pod()], now=NOW)
    by_type: dict[str, Condition] = {c.type: c for c in status.conditions}
    assert by_type["Ready"].status == "True" and by_type["Ready"].last_transition_time == NOW
    assert by_type["Scheduled"].last_transition_time == earlier, "unchanged: the old time stays"
    assert by_type["Available"].status == "True"


def test_the_scheduled_condition_carries_the_schedulers_reason() -> None:
    status = model_status(model(1), deployment(), [pod(scheduled=False, message=GPU_SHORTAGE)], now=NOW)
    scheduled = next(c for c in status.conditions if c.type == "Scheduled")
    assert (scheduled.status, scheduled.reason, scheduled.message) == ("False", "Unschedulable", GPU_SHORTAGE)


def test_the_routers_activity_fields_are_kept() -> None:
    status = model_status(
        model(1, lastActiveTime=NOW, expiresAt="2026-11-22T10:05:00Z"), deployment(ready=1), [pod()], now=NOW
    )
    assert status.last_active_time == NOW and status.expires_at == "2026-11-22T10:05:00Z"
