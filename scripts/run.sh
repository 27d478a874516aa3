#!/usr/bin/env bash
# Sets up, builds, and generates text. Arguments go to the ternlm CLI; with
# none, it continues "Once upon a time" with ../shared/models/stories260K.gguf.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
scripts/build.sh >/dev/null
if [ $# -eq 0 ]; then
  exec build/examples/ternlm -m ../shared/models/stories260K.gguf -p "Once upon a time" -n 128
fi
exec build/examples/ternlm "$@"
