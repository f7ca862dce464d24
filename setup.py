"""Package discovery for the `alloy.*` import names (see [tool.setuptools] in pyproject.toml).

setuptools' `packages.find` cannot add a prefix, so the component folders are discovered here and
listed under their `alloy.` names; `package-dir` in pyproject.toml maps them back to the folders.

`operator/` deliberately has no `__init__.py`: run from the repository root, Python puts the root on
`sys.path`, and a regular package named `operator` there would shadow the standard library's
`operator` (breaking `python -m pytest`, `python -m pip`, ...). A folder without `__init__.py` never
wins over a regular module, so the standard library stays in charge, while the wheel still maps the
folder to `alloy.operator` (a namespace subpackage).

setuptools' editable import hook cannot find a namespace package nested in a regular one, so the
checkout also has the symlink `alloy/operator -> ../operator`: in a development install Python finds
`alloy.operator` inside `alloy/` by its ordinary path search. Wheels ignore the link (the mapping wins).
"""

from setuptools import find_namespace_packages, find_packages, setup

COMPONENTS = ("runtime", "router", "operator")

components = find_namespace_packages(include=[f"{c}*" for c in COMPONENTS], exclude=["*__pycache__*"])
packages = ["alloy", *find_packages(include=["alloy.*"]), *(f"alloy.{name}" for name in components)]

setup(packages=packages)
