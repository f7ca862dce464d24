"""Dockerfile.runtime and Dockerfile.operator, checked by reading them (no Docker engine runs here):
every file they copy is in the build context, every command they and the chart run exists in the
package, the dependency step works on pyproject.toml alone, and the images fit the chart."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from alloy.cli import build_parser
from alloy.operator.config import OperatorConfig
from alloy.operator.manifests import deployment_for
from alloy.resource import AlloyModel

from .conftest import ROOT, Render

Template = Callable[..., Render]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VALUES = yaml.safe_load((ROOT / "charts" / "alloy" / "values.yaml").read_text())
DOCKERFILES = ["Dockerfile.runtime", "Dockerfile.operator"]
ML_LIBRARIES = {"torch", "diffusers", "transformers", "accelerate"}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(name: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    lines: list[Instruction] = []
    pending = ""
    for raw in (ROOT / name).read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        lines.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return lines


def final_stage(name: str) -> list[Instruction]:
    steps = instructions(name)
    last_from = max(i for i, step in enumerate(steps) if step.keyword == "FROM")
    return steps[last_from:]


def exec_form(name: str, keyword: str) -> list[str]:
    [step] = [s for s in final_stage(name) if s.keyword == keyword]
    words: list[str] = yaml.safe_load(step.arguments)  # the JSON (exec) form
    assert isinstance(words, list), f"{name}: {keyword} should use the exec form"
    return words


def in_context(path: str) -> bool:
    """Whether .dockerignore lets `path` into the build context (the last matching pattern decides)."""
    allowed = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        parts = Path(path).parts
        if any(fnmatch.fnmatch("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1)):
            allowed = negated
    return allowed


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_copied_path_is_in_the_build_context(name: str) -> None:
    stages = {s.arguments.split(" AS ")[-1] for s in instructions(name) if " AS " in s.arguments}
    for step in instructions(name):
        if step.keyword != "COPY":
            continue
        words = step.arguments.split()
        if words[0].startswith("--from="):
            assert words[0].removeprefix("--from=") in stages, f"{name}: {step.arguments}"
            continue
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"{name} copies {source}, which is not in the repository"
            assert in_context(source), f"{name} copies {source}, which .dockerignore leaves out"
    assert not in_context("tests/conftest.py") and not in_context(".venv/bin/python")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dependencies_are_installed_before_the_source_is_copied(name: str) -> None:
    steps = [(s.keyword, s.arguments) for s in instructions(name)]
    pyproject = steps.index(("COPY", "pyproject.toml ./"))
    install = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "pip install -r" in a)
    source = next(i for i, (k, a) in enumerate(steps) if k == "COPY" and a.startswith("alloy/"))
    assert pyproject < install < source


@pytest.mark.parametrize(
    ("name", "extras"), [("Dockerfile.runtime", "runtime"), ("Dockerfile.operator", "operator,router")]
)
def test_the_dependency_step_reads_pyproject_alone(name: str, extras: str, tmp_path: Path) -> None:
    """Run the image's own requirements command on a copy of pyproject.toml and nothing else."""
    [arg] = [
        s.arguments for s in instructions(name) if s.keyword == "ARG" and s.arguments.startswith("EXTRAS=")
    ]
    assert arg == f"EXTRAS={extras}" and all(
        e in PYPROJECT["project"]["optional-dependencies"] for e in extras.split(",")
    )
    [run] = [s.arguments for s in instructions(name) if s.keyword == "RUN" and "tomllib" in s.arguments]
    words = shlex.split(run)
    code = words[words.index("-c") + 1]
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "EXTRAS": extras},
        capture_output=True,
        text=True,
        check=True,
    )
    names = {re.split(r"[<>=\[;! ]", line, maxsplit=1)[0] for line in result.stdout.splitlines()}
    assert {"pydantic", "httpx"} <= names
    if name == "Dockerfile.runtime":
        assert {"torch", "diffusers", "transformers", "fastapi"} <= names
    else:
        assert {"kopf", "kubernetes", "fastapi", "uvicorn"} <= names
        assert not names & ML_LIBRARIES, "the control-plane image has no torch"


def test_the_entrypoints_are_commands_of_the_package(template: Template) -> None:
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts["alloy"] == "alloy.cli:main"
    runtime = exec_form("Dockerfile.runtime", "ENTRYPOINT")
    control = exec_form("Dockerfile.operator", "ENTRYPOINT") + exec_form("Dockerfile.operator", "CMD")
    assert runtime == ["alloy", "runtime"] and control == ["alloy", "operator"]
    parser = build_parser()
    parser.parse_args(runtime[1:])
    parser.parse_args(control[1:])
    # What the chart runs in the control-plane image...
    rendered = template("--set", "router.apiKeys.existingSecret=keys")
    for component, command in (("operator", "_operator"), ("router", "_serve")):
        assert parser.parse_args(rendered.container(component)["args"]).command.__name__ == command
    # ...and what the operator runs in the runtime image.
    model = AlloyModel.model_validate(
        {**rendered.all("AlloyModel")[0], "metadata": {"name": "m", "uid": "u"}}
    )
    [container] = deployment_for(model, OperatorConfig())["spec"]["template"]["spec"]["containers"]
    assert container["command"] == runtime


@pytest.mark.parametrize("name", DOCKERFILES)
def test_images_run_as_the_chart_expects(name: str) -> None:
    user = next(s.arguments for s in reversed(final_stage(name)) if s.keyword == "USER")
    uid = int(user.split(":")[0])
    assert uid != 0
    assert uid == VALUES["podSecurityContext"]["runAsUser"] == VALUES["runtime"]["runAsUser"]
    env = " ".join(s.arguments for s in final_stage(name) if s.keyword == "ENV")
    assert "HOME=/tmp" in env, "the one writable place besides the volumes"


def test_the_runtime_keeps_hugging_face_on_the_model_cache() -> None:
    env = dict(
        word.split("=", 1)
        for step in final_stage("Dockerfile.runtime")
        if step.keyword == "ENV"
        for word in shlex.split(step.arguments)
    )
    cache = VALUES["modelCache"]["mountPath"]
    assert env["HF_HOME"].startswith(cache + "/") and env["ALLOY_CACHE_DIR"].startswith(cache + "/")
    assert env["ALLOY_PORT"] == str(VALUES["runtime"]["port"])


def test_each_node_pool_has_its_runtime_build(default: Render) -> None:
    """ACCELERATOR=cuda|rocm|cpu builds the tags the chart's pools default to."""
    run = next(
        s.arguments for s in instructions("Dockerfile.runtime") if 'case "$ACCELERATOR"' in s.arguments
    )
    builds = set(re.findall(r"\b(\w+)\) index=", run))
    pools = yaml.safe_load(default.config("operator"))["nodePools"]
    tags = {vendor: pool["image"].rsplit("-", 1)[1] for vendor, pool in pools.items()}
    assert tags == {"nvidia": "cuda", "amd": "rocm", "cpu": "cpu"}
    assert builds == set(tags.values())
