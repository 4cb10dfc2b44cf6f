// The audit trail as the API gives it: the events airlockd retains
// (network decisions, pushes with their checks, credential uses and
// refusals, approvals, process starts and exits, state changes), replayed
// from the oldest (Last-Event-ID: 0) and then live, with filters. airlockd
// has no HTTP route for its audit table (docs/console.md says so): that one
// is read on the host with `airlock admin`.
import { events } from "../api.js";
import { h, replace, table, stateSpan, fmtTime } from "../dom.js";

const TYPES = ["network", "push", "credential", "credential-refused", "approval", "policy", "process_start", "process_exit", "state", "limit"];

function summary(e) {
  const d = e.data && typeof e.data === "object" ? e.data : {};
  switch (e.event) {
  case "network": return [`${d.host}:${d.port}`, d.decision, [d.reason, d.rule ? "rule " + d.rule : "", d.method ? d.method + " " + (d.path || "") : ""].filter(Boolean).join(" · ")];
  case "push": return [d.repo || "", d.decision, (d.refs || []).map((r) => `${r.ref} ${(r.old || "").slice(0, 8)}→${(r.new || "").slice(0, 8)}${r.refused ? " refused: " + r.refused : ""}`).join("; ") + (d.reason ? " · " + d.reason : "")];
  case "credential": case "credential-refused": return [`${d.host}:${d.port}`, d.decision || (e.event === "credential" ? "used" : "refused"), `${d.secret || ""} ${d.method || ""} ${d.path || ""} ${d.status || ""} ${d.reason || ""}`];
  case "approval": return [d.kind === "network" ? `${d.host}:${d.port}` : (d.argv || []).join(" "), d.state, d.approval || ""];
  case "process_start": return [(d.argv || []).join(" "), "start", d.process || ""];
  case "process_exit": return [d.process || "", d.reason, "code " + d.code];
  case "state": return ["", d.state, d.reason || ""];
  case "limit": return [d.process || "", d.limit, ""];
  case "policy": return ["", "changed", JSON.stringify(d.settings || {})];
  default: return ["", "", typeof e.data === "string" ? e.data : JSON.stringify(e.data)];
  }
}

export async function render(main) {
  const rows = [];
  const type = h("select", { id: "f-type" }, h("option", { value: "" }, "any"), TYPES.map((t) => h("option", { value: t }, t)));
  const session = h("input", { id: "f-session", placeholder: "s_…" });
  const decision = h("input", { id: "f-decision", placeholder: "deny, refused, allowed…" });
  const text = h("input", { id: "f-text", placeholder: "host, repo, secret…" });
  const count = h("p", { class: "muted", id: "audit-count" });
  const status = h("span", { class: "muted" });
  const list = h("div", { id: "audit" });
  let timer = null;
  function draw() {
    timer = null;
    const want = (r) => (!type.value || r.event === type.value) &&
      (!session.value || (r.session || "").includes(session.value.trim())) &&
      (!decision.value || (r.decision || "").toLowerCase().includes(decision.value.trim().toLowerCase())) &&
      (!text.value || (r.what + " " + r.detail).toLowerCase().includes(text.value.trim().toLowerCase()));
    const shown = rows.filter(want).slice(-500).reverse();
    count.textContent = `${shown.length} shown of ${rows.length} retained events`;
    replace(list, table(["Time", "Event", "Session", "What", "Decision", "Detail"], shown.map((r) => [
      fmtTime(r.time), r.event, h("a", { href: "#/session/" + encodeURIComponent(r.session || ""), class: "mono" }, r.session || ""),
      h("span", { class: "mono" }, r.what), stateSpan(r.decision), h("span", { class: "mono" }, r.detail)])));
  }
  const redraw = () => { if (!timer) timer = setTimeout(draw, 100); };
  for (const el of [type, session, decision, text]) el.addEventListener("input", redraw);
  replace(main, h("h1", null, "Audit trail"),
    h("p", { class: "muted" }, "The events airlockd retains in memory (event_retention), from the oldest, then live. The full audit table (every changing API call) is on the host: airlock admin."),
    h("form", { class: "row card", onsubmit: (e) => e.preventDefault() }, h("label", null, "Event", type), h("label", null, "Session", session),
      h("label", null, "Decision", decision), h("label", null, "Text", text), status),
    count, list);
  draw();
  const ev = events("/v1/events", (e) => {
    const d = e.data && typeof e.data === "object" ? e.data : {};
    const [what, dec, detail] = summary(e);
    rows.push({ time: d.time, event: e.event, session: d.session, what: String(what || ""), decision: dec === undefined || dec === null ? "" : String(dec), detail: String(detail || "").trim() });
    if (rows.length > 5000) rows.shift();
    redraw();
  }, { fromId: 0, onState: (s) => { status.textContent = s === "open" ? "live" : s; } });
  return () => { ev.stop(); clearTimeout(timer); };
}
