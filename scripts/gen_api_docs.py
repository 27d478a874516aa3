#!/usr/bin/env python3
"""Writes docs/api-reference.md from include/ternlm/ternlm.h.

The header is the single source of the API's documentation; this renders it
section by section: each declaration (or group of adjacent ones) as C, then
the comment above it as text. `--check` fails when the checked-in reference
differs from what the header gives (a ctest runs it), so the two never drift.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = ROOT / "include" / "ternlm" / "ternlm.h"
OUT = ROOT / "docs" / "api-reference.md"

BANNER = re.compile(r"^/\* -{10,} \*/$")


def comment_text(lines):
    text = []
    for line in lines:
        line = line.strip()
        line = re.sub(r"^/\*+ ?|\*/$|^\* ?", "", line).rstrip()
        text.append(line)
    return " ".join(t for t in text if t).replace("  ", " ").strip()


def blocks(src):
    """Yields (section, comment, code) for each documented item after the prologue."""
    lines = src.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("typedef int32_t tern_token"))
    section, comment, i = "Types", [], start
    while i < len(lines):
        line = lines[i]
        if BANNER.match(line.strip()) and i + 2 < len(lines):
            section = comment_text([lines[i + 1]])
            comment, i = [], i + 3
            continue
        if line.startswith("/*"):
            comment = []
            while True:
                comment.append(lines[i])
                if "*/" in lines[i]:
                    break
                i += 1
            i += 1
            continue
        if line.startswith(("TERN_API", "typedef")):
            code = []
            depth = 0
            while True:
                code.append(lines[i])
                depth += lines[i].count("{") - lines[i].count("}")
                if depth == 0 and lines[i].rstrip().endswith(";"):
                    break
                i += 1
            # Adjacent declarations share the comment above them.
            while i + 1 < len(lines) and lines[i + 1].startswith("TERN_API"):
                i += 1
                code.append(lines[i])
                while not lines[i].rstrip().endswith(";"):
                    i += 1
                    code.append(lines[i])
            yield section, comment_text(comment), "\n".join(code)
            comment = []
        elif line.strip() == "":
            pass
        elif line.startswith(("#", "}")):
            comment = []
        i += 1


def render():
    src = HEADER.read_text()
    out = [
        "# API reference",
        "",
        "Generated from `include/ternlm/ternlm.h` by `scripts/gen_api_docs.py`;",
        "do not edit by hand (a test fails when this file and the header differ).",
        "The rules that hold for every call are in the header's opening comment:",
        "",
    ]
    prologue = [re.sub(r"^ \*? ?", "", l).rstrip() for l in src.split("*/", 1)[0].splitlines()[2:]]
    out += [l for l in prologue if l.strip()] + [""]
    section = None
    for sec, comment, code in blocks(src):
        if sec != section:
            out += [f"## {sec}", ""]
            section = sec
        out += ["```c", code, "```", ""]
        if comment:
            out += [comment, ""]
    return "\n".join(out).rstrip() + "\n"


def main():
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run scripts/gen_api_docs.py", file=sys.stderr)
            return 1
        names = set(re.findall(r"TERN_API[^;(]*?\b(tern_\w+)\s*\(", HEADER.read_text()))
        missing = sorted(n for n in names if n not in text)
        if missing:
            print(f"not in the reference: {missing}", file=sys.stderr)
            return 1
        print(f"{OUT.name} is in step with ternlm.h ({len(names)} functions)")
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
