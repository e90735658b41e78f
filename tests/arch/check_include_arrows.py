#!/usr/bin/env python3
"""Fails on an #include "..." that goes against the layering of docs/architecture.md.

    cli -> algorithms -> trainer -> generation -> models -> parallel -> common,  data -> common;
    algorithms, trainer, generation and cli may also include data.

A folder includes from itself and from those to its right only. Prints one line per bad include,
FILE:LINE, and exits 1; exits 0 when every arrow is allowed.

    check_include_arrows.py [ROOT]      ROOT: the source tree (default: this repository)
"""
import pathlib
import re
import sys

ORDER = ["common", "parallel", "models", "generation", "trainer", "algorithms", "cli"]
USES_DATA = {"algorithms", "trainer", "generation", "cli"}
FOLDERS = set(ORDER) | {"data"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def allowed(src: str, dst: str) -> bool:
    if src == dst or dst == "common":
        return True
    if src == "data":
        return False  # data uses common only
    if dst == "data":
        return src in USES_DATA
    return ORDER.index(dst) < ORDER.index(src)


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2])
    bad, files = [], 0
    for folder in sorted(FOLDERS):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in {".h", ".cpp", ".inc"}:
                continue
            files += 1
            for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = m.group(1).split("/")[0]
                if "/" not in m.group(1) or target not in FOLDERS:
                    # A bare name is a file next to this one; anything else is outside the layers.
                    if "/" in m.group(1):
                        bad.append(f"{path.relative_to(root)}:{n}: #include \"{m.group(1)}\" is outside the source folders")
                    continue
                if not allowed(folder, target):
                    bad.append(f"{path.relative_to(root)}:{n}: #include \"{m.group(1)}\": {folder}/ may not include "
                               f"{target}/ (docs/architecture.md, 'Folders and arrows')")
    for line in bad:
        print(line)
    print(f"{files} files checked, {len(bad)} include(s) against the arrows", file=sys.stderr)
    return 1 if bad or files == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
