"""Offline tokenizers for the tiny models: a byte-level BPE learned from a fixed in-code corpus.

Real pipelines ship tokenizers trained on terabytes of text; the tiny models only need tokenizers of the
*right class and on-disk format* (so `from_pretrained` takes the production path), whose vocabulary is
small enough that the embedding tables stay a few kilobytes. We therefore learn the merges ourselves with a
plain, deterministic BPE loop (the `tokenizers` trainer is fast but its tie-breaking is not a documented
contract) and hand vocab + merges to the transformers tokenizer class the pipeline expects.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Final

from tokenizers import Regex, pre_tokenizers
from transformers import CLIPTokenizer, PreTrainedTokenizerBase, Qwen2Tokenizer

# QwenImagePipeline's system prompt. The pipeline drops a hard-coded 34 tokens (this prompt inside its
# ChatML wrapper, as the real Qwen tokenizer splits it) from the text embeddings.
_QWEN_IMAGE_SYSTEM: Final[str] = (
    "Describe the image by detailing the color, shape, size, texture, quantity, text, spatial relationships"
    " of the objects and background:"
)

# Text the merges are learned from. It mixes image prompts (for the diffusion text encoders) with chat
# phrases (for the language models), so common words become single tokens and prompts stay short. Every
# piece that occurs at least twice ends up as one token, which is why the chat roles and Qwen-Image's
# system prompt appear twice, laid out as in the template: they then tokenize exactly as with the real
# Qwen tokenizer, 34 tokens, so QwenImagePipeline drops exactly its template and nothing of the prompt.
_CORPUS: Final[str] = (
    """
a red fox in the snow. a photo of a cat sitting on a chair. a painting of a mountain lake at sunset.
an astronaut riding a horse on the moon. a bowl of fruit on a wooden table. a small house in a green
forest. a portrait of a woman with blue eyes. a city street at night with neon lights. a dog running on
the beach. a watercolor of flowers in a vase. a castle on a hill under a cloudy sky. a robot reading a
book in a library. the quick brown fox jumps over the lazy dog. a cup of coffee and a croissant.
high quality, detailed, sharp focus, soft light, cinematic, photorealistic, digital art, oil painting.
You are a helpful assistant. Hello! How can I help you today? What is the capital of France?
The capital of France is Paris. Please write a short poem about the sea. Thank you very much.
I am a tiny model built for tests, so my answers are random. What do you see in this image?
I see a picture. Tell me a story. Once upon a time there was a little bird that wanted to fly.
image picture photo question answer the a an of in on and to is with for
0 1 2 3 4 5 6 7 8 9 10 100 2024 2025 . , ! ? : ; ' " ( ) [ ] - + = / * # @ & % $
"""
    + f"system\n{_QWEN_IMAGE_SYSTEM}\nuser\nassistant\n" * 2
)

# Chosen so the vocabulary (256 bytes + merges + specials) stays well under 1k entries: the embedding
# tables of the tiny models are then a few kilobytes, while common prompt words are still one token.
_NUM_MERGES: Final[int] = 320

# Qwen-family special tokens, in the order the real Qwen2/Qwen3 tokenizers define them, so templates and
# processors that look these names up find them.
QWEN_SPECIAL_TOKENS: Final[tuple[str, ...]] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<think>",
    "</think>",
)

_CLIP_BOS: Final[str] = "<|startoftext|>"
_CLIP_EOS: Final[str] = "<|endoftext|>"
_CLIP_EOW: Final[str] = "</w>"
# Stable Diffusion's text encoders have 77 positions; the pipeline pads every prompt to this length.
CLIP_MAX_LENGTH: Final[int] = 77

# The split pattern of the real Qwen2 tokenizer (transformers' tokenization_qwen2.PRETOKENIZE_REGEX); copied
# rather than imported because that module keeps it private.
_QWEN_SPLIT: Final[str] = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def byte_alphabet() -> list[str]:
    """The 256 printable stand-ins that byte-level BPE uses for raw bytes, in GPT-2's canonical order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = [chr(b) for b in printable]
    # Bytes that are not printable map to code points from 256 upwards, in byte order.
    chars += [chr(256 + i) for i in range(256 - len(printable))]
    return chars


def learn_merges(words: Counter[tuple[str, ...]], num_merges: int) -> list[tuple[str, str]]:
    """Learn up to `num_merges` BPE merges from symbol sequences and their counts.

    Ties between equally frequent pairs go to the lexicographically smallest pair, which makes the result a
    pure function of the corpus.
    """
    current = dict(words)
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, freq in current.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += freq
        if not pairs:
            break
        best, count = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        if count < 2:  # A pair seen once is noise, not a useful token.
            break
        merges.append(best)
        current = {_apply_merge(word, best): freq for word, freq in current.items()}
    return merges


