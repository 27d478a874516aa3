#!/usr/bin/env bash
# The Vulkan test suite on the lent GPU machine (see docs/performance.md,
# session 6: it found what lavapipe cannot, e.g. NVIDIA's rounding).
# Expects the Vulkan loader .debs in .gl/ (see device_bench.sh), and in
# .devbin/ a ternlm_tests built here plus a copy of ../shared's models and
# golden folders (the test binary reads them at its build-time path):
#   cp build/tests/ternlm_tests .devbin/ && mkdir -p .devbin/shared &&
#   cp -r ../shared/models ../shared/golden .devbin/shared/
# Output: the summary and failures on stdout, the full log in $OUT/vulkan_tests.txt.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
# SHARED: the binary's TERNLM_SHARED_DIR (build/CMakeCache.txt; default for a
# checkout at /work/main). mkdir -p makes every folder the path names.
SHARED=${SHARED:-/work/main/../shared}
mkdir -p "$SHARED" && cp -r .devbin/shared/* "$SHARED"/
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
timeout 400 .devbin/ternlm_tests "[vulkan]" > "$OUT/vulkan_tests.txt" 2>&1
rc=$?
tail -n 3 "$OUT/vulkan_tests.txt"
grep -B12 -A6 "FAILED" "$OUT/vulkan_tests.txt" | grep -E "^[A-Za-z]|^  [A-Za-z0-9]" | head -40
exit $rc # the tests' status, not the last grep's
