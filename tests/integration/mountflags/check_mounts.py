"""Reads /proc/self/mountinfo inside a sandbox and checks every mount's
flags against the sandbox's design (DESIGN.md, docs/security.md):

  * nosuid on every mount;
  * nodev on every mount except the device mounts /dev (the tmpfs holding
    them), /dev/pts and the bound nodes /dev/null, zero, full, random,
    urandom, tty;
  * ro everywhere except the sandbox's scratch places (/tmp, /dev/shm,
    /dev and its nodes, /dev/pts, /proc itself) and the writable roots
    given with --writable (and mounts below them, such as the pinned
    directories of protected paths); the paths given with --expect-ro must
    be mounts and read-only (protected files inside a writable root).

usage: python3 -c "$(cat check_mounts.py)" [--writable PATH]... [--expect-ro PATH]...
Prints one line per mount and per violation; exits 0 when there is none,
1 otherwise. Runs inside the sandbox: the standard library only."""

import sys

DEV_NODES = ["/dev/" + n for n in ("null", "zero", "full", "random", "urandom", "tty")]
NODEV_EXEMPT = set(["/dev", "/dev/pts"] + DEV_NODES)
RW_SCRATCH = set(["/proc", "/tmp", "/dev", "/dev/shm", "/dev/pts"] + DEV_NODES)


def unescape(field):
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = "", 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out += chr(int(field[i + 1:i + 4], 8))
            i += 4
        else:
            out += field[i]
            i += 1
    return out


def mounts():
    """[(mount point, set of per-mount options)] from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 10 or "-" not in parts[6:]:
                raise SystemExit(f"FAIL: cannot parse mountinfo line {line!r}")
            found.append((unescape(parts[4]), set(parts[5].split(","))))
    return found


def within(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def main(argv):
    writable, expect_ro = [], []
    i = 0
    while i < len(argv):
        if argv[i] in ("--writable", "--expect-ro") and i + 1 < len(argv):
            (writable if argv[i] == "--writable" else expect_ro).append(argv[i + 1])
            i += 2
        else:
            raise SystemExit(f"usage: check_mounts [--writable PATH]... [--expect-ro PATH]...: "
                             f"{argv[i]!r}")
    table = mounts()
    bad = []
    for point, opts in table:
        flags = ",".join(sorted(o for o in opts if o in ("ro", "rw", "nosuid", "nodev")))
        print(f"mount {point} {flags}")
        if "nosuid" not in opts:
            bad.append(f"{point}: no nosuid ({','.join(sorted(opts))})")
        if "nodev" not in opts and point not in NODEV_EXEMPT:
            bad.append(f"{point}: no nodev ({','.join(sorted(opts))})")
        may_write = point in RW_SCRATCH or any(within(point, w) for w in writable)
        if point in expect_ro:
            may_write = False
        if "ro" not in opts and not may_write:
            bad.append(f"{point}: writable, the plan says read-only ({','.join(sorted(opts))})")
    points = {p: o for p, o in table}  # the last mount on a point is the visible one
    # what must be there, or the check saw a different table than it thinks
    for need in ["/", "/usr", "/etc", "/proc", "/tmp", "/dev"] + writable + expect_ro:
        if need not in points:
            bad.append(f"{need}: expected a mount there, found none")
    for w in writable:
        if w in points and "rw" not in points[w]:
            bad.append(f"{w}: a writable root mounted read-only (control)")
    for line in bad:
        print("FAIL:", line)
    print(f"{len(table)} mounts checked, {len(bad)} violation(s)")
    return 1 if bad else 0


sys.exit(main(sys.argv[1:]))
