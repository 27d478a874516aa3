#!/usr/bin/env bash
# Configures and builds ternlm into build/ (Release, warnings as errors).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTERNLM_WERROR=ON \
  -DTERNLM_PYTHON=ON -DPython_EXECUTABLE=/usr/bin/python3 "$@"
cmake --build build -j"$(nproc)"
