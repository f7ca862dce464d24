"""Images that arrive inside chat messages: `data:` URLs, or http(s) URLs fetched by the runtime.

A fetch runs from the runtime's network position, so by default (`image_fetch: public`) it refuses
hosts that resolve to loopback, private, link-local or other non-global addresses, at every redirect
(SSRF: cloud metadata, cluster services, the other runtimes). `any` allows them (a trusted network),
`off` accepts data: URLs only. Bytes, pixels and the whole fetch's time are bounded, so one request
cannot exhaust memory or hold a slot for ever.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import ipaddress
import socket
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from alloy.runtime.errors import InvalidRequest
from alloy.runtime.settings import ImageFetch

FETCH_TIMEOUT_S = 15.0  # one fetch, redirects included
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    fetch: ImageFetch = "public"


async def load_image(url: str, *, field: Sequence[str | int], limits: ImageLimits) -> Image.Image:
    """Decode or download one image; 422 naming `field` when it cannot be had or is not an image."""
    if url.startswith("data:"):
        data = _decode_data_url(url, field=field, max_bytes=limits.max_bytes)
    elif url.startswith(("http://", "https://")) and limits.fetch != "off":
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_S):
                data = await _download(url, field=field, limits=limits)
        except TimeoutError:
            raise InvalidRequest(field, f"fetching the image took longer than {FETCH_TIMEOUT_S:g}s") from None
    elif limits.fetch == "off":
        raise InvalidRequest(field, "this runtime accepts images as data: URLs only (image_fetch is off)")
    else:
        raise InvalidRequest(field, "an image URL must be a data: URL or an http(s) URL")
    return _decode_image(data, field=field, limits=limits)


def _decode_image(data: bytes, *, field: Sequence[str | int], limits: ImageLimits) -> Image.Image:
    if len(data) > limits.max_bytes:
        raise InvalidRequest(field, f"the image is {len(data)} bytes; the limit is {limits.max_bytes}")
    try:
        with warnings.catch_warnings():  # our own pixel limit, below, is the one that counts
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only: the size is known before decoding
        width, height = image.size
        if width * height > limits.max_pixels:
            raise InvalidRequest(
                field, f"the image is {width}x{height}; the limit is {limits.max_pixels} pixels"
            )
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise InvalidRequest(field, f"not a readable image: {error}") from None
    return image.convert("RGB")


def _decode_data_url(url: str, *, field: Sequence[str | int], max_bytes: int) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidRequest(field, "a data: URL must be base64-encoded (data:image/png;base64,...)")
    if len(payload) * 3 // 4 > max_bytes:  # refuse before decoding, not after
        raise InvalidRequest(field, f"the image is larger than the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(field, "the data: URL is not valid base64") from None


async def _download(url: str, *, field: Sequence[str | int], limits: ImageLimits) -> bytes:
    """GET the image, following redirects by hand so that every hop's host is checked."""
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            if limits.fetch == "public":
                await _require_public_host(url, field=field)
            try:
                async with client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise InvalidRequest(field, f"fetching the image gave HTTP {response.status_code}")
                    return await _read_bounded(response, field=field, max_bytes=limits.max_bytes)
            except httpx.HTTPError as error:
                raise InvalidRequest(field, f"could not fetch the image: {type(error).__name__}") from None
    raise InvalidRequest(field, f"fetching the image took more than {MAX_REDIRECTS} redirects")


async def _read_bounded(response: httpx.Response, *, field: Sequence[str | int], max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise InvalidRequest(field, f"the image is larger than the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _require_public_host(url: str, *, field: Sequence[str | int]) -> None:
    """Refuse a host unless every address it resolves to is globally routable. The message is the
    same whatever the reason, so the fetch cannot be used to map the runtime's network."""
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    except (OSError, ValueError):
        addresses = set()
    if not addresses or not all(address.is_global for address in addresses):
        raise InvalidRequest(field, f"images are not fetched from {host!r}: not a public host")
