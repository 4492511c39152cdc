#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run pytest and return its exit code.
#   bash tests/run.sh                 # whole suite
#   bash tests/run.sh tests/unit -x   # any pytest arguments
# Strict by default: what this script installs must be there, so a test that finds Chromium or the
# Real-ESRGAN libraries missing fails instead of skipping (tests/helpers/needs.py). Only optional
# hardware (CUDA) still skips. WEBUI_TESTS_STRICT=0 bash tests/run.sh turns missing pieces into skips.
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

# 3. System packages: Debian's Chromium for the browser tests (Playwright drives it; it never downloads
#    one), and the libraries Real-ESRGAN (ncnn: Vulkan loader, OpenMP) and OpenCV (GL, GLib) load.
NEED=""
[ -x /usr/bin/chromium ] || NEED="$NEED chromium chromium-driver"
for lib in libvulkan1 libomp5 libgl1 libglib2.0-0; do
    dpkg -s "$lib" >/dev/null 2>&1 || NEED="$NEED $lib"
done
export WEBUI_TESTS_STRICT=${WEBUI_TESTS_STRICT:-1}
missing_system_packages() {
    if [ "$WEBUI_TESTS_STRICT" != "0" ]; then
        echo "error: $1; install them, or run WEBUI_TESTS_STRICT=0 bash tests/run.sh to skip their tests" >&2
        exit 1
    fi
    echo "warning: $1; tests that need them will be skipped (WEBUI_TESTS_STRICT=0)" >&2
}
if [ -n "$NEED" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        echo "Installing Debian packages:$NEED"
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $NEED >/dev/null \
            || missing_system_packages "could not install$NEED"
    else
        missing_system_packages "missing$NEED and no apt-get"
    fi
fi

# 4. The suite. Offline by construction: no test may reach a model hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONDONTWRITEBYTECODE=1
# --durations: every run names its slowest tests, so the ~20-minute budget is watched where it is spent.
exec "$VENV_PY" -m pytest -q --durations=25 "$@"
