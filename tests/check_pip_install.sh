#!/usr/bin/env bash
# `pip install .` as the README says (a venv over Debian's python3, offline,
# no build isolation), from a copy of the source tree, then generation from
# the installed package in a directory that is not the source tree.
#   check_pip_install.sh SOURCE_DIR SHARED_DIR WORK_DIR
set -euo pipefail
src=$(realpath "$1") shared=$(realpath "$2") work=$3
rm -rf "$work" && mkdir -p "$work/src"
work=$(realpath "$work")
tar -C "$src" --exclude=./build --exclude='./build-*' --exclude=.git -cf - . | tar -C "$work/src" -xf -

/usr/bin/python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install --no-build-isolation --no-index -q "$work/src"

cd "$work"
"$work/venv/bin/python" - "$shared" <<'PY'
import importlib.metadata, json, pathlib, sys
import ternlm
shared = pathlib.Path(sys.argv[1])
assert pathlib.Path(ternlm.__file__).is_relative_to(pathlib.Path(sys.prefix)), ternlm.__file__
assert importlib.metadata.version("ternlm") == ternlm.__version__, "pyproject and CMake versions differ"
gold = json.loads((shared / "golden/stories260K/p0.json").read_text())
with ternlm.Model(shared / "models/stories260K.gguf") as m:
    text = "".join(m.generate(gold["prompt"], max_tokens=32, temperature=0))
assert text == gold["greedy_text"], (text, gold["greedy_text"])
pkg = pathlib.Path(ternlm.__file__).parent
assert (pkg / "py.typed").exists() and (pkg / "_ternlm.pyi").exists(), "type stubs missing"
print("pip-installed ternlm", ternlm.__version__, "generates llama.cpp's text")
PY
