"""Chat images: what the runtime refuses to fetch or decode, and that it says why (as a 422)."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from PIL import Image

from alloy.runtime.errors import InvalidRequest
from alloy.runtime.settings import ImageFetch
from alloy.runtime.tasks.image_inputs import ImageLimits, load_image

FIELD = ["messages", 0, "content", 1, "image_url", "url"]


def load(url: str, *, fetch: ImageFetch = "public", max_pixels: int = 40_000_000) -> Image.Image:
    limits = ImageLimits(max_bytes=2**20, max_pixels=max_pixels, fetch=fetch)
    return asyncio.run(load_image(url, field=FIELD, limits=limits))


def png_url(size: tuple[int, int], mode: str = "RGB") -> str:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.png",  # this machine: the router, other runtimes
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.7/x.png",  # cluster services
        "http://[::1]/x.png",
        "http://localhost/x.png",
    ],
)
def test_by_default_images_are_not_fetched_from_private_hosts(url: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        load(url)
    assert "not a public host" in refused.value.message
    assert refused.value.field == "messages.0.content.1.image_url.url"


def test_fetching_can_be_turned_off() -> None:
    with pytest.raises(InvalidRequest) as refused:
        load("https://example.com/cat.png", fetch="off")
    assert "data: URLs only" in refused.value.message


@pytest.mark.parametrize("side", [8_000, 20_000])
def test_an_image_with_too_many_pixels_is_refused_before_it_is_decoded(side: int) -> None:
    bomb = png_url((side, side), mode="1")  # a few KB of PNG, tens or hundreds of M pixels decoded
    assert len(bomb) < 200_000
    with pytest.raises(InvalidRequest) as refused:
        load(bomb)
    assert f"{side}x{side}" in refused.value.message or "decompression bomb" in refused.value.message


def test_a_data_url_over_the_byte_limit_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidRequest) as refused:
        load("data:image/png;base64," + "A" * (3 * 2**20))
    assert "larger than the limit" in refused.value.message


def test_a_small_image_loads_as_rgb() -> None:
    image = load(png_url((8, 6), mode="L"))
    assert (image.size, image.mode) == ((8, 6), "RGB")
