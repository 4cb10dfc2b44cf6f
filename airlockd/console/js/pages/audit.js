// The audit trail, two tabs. "Trail" (#/audit): the audit table as
// GET /v1/audit gives it, newest first, with its filters (session, kind,
// user for an admin, time window, text) and "Older" pages through the
// cursor: every changing API call, network decision (NET), push with its
// checks (GIT) and credential use or refusal (CRED), kept for good.
// "Live events" (#/audit/live): the events airlockd retains in memory,
// replayed from the oldest (Last-Event-ID: 0) and then live.
import { events, get, me, enc } from "../api.js";
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

async function renderLive(main) {
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
  replace(main, h("h1", null, "Audit trail"), tabs("live"),
    h("p", { class: "muted" }, "The events airlockd retains in memory (event_retention), from the oldest, then live. The durable record is the Trail tab."),
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

function tabs(which) {
  return h("p", { class: "row", id: "audit-tabs" },
    h("a", { href: "#/audit", class: which === "trail" ? "active" : "", id: "tab-trail" }, "Trail"), " · ",
    h("a", { href: "#/audit/live", class: which === "live" ? "active" : "", id: "tab-live" }, "Live events"));
}

const KINDS = [["", "any"], ["NET", "network decisions"], ["GIT", "pushes"], ["CRED", "credential uses"],
  ["POST", "API: POST"], ["PUT", "API: PUT"], ["PATCH", "API: PATCH"], ["DELETE", "API: DELETE"]];

// A datetime-local input's value as Unix ms ("" when empty or unreadable).
function ms(input) {
  if (!input.value) return "";
  const t = new Date(input.value).getTime();
  return isNaN(t) ? "" : String(t);
}

async function renderTrail(main) {
  const who = await me();
  const kind = h("select", { id: "a-method" }, KINDS.map(([v, t]) => h("option", { value: v }, t)));
  const session = h("input", { id: "a-session", placeholder: "s_…" });
  const user = who.admin ? h("input", { id: "a-user", placeholder: "any user" }) : null;
  const since = h("input", { id: "a-since", type: "datetime-local" });
  const until = h("input", { id: "a-until", type: "datetime-local" });
  const text = h("input", { id: "a-text", placeholder: "host, repo, path…" });
  const count = h("p", { class: "muted", id: "audit-count" });
  const list = h("div", { id: "audit-table" });
  const more = h("button", { type: "button", id: "audit-more", hidden: true }, "Older");
  let rows = [], cursor = null, gen = 0;
  function query() {
    const q = new URLSearchParams({ limit: "100" });
    if (kind.value) q.set("method", kind.value);
    if (session.value.trim()) q.set("session", session.value.trim());
    if (user && user.value.trim()) q.set("user", user.value.trim());
    if (ms(since)) q.set("since", ms(since));
    if (ms(until)) q.set("until", ms(until));
    if (text.value.trim()) q.set("q", text.value.trim());
    if (cursor) q.set("cursor", cursor);
    return "/v1/audit?" + q.toString();
  }
  function draw() {
    count.textContent = `${rows.length} row${rows.length === 1 ? "" : "s"}${cursor ? " (more below)" : ""}`;
    more.hidden = !cursor;
    replace(list, table(["Time", "User", "Kind", "What", "Status", "Session"], rows.map((r) => [
      fmtTime(r.time), r.user || "", r.method, h("span", { class: "mono" }, r.path),
      r.status ? String(r.status) : "",
      r.session ? h("a", { href: "#/session/" + enc(r.session), class: "mono" }, r.session) : ""])));
  }
  async function load(reset) {
    const mine = reset ? ++gen : gen;
    if (reset) { rows = []; cursor = null; }
    try {
      const j = await get(query());
      if (mine !== gen) return;
      rows = rows.concat(j.rows);
      cursor = j.next_cursor;
      draw();
    } catch (x) {
      if (mine === gen) replace(list, h("p", { class: "error" }, x.message));
    }
  }
  let timer = null;
  const reload = () => { clearTimeout(timer); timer = setTimeout(() => load(true), 250); };
  for (const el of [kind, session, user, since, until, text]) if (el) el.addEventListener("input", reload);
  more.addEventListener("click", () => load(false));
  replace(main, h("h1", null, "Audit trail"), tabs("trail"),
    h("p", { class: "muted" }, who.admin ? "Every user's rows (you are an admin)." : "The rows of your own calls and sessions."),
    h("form", { class: "row card", id: "audit-filters", onsubmit: (e) => { e.preventDefault(); load(true); } },
      h("label", null, "Kind", kind), h("label", null, "Session", session), user ? h("label", null, "User", user) : null,
      h("label", null, "Since", since), h("label", null, "Until", until), h("label", null, "Text", text),
      h("button", { type: "submit" }, "Search")),
    count, list, more);
  await load(true);
  return () => { clearTimeout(timer); gen++; };
}

export async function render(main, params) {
  return (params && params[0] === "live") ? renderLive(main) : renderTrail(main);
}
