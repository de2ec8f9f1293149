#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in ./.venv from requirements.lock.
# Idempotent: does nothing when the lock file has not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.mmrag-lock-sha256
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing pinned dependencies (first run downloads about 3 GB of torch wheels; a few minutes)" >&2
  # about 9 GB once installed; say so before pip fails half-way with "No space left on device"
  free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
  if [ "${free_kb:-0}" -lt $((10 * 1024 * 1024)) ]; then
    echo "setup: only $((free_kb / 1024)) MB free in $(pwd); the environment needs about 9 GB" >&2
  fi
  # no pip cache: it would keep a second copy of the wheels (about 3 GB) that nothing reads again
  .venv/bin/python -m pip install --quiet --no-cache-dir --upgrade pip
  .venv/bin/python -m pip install --quiet --no-cache-dir -r requirements.lock
  .venv/bin/python -m pip install --quiet --no-cache-dir --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
