#!/usr/bin/env bash
# Install (./.venv, pinned), generate sample documents, build a knowledge base on the
# embedded default, and answer a question with citations.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/mmrag demo "$@"
