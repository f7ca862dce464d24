"""Images that arrive inside chat messages: `data:` URLs or http(s) URLs, fetched with a size limit."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence

import httpx
from PIL import Image, UnidentifiedImageError

from alloy.runtime.errors import InvalidRequest

FETCH_TIMEOUT_S = 15.0


async def load_image(url: str, *, field: Sequence[str | int], max_bytes: int) -> Image.Image:
    """Decode or download one image; 422 naming `field` when it cannot be had or is not an image."""
    if url.startswith("data:"):
        data = _decode_data_url(url, field=field)
    elif url.startswith(("http://", "https://")):
        data = await _download(url, field=field, max_bytes=max_bytes)
    else:
        raise InvalidRequest(field, "an image URL must be a data: URL or an http(s) URL")
    if len(data) > max_bytes:
        raise InvalidRequest(field, f"the image is {len(data)} bytes; the limit is {max_bytes}")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise InvalidRequest(field, f"not a readable image: {error}") from None
    return image.convert("RGB")


def _decode_data_url(url: str, *, field: Sequence[str | int]) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidRequest(field, "a data: URL must be base64-encoded (data:image/png;base64,...)")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(field, "the data: URL is not valid base64") from None


async def _download(url: str, *, field: Sequence[str | int], max_bytes: int) -> bytes:
    try:
        async with (
            httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise InvalidRequest(field, f"fetching the image gave HTTP {response.status_code}")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidRequest(field, f"the image is larger than the limit of {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as error:
        raise InvalidRequest(field, f"could not fetch the image: {type(error).__name__}") from None
