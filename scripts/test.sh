#!/usr/bin/env bash
# Install what the tests need (./.venv, pinned) and run the default test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
# The web-page test drives Debian's Chromium (Playwright, no browser download): install it when
# missing and we are root. Without it that test fails under CI=true with a clear message.
if [ ! -x /usr/bin/chromium ] && [ -z "${MMRAG_CHROMIUM:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing Debian's chromium for the web-page test (once)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
    || echo "setup: could not install chromium; tests/system/test_web_page.py will fail" >&2
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
exit $rc
