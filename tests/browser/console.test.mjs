// Browser test of airlockd's web console (docs/console.md): Debian's
// chromium, headless, driven by puppeteer-core against a real airlockd
// that tests/integration/console/console_test.py started.
//
// env: AIRLOCK_URL, AIRLOCK_KEY (alice), AIRLOCK_KEY_OTHER (carol),
//      AIRLOCK_KEY_ADMIN (root-admin; the admin steps need it),
//      CHROMIUM (the browser binary), SCREENSHOT_DIR (where the PNGs go).
// Exit 0 when every step passed; a failed step leaves fail-<step>.png.
// No timing assertions: each wait is bounded only so a hang fails.
import puppeteer from "puppeteer-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const URL_ = process.env.AIRLOCK_URL;
const KEY = process.env.AIRLOCK_KEY;
const OTHER = process.env.AIRLOCK_KEY_OTHER;
const ADMIN = process.env.AIRLOCK_KEY_ADMIN;
const SHOTS = process.env.SCREENSHOT_DIR || "browser-screenshots";
// rAF polling (the default) stops in a background tab: poll on a timer
const POLL = { polling: 100 };
const WAIT = Number(process.env.STEP_WAIT_MS || 60000);
fs.mkdirSync(SHOTS, { recursive: true });
// a failure's screenshots are of this run only
for (const f of fs.readdirSync(SHOTS)) if (f.startsWith("fail-")) fs.rmSync(path.join(SHOTS, f));

const PAYLOAD = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>"'&`;

function fail(what, detail) {
  throw new Error(what + (detail === undefined ? "" : ": " + JSON.stringify(detail).slice(0, 2000)));
}
function check(cond, what, detail) { if (!cond) fail(what, detail); }

