"""Text generation shared by chat and vision chat: sampling settings, streaming, stop strings, cancel.

The model generates on the worker thread; a streamer turns tokens into `delta` events as words
complete. Stop strings are enforced here rather than by transformers so that no part of a stop
string is ever streamed: text that could be the start of one is held back until it is decided.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList, TextStreamer

from alloy.events import Event
from alloy.runtime.errors import InvalidRequest
from alloy.runtime.tasks.base import RunContext, StepTimer, reject_unknown
from alloy.schemas import ChatRequest, DoneReason

# Sampling knobs a request may set beyond the named fields, by their transformers names.
EXTRA_GENERATION_FIELDS = {
    "repetition_penalty",
    "min_p",
    "typical_p",
    "no_repeat_ngram_size",
    "min_new_tokens",
    "epsilon_cutoff",
    "eta_cutoff",
    "do_sample",
    "top_h",
}
DEFAULT_MAX_TOKENS = 512


@dataclass(frozen=True)
class Sampling:
    """Validated generation settings for one request."""

    max_new_tokens: int
    options: dict[str, Any]
    stop: list[str]
    seed: int | None


@dataclass
class Generated:
    text: str
    completion_tokens: int
    done_reason: DoneReason


def resolve_sampling(request: ChatRequest, defaults: dict[str, Any], *, what: str) -> Sampling:
    """Merge the model's defaults under the request's fields; 422 for fields no sampler takes."""
    extras = request.extra_fields()
    reject_unknown(extras, EXTRA_GENERATION_FIELDS, what=what)
    named = {
        name: getattr(request, name)
        for name in ("max_tokens", "temperature", "top_p", "top_k", "seed", "stop")
    }
    merged = {**defaults, **{k: v for k, v in named.items() if v is not None}, **extras}
    stop = merged.pop("stop", None) or []
    seed = merged.pop("seed", None)
    max_new_tokens = int(merged.pop("max_tokens", DEFAULT_MAX_TOKENS))
    temperature = merged.get("temperature")
    if temperature == 0:
        # Greedy decoding: the sampling knobs mean nothing, and transformers warns when given them.
        merged = {k: v for k, v in merged.items() if k not in ("temperature", "top_p", "top_k", "min_p")}
        merged["do_sample"] = False
    elif temperature is not None or any(k in merged for k in ("top_p", "top_k", "min_p")):
        merged.setdefault("do_sample", True)
    return Sampling(
        max_new_tokens=max_new_tokens,
        options=merged,
        stop=[stop] if isinstance(stop, str) else list(stop),
        seed=seed,
    )


def check_context(prompt_tokens: int, sampling: Sampling, context_length: int | None) -> int:
    """Tokens the model may still generate; 422 when the prompt alone fills its context."""
    if context_length is None:
        return sampling.max_new_tokens
    room = context_length - prompt_tokens
    if room <= 0:
        raise InvalidRequest(
            ["messages"], f"the prompt is {prompt_tokens} tokens; the model's context holds {context_length}"
        )
    return min(sampling.max_new_tokens, room)


@dataclass
class StopFilter:
    """Passes text through until a stop string appears; holds back a possible stop string's start."""

    stops: list[str]
    pending: str = ""
    stopped: bool = False
    emitted: list[str] = field(default_factory=list)

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self.pending += text
        hits = [index for index in (self.pending.find(stop) for stop in self.stops if stop) if index >= 0]
        if hits:
            self.stopped = True
            return self._release(min(hits), keep=False)
        return self._release(len(self.pending) - self._held_back())

    def flush(self) -> str:
        return "" if self.stopped else self._release(len(self.pending))

    def _held_back(self) -> int:
        """Length of the longest tail of `pending` that some stop string starts with."""
        longest = 0
        for stop in self.stops:
            for size in range(1, min(len(stop), len(self.pending) + 1)):
                if stop.startswith(self.pending[-size:]):
                    longest = max(longest, size)
        return longest

    def _release(self, upto: int, *, keep: bool = True) -> str:
        out, self.pending = self.pending[:upto], (self.pending[upto:] if keep else "")
        self.emitted.append(out)
        return out


class _DeltaStreamer(TextStreamer):
    """Emits each finished piece of text as a `delta` event, minus stop strings."""

    def __init__(self, tokenizer: Any, context: RunContext, stop: StopFilter, timer: StepTimer) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.context, self.stop, self.timer = context, stop, timer

    def put(self, value: torch.Tensor) -> None:
        if not self.next_tokens_are_prompt:
            self.timer.tick()
        super().put(value)  # type: ignore[no-untyped-call]

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        piece = self.stop.feed(text) + (self.stop.flush() if stream_end else "")
        if piece:
            self.context.emit(Event.delta(content=piece))


class _StopWhen(StoppingCriteria):
    """Ends generation when the client left (by raising) or a stop string appeared."""

    def __init__(self, context: RunContext, stop: StopFilter) -> None:
        self.context, self.stop = context, stop

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        self.context.check_cancelled()
        return torch.full((input_ids.shape[0],), self.stop.stopped, dtype=torch.bool, device=input_ids.device)


def generate(
    model: Any,
    tokenizer: Any,
    inputs: dict[str, Any],
    sampling: Sampling,
    max_new_tokens: int,
    context: RunContext,
    timer: StepTimer,
) -> Generated:
    """Generate one reply, streaming deltas; blocking, for the worker thread."""
    stop = StopFilter(sampling.stop)
    config = copy.deepcopy(model.generation_config)
    config.update(**sampling.options, max_new_tokens=max_new_tokens)
    if not config.do_sample:
        config.temperature = config.top_p = config.top_k = config.min_p = None
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)  # one worker thread, so the global generator is ours alone
    context.check_cancelled()
    output = model.generate(
        **inputs,
        generation_config=config,
        streamer=_DeltaStreamer(tokenizer, context, stop, timer),
        stopping_criteria=StoppingCriteriaList([_StopWhen(context, stop)]),
    )
    new_tokens = output[0, inputs["input_ids"].shape[-1] :]
    reason = _done_reason(new_tokens, config, max_new_tokens, stopped=stop.stopped)
    return Generated(
        text="".join(stop.emitted), completion_tokens=int(new_tokens.shape[-1]), done_reason=reason
    )


def _done_reason(
    new_tokens: torch.Tensor, config: GenerationConfig, limit: int, *, stopped: bool
) -> DoneReason:
    eos = config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    ended_on_eos = new_tokens.numel() > 0 and int(new_tokens[-1]) in eos_ids
    if stopped or ended_on_eos or new_tokens.shape[-1] < limit:
        return DoneReason.STOP
    return DoneReason.LENGTH


def elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
