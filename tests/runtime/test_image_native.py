"""`POST /image` over real HTTP on tiny pipelines loaded through `from_pretrained`."""

from __future__ import annotations

import httpx
import pytest

from conftest import RuntimeServer
from helpers import decode_image, kinds, post_events


def generate(server: RuntimeServer, **body: object) -> httpx.Response:
    return httpx.post(
        f"{server.url}/image", json={"model_id": server.model_id, "prompt": "a red fox", **body}, timeout=60
    )


def test_streaming_events_arrive_in_order(zimage_runtime: RuntimeServer) -> None:
    events = post_events(
        f"{zimage_runtime.url}/image",
        {"model_id": "tiny-zimage", "prompt": "a red fox", "num_inference_steps": 3},
    )
    sequence = kinds(events)
    assert sequence[:3] == ["received", "queued", "allocated"]
    assert sequence[3:6] == ["progress"] * 3
    assert sequence[6:] == ["completed", "done"]
    steps = [e.payload for e in events if e.event.value == "progress"]
    assert [(p["step"], p["total_steps"]) for p in steps] == [(1, 3), (2, 3), (3, 3)]
    assert steps[-1]["progress"] == 1.0
    assert all(isinstance(p["timestep"], float) for p in steps)
    completed = events[-2].payload
    assert completed["model_id"] == "tiny-zimage" and len(completed["images"]) == 1
    assert decode_image(completed["images"][0]).format == "PNG"


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(zimage_runtime: RuntimeServer) -> None:
    first = generate(zimage_runtime, seed=7).json()
    again = generate(zimage_runtime, seed=7).json()
    other = generate(zimage_runtime, seed=8).json()
    assert first["images"] == again["images"]
    assert first["images"] != other["images"]
    assert first["seeds"] == [7]


def test_image_i_of_a_batch_is_the_image_of_seed_plus_i(sd_runtime: RuntimeServer) -> None:
    batch = generate(
        sd_runtime, seed=100, num_images_per_prompt=2, num_inference_steps=2, width=32, height=32
    )
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert body["seeds"] == [100, 101]
    assert len(body["images"]) == 2 and body["images"][0] != body["images"][1]
    alone = generate(sd_runtime, seed=101, num_inference_steps=2, width=32, height=32).json()
    assert decode_image(alone["images"][0]).size == decode_image(body["images"][1]).size


def test_a_list_of_prompts_gives_one_image_each(zimage_runtime: RuntimeServer) -> None:
    body = generate(zimage_runtime, prompt=["a fox", "a cat", "a heron"], seed=1).json()
    assert len(body["images"]) == 3
    assert body["seeds"] == [1, 2, 3]


def test_model_defaults_apply_when_the_request_omits_a_field(zimage_runtime: RuntimeServer) -> None:
    events = post_events(f"{zimage_runtime.url}/image", {"model_id": "tiny-zimage", "prompt": "a fox"})
    progress = [e for e in events if e.event.value == "progress"]
    assert len(progress) == 3, "the runtime's default is 3 steps"
    completed = events[-2].payload
    assert completed["parameters"]["guidance_scale"] == 0.0
    assert (completed["width"], completed["height"]) == (32, 32)
    overridden = generate(zimage_runtime, num_inference_steps=2, width=64, height=48).json()
    assert overridden["parameters"]["num_inference_steps"] == 2
    assert decode_image(overridden["images"][0]).size == (64, 48)


def test_sizes_round_to_the_pipelines_multiple_and_the_response_says_so(
    zimage_runtime: RuntimeServer,
) -> None:
    multiple = httpx.get(f"{zimage_runtime.url}/info").json()["size_multiple"]
    assert multiple == 16
    body = generate(zimage_runtime, width=70, height=1).json()
    assert (body["width"], body["height"]) == (64, 16)
    assert decode_image(body["images"][0]).size == (64, 16)


def test_extra_fields_in_the_pipeline_signature_pass_through(zimage_runtime: RuntimeServer) -> None:
    plain = generate(zimage_runtime, seed=3).json()
    truncated = generate(zimage_runtime, seed=3, max_sequence_length=4).json()
    assert truncated["parameters"]["max_sequence_length"] == 4
    assert plain["images"] != truncated["images"], "a shorter prompt encoding changes the image"


def test_jpeg_output(zimage_runtime: RuntimeServer) -> None:
    body = generate(zimage_runtime, output_format="jpeg").json()
    assert decode_image(body["images"][0]).format == "JPEG"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"width": -5}, "width", "greater than or equal to 1"),
        ({"height": 100000}, "height", "exceeds the largest side, 4096"),
        ({"width": 8192}, "width", "exceeds the largest side"),
        ({"num_inference_steps": 0}, "num_inference_steps", "greater than or equal to 1"),
        ({"num_inference_steps": 500}, "num_inference_steps", "exceeds the limit"),
        ({"num_images_per_prompt": 9, "prompt": ["a", "b"]}, "num_images_per_prompt", "at most 16"),
        ({"width": "wide"}, "width", "valid integer"),
        ({"prompt": []}, "prompt", "at least 1"),
        ({"negative_prompt": ["x", "y"]}, "negative_prompt", "2 entries for 1 prompts"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
    ],
)
def test_bad_fields_get_422_naming_the_field(
    zimage_runtime: RuntimeServer, body: dict[str, object], field: str, reason: str
) -> None:
    response = generate(zimage_runtime, **body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["loc"][:2] == ["body", field] and reason in d["msg"] for d in detail), detail


def test_an_unknown_field_lists_the_accepted_ones(zimage_runtime: RuntimeServer) -> None:
    response = generate(zimage_runtime, strength=0.5)
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "strength"]
    assert "ZImagePipeline" in detail["msg"]
    assert "num_inference_steps" in detail["msg"] and "max_sequence_length" in detail["msg"]


def test_a_field_this_pipeline_does_not_take_is_refused(sd_runtime: RuntimeServer) -> None:
    response = generate(sd_runtime, true_cfg_scale=4.0)
    assert response.status_code == 422
    assert "StableDiffusionPipeline" in response.json()["detail"][0]["msg"]


def test_another_model_is_404(zimage_runtime: RuntimeServer) -> None:
    response = httpx.post(f"{zimage_runtime.url}/image", json={"model_id": "z-image-turbo", "prompt": "x"})
    assert response.status_code == 404
    assert "tiny-zimage" in response.json()["detail"]


def test_chat_on_an_image_model_is_404(zimage_runtime: RuntimeServer) -> None:
    response = httpx.post(
        f"{zimage_runtime.url}/chat",
        json={"model": "tiny-zimage", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 404
    assert "does not serve chat" in response.json()["detail"]


def test_stable_diffusion_without_defaults_uses_the_pipelines_own(sd_runtime: RuntimeServer) -> None:
    body = generate(sd_runtime, num_inference_steps=2).json()
    assert body["parameters"] == {"num_inference_steps": 2}
    assert body["width"] == decode_image(body["images"][0]).size[0]
