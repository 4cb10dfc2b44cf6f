"""What a process holds and how it runs, for the privilege-split tests
(tests/attacks/gitproxy/procsplit.sh, tests/integration/airlockd/
sesscreds_test.py): a scan of its whole memory (/proc/PID/maps, every
readable mapping read through /proc/PID/mem; needs root) and its
/proc/PID/status."""

import base64


def status(pid):
    """/proc/PID/status as {key: [fields]}."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def hardened(pid):
    """(ok, line): not root in any uid, Seccomp 2 (filter), NoNewPrivs 1."""
    st = status(pid)
    uids = st["Uid"]
    ok = all(u != "0" for u in uids) and st["Seccomp"] == ["2"] and st["NoNewPrivs"] == ["1"]
    return ok, "pid %d: Uid %s Seccomp %s NoNewPrivs %s" % (
        pid, "/".join(uids), st["Seccomp"][0], st["NoNewPrivs"][0])


def base64_forms(raw):
    """The base64 spellings `raw` can have inside a longer encoded string
    (three alignments; the blocks that mix in neighbouring bytes dropped)."""
    forms = []
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw)
        forms.append(enc[4 if k else 0:-4])
    return forms


def scan(pid, secrets):
    """Names of the secrets ({name: bytes}) found anywhere in the readable
    memory of `pid`."""
    found = set()
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for m in maps:
            fields = m.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] == "[vsyscall]"):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if hi - lo > (1 << 30):
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            for name, raw in secrets.items():
                if raw in data:
                    found.add(name)
    return found
