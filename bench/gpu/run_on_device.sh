#!/usr/bin/env bash
# The whole command for a lent GPU machine (issue 17's GPU figures), run from the repository root there with
# .whl carried (bench/gpu/fetch_wheels.sh fills it here):
#
#     bash bench/gpu/run_on_device.sh [bench_gpu.py options]      e.g. --parts speed,memory --archs sd15
#
# Installs the carried wheels beside the machine's own packages, notes the card, then runs bench/bench_gpu.py
# into $OUT (what comes back from the device) under a deadline that leaves the call's 10 minutes room for the
# start and the transfers. DEADLINE (seconds, default 500) overrides it.
set -u
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the carried wheels failed"; exit 1; }
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
out="${OUT:-bench/results/gpu}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >"$out/nvidia-smi.csv" 2>&1 || true
python3 -c 'import torch, diffusers, transformers; print("torch", torch.__version__, "diffusers", diffusers.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())'
export PYTHONUNBUFFERED=1
python3 bench/bench_gpu.py --out "$out" --deadline "${DEADLINE:-500}" "$@"
