// One job: status, live log, pushed branch and commit, pull request link.
import { get, post, raw, enc } from "../api.js";
import { h, replace, stateSpan, fmtTime, toast } from "../dom.js";

const FINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

export async function render(main, params) {
  const id = params[0] || "";
  const base = "/v1/jobs/" + enc(id);
  const info = h("dl", { class: "kv card", id: "job-info" });
  const log = h("pre", { class: "out", id: "job-log" });
  const cancel = h("button", { type: "button", class: "danger", id: "job-cancel", onclick: async () => {
    try { show(await post(base + "/cancel", {})); } catch (x) { toast(x.message); }
  } }, "Cancel");
  let stopped = false, ctl = null;
  function show(j) {
    const pr = j.pull_request_url ? h("a", { href: j.pull_request_url, id: "job-pr-link", target: "_blank", rel: "noopener noreferrer" }, j.pull_request_url) : "—";
    replace(info,
      h("dt", null, "State"), h("dd", { id: "job-state" }, stateSpan(j.state)),
      h("dt", null, "Exit code"), h("dd", { id: "job-exit" }, j.exit_code === null || j.exit_code === undefined ? "—" : String(j.exit_code)),
      h("dt", null, "Error"), h("dd", null, j.error || "—"),
      h("dt", null, "Session"), h("dd", { class: "mono" }, j.session ? h("a", { href: "#/session/" + enc(j.session) }, j.session) : "—"),
      h("dt", null, "Branch"), h("dd", { class: "mono", id: "job-branch" }, j.branch || "—"),
      h("dt", null, "Pushed commit"), h("dd", { class: "mono" }, j.pushed_commit || "—"),
      h("dt", null, "Pull request"), h("dd", null, pr),
      h("dt", null, "Created"), h("dd", null, fmtTime(j.created_at)),
      h("dt", null, "Started"), h("dd", null, fmtTime(j.started_at)),
      h("dt", null, "Finished"), h("dd", null, fmtTime(j.finished_at)));
    cancel.disabled = FINAL.has(j.state);
    return j;
  }
  replace(main, h("h1", { class: "mono" }, "Job ", id), info, h("p", null, cancel), h("h2", null, "Output"), log);
  let j = show(await get(base));


  // the log: the output kept so far (its last jobs.max_output_bytes),
  // read again while the job runs and once more when it has finished
  async function readLog() {
    try {
      const r = await raw("GET", base + "/output", { signal: (ctl = new AbortController()).signal });
      const text = new TextDecoder().decode(await r.arrayBuffer());
      const trunc = r.headers.get("X-Airlock-Output-Truncated") === "true";
      if (log.textContent !== text || trunc) {
        const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        replace(log, trunc ? h("span", { class: "note" }, "[earlier output dropped]\n") : null, text);
        if (atEnd) log.scrollTop = log.scrollHeight;
      }
    } catch (x) { /* next time */ }
  }
  await readLog();

  const t = setInterval(async () => {
    if (stopped) return;
    try {
      j = show(await get(base));
      await readLog();
      if (FINAL.has(j.state)) clearInterval(t);
    } catch (x) { /* next time */ }
  }, 1500);
  return () => { stopped = true; clearInterval(t); if (ctl) ctl.abort(); };
}
