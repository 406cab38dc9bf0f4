#!/usr/bin/env bash
# Set everything up, then lint, type-check and run every test (backend and Blender).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
VENV="${PHYSINTERACT_VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"
echo "== ruff"
ruff check .
echo "== mypy (add-on against fake-bpy-module, backend)"
mypy
echo "== backend tests (tests/)"
python -m pytest tests -q "$@"
echo "== Blender tests (blender_tests/, bpy module)"
python -m pytest blender_tests -q "$@"
