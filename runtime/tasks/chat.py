"""Chat on a transformers causal LM with a chat template, streaming tokens as `delta` events."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from transformers import AutoModelForCausalLM, AutoTokenizer

from alloy.modelspec import Task
from alloy.runtime.errors import InvalidRequest, RuntimeFailure
from alloy.runtime.tasks.base import ChatHandler, LoadContext, RunContext
from alloy.runtime.tasks.generation import Sampling, check_context, elapsed_ms, generate, resolve_sampling
from alloy.schemas import AssistantMessage, ChatMessage, ChatRequest, ChatResponse


@dataclass(frozen=True)
class ChatJob:
    inputs: dict[str, Any]
    sampling: Sampling
    max_new_tokens: int
    prompt_tokens: int


class Chat(ChatHandler):
    task = Task.CHAT

    def __init__(self, context: LoadContext, model: Any, tokenizer: Any) -> None:
        super().__init__(context)
        self.model, self.tokenizer = model, tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise RuntimeFailure(f"{context.location.name_or_path} has no chat template, so it cannot chat")

    @property
    def model_class(self) -> str:
        return type(self.model).__name__

    def capabilities(self) -> list[dict[str, Any]]:
        return [{"name": "chat", "inputs": ["text"], "outputs": ["text"]}]

    @property
    def context_length(self) -> int | None:
        config = self.model.config
        text_config = getattr(config, "text_config", None) or config
        return getattr(text_config, "max_position_embeddings", None)

    async def prepare(self, request: ChatRequest) -> ChatJob:
        sampling = resolve_sampling(request, self.spec.defaults, what=f"chat ({self.model_id})")
        conversation = await self.conversation(request.messages)
        inputs = await asyncio.to_thread(self.tokenize, conversation)
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        max_new = check_context(prompt_tokens, sampling, self.context_length)
        return ChatJob(inputs=inputs, sampling=sampling, max_new_tokens=max_new, prompt_tokens=prompt_tokens)

    async def conversation(self, messages: list[ChatMessage]) -> list[dict[str, Any]]:
        """Messages as the chat template takes them; a text model refuses image parts."""
        for index, message in enumerate(messages):
            if message.image_urls():
                raise InvalidRequest(
                    ["messages", index, "content"],
                    f"{self.model_id} is a text chat model and does not accept images",
                )
        return [{"role": message.role, "content": message.text()} for message in messages]

    def tokenize(self, conversation: list[dict[str, Any]]) -> dict[str, Any]:
        encoded = self.tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )
        # Floating inputs (pixel values) must match the model's dtype, e.g. bfloat16 on a GPU.
        return {
            name: tensor.to(self.device, dtype=self.dtype)
            if tensor.is_floating_point()
            else tensor.to(self.device)
            for name, tensor in encoded.items()
        }

    def run(self, job: ChatJob, context: RunContext) -> ChatResponse:
        started = time.monotonic()
        result = generate(
            self.model,
            self.tokenizer,
            job.inputs,
            job.sampling,
            job.max_new_tokens,
            context,
            self.observe_steps(self.task.value),
        )
        self.metrics.generation_seconds.labels(model=self.model_id, task=self.task.value).observe(
            time.monotonic() - started
        )
        return ChatResponse(
            model=self.model_id,
            message=AssistantMessage(content=result.text),
            done_reason=result.done_reason,
            prompt_tokens=job.prompt_tokens,
            completion_tokens=result.completion_tokens,
            gpu_id=self.gpu_id,
            duration_ms=elapsed_ms(started),
        )


def load(context: LoadContext) -> Chat:
    location = context.location
    tokenizer = AutoTokenizer.from_pretrained(location.name_or_path, **location.pretrained_kwargs())
    model: Any = AutoModelForCausalLM.from_pretrained(
        location.name_or_path, dtype=context.dtype, **location.pretrained_kwargs()
    )
    return Chat(context, model.to(context.device).eval(), tokenizer)
