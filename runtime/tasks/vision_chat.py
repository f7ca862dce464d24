"""Chat about images on a transformers image-text-to-text model (Qwen2.5-VL, LLaVA, SmolVLM, ...).

`image_url` parts (data: or http URLs) become images in the conversation; the model's processor and
chat template place them, so any model `AutoModelForImageTextToText` loads works the same way.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoModelForImageTextToText, AutoProcessor

from alloy.modelspec import Task
from alloy.runtime.errors import InvalidRequest
from alloy.runtime.tasks.base import LoadContext
from alloy.runtime.tasks.chat import Chat
from alloy.runtime.tasks.image_inputs import ImageLimits, load_image
from alloy.schemas import ChatMessage, ImagePart


class VisionChat(Chat):
    task = Task.VISION_CHAT

    def __init__(self, context: LoadContext, model: Any, processor: Any) -> None:
        super().__init__(context, model, processor)
        self.processor = processor

    def capabilities(self) -> list[dict[str, Any]]:
        return [{"name": "vision-chat", "inputs": ["text", "image"], "outputs": ["text"]}]

    async def conversation(self, messages: list[ChatMessage]) -> list[dict[str, Any]]:
        images = sum(len(message.image_urls()) for message in messages)
        if images > self.settings.max_images:
            raise InvalidRequest(["messages"], f"{images} images; the limit is {self.settings.max_images}")
        conversation = []
        for index, message in enumerate(messages):
            if isinstance(message.content, str):
                parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
            else:
                parts = [
                    await self._part(part, ["messages", index, "content", j])
                    for j, part in enumerate(message.content)
                ]
            conversation.append({"role": message.role, "content": parts})
        return conversation

    async def _part(self, part: Any, field: list[str | int]) -> dict[str, Any]:
        if isinstance(part, ImagePart):
            limits = ImageLimits(
                max_bytes=self.settings.max_image_bytes,
                max_pixels=self.settings.max_image_pixels,
                fetch=self.settings.image_fetch,
            )
            image = await load_image(part.image_url.url, field=[*field, "image_url", "url"], limits=limits)
            return {"type": "image", "image": image}
        return {"type": "text", "text": part.text}


def load(context: LoadContext) -> VisionChat:
    location = context.location
    processor = AutoProcessor.from_pretrained(location.name_or_path, **location.pretrained_kwargs())
    model: Any = AutoModelForImageTextToText.from_pretrained(
        location.name_or_path, dtype=context.dtype, **location.pretrained_kwargs()
    )
    return VisionChat(context, model.to(context.device).eval(), processor)
