#!/usr/bin/env python3
"""The flags of every mount inside an airlockd session, read back from
/proc/self/mountinfo by check_mounts.py run through the exec API of the
real built daemon (started as tests/integration/airlockd does). The session
denies a host directory, so a masked directory is there beside the system
binds, the default hidden files and the workspace (allowRead is limited to
/workspace in sessions, so re-exposed binds are left to run.sh).

usage: session_test.py AIRLOCKD      exit 0 pass, 1 fail, 77 skip"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "airlockd"))
from harness import SKIP, Daemon, Fail, check  # noqa: E402

# A denied host directory, when this host has it.
DENIED = "/etc/ssl"


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = sys.argv[1]
    if not os.access(binary, os.X_OK):
        print(f"SKIP: {binary} is not built")
        return SKIP
    with open(os.path.join(HERE, "check_mounts.py")) as f:
        checker = f.read()
    fs, expect_ro = {}, []
    if os.path.isdir(DENIED):
        fs = {"denyRead": [DENIED]}
        expect_ro = [DENIED]
    d = Daemon(binary, name="mountflags")
    failed = None
    try:
        d.start()
        d.add_user("alice")
        sid = d.create(settings={"sandbox": {"filesystem": fs}}) if fs else d.create()
        args = ["--writable", "/workspace"]
        for p in expect_ro:
            args += ["--expect-ro", p]
        st, *rest = d.exec(sid, argv=["python3", "-c", checker] + args)
        check(st == 200, "exec answers 200", rest)
        out, err, ex, _ = rest
        sys.stdout.write(out.decode(errors="replace"))
        sys.stdout.write(err.decode(errors="replace"))
        check(b"mounts checked" in out, "the checker ran to its end", (ex, err[-500:]))
        check(ex.get("code") == 0, "every mount nosuid, nodev, and ro unless writable", ex)
    except Fail as e:
        failed = str(e)
    finally:
        left = d.teardown()
    if left:
        failed = (failed + "; " if failed else "") + f"left behind: {left}"
    if failed:
        print("FAIL:", failed)
        print(d.final_log[-2000:])
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
