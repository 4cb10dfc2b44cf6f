// Jobs (/v1/jobs, docs/jobs.md): the list and a small submit form.
import { get, post } from "../api.js";
import { h, replace, table, stateSpan, fmtTime, toast } from "../dom.js";

export async function render(main) {
  const list = h("div", { id: "job-list" });
  const err = h("p", { class: "error" });
  const cmd = h("input", { id: "job-cmd", class: "wide", placeholder: "make test", autocomplete: "off" });
  const repo = h("input", { id: "job-repo", class: "wide", placeholder: "https://github.com/owner/repo (optional)" });
  const push = h("input", { id: "job-push", type: "checkbox" });
  const prTitle = h("input", { id: "job-pr", placeholder: "pull request title (optional)" });
  const form = h("form", { class: "row card", id: "job-form" }, h("label", null, "Command (sh -c)", cmd), h("label", null, "Repository", repo),
    h("label", null, "Push", push), h("label", null, "Pull request", prTitle), h("button", { type: "submit" }, "Start job"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    const body = { command: ["sh", "-c", cmd.value] };
    if (repo.value.trim()) body.repo = repo.value.trim();
    if (push.checked) body.push = true;
    if (prTitle.value.trim()) body.pull_request = { title: prTitle.value.trim(), body: "" };
    try {
      const j = await post("/v1/jobs", body);
      toast("Queued " + j.id);
      location.hash = "#/job/" + encodeURIComponent(j.id);
    } catch (x) { err.textContent = x.status === 404 ? "This airlockd has no jobs API." : x.message; }
  });
  replace(main, h("h1", null, "Jobs"), form, err, list);
  async function load() {
    try {
      const r = await get("/v1/jobs");
      const jobs = (r.jobs || []).slice();
      replace(list, jobs.length === 0 ? h("p", { class: "muted" }, "No jobs yet.") :
        table(["Job", "State", "Exit", "Branch", "Pull request", "Created"], jobs.map((j) => [
          h("a", { href: "#/job/" + encodeURIComponent(j.id), class: "mono" }, j.id), stateSpan(j.state),
          j.exit_code === null || j.exit_code === undefined ? "" : String(j.exit_code),
          h("span", { class: "mono" }, j.branch || ""),
          j.pull_request_url ? h("a", { href: j.pull_request_url, target: "_blank", rel: "noopener noreferrer" }, j.pull_request_url) : "",
          fmtTime(j.created_at)])));
    } catch (x) {
      replace(list, h("p", { class: "error" }, x.status === 404 ? "This airlockd has no jobs API (/v1/jobs)." : x.message));
    }
  }
  await load();
  const t = setInterval(load, 3000);
  return () => clearInterval(t);
}
