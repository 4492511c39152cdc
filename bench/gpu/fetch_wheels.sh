#!/usr/bin/env bash
# Fetch, on this machine, the wheels that the lent GPU machine lacks for bench/bench_gpu.py, into .whl/ at the
# repository root (ignored by git; the device run carries it). That machine has Python 3.12 with torch,
# transformers, accelerate, safetensors, huggingface_hub, scipy, numpy, Pillow, ... but not diffusers nor
# torchsde (/work/.library/device/KINDS.md lists its packages). Versions: ours (requirements.txt).
#
#     bash bench/gpu/fetch_wheels.sh      then      bash bench/gpu/run_on_device.sh (on the device, carry .whl)
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl diffusers==0.42.1 torchsde==0.2.6 trampoline==0.1.2 importlib_metadata==10.2.0 lazy-importer
ls -l .whl
