#!/usr/bin/env python3
"""Streams a continuation with the Python API.

    python3 examples/simple.py MODEL.gguf "Once upon a time" [n_tokens]
"""

import sys

import ternlm


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, prompt = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    try:
        with ternlm.Model(path) as model:
            print(prompt, end="", flush=True)
            for piece in model.generate(prompt, max_tokens=n, temperature=0):
                print(piece, end="", flush=True)
            print()
    except ternlm.TernError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
