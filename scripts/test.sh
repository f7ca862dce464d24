#!/usr/bin/env bash
# The project's test command (the README's, and CI's through .ci/run).
#
# From a clean clone: makes .venv if it is missing, installs Alloy with every extra (torch first, pinned,
# so pip never pulls a multi-GB build), then lints, type-checks, checks the import layers and runs pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k openai -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[all,test]"

echo "== ruff"
ruff check .
ruff format --check .

echo "== mypy and import layers"
./scripts/typecheck-tree.sh >/dev/null
(cd build/typecheck && mypy -p alloy && lint-imports --config ../../pyproject.toml)

echo "== pytest"
pytest "$@"
