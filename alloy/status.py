"""Wire shapes of the router's status endpoints: `GET /models` (seed 000) and `GET /ps`."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from alloy.modelspec import Task


class AllocationStatus(StrEnum):
    DEALLOCATED = "deallocated"
    ALLOCATING = "allocating"
    ALLOCATED = "allocated"
    FAILED = "failed"


class Modality(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    TEXT = "text"


class Capability(BaseModel):
    name: str
    inputs: list[str]
    outputs: list[str]


# What each task takes and gives; the router knows this without loading anything.
TASK_CAPABILITIES: dict[Task, Capability] = {
    Task.TEXT_TO_IMAGE: Capability(name="text-to-image", inputs=["text"], outputs=["image"]),
    Task.CHAT: Capability(name="chat", inputs=["text"], outputs=["text"]),
    Task.VISION_CHAT: Capability(name="vision-chat", inputs=["text", "image"], outputs=["text"]),
}


def output_modality(task: Task) -> Modality:
    return Modality(TASK_CAPABILITIES[task].outputs[0])


class ModelEntry(BaseModel):
    """One model in `GET /models`."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: str
    task: Task
    active_requests: int
    is_supported: bool = Field(description="This machine or cluster could ever run it (usage ignored).")
    capabilities: list[Capability]
    allocation_status: AllocationStatus
    replicas: int = Field(description="Replicas running or starting.")
    message: str | None = Field(default=None, description="Why it waits, or why it failed.")


class ModelsListing(BaseModel):
    """`GET /models`: every known model, grouped by what it outputs."""

    image: list[ModelEntry] = Field(default_factory=list)
    audio: list[ModelEntry] = Field(default_factory=list)
    video: list[ModelEntry] = Field(default_factory=list)
    text: list[ModelEntry] = Field(default_factory=list)

    def all(self) -> list[ModelEntry]:
        return [*self.image, *self.audio, *self.video, *self.text]


class Device(BaseModel):
    """An accelerator, or the host's memory budget for CPU models."""

    id: str = Field(description="cuda:0, rocm:1, cpu ...")
    kind: str = Field(description="nvidia, amd or cpu.")
    name: str
    memory_total_bytes: int
    memory_reserved_bytes: int = Field(description="Reserved by resident models (their declared needs).")


class ResidentModel(BaseModel):
    """One resident replica in `GET /ps`."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: str
    replica: str
    state: str = Field(description="starting, loading, ready, stopping, or failed (see message).")
    devices: list[str]
    memory_reserved_bytes: int
    memory_used_bytes: int | None = Field(default=None, description="As the runtime reports it.")
    active_requests: int
    expires_at: str | None = Field(default=None, description="When it goes back to sleep; null: kept.")
    endpoint: str | None = None
    message: str | None = Field(
        default=None, description="Why it failed: the runtime's last lines of output."
    )


class PsResponse(BaseModel):
    """`GET /ps`: what is resident now, and the devices."""

    models: list[ResidentModel]
    devices: list[Device]
