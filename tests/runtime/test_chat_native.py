"""`POST /chat` over real HTTP on a tiny causal LM and a tiny vision-language model."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from conftest import RuntimeServer
from helpers import kinds, post_events


def chat(server: RuntimeServer, content: object = "Hello there", **body: object) -> httpx.Response:
    payload = {"model": server.model_id, "messages": [{"role": "user", "content": content}], **body}
    return httpx.post(f"{server.url}/chat", json=payload, timeout=60)


def test_reply_has_seed_000_shape(chat_runtime: RuntimeServer) -> None:
    body = chat(chat_runtime, temperature=0).json()
    assert body["model"] == "tiny-chat"
    assert body["done"] is True
    assert body["message"]["role"] == "assistant"
    assert isinstance(body["message"]["content"], str) and body["message"]["content"]
    assert body["created_at"].endswith("Z")
    assert body["completion_tokens"] <= 16, "the model default caps the reply"
    assert body["prompt_tokens"] > 0


def test_streamed_deltas_add_up_to_the_reply(chat_runtime: RuntimeServer) -> None:
    events = post_events(
        f"{chat_runtime.url}/chat",
        {
            "model": "tiny-chat",
            "messages": [{"role": "user", "content": "Tell me a story"}],
            "temperature": 0,
            "max_tokens": 12,
        },
    )
    sequence = kinds(events)
    assert sequence[:3] == ["received", "queued", "allocated"]
    assert sequence[-2:] == ["completed", "done"]
    assert set(sequence[3:-2]) == {"delta"}
    streamed = "".join(e.payload["content"] for e in events if e.event.value == "delta")
    assert streamed == events[-2].payload["message"]["content"]
    not_streamed = chat(chat_runtime, "Tell me a story", temperature=0, max_tokens=12).json()
    assert not_streamed["message"]["content"] == streamed, "greedy decoding is deterministic"


def test_seeded_sampling_is_reproducible(chat_runtime: RuntimeServer) -> None:
    replies = {
        chat(chat_runtime, temperature=1.0, seed=5, max_tokens=12).json()["message"]["content"]
        for _ in range(2)
    }
    assert len(replies) == 1


def test_max_tokens_ends_with_length(chat_runtime: RuntimeServer) -> None:
    body = chat(chat_runtime, temperature=0, max_tokens=3).json()
    assert body["completion_tokens"] <= 3
    if body["completion_tokens"] == 3:
        assert body["done_reason"] == "length"


def test_stop_string_cuts_the_reply_and_is_not_streamed(chat_runtime: RuntimeServer) -> None:
    full = chat(chat_runtime, temperature=0, max_tokens=16).json()["message"]["content"]
    words = full.split()
    assert len(words) >= 2, full
    stop = words[1]
    events = post_events(
        f"{chat_runtime.url}/chat",
        {
            "model": "tiny-chat",
            "messages": [{"role": "user", "content": "Hello there"}],
            "temperature": 0,
            "max_tokens": 16,
            "stop": [stop],
        },
    )
    streamed = "".join(e.payload["content"] for e in events if e.event.value == "delta")
    assert streamed == full[: full.index(stop)]
    assert events[-2].payload["done_reason"] == "stop"


def test_system_and_multi_turn_messages(chat_runtime: RuntimeServer) -> None:
    response = httpx.post(
        f"{chat_runtime.url}/chat",
        json={
            "model": "tiny-chat",
            "max_tokens": 4,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Again?"},
            ],
        },
    )
    assert response.status_code == 200, response.text
    single = chat(chat_runtime, "Again?", max_tokens=4).json()
    assert response.json()["prompt_tokens"] > single["prompt_tokens"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": []}, "messages"),
        ({"temperature": 3}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
def test_bad_chat_fields_get_422(chat_runtime: RuntimeServer, body: dict[str, object], field: str) -> None:
    payload = {"model": "tiny-chat", "messages": [{"role": "user", "content": "x"}], **body}
    response = httpx.post(f"{chat_runtime.url}/chat", json=payload)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]


def test_a_text_model_refuses_images(chat_runtime: RuntimeServer) -> None:
    parts = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": png_data_url()}},
    ]
    response = chat(chat_runtime, parts)
    assert response.status_code == 422
    assert "does not accept images" in response.json()["detail"][0]["msg"]


def test_a_prompt_longer_than_the_context_is_422(chat_runtime: RuntimeServer) -> None:
    response = chat(chat_runtime, "word " * 5000)
    assert response.status_code == 422
    assert "context holds" in response.json()["detail"][0]["msg"]


def png_data_url(color: tuple[int, int, int] = (200, 30, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), color).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_vision_chat_reads_an_image_from_a_data_url(vision_runtime: RuntimeServer) -> None:
    parts = [
        {"type": "image_url", "image_url": {"url": png_data_url()}},
        {"type": "text", "text": "Describe it"},
    ]
    with_image = chat(vision_runtime, parts, temperature=0)
    assert with_image.status_code == 200, with_image.text
    text_only = chat(vision_runtime, [{"type": "text", "text": "Describe it"}], temperature=0).json()
    assert with_image.json()["prompt_tokens"] > text_only["prompt_tokens"], "the image adds its tokens"


def test_vision_chat_fetches_http_images(
    vision_runtime: RuntimeServer, zimage_runtime: RuntimeServer
) -> None:
    """An http URL is fetched; here the image comes from the image runtime's own output."""
    generated = httpx.post(
        f"{zimage_runtime.url}/image", json={"model_id": "tiny-zimage", "prompt": "x"}
    ).json()
    server = ImageServer(base64.b64decode(generated["images"][0]))
    with server:
        parts = [{"type": "image_url", "image_url": {"url": server.url}}, {"type": "text", "text": "What?"}]
        response = chat(vision_runtime, parts, temperature=0)
    assert response.status_code == 200, response.text
    assert server.hits == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("data:image/png;base64,%%%", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"not an image").decode(), "not a readable image"),
        ("ftp://example.com/x.png", "data: URL or an http(s) URL"),
        ("http://127.0.0.1:9/nothing.png", "could not fetch"),
    ],
)
def test_bad_images_are_422_naming_the_part(vision_runtime: RuntimeServer, url: str, reason: str) -> None:
    parts = [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": url}}]
    response = chat(vision_runtime, parts)
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "messages", 0, "content", 1, "image_url", "url"]
    assert reason in detail["msg"]


class ImageServer:
    """Serves one PNG over HTTP on a free port, counting fetches."""

    def __init__(self, data: bytes) -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.hits = 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/image.png"

    def __enter__(self) -> ImageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
