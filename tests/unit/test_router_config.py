"""alloy.yaml: the catalog under configured models, durations, and keys kept out of the file."""

from pathlib import Path

import pytest

from alloy.router.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alloy.yaml"
    path.write_text(text)
    return path


def test_no_file_serves_the_catalog() -> None:
    config = load_config(None)
    assert {"qwen-image", "z-image-turbo", "alloy-tiny"} <= set(config.model_specs())
    assert (config.host, config.port, config.allocation_timeout) == ("127.0.0.1", 8000, 300)


def test_configured_models_override_catalog_entries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
allocationTimeout: 2m
models:
  - modelId: z-image-turbo
    task: text-to-image
    source: {path: /models/zit}
    scaling: {keepAlive: 1h}
""",
    )
    config = load_config(path, port=9000)
    spec = config.model_specs()["z-image-turbo"]
    assert spec.source.path == "/models/zit" and spec.scaling.keep_alive == 3600
    assert config.allocation_timeout == 120 and config.port == 9000


def test_catalog_off(tmp_path: Path) -> None:
    path = write(tmp_path, "catalog: false\nmodels: []\n")
    assert load_config(path).model_specs() == {}


def test_keys_from_flags_environment_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text("k2\n\nk3\n")
    monkeypatch.setenv("ALLOY_API_KEYS", "k4, k5")
    path = write(tmp_path, f"apiKeysFile: {keys}\n")
    assert load_config(path, api_keys=["k1"]).api_keys == ["k1", "k4", "k5", "k2", "k3"]


def test_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keep API keys out of the file"):
        load_config(write(tmp_path, "apiKeys: [secret]\n"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("models: [{modelId: x, task: chat}]", "source"),
        ("allocationTimeout: soon", "duration"),
        ("prot: 8000", "prot"),
        ("- just a list", "mapping"),
    ],
)
def test_bad_files_say_where_and_why(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_config(write(tmp_path, text))