async function api(method, p, body, key = KEY) {
  const r = await fetch(URL_ + p, {
    method, headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const t = await r.text();
  let json = null;
  try { json = t ? JSON.parse(t) : null; } catch (e) { /* NDJSON (exec) */ }
  return { status: r.status, json, text: t };
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
const pages = [];
const violations = [];
const pageErrors = [];
async function newPage() {
  const p = await browser.newPage();
  p.setDefaultTimeout(WAIT);
  await p.setViewport({ width: 1200, height: 900 });
  p.on("pageerror", (e) => pageErrors.push(String(e)));
  p.on("console", (m) => { if (m.type() === "error") console.log("browser console:", m.text()); });
  pages.push(p);
  return p;
}

let current = "start";
async function step(name, fn) {
  current = name;
  const t0 = Date.now();
  await fn();
  console.log(`ok: ${name} (${Date.now() - t0} ms)`);
}
const trace = (m) => { if (process.env.TRACE) console.log("  ..", m); };
async function shot(p, name) { trace("screenshot " + name); await p.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true }); }
const textOf = (p, sel) => p.$eval(sel, (e) => e.textContent);
async function waitText(p, sel, want) {
  trace(`wait for ${JSON.stringify(want)} in ${sel}`);
  await p.waitForFunction((s, w) => { const e = document.querySelector(s); return e && e.textContent.includes(w); }, POLL, sel, want);
}
// In-app navigation: the hash router, as a click on a link would.
async function go(p, hash) { await p.evaluate((x) => { location.hash = x; }, hash); }
async function signIn(p, key) {
  await p.goto(URL_ + "/console/", { waitUntil: "domcontentloaded" });
  await p.waitForSelector("#apikey");
  await p.type("#apikey", key);
  await p.click("#signin button[type=submit]");
  await p.waitForSelector("#nav:not([hidden])");
}

let exitCode = 0;
try {
  if (process.env.AIRLOCK_JOB_REPO) {
    await jobPullRequest();
  } else {
    await everything();
  }
  check(pageErrors.length === 0, "no uncaught error in the pages", pageErrors);
} catch (e) {
  exitCode = 1;
  console.log(`FAIL: ${current}: ${e.message}`);
  for (const [i, p] of pages.entries()) {
    try { if (!p.isClosed()) await shot(p, `fail-${current.replace(/[^a-z0-9]+/gi, "-").slice(0, 40)}-${i}`); } catch (x) { /* closed */ }
  }
} finally {
  await browser.close();
}
process.exit(exitCode);

// A job that commits, pushes and opens a pull request (on cloud.sh's
// upstream and a stand-in for GitHub's API): the console shows it finish,
// its branch and pushed commit, and its pull request link opens.
async function jobPullRequest() {
  const page = await newPage();
  const repo = process.env.AIRLOCK_JOB_REPO;
  const script = process.env.AIRLOCK_JOB_SCRIPT;
  const prUrl = process.env.AIRLOCK_JOB_PR_URL;
  await step("sign in", async () => { await signIn(page, KEY); });
  await step("start a job that pushes and asks for a pull request", async () => {
    await go(page, "#/jobs");
    await page.waitForSelector("#job-form");
    await page.type("#job-cmd", script);
    await page.type("#job-repo", repo);
    await page.click("#job-push");
    await page.type("#job-pr", "A change from the console");
    await page.click("#job-form button[type=submit]");
    await page.waitForFunction(() => /^#\/job\/j_[0-9a-f]{20}$/.test(location.hash), POLL);
  });
  await step("watch it finish: state, branch, pushed commit, pull request link", async () => {
    await waitText(page, "#job-state", "succeeded");
    const branch = await textOf(page, "#job-branch");
    check(/^airlock\//.test(branch), "the pushed branch shown", branch);
    await page.waitForSelector("#job-pr-link");
    const link = await page.$eval("#job-pr-link", (a) => ({ href: a.href, text: a.textContent, target: a.target, rel: a.rel }));
    check(link.href === prUrl && link.text === prUrl && link.target === "_blank" && /noopener/.test(link.rel), "the pull request link", link);
    const commit = (await textOf(page, "#job-info")).match(/[0-9a-f]{40}/);
    await waitText(page, "#job-log", commit ? commit[0] : "(no pushed commit shown)");
    await shot(page, "15-job-pull-request");
  });
  await step("open the pull request link", async () => {
    const opened = browser.waitForTarget((t) => t.url() === prUrl, { timeout: WAIT });
    await page.click("#job-pr-link");
    const t = await opened;
    check(t.url() === prUrl, "a new tab on the pull request", t.url());
    const p = await t.page();
    if (p) await p.close();
    await page.bringToFront();
  });
}

async function everything() {
  const page = await newPage();
  let sid = null;

  await step("csp header and sign-in page", async () => {
    const resp = await page.goto(URL_ + "/console/", { waitUntil: "domcontentloaded" });
    const csp = resp.headers()["content-security-policy"] || "";
    check(/default-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp) && !/unsafe/.test(csp), "strict CSP on /console/", csp);
    check(resp.headers()["x-content-type-options"] === "nosniff", "nosniff", resp.headers());
    await page.waitForSelector("#apikey");
    await shot(page, "01-signin");
  });

  await step("sign in: a wrong key is refused, the right one kept in sessionStorage only", async () => {
    await page.type("#apikey", "alk_" + "0".repeat(64));
    await page.click("#signin button[type=submit]");
    await waitText(page, "#signin-error", "not valid");
    await page.$eval("#apikey", (e) => { e.value = ""; });
    await page.type("#apikey", KEY);
    await page.click("#signin button[type=submit]");
    await page.waitForSelector("#nav:not([hidden])");
    await page.waitForSelector("#create-form");
    const stored = await page.evaluate(() => ({ s: sessionStorage.getItem("airlock.key"), l: localStorage.length, c: document.cookie }));
    check(stored.s === KEY && stored.l === 0 && stored.c === "", "key in sessionStorage, nothing in localStorage or cookies", stored);
    const cookies = await page.cookies();
    check(cookies.length === 0, "no cookie set", cookies);
  });

  await step("create a session", async () => {
    await page.type("#new-name", "browser-test");
    await page.type("#new-allow", "allowed.test");
    await page.click("#create");
    await page.waitForFunction(() => /^#\/session\/s_[0-9a-f]{20}$/.test(location.hash), POLL);
    sid = await page.evaluate(() => decodeURIComponent(location.hash.split("/")[2]));
    await waitText(page, "#session-state", "ready");
    const r = await api("GET", "/v1/sessions/" + sid);
    check(r.status === 200 && r.json.metadata.name === "browser-test", "the session exists with its name", r);
    await shot(page, "02-session");
  });

  await step("run a command and see its output", async () => {
    await page.type("#cmd", "echo hello-$((40+2)); echo to-stderr >&2; exit 3");
    await page.click("#run");
    await page.waitForFunction(() => document.querySelector("#run-status").dataset.exit !== undefined, POLL);
    const out = await textOf(page, "#output");
    check(out.includes("hello-42\n") && out.includes("to-stderr"), "stdout and stderr shown", out);
    check((await textOf(page, "#run-status")).includes("code 3"), "exit code shown", await textOf(page, "#run-status"));
    check(await page.$eval("#output .err", (e) => e.textContent) === "to-stderr\n", "stderr marked", null);
    await shot(page, "03-run");
  });

  await step("approve a held network request on the approvals page; the command goes on", async () => {
    await page.$eval("#cmd", (e) => { e.value = ""; });
    await page.type("#cmd", "curl -sS -o /dev/null -w 'code=%{http_code}\\n' http://held.test/; echo went-on");
    await page.click("#run");
    // the exec stream's notice shows the wait in the output
    await waitText(page, "#output", "waiting for approval of held.test:80");
    // a second tab (its own sessionStorage: sign in again) sees it live
    const p2 = await newPage();
    await signIn(p2, KEY);
    await go(p2, "#/approvals");
    trace("approvals page shows held.test:80");
    await p2.waitForFunction(() => [...document.querySelectorAll("#approvals .approval")].some((e) => e.textContent.includes("held.test:80")), POLL);
    await waitText(p2, "#pending-count", "1");
    await shot(p2, "04-approvals");
    check(!(await textOf(page, "#output")).includes("went-on"), "the command waits for the approval", await textOf(page, "#output"));
    // clicked in the page: the list is redrawn as events come, so a handle
    // taken before may be a node that is gone
    await p2.evaluate(() => [...document.querySelectorAll("#approvals .approval")].find((e) => e.textContent.includes("held.test:80")).querySelector("button.ok").click());
    await waitText(p2, "#toast", "allowed");
    await waitText(page, "#output", "went-on");
    const out = await textOf(page, "#output");
    check(/code=\d{3}\n/.test(out), "curl went on after the allow", out);
    await p2.waitForFunction(() => !document.querySelector("#approvals .approval"), POLL);
    const r = await api("GET", `/v1/sessions/${sid}/approvals`);
    check(r.json.approvals.some((a) => a.host === "held.test" && a.state === "allowed"), "the approval is allowed", r.json);
    await shot(page, "05-after-approval");
    await p2.close();
    await page.bringToFront();
  });

  await step("terminal: type into a real pty and see the echo", async () => {
    await page.click("#tab-terminal");
    await page.click("#term-open");
    await waitText(page, "#term-status", "connected");
    await page.focus("#terminal");
    await page.keyboard.type("tty; echo typed-$((6*7))");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("#terminal").innerText.includes("typed-42"), POLL);
    const text = await page.$eval("#terminal", (e) => e.innerText);
    check(text.includes("tty; echo typed-$((6*7))"), "the typed line echoed by the terminal", text);
    check(/\/dev\/pts\/\d+/.test(text), "a real pseudo-terminal", text);
    // ^C reaches the shell as a signal: a sleep is cut
    await page.keyboard.type("sleep 600; echo after-sleep");
    await page.keyboard.press("Enter");
    await page.keyboard.down("Control"); await page.keyboard.press("c"); await page.keyboard.up("Control");
    await page.keyboard.type("echo ctrl-c-$((1+1))");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("#terminal").innerText.includes("ctrl-c-2"), POLL);
    const after = await page.$eval("#terminal", (e) => e.innerText);
    check(!/^after-sleep$/m.test(after), "^C interrupted the sleep (and the line after it)", after);
    await shot(page, "06-terminal");
    await page.keyboard.type("exit");
    await page.keyboard.press("Enter");
    await waitText(page, "#term-status", "exited");
  });

  await step("files: upload, list, download", async () => {
    await page.click("#tab-files");
    await page.waitForSelector("#files table");
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "console-"));
    const f = path.join(tmp, "notes.txt");
    fs.writeFileSync(f, "uploaded from the browser\n");
    const input = await page.$("#upload");
    await input.uploadFile(f);
    await waitText(page, "#files", "notes.txt");
    const r = await api("POST", `/v1/sessions/${sid}/exec`, { argv: ["cat", "/workspace/notes.txt"] });
    check(r.status === 200 && r.text.includes('"data":"uploaded from the browser\\n"'), "the upload is in the workspace", r.text);
    fs.rmSync(tmp, { recursive: true });
    // download: the browser fetches the bytes with the key
    const cdp = await page.createCDPSession();
    const dl = fs.mkdtempSync(path.join(os.tmpdir(), "console-dl-"));
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dl });
    await page.evaluate(() => [...document.querySelectorAll("#files button.link")].find((b) => b.textContent === "notes.txt").click());
    const got = path.join(dl, "notes.txt");
    for (let i = 0; i < 600 && !fs.existsSync(got); i++) await new Promise((res) => setTimeout(res, 100));
    check(fs.existsSync(got) && fs.readFileSync(got, "utf8") === "uploaded from the browser\n", "downloaded the file", fs.readdirSync(dl));
    fs.rmSync(dl, { recursive: true });
    await shot(page, "07-files");
  });

  await step("attack: markup in session metadata is shown as text, never run", async () => {
    const r = await api("POST", "/v1/sessions", { metadata: { name: PAYLOAD } });
    check(r.status === 201, "session with a hostile name", r);
    await go(page, "#/sessions");
    await page.waitForFunction((p) => [...document.querySelectorAll("#session-list .meta")].some((e) => e.textContent === "name=" + p), POLL, PAYLOAD);
    const res = await page.evaluate(() => ({ pwned: window.__pwned, imgs: document.querySelectorAll("#session-list img").length, scripts: document.querySelectorAll("#session-list script").length }));
    check(res.pwned === undefined && res.imgs === 0 && res.scripts === 0, "the payload stayed text", res);
    await go(page, "#/session/" + r.json.id);
    await page.waitForFunction((p) => { const e = document.querySelector("#session-info .meta"); return e && e.textContent === "name=" + p; }, POLL, PAYLOAD);
    check(await page.evaluate(() => window.__pwned) === undefined, "not run on the session page either", null);
    await shot(page, "08-attack-metadata");
  });

  await step("attack: the CSP blocks inline script even if markup got in", async () => {
    const res = await page.evaluate(() => new Promise((resolve) => {
      const seen = [];
      document.addEventListener("securitypolicyviolation", (e) => {
        seen.push(e.violatedDirective);
        if (seen.length === 2) resolve({ seen, inline: window.__inline, handler: window.__handler });
      });
      const s = document.createElement("script");
      s.textContent = "window.__inline = 1";
      document.body.append(s);
      const d = document.createElement("div");
      d.setAttribute("onclick", "window.__handler = 1");
      document.body.append(d);
      d.click();
      // without a CSP both would have run synchronously by now
      if (window.__inline === 1 || window.__handler === 1) resolve({ seen, inline: window.__inline, handler: window.__handler });
    }));
    check(res.inline === undefined && res.handler === undefined, "inline script and handler not run", res);
    check(res.seen.every((d) => d.startsWith("script-src")), "script-src violations reported", res);
    violations.push(...res.seen);
  });

  await step("audit trail: the durable table (GET /v1/audit) with its filters", async () => {
    await go(page, "#/audit");
    await page.waitForSelector("#audit-table");
    // network decisions of this session: the held request, allowed
    await page.type("#a-session", sid);
    await page.select("#a-method", "NET");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#audit-table tbody tr")];
      return rows.length > 0 && rows.every((r) => r.children[2].textContent === "NET") &&
        rows.some((r) => r.textContent.includes("held.test"));
    }, POLL);
    // the API calls of the session, found by text
    await page.select("#a-method", "");
    await page.type("#a-text", "/exec");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#audit-table tbody tr")];
      return rows.length > 0 && rows.every((r) => r.children[2].textContent === "POST" && r.children[3].textContent.includes("/exec"));
    }, POLL);
    check(!(await page.$("#a-user")), "a non-admin has no user filter");
    await shot(page, "09-audit-trail");
  });

  await step("audit trail: live events tab with filters", async () => {
    await go(page, "#/audit/live");
    await page.waitForFunction(() => document.querySelector("#audit").textContent.includes("held.test:80"), POLL);
    await page.select("#f-type", "approval");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#audit tbody tr")];
      return rows.length > 0 && rows.every((r) => r.children[1].textContent === "approval");
    }, POLL);
    await page.type("#f-decision", "allowed");
    await page.type("#f-session", sid);
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#audit tbody tr")];
      return rows.length === 1 && rows[0].textContent.includes("held.test:80");
    }, POLL);
    await shot(page, "09-audit");
  });

  await step("another user sees none of it", async () => {
    const p3 = await newPage();
    await signIn(p3, OTHER);
    await p3.waitForSelector("#session-list");
    const t = await textOf(p3, "#session-list");
    check(!t.includes(sid), "carol does not see alice's session", t);
    // no Admin page for her, and the API hides the admin views (404)
    check(await p3.$eval('#nav a[data-page="admin"]', (a) => a.hidden), "carol has no Admin link");
    for (const p of ["/v1/admin/users", "/v1/admin/keys"]) {
      const r = await api("GET", p, undefined, OTHER);
      check(r.status === 404 && r.json && r.json.error.code === "not_found", `${p} as carol: 404`, r);
    }
    await go(p3, "#/admin");
    await p3.waitForSelector("#not-admin");
    check(!(await p3.$("#users")), "no user list for carol");
    // her audit trail holds none of alice's rows
    await go(p3, "#/audit");
    await p3.waitForSelector("#audit-table");
    await p3.type("#a-session", sid);
    await p3.waitForFunction(() => /^0 rows/.test(document.querySelector("#audit-count").textContent), POLL);
    await p3.close();
    await page.bringToFront();
  });

  await step("alice is no admin: no Admin link", async () => {
    check(await page.$eval('#nav a[data-page="admin"]', (a) => a.hidden), "alice has no Admin link");
  });

  await step("admin: users, keys (never a key's value), machine metrics, everybody's audit rows", async () => {
    check(ADMIN, "AIRLOCK_KEY_ADMIN is set");
    const pa = await newPage();
    await signIn(pa, ADMIN);
    await pa.waitForSelector('#nav a[data-page="admin"]:not([hidden])');
    await go(pa, "#/admin");
    await waitText(pa, "#users", "carol");
    await waitText(pa, "#users", "alice");
    const keys = await api("GET", "/v1/admin/keys", undefined, ADMIN);
    check(keys.status === 200 && keys.json.keys.length >= 3, "GET /v1/admin/keys", keys);
    for (const k of keys.json.keys) await waitText(pa, "#keys", k.id);
    const html = await pa.content();
    for (const secret of [KEY, OTHER, ADMIN]) check(!html.includes(secret), "no key value on the page");
    await waitText(pa, "#metrics", "airlock_sessions");
    await shot(pa, "10-admin");
    await pa.select("#keys-user", "carol");
    await pa.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#keys tbody tr")];
      return rows.length > 0 && rows.every((r) => r.children[1].textContent === "carol");
    }, POLL);
    await go(pa, "#/audit");
    await pa.waitForSelector("#a-user");
    await pa.type("#a-session", sid);
    await pa.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#audit-table tbody tr")];
      return rows.length > 0 && rows.every((r) => r.children[1].textContent === "alice");
    }, POLL);
    await pa.close();
    await page.bringToFront();
  });

  await step("phone-sized screen: no sideways scrolling", async () => {
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    for (const [hash, sel, name] of [["#/sessions", "#session-list table", "11-phone-sessions"], ["#/session/" + sid, "#session-info", "12-phone-session"], ["#/approvals", "#approvals", "13-phone-approvals"], ["#/audit", "#audit-table table", "13-phone-audit"]]) {
      await go(page, hash);
      await page.waitForSelector(sel);
      const w = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
      check(w.scroll <= w.inner, `${hash}: fits a 390 px screen`, w);
      await shot(page, name);
    }
  });

  await step("a job: start it, watch it finish, its output", async () => {
    await page.setViewport({ width: 1200, height: 900 });
    const r = await api("GET", "/v1/jobs");
    check(r.status === 200, "GET /v1/jobs", r);
    await go(page, "#/jobs");
    await page.waitForSelector("#job-form");
    await page.type("#job-cmd", "echo job-says-$((20+1)); echo to-stderr >&2");
    await page.click("#job-form button[type=submit]");
    await page.waitForFunction(() => /^#\/job\/j_[0-9a-f]{20}$/.test(location.hash), POLL);
    await waitText(page, "#job-state", "succeeded");
    await waitText(page, "#job-log", "job-says-21");
    check((await textOf(page, "#job-exit")) === "0", "exit code 0 shown", await textOf(page, "#job-exit"));
    await shot(page, "14-job");
    await go(page, "#/jobs");
    await waitText(page, "#job-list", "succeeded");
  });

}
