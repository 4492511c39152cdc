#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run pytest and return its exit code.
#   bash tests/run.sh                 # whole suite
#   bash tests/run.sh tests/unit -x   # any pytest arguments
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}

# 1. The project's venv with torch and requirements.txt, via the launcher itself (skips when done).
if [ -z "${VIRTUAL_ENV:-}" ]; then
    "$PY" launch.py --exit || exit $?
    VENV_PY="$ROOT/venv/bin/python"
else
    VENV_PY=$(command -v python)
    "$VENV_PY" launch.py --exit || exit $?
fi

# 2. Test requirements (pytest, playwright, hypothesis, webuiapi), skipped when unchanged.
STAMP="$ROOT/venv/.tests-requirements-stamp"
WANT=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    "$VENV_PY" -m pip install --disable-pip-version-check -q -r tests/requirements.txt || exit $?
    mkdir -p "$(dirname "$STAMP")" && echo "$WANT" > "$STAMP"
fi

# 3. A browser for the UI tests: Debian's Chromium (Playwright drives it; it never downloads one).
if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        echo "Installing Debian chromium for the browser tests"
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null \
            || echo "warning: could not install chromium; browser tests will be skipped"
    else
        echo "warning: no /usr/bin/chromium and no apt-get; browser tests will be skipped"
    fi
fi

# 4. The suite. Offline by construction: no test may reach a model hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONDONTWRITEBYTECODE=1
exec "$VENV_PY" -m pytest -q "$@"
