"""examples/simple.py and examples/ffi_ctypes.py print llama.cpp's greedy text."""

import json
import os
import subprocess
import sys

import pytest

from conftest import GOLDEN, REPO, STORIES

GOLD = json.loads((GOLDEN / "stories260K" / "p0.json").read_text())
WANT = GOLD["prompt"] + GOLD["greedy_text"] + "\n"


def run(*args):
    r = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_simple_py():
    assert run(REPO / "examples" / "simple.py", STORIES, GOLD["prompt"], 32) == WANT


def test_ffi_ctypes_drives_the_c_abi_without_glue():
    lib = os.environ.get("TERNLM_LIB")
    if not lib:
        pytest.fail("TERNLM_LIB (path of libternlm.so.1) is not set; ctest sets it")
    assert run(REPO / "examples" / "ffi_ctypes.py", lib, STORIES, GOLD["prompt"], 32) == WANT
