"""The OpenAI surface, driven by the official `openai` client over real HTTP."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest
from PIL import Image

from conftest import RuntimeServer


def client_for(server: RuntimeServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


def test_models_lists_this_model(zimage_runtime: RuntimeServer) -> None:
    models = client_for(zimage_runtime).models.list()
    assert [m.id for m in models.data] == ["tiny-zimage"]
    assert models.data[0].owned_by == "alloy"


def test_images_generate_n_with_size_and_extra_fields(zimage_runtime: RuntimeServer) -> None:
    result = client_for(zimage_runtime).images.generate(
        model="tiny-zimage",
        prompt="a red fox",
        n=2,
        size="48x32",
        response_format="b64_json",
        extra_body={"seed": 11, "num_inference_steps": 2, "negative_prompt": "blurry", "guidance_scale": 1.5},
    )
    assert len(result.data) == 2
    sizes = {Image.open(io.BytesIO(base64.b64decode(d.b64_json or ""))).size for d in result.data}
    assert sizes == {(48, 32)}
    assert result.size == "48x32"


def test_openai_and_native_give_the_same_image_for_the_same_seed(zimage_runtime: RuntimeServer) -> None:
    via_openai = client_for(zimage_runtime).images.generate(
        model="tiny-zimage", prompt="a heron", size="32x32", extra_body={"seed": 5}
    )
    native = httpx.post(
        f"{zimage_runtime.url}/image",
        json={"model_id": "tiny-zimage", "prompt": "a heron", "width": 32, "height": 32, "seed": 5},
    ).json()
    assert via_openai.data[0].b64_json == native["images"][0]


def test_images_errors_are_openai_shaped(zimage_runtime: RuntimeServer) -> None:
    client = client_for(zimage_runtime)
    with pytest.raises(openai.UnprocessableEntityError) as bad_size:
        client.images.generate(model="tiny-zimage", prompt="x", size="huge")  # type: ignore[arg-type]
    assert bad_size.value.body["param"] == "size"  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError) as unknown:
        client.images.generate(model="tiny-zimage", prompt="x", extra_body={"strength": 0.3})
    assert "accepted:" in unknown.value.message and unknown.value.body["param"] == "strength"  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError, match="b64_json"):
        client.images.generate(model="tiny-zimage", prompt="x", response_format="url")
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="dall-e-3", prompt="x")


def test_chat_completion(chat_runtime: RuntimeServer) -> None:
    completion = client_for(chat_runtime).chat.completions.create(
        model="tiny-chat",
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        max_completion_tokens=6,
        temperature=0,
    )
    [choice] = completion.choices
    assert completion.object == "chat.completion"
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None and completion.usage.completion_tokens <= 6
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_streaming_chat_completion_matches_the_whole_one(chat_runtime: RuntimeServer) -> None:
    client = client_for(chat_runtime)
    request = {
        "model": "tiny-chat",
        "messages": [{"role": "user", "content": "Tell me more"}],
        "max_tokens": 10,
        "temperature": 0,
    }
    chunks = list(
        client.chat.completions.create(
            **request,
            stream=True,  # type: ignore[call-overload]
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    whole = client.chat.completions.create(**request)  # type: ignore[call-overload]
    assert text == whole.choices[0].message.content


def test_vision_chat_completion_with_an_image_url(vision_runtime: RuntimeServer) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 120, 255)).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    completion = client_for(vision_runtime).chat.completions.create(
        model="tiny-vision",
        max_tokens=4,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What colour?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content is not None


def test_chat_options_it_cannot_honour_are_refused(chat_runtime: RuntimeServer) -> None:
    client = client_for(chat_runtime)
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.UnprocessableEntityError, match="n=1"):
        client.chat.completions.create(model="tiny-chat", messages=messages, n=2)  # type: ignore[arg-type]
    with pytest.raises(openai.UnprocessableEntityError, match="repetition_penalty"):
        client.chat.completions.create(
            model="tiny-chat",
            messages=messages,  # type: ignore[arg-type]
            presence_penalty=0.5,
        )


def test_routes_the_model_does_not_serve_are_404(
    chat_runtime: RuntimeServer, zimage_runtime: RuntimeServer
) -> None:
    with pytest.raises(openai.NotFoundError, match="does not serve image generations"):
        client_for(chat_runtime).images.generate(model="tiny-chat", prompt="x")
    with pytest.raises(openai.NotFoundError, match="does not serve chat"):
        client_for(zimage_runtime).chat.completions.create(
            model="tiny-zimage", messages=[{"role": "user", "content": "x"}]
        )
