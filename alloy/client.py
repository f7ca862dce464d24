"""`AlloyClient`: the native API from Python, as in seed 000.

client = AlloyClient("http://127.0.0.1:8000")           # or ALLOY_URL; api_key= or ALLOY_API_KEY
response = client.image(model_id="z-image-turbo", prompt="A red fox")
png = base64.b64decode(response["images"][0])
for event in client.image(model_id="z-image-turbo", prompt="A red fox", stream=True):
    print(event["event"], event.get("payload"))
reply = client.chat(model="qwen3-8b", messages=[{"role": "user", "content": "Hello"}])
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Literal, overload

import httpx
from httpx_sse import connect_sse

DEFAULT_URL = "http://127.0.0.1:8000"
Json = dict[str, Any]


class AlloyError(Exception):
    """The server answered with an error; `status` and `detail` are what it said."""

    def __init__(self, status: int, detail: object) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


class AlloyClient:
    def __init__(
        self, base_url: str | None = None, *, api_key: str | None = None, timeout: float = 900.0
    ) -> None:
        url = base_url or os.environ.get("ALLOY_URL", DEFAULT_URL)
        key = api_key or os.environ.get("ALLOY_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout)

    def __enter__(self) -> AlloyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @overload
    def image(
        self, *, model_id: str, prompt: str | list[str], stream: Literal[False] = False, **fields: Any
    ) -> Json: ...

    @overload
    def image(
        self, *, model_id: str, prompt: str | list[str], stream: Literal[True], **fields: Any
    ) -> Iterator[Json]: ...

    def image(
        self, *, model_id: str, prompt: str | list[str], stream: bool = False, **fields: Any
    ) -> Json | Iterator[Json]:
        """Generate images; with `stream=True`, an iterator of events (`received` … `done`)."""
        body = {"model_id": model_id, "prompt": prompt, **fields}
        return self._events("/image", body) if stream else self._post("/image", body)

    @overload
    def chat(
        self, *, model: str, messages: list[Json], stream: Literal[False] = False, **fields: Any
    ) -> Json: ...

    @overload
    def chat(
        self, *, model: str, messages: list[Json], stream: Literal[True], **fields: Any
    ) -> Iterator[Json]: ...

    def chat(
        self, *, model: str, messages: list[Json], stream: bool = False, **fields: Any
    ) -> Json | Iterator[Json]:
        """Chat; with `stream=True`, an iterator of events whose `delta` payloads carry the text."""
        body = {"model": model, "messages": messages, **fields}
        return self._events("/chat", body) if stream else self._post("/chat", body)

    def models(self) -> Json:
        """`GET /models`: every model, grouped by output modality."""
        return self._get("/models")

    def ps(self) -> Json:
        """`GET /ps`: resident models and devices."""
        return self._get("/ps")

    def _get(self, path: str) -> Json:
        return _json(self._http.get(path))

    def _post(self, path: str, body: Json) -> Json:
        return _json(self._http.post(path, json={**body, "stream": False}))

    def _events(self, path: str, body: Json) -> Iterator[Json]:
        with connect_sse(self._http, "POST", path, json={**body, "stream": True}) as source:
            if source.response.status_code != 200:
                source.response.read()
                _json(source.response)
            for sse in source.iter_sse():
                yield sse.json()


def _json(response: httpx.Response) -> Json:
    if response.is_error:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise AlloyError(response.status_code, detail)
    body: Json = response.json()
    return body
