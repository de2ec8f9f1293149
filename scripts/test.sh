#!/usr/bin/env bash
# Install what the tests need (./.venv, pinned) and run the default test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
# Tests drive Debian programs: Chromium for the web page (Playwright, no browser download),
# LibreOffice for Office files, ffmpeg for video. Install what is missing when we are root.
# Without them those tests fail under CI=true with a clear message.
apt_install() {  # apt_install WHAT PACKAGE... (only as root, only where apt exists)
  local what=$1; shift
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || { echo "setup: $what missing and not root; the tests that need it will fail" >&2; return 0; }
  echo "setup: installing Debian's $what for the tests (once)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null 2>&1 \
    || echo "setup: could not install $what; the tests that need it will fail" >&2
}
{ [ -x /usr/bin/chromium ] || [ -n "${MMRAG_CHROMIUM:-}" ]; } || apt_install chromium chromium
command -v soffice >/dev/null || apt_install LibreOffice --no-install-recommends \
  libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
command -v ffmpeg >/dev/null || apt_install ffmpeg --no-install-recommends ffmpeg
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
exit $rc
