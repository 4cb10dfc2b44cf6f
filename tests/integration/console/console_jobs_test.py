#!/usr/bin/env python3
"""The web console's jobs page with a job that pushes and opens a pull
request (docs/console.md), in tests/integration/cloud/cloud.sh's set-up:
`airlock up` with the real airlock-gitproxy, git.test's upstream (git
http-backend behind nginx) and fake_github.py standing in for GitHub's API.
The browser (tests/browser/console.test.mjs with AIRLOCK_JOB_REPO) starts the
job from the console, watches it finish and opens its pull request link.

Usage: cloud.sh BUILD_DIR ../console/console_jobs_test.py  (SETTINGS_JSON as
argument, written by cloud.sh). Exit 0 pass, 1 fail, 77 skip (no chromium
or tests/browser/node_modules, unless AIRLOCK_REQUIRE_BROWSER=1)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
BROWSER = os.path.join(ROOT, "tests", "browser")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "airlockd"))
from fake_github import FakeGitHub  # noqa: E402

WAIT = 120
REPO = "https://git.test/o/r.git"
PR_URL = "https://git.test/o/r/pull/1"
COMMIT = ("git config user.email job@example.com && git config user.name job"
          " && echo from-the-console > console.txt && git add console.txt"
          " && git commit -qm 'a change from the console' && git rev-parse HEAD")


def main():
    with open(sys.argv[1]) as f:
        conf = json.load(f)
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    node = shutil.which("node")
    if not (chromium and node and os.path.isdir(os.path.join(BROWSER, "node_modules",
                                                            "puppeteer-core"))):
        if os.environ.get("AIRLOCK_REQUIRE_BROWSER") == "1":
            print("FAIL: chromium, node or tests/browser/node_modules missing")
            return 1
        print("SKIP: chromium, node or tests/browser/node_modules missing")
        return 77
    gh = FakeGitHub(tempfile.mkdtemp(prefix="console-gh."), conf["REAL_TOKEN"], ["o/r"],
                    web_host="git.test").start()
    ald = conf["ALD"]
    # the forge's API base in airlockd.json, then airlock up restarted
    with open(ald + "/airlockd.json") as f:
        aconf = json.load(f)
    aconf["forge"] = {"hosts": {"git.test": {"api": gh.api, "ca_file": gh.ca}}}
    with open(ald + "/airlockd.json", "w") as f:
        json.dump(aconf, f, indent=2)
    pid = int(conf["ALD_PID"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(") ")[1].startswith("Z"):
                    break
        except OSError:
            break
        time.sleep(0.05)
    os.unlink(ald + "/airlockd.addr")
    log = open(conf["LOG2"], "w")
    ald2 = subprocess.Popen([conf["AIRLOCK"], "up", "--state-dir", ald, "--listen", conf["LISTEN"]],
                            stdout=log, stderr=log)
    rc = 1
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not os.path.exists(ald + "/airlockd.addr"):
            time.sleep(0.05)
        with open(ald + "/airlockd.addr") as f:
            api = "http://" + f.read().strip()
        shots = os.environ.get("SCREENSHOT_DIR") or os.path.join(os.getcwd(), "browser-screenshots")
        env = dict(os.environ, AIRLOCK_URL=api, AIRLOCK_KEY=conf["KEY_ALICE"], CHROMIUM=chromium,
                   SCREENSHOT_DIR=shots, AIRLOCK_JOB_REPO=REPO, AIRLOCK_JOB_SCRIPT=COMMIT,
                   AIRLOCK_JOB_PR_URL=PR_URL)
        r = subprocess.run([node, os.path.join(BROWSER, "console.test.mjs")], env=env, timeout=200)
        rc = r.returncode
        reqs = gh.received("/repos/o/r/pulls")
        if rc == 0 and len(reqs) != 1:
            print("FAIL: the stand-in forge got %d pull requests, not 1" % len(reqs))
            rc = 1
        if rc == 0:
            print("ok: console_job_pull_request")
    finally:
        if rc:
            print("--- the restarted airlockd's log (tail)")
            print(open(conf["LOG2"]).read()[-6000:])
        ald2.send_signal(signal.SIGTERM)
        try:
            ald2.wait(60)
        except subprocess.TimeoutExpired:
            ald2.kill()
        gh.stop()
    return rc


if __name__ == "__main__":
    sys.exit(main())
