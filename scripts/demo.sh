#!/usr/bin/env bash
# Set-up command 1: install what is missing, build msp, run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMSP_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "msp built: build/tools/msp/msp" >&2
# The main job: client -> middlebox -> server on loopback with generated certificates.
build/tools/msp/msp demo
