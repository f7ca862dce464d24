"""Tiny random-weight transformers chat and vision-chat models, saved in the real `save_pretrained` layout.

Both speak the Qwen family's ChatML with its byte-level BPE tokenizer, which can be built offline: a Qwen3
for text, and a LLaVA (CLIP vision tower + Qwen2) for images.
"""

# transformers leaves GenerationConfig's and LlavaProcessor's constructors unannotated.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from pathlib import Path
from typing import Final

import torch
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    GenerationConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from ._build import build_once, reseed
from ._text import build_qwen_tokenizer, chatml_template, qwen_vocab_size, token_id

_CHAT_VERSION: Final[int] = 1
_VISION_CHAT_VERSION: Final[int] = 1

_HIDDEN: Final[int] = 64
_HEADS: Final[int] = 4
_HEAD_DIM: Final[int] = _HIDDEN // _HEADS
# Generous for a demo, tiny in memory: the KV cache of two 64-wide layers is ~1 KB per token.
_CONTEXT: Final[int] = 4096
# A random model almost never samples its end token, so an explicit budget keeps default calls short.
_DEFAULT_MAX_NEW_TOKENS: Final[int] = 32
# How strongly the random output head is tilted towards readable tokens (see _favour_readable_tokens).
_READABLE_GAIN: Final[float] = 4.0

# Vision input: images are resized and centre-cropped to 56x56 and cut into 14x14 patches, 16 image tokens.
_IMAGE_SIDE: Final[int] = 56
_PATCH: Final[int] = 14
_IMAGE_TOKENS: Final[int] = (_IMAGE_SIDE // _PATCH) ** 2


def _generation_config(tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    """Greedy decoding that stops at `<|im_end|>` (end of turn) or `<|endoftext|>` (end of document).

    Greedy rather than Qwen's published sampling defaults so that tests get the same tokens every run;
    callers that want sampling pass `do_sample=True` and its parameters per request.
    """
    return GenerationConfig(
        eos_token_id=[token_id(tokenizer, "<|im_end|>"), token_id(tokenizer, "<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        do_sample=False,
        max_new_tokens=_DEFAULT_MAX_NEW_TOKENS,
    )


def _qwen3_chat_config(tokenizer: PreTrainedTokenizerBase) -> Qwen3Config:
    """A two-layer Qwen3 over the tiny vocabulary."""
    return Qwen3Config(
        vocab_size=qwen_vocab_size(),
        hidden_size=_HIDDEN,
        intermediate_size=2 * _HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=_HEADS,
        num_key_value_heads=2,
        head_dim=_HEAD_DIM,
        max_position_embeddings=_CONTEXT,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=token_id(tokenizer, "<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )


def _favour_readable_tokens(head: torch.nn.Linear, tokenizer: PreTrainedTokenizerBase) -> None:
    """Scale the output-head rows of printable-ASCII tokens up and all others down.

    A random model picks tokens at random, and most of a byte-level vocabulary is partial UTF-8 sequences
    and special tokens, so a demo would stream mojibake. Larger rows win the argmax more often, so the tiny
    model streams (meaningless) word pieces instead. It never changes which tokens are possible.
    """
    specials = set(tokenizer.all_special_tokens)
    with torch.no_grad():
        for token, index in tokenizer.get_vocab().items():
            word = tokenizer.convert_tokens_to_string([token]).strip()
            readable = token not in specials and bool(word) and word.isascii() and word.isprintable()
            head.weight[index] *= _READABLE_GAIN if readable else 1 / _READABLE_GAIN


def _write_chat(path: Path, seed: int) -> None:
    """Assemble and save a tiny Qwen3ForCausalLM with its tokenizer and generation config."""
    tokenizer = build_qwen_tokenizer(chat_template=chatml_template(vision=False), model_max_length=_CONTEXT)
    reseed(seed, 0)
    model = Qwen3ForCausalLM(_qwen3_chat_config(tokenizer))
    _favour_readable_tokens(model.lm_head, tokenizer)
    model.generation_config = _generation_config(tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def build_tiny_chat(path: Path, *, seed: int = 0) -> Path:
    """Build (once) a tiny chat model at `path`: Qwen3ForCausalLM + Qwen2Tokenizer with a ChatML template.

    Loads with `AutoModelForCausalLM` and `AutoTokenizer`; `apply_chat_template` accepts string content or
    text parts and honours `add_generation_prompt` and Qwen3's `enable_thinking=False`.
    """
    return build_once(
        path, kind="chat", version=_CHAT_VERSION, seed=seed, write=lambda p: _write_chat(p, seed)
    )


def _llava_config(tokenizer: PreTrainedTokenizerBase) -> LlavaConfig:
    """A LLaVA: two-layer CLIP vision tower + two-layer Qwen2 language model, as in llava-interleave-qwen."""
    text_config = Qwen2Config(
        vocab_size=qwen_vocab_size(),
        hidden_size=_HIDDEN,
        intermediate_size=2 * _HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=_HEADS,
        num_key_value_heads=2,
        max_position_embeddings=_CONTEXT,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=token_id(tokenizer, "<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    vision_config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=_IMAGE_SIDE,
        patch_size=_PATCH,
        projection_dim=32,
    )
    return LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=token_id(tokenizer, tokenizer.image_token),
        image_seq_length=_IMAGE_TOKENS,
        # LLaVA's defaults: features from the penultimate vision layer, without the CLS token.
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )


def _llava_processor(tokenizer: PreTrainedTokenizerBase) -> LlavaProcessor:
    """The LLaVA processor: CLIP image preprocessing + tokenizer + the vision-aware chat template."""
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": _IMAGE_SIDE},
        crop_size={"height": _IMAGE_SIDE, "width": _IMAGE_SIDE},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=_PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, which the "default" strategy drops again
        chat_template=chatml_template(vision=True),
    )


def _write_vision_chat(path: Path, seed: int) -> None:
    """Assemble and save a tiny LLaVA with its processor and generation config."""
    tokenizer = build_qwen_tokenizer(chat_template=chatml_template(vision=True), model_max_length=_CONTEXT)
    reseed(seed, 0)
    model = LlavaForConditionalGeneration(_llava_config(tokenizer))
    _favour_readable_tokens(model.lm_head, tokenizer)
    model.generation_config = _generation_config(tokenizer)
    model.save_pretrained(path)
    _llava_processor(tokenizer).save_pretrained(path)


def build_tiny_vision_chat(path: Path, *, seed: int = 0) -> Path:
    """Build (once) a tiny vision-chat model at `path`: LLaVA (CLIP vision tower + Qwen2) with its processor.

    Loads with `AutoProcessor` and `AutoModelForImageTextToText`. The chat template turns a
    `{"type": "image"}` content part into `<|vision_start|><|image_pad|><|vision_end|>`, and the processor
    expands the pad to the 16 image tokens of a 56x56 centre crop. LLaVA rather than Qwen2.5-VL because
    transformers' Qwen-VL processors require a video processor, which needs torchvision.
    """
    return build_once(
        path,
        kind="vision-chat",
        version=_VISION_CHAT_VERSION,
        seed=seed,
        write=lambda p: _write_vision_chat(p, seed),
    )
