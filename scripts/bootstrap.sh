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
# Large wheels (torch, bpy: several hundred MB) are fetched over a link that can drop mid-download:
# let pip resume a broken download many times, and retry the whole install a few times after that.
PIP_FLAGS=(--quiet --retries 10 --timeout 60)
pip_install() {
    local attempt
    for attempt in 1 2 3 4; do
        if "$VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" "$@"; then
            return 0
        fi
        echo "bootstrap: pip install $* failed (attempt $attempt of 4)" >&2
        [ "$attempt" -lt 4 ] && sleep $((attempt * 15))
    done
    echo "bootstrap: giving up on pip install $*: check the connection to the package registry" >&2
    return 1
}
STAMP="$VENV/.physinteract-stamp"
WANT="$(cat "$ROOT/requirements.txt" "$ROOT/backend/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    echo "bootstrap: installing requirements into $VENV"
    # torch, bpy, taichi and the rest take about 7 GB: a full disk otherwise shows up as a
    # broken download deep in pip's output.
    FREE_KB="$(df -Pk "$VENV" | awk 'NR == 2 {print $4}')"
    if [ "${FREE_KB:-0}" -lt $((8 * 1024 * 1024)) ]; then
        echo "bootstrap: only $((FREE_KB / 1024)) MB free where $VENV lives; the environment needs about 8 GB" >&2
        exit 1
    fi
    # --resume-retries needs pip 25.1 or newer: upgrade pip first, then add it.
    pip_install --upgrade pip setuptools wheel
    PIP_FLAGS+=(--resume-retries 40)
    pip_install -r "$ROOT/requirements.txt"
    # sam2 ships as source only; its build would otherwise fetch a second torch and try to
    # compile a CUDA extension that the CPU path does not need.
    SAM2_BUILD_CUDA=0 pip_install --no-build-isolation --no-deps sam2==1.1.0
    pip_install --no-build-isolation -e "$ROOT/backend[sim,test]"
    echo "$WANT" > "$STAMP"
fi
