#!/usr/bin/env python3
"""Replace one section of a Markdown file with standard input.

usage: md_section.py FILE HEADING < NEW_SECTION

HEADING is a whole heading line such as "## sandbox startup". The section runs
from that line to the next heading of the same or a higher level (fenced code
blocks are skipped when looking for it), or to the end of the file. The new
text must start with HEADING itself. If FILE has no such heading, the section
is appended. FILE is rewritten through a temporary file and a rename.
"""
import os
import sys
import tempfile


def heading_level(line):
    stripped = line.rstrip("\n")
    hashes = len(stripped) - len(stripped.lstrip("#"))
    if 1 <= hashes <= 6 and stripped[hashes:hashes + 1] == " ":
        return hashes
    return 0


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: md_section.py FILE HEADING < NEW_SECTION")
    path, heading = sys.argv[1], sys.argv[2].strip()
    level = heading_level(heading)
    if level == 0:
        sys.exit(f"md_section.py: not a heading: {heading!r}")
    new = sys.stdin.read()
    if not new.startswith(heading + "\n"):
        sys.exit("md_section.py: new section must start with its heading line")
    new = new.rstrip("\n") + "\n"

    with open(path, encoding="utf-8") as f:
        lines = f.readlines()

    start = end = None
    fenced = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if start is None:
            if line.rstrip("\n") == heading:
                start = i
        elif 0 < heading_level(line) <= level:
            end = i
            break

    if start is None:
        body = "".join(lines)
        if body and not body.endswith("\n"):
            body += "\n"
        out = body + ("\n" if body else "") + new
    else:
        if end is None:
            end = len(lines)
        tail = "".join(lines[end:])
        out = "".join(lines[:start]) + new + ("\n" + tail if tail else "")

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".md_section.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(out)
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    main()
