#!/usr/bin/env bash
# Set everything up, then run the main job on the bundled example scene.
# Results land in out/example (override with OUT=...).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
VENV="${PHYSINTERACT_VENV:-$ROOT/.venv}"
OUT="${OUT:-$ROOT/out/example}"
"$VENV/bin/physinteract" example --out "$OUT"
"$VENV/bin/python" scripts/example_blend.py --cache "$OUT/cache" --job "$OUT/job" --out "$OUT/example.blend"
echo "example: results in $OUT"