def _apply_merge(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Replace every adjacent occurrence of `pair` in `word` by the merged symbol."""
    out: list[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def _vocab_from(
    base: Iterable[str], merges: Sequence[tuple[str, str]], specials: Iterable[str]
) -> dict[str, int]:
    """Assign ids: base symbols first, then each merge's product, then special tokens (deduplicated)."""
    vocab: dict[str, int] = {}
    for token in [*base, *(a + b for a, b in merges), *specials]:
        vocab.setdefault(token, len(vocab))
    return vocab


@cache
def _qwen_vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """Vocab and merges for a Qwen2-style byte-level BPE, learned once per process."""
    # Pre-tokenize exactly like Qwen2Tokenizer does, so the learned merges apply to the same pieces.
    splitter = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    words: Counter[tuple[str, ...]] = Counter(tuple(piece) for piece, _ in splitter.pre_tokenize_str(_CORPUS))
    merges = learn_merges(words, _NUM_MERGES)
    vocab = _vocab_from(byte_alphabet(), merges, QWEN_SPECIAL_TOKENS)
    return vocab, tuple(merges)


def build_qwen_tokenizer(*, chat_template: str | None = None, model_max_length: int = 2048) -> Qwen2Tokenizer:
    """A Qwen2Tokenizer over the tiny vocab (the class of Qwen2/3/-VL, Z-Image and Qwen-Image tokenizers)."""
    vocab, merges = _qwen_vocab_and_merges()
    tokenizer = Qwen2Tokenizer(
        vocab=dict(vocab),
        # The annotation says `list[str]`, but the `tokenizers` BPE it feeds wants (left, right) pairs.
        merges=list(merges),  # type: ignore[arg-type]
        eos_token="<|im_end|>" if chat_template else "<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=model_max_length,
        # Qwen-VL processors read these names off the tokenizer.
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS)})
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """The id of one token that must be in the vocabulary (model configs need plain ints)."""
    index = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(index, int) or (index == tokenizer.unk_token_id and token != tokenizer.unk_token):
        raise KeyError(f"{token!r} is not in the tokenizer's vocabulary")
    return index


def qwen_vocab_size() -> int:
    """Number of ids the Qwen-style tokenizer can emit; text encoders' embedding tables use this size."""
    vocab, _ = _qwen_vocab_and_merges()
    return len(vocab)


@cache
def _clip_vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """Vocab and merges for a CLIP-style BPE: lower-cased words whose last symbol carries `</w>`."""
    tokenizer = CLIPTokenizer()  # only borrowed for its normalizer and pre-tokenizer
    backend = tokenizer.backend_tokenizer
    normalized = backend.normalizer.normalize_str(_CORPUS) if backend.normalizer else _CORPUS
    pieces = [piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)]
    words: Counter[tuple[str, ...]] = Counter(
        (*piece[:-1], piece[-1] + _CLIP_EOW) for piece in pieces if piece
    )
    merges = learn_merges(words, _NUM_MERGES)
    alphabet = byte_alphabet()
    # Like the real CLIP vocab: every byte both word-internal and word-final, then merges, then specials.
    vocab = _vocab_from([*alphabet, *(c + _CLIP_EOW for c in alphabet)], merges, (_CLIP_BOS, _CLIP_EOS))
    return vocab, tuple(merges)


def build_clip_tokenizer() -> CLIPTokenizer:
    """A CLIPTokenizer (what Stable Diffusion's `tokenizer` component is) over the tiny vocab."""
    vocab, merges = _clip_vocab_and_merges()
    return CLIPTokenizer(
        vocab=dict(vocab),
        merges=list(merges),  # type: ignore[arg-type]  # pairs, as for build_qwen_tokenizer
        model_max_length=CLIP_MAX_LENGTH,
    )


def clip_vocab_size() -> int:
    """Number of ids the CLIP-style tokenizer can emit."""
    vocab, _ = _clip_vocab_and_merges()
    return len(vocab)


def chatml_template(*, vision: bool) -> str:
    """A ChatML chat template in the style of Qwen3's.

    It accepts string content or a list of content parts; with `vision`, `{"type": "image"}` parts become
    the Qwen-VL placeholder `<|vision_start|><|image_pad|><|vision_end|>` that the processor expands to one
    pad per image patch. `enable_thinking=False` appends an empty think block like Qwen3 does, because
    Z-Image and Flux2-Klein pass that flag when they encode prompts.
    """
    image_part = (
        "{%- elif part['type'] == 'image' or part['type'] == 'image_url' %}"
        "{{- '<|vision_start|><|image_pad|><|vision_end|>' }}"
        if vision
        else ""
    )
    return (
        "{%- for message in messages %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' }}"
        "{%- if message['content'] is string %}"
        "{{- message['content'] }}"
        "{%- else %}"
        "{%- for part in message['content'] %}"
        "{%- if part['type'] == 'text' %}"
        "{{- part['text'] }}"
        f"{image_part}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- endif %}"
        "{{- '<|im_end|>\\n' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}"
        "{{- '<|im_start|>assistant\\n' }}"
        "{%- if enable_thinking is defined and enable_thinking is false %}"
        "{{- '<think>\\n\\n</think>\\n\\n' }}"
        "{%- endif %}"
        "{%- endif %}"
    )
