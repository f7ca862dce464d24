"""The default catalog: the models `alloy serve` and the Helm chart offer with no configuration.

Each entry carries the model's recommended generation defaults (from its model card), applied when a
request omits a field, and what one replica needs. The `alloy-tiny*` demo models are random-weight
pipelines built on first use, so every README command runs offline on a CPU.
"""

from __future__ import annotations

from alloy.modelspec import (
    Accelerator,
    Adapter,
    HuggingFaceSource,
    ModelSpec,
    Offload,
    Scaling,
    Source,
    Task,
    Vendor,
)


def _hub(repo: str) -> Source:
    return Source(huggingface=HuggingFaceSource(repo=repo))


def _gpu(memory_gib: float) -> Accelerator:
    return Accelerator(vendor=Vendor.NVIDIA, count=1, memory_gib=memory_gib)


def _cpu(memory_gib: float) -> Accelerator:
    return Accelerator(vendor=Vendor.CPU, count=0, memory_gib=memory_gib)


def _entries() -> list[ModelSpec]:
    return [
        ModelSpec(
            model_id="qwen-image",
            task=Task.TEXT_TO_IMAGE,
            source=_hub("Qwen/Qwen-Image"),
            pipeline_class="QwenImagePipeline",
            # Qwen-Image uses true CFG: it needs a negative prompt (a single space is the card's choice).
            defaults={
                "num_inference_steps": 50,
                "true_cfg_scale": 4.0,
                "negative_prompt": " ",
                "width": 1328,
                "height": 1328,
            },
            accelerator=_gpu(64),
        ),
        ModelSpec(
            model_id="z-image-turbo",
            task=Task.TEXT_TO_IMAGE,
            source=_hub("Tongyi-MAI/Z-Image-Turbo"),
            pipeline_class="ZImagePipeline",
            # 9 scheduler steps are 8 DiT forwards, the distilled schedule; Turbo runs without CFG.
            defaults={"num_inference_steps": 9, "guidance_scale": 0.0, "width": 1024, "height": 1024},
            accelerator=_gpu(24),
        ),
        ModelSpec(
            model_id="flux2-dev",
            task=Task.TEXT_TO_IMAGE,
            source=_hub("black-forest-labs/FLUX.2-dev"),
            pipeline_class="Flux2Pipeline",
            # 32B transformer + 24B text encoder: the 80 GB+ class, or model offload on smaller cards.
            defaults={"num_inference_steps": 50, "guidance_scale": 4.0, "width": 1024, "height": 1024},
            accelerator=_gpu(80),
            offload=Offload.MODEL,
        ),
        ModelSpec(
            model_id="flux2-dev-turbo",
            task=Task.TEXT_TO_IMAGE,
            source=_hub("black-forest-labs/FLUX.2-dev"),
            pipeline_class="Flux2Pipeline",
            adapters=[
                Adapter(source=_hub("fal/FLUX.2-dev-Turbo"), weight_name="flux.2-turbo-lora.safetensors")
            ],
            # A distilled LoRA on FLUX.2-dev: 8 steps; needs the 80 GB+ class, or model offload.
            defaults={"num_inference_steps": 8, "guidance_scale": 2.5, "width": 1024, "height": 1024},
            accelerator=_gpu(80),
            offload=Offload.MODEL,
        ),
        ModelSpec(
            model_id="qwen3-8b",
            task=Task.CHAT,
            source=_hub("Qwen/Qwen3-8B"),
            defaults={"max_tokens": 1024, "temperature": 0.6, "top_p": 0.95},
            accelerator=_gpu(20),
        ),
        ModelSpec(
            model_id="alloy-tiny",
            task=Task.TEXT_TO_IMAGE,
            source=Source(builtin="zimage"),
            defaults={"num_inference_steps": 4, "guidance_scale": 0.0, "width": 64, "height": 64},
            accelerator=_cpu(1),
            scaling=Scaling(keep_alive=300),
        ),
        ModelSpec(
            model_id="alloy-tiny-chat",
            task=Task.CHAT,
            source=Source(builtin="chat"),
            defaults={"max_tokens": 32},
            accelerator=_cpu(1),
        ),
    ]


def default_catalog() -> dict[str, ModelSpec]:
    """The catalog by model id; a fresh copy, so callers may change it."""
    return {spec.model_id: spec for spec in _entries()}


def find_spec(model_id: str) -> ModelSpec | None:
    """The catalog entry for `model_id`, if it is a default model."""
    return default_catalog().get(model_id)
