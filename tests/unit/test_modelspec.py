"""The model spec: durations, source forms, bounds — what a user writes in alloy.yaml or an AlloyModel."""

import pytest
from pydantic import ValidationError

from alloy.catalog import default_catalog
from alloy.modelspec import ModelSpec, Scaling, Source, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300s", 300),
        ("5m", 300),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("42", 42),
        (12, 12),
        (0.5, 0.5),
    ],
)
def test_durations_accept_seconds_and_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "m5", "-3s", -1, True, "", "1h 30m"])
def test_durations_reject_what_is_not_one(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_spec_reads_camel_case_and_defaults_the_rest() -> None:
    spec = ModelSpec.model_validate(
        {
            "modelId": "my-model",
            "task": "text-to-image",
            "source": {"huggingface": {"repo": "org/name"}},
            "accelerator": {"vendor": "amd", "memoryGiB": 48},
            "scaling": {"keepAlive": "10m", "maxReplicas": 3},
        }
    )
    assert spec.scaling.keep_alive == 600
    assert spec.accelerator.memory_gib == 48
    assert spec.source.huggingface is not None and spec.source.huggingface.revision == "main"
    assert spec.model_dump(by_alias=True)["accelerator"]["memoryGiB"] == 48


def test_source_needs_exactly_one_kind() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Source.model_validate({"path": "/m", "builtin": "zimage"})
    with pytest.raises(ValidationError, match="exactly one"):
        Source.model_validate({})


def test_min_replicas_cannot_exceed_max() -> None:
    with pytest.raises(ValidationError, match="minReplicas"):
        Scaling(min_replicas=3, max_replicas=2)


def test_unknown_spec_fields_are_typos_not_ignored() -> None:
    with pytest.raises(ValidationError, match="keepalive"):
        ModelSpec.model_validate({"modelId": "m", "task": "chat", "source": {"path": "/m"}, "keepalive": 3})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("builtin:zimage", {"builtin": "zimage"}),
        ("/models/x", {"path": "/models/x"}),
        ("./x", {"path": "./x"}),
        (
            "Tongyi-MAI/Z-Image-Turbo",
            {"huggingface": {"repo": "Tongyi-MAI/Z-Image-Turbo", "revision": "main"}},
        ),
        ("org/name@v2", {"huggingface": {"repo": "org/name", "revision": "v2"}}),
    ],
)
def test_cli_sources(text: str, expected: dict[str, object]) -> None:
    assert (
        Source.parse_cli(text).model_dump(exclude_none=True, exclude={"huggingface": {"token_secret_ref"}})
        == expected
    )


def test_catalog_carries_the_recommended_defaults() -> None:
    catalog = default_catalog()
    assert {
        "qwen-image",
        "z-image-turbo",
        "flux2-dev",
        "flux2-dev-turbo",
        "alloy-tiny",
        "alloy-tiny-chat",
    } <= set(catalog)
    assert catalog["z-image-turbo"].defaults["guidance_scale"] == 0.0
    assert catalog["qwen-image"].defaults["true_cfg_scale"] == 4.0
    assert catalog["qwen-image"].defaults["negative_prompt"] == " "
    assert catalog["flux2-dev"].defaults["guidance_scale"] == 4.0
    assert catalog["flux2-dev-turbo"].adapters, "the turbo model is a LoRA on flux2-dev"
