#!/usr/bin/env python3
"""A stand-in for airlock-gitproxy in control mode (docs/control-protocol.md),
for the proxy_ack_* cases of airlockd_test.py: airlockd starts it as
`fake_gitproxy.py --config FILE --control FD --user NAME`. It says hello and
acks every request except session_add, which it treats as FILE says:

  {"mode": "silent"}      never acks a session_add
  {"mode": "refuse"}      acks it with ok: false, "error": "fake refusal"
  {"mode": "crash_once", "marker": PATH}
                          the first process to get one exits without acking;
                          the next ones ack it (ok: true)

Every process appends "start PID" and "session_add SESSION" lines to
FILE + ".log"."""
import json
import os
import socket
import struct
import sys

args = sys.argv[1:]
config_path = args[args.index("--config") + 1]
with open(config_path) as f:
    conf = json.load(f)
sock = socket.socket(fileno=int(args[args.index("--control") + 1]))
log = open(config_path + ".log", "a", buffering=1)
log.write("start %d\n" % os.getpid())
mode = conf["mode"]
first = mode == "crash_once" and not os.path.exists(conf["marker"])
if first:
    open(conf["marker"], "w").close()


def send(obj):
    obj["v"] = 1
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def ack(seq, ok=True, error=None):
    m = {"type": "ack", "seq": seq, "ok": ok}
    if error:
        m["error"] = error
    send(m)


send({"type": "hello", "proxy": "gitproxy", "pid": os.getpid()})
buf = b""
while True:
    data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 8)
    for fd in fds:
        os.close(fd)
    if not data:
        sys.exit(0)
    buf += data
    while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
        n = struct.unpack(">I", buf[:4])[0]
        msg = json.loads(buf[4:4 + n])
        buf = buf[4 + n:]
        if msg.get("type") != "session_add":
            ack(msg.get("seq"))
            continue
        log.write("session_add %s\n" % msg.get("session"))
        if mode == "silent":
            continue
        if mode == "refuse":
            ack(msg.get("seq"), False, "fake refusal")
        elif first:
            sys.exit(1)
        else:
            ack(msg.get("seq"))
