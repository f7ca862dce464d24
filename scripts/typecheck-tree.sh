#!/usr/bin/env bash
# Build build/typecheck/alloy: the wheel's layout as symlinks to the sources, for mypy and import-linter.
#
# The editable install maps `alloy.runtime` → runtime/ (etc.) with an import hook, which static tools
# cannot follow; this tree gives them the same import names. Directories are real and files are links
# (import-linter does not follow linked directories), so rebuild the tree after adding a file.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tree="$root/build/typecheck"
rm -rf "$tree"
mkdir -p "$tree"
cp -rs "$root/alloy" "$tree/alloy"
rm -f "$tree/alloy/operator"  # the development symlink (see setup.py); the folder itself is linked below
for component in runtime router operator; do
  cp -rs "$root/$component" "$tree/alloy/$component"
done
find "$tree" -name __pycache__ -prune -exec rm -rf {} +
# operator/ has no __init__.py (see setup.py); import-linter only walks regular packages.
touch "$tree/alloy/operator/__init__.py"
echo "$tree"
