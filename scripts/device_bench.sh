#!/usr/bin/env bash
# GPU benchmark table on the lent GPU machine (see docs/performance.md):
# writes synthetic models of real shapes, then runs ternlm-bench on Vulkan.
# Expects the Vulkan loader .debs in .gl/ and a ternlm-bench built here in
# .devbin/ (both carried by the device tool). Output: stdout and $OUT/gpu.md.
#   scripts/device_bench.sh [shape:type ...]   (default: the issue's four)
#   BENCH_ARGS overrides the bench arguments (default: -p 512 -n 128 -r 5, llama-bench's repetitions).
# Preparing them here, once (both folders are listed in .git/info/exclude):
#   mkdir -p .gl .devbin /tmp/amd64/partial && cp build/examples/ternlm-bench .devbin/
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update && (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
# The NVIDIA Vulkan ICD there needs the GL vendor libraries besides the loader.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
nvidia-smi -L || true
BENCH=.devbin/ternlm-bench
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/models
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(llama1b:q4_k bitnet2b:tq2_0 llama8b:tq2_0 llama8b:q4_k)
for c in "${cases[@]}"; do
  shape=${c%%:*} type=${c##*:}
  m=/tmp/models/$shape-$type.gguf
  t0=$(date +%s)
  $BENCH --synthetic "$shape" --type "$type" -o "$m" >/dev/null 2>&1 || { echo "generating $c failed"; continue; }
  echo "generated $m ($(du -m "$m" | cut -f1) MB) in $(( $(date +%s) - t0 )) s"
  $BENCH -m "$m" -b vulkan ${BENCH_ARGS:--p 512 -n 128 -r 5} 2>&1 | tee -a "$OUT/gpu.md"
  rm -f "$m"
done
