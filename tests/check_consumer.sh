#!/usr/bin/env bash
# Installs ternlm to a fresh prefix, then builds the examples as out-of-tree
# consumers of that install (CMake find_package: shared and static; Makefile +
# pkg-config) and checks that each prints llama.cpp's greedy continuation.
#   check_consumer.sh BUILD_DIR SOURCE_DIR SHARED_DIR WORK_DIR
set -euo pipefail
build=$(realpath "$1") src=$(realpath "$2") shared=$(realpath "$3") work=$4
rm -rf "$work" && mkdir -p "$work"
prefix="$work/prefix"

cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$src/tests/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DEXAMPLES="$src/examples" >/dev/null
cmake --build "$work/cmake" >/dev/null
libdir=$(dirname "$(find "$prefix" -name ternlm.pc)")
PKG_CONFIG_PATH="$libdir" make -s -f "$src/tests/consumer/Makefile" EXAMPLES="$src/examples" OUT="$work"

golden="$shared/golden/stories260K/p0.json"
prompt=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompt"])' "$golden")
want=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["prompt"]+d["greedy_text"])' "$golden")
model="$shared/models/stories260K.gguf"

fail=0
for exe in "$work/cmake/consumer_c" "$work/cmake/consumer_cpp_static" "$work/consumer_make"; do
  got=$("$exe" "$model" "$prompt" 32)
  if [ "$got" != "$want" ]; then
    echo "FAIL $(basename "$exe"): got [$got] want [$want]"; fail=1
  else
    echo "ok   $(basename "$exe")"
  fi
done
# The static consumer must not need the shared library at run time.
if readelf -d "$work/cmake/consumer_cpp_static" | grep -q 'libternlm'; then
  echo "FAIL consumer_cpp_static depends on libternlm.so"; fail=1
fi
# The installed CLI finds its library through its RPATH.
got=$("$prefix/bin/ternlm" -m "$model" -p "$prompt" -n 32 --temp 0 2>/dev/null)
[ "$got" = "$want" ] && echo "ok   installed ternlm CLI" || { echo "FAIL installed CLI: [$got]"; fail=1; }
exit $fail
