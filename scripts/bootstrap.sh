#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
# Idempotent: reinstalls only when requirements.txt or backend/pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PHYSINTERACT_VENV:-$ROOT/.venv}"

find_python() {
    for cand in "${PYTHON:-}" python3.11 python3 python; do
        [ -n "$cand" ] || continue
        if command -v "$cand" >/dev/null 2>&1 && \
           "$cand" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
            echo "$cand"; return 0
        fi
    done
    echo "bootstrap: Python 3.11 is required (the bpy module is built for it); set PYTHON=/path/to/python3.11" >&2
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    PY="$(find_python)"
    echo "bootstrap: creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.physinteract-stamp"
WANT="$(cat "$ROOT/requirements.txt" "$ROOT/backend/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    echo "bootstrap: installing requirements into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
    "$VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements.txt"
    # sam2 ships as source only; its build would otherwise fetch a second torch and try to
    # compile a CUDA extension that the CPU path does not need.
    SAM2_BUILD_CUDA=0 "$VENV/bin/python" -m pip install --quiet --no-build-isolation --no-deps sam2==1.1.0
    "$VENV/bin/python" -m pip install --quiet --no-build-isolation -e "$ROOT/backend[sim,test]"
    echo "$WANT" > "$STAMP"
fi
