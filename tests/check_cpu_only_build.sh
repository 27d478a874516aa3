#!/usr/bin/env bash
# Builds ternlm and its tests with the Vulkan backend off (-DTERNLM_VULKAN=OFF,
# the CPU-only library an embedder without Vulkan gets) and runs the engine
# tests there: the main build has Vulkan, so nothing else compiles the
# CPU-only side of the #ifdefs (a Vulkan test outside its #ifdef once broke
# this build unnoticed).
#   check_cpu_only_build.sh SOURCE_DIR SHARED_DIR WORK_DIR
set -euo pipefail
src=$(realpath "$1") shared=$(realpath "$2") work=$3
mkdir -p "$work"
cmake -S "$src" -B "$work" -DCMAKE_BUILD_TYPE=Release -DTERNLM_VULKAN=OFF -DTERNLM_EXAMPLES=OFF \
      -DTERNLM_PYTHON=OFF -DTERNLM_STATIC=OFF -DTERNLM_SHARED_DIR="$shared" >/dev/null
cmake --build "$work" --target ternlm ternlm_tests -j"$(nproc)" >/dev/null
"$work/tests/ternlm_tests" "[engine]"
