// Approvals: every pending network and command approval of the caller's
// sessions (admins: all), kept live by the events stream; allow or deny.
import { get, post, subscribe, enc } from "../api.js";
import { h, replace, stateSpan, fmtTime, toast } from "../dom.js";

// approval id + session -> approval (with .session)
const pending = new Map();
let watcher = null, badge = null;
const listeners = new Set();

function changed() {
  if (badge) { badge.textContent = String(pending.size); badge.hidden = pending.size === 0; }
  for (const f of listeners) f();
}

async function loadAll() {
  const r = await get("/v1/sessions?state=ready&limit=500");
  pending.clear();
  await Promise.all(r.sessions.map(async (s) => {
    try {
      const a = await get("/v1/sessions/" + enc(s.id) + "/approvals");
      for (const x of a.approvals) if (x.state === "pending") pending.set(s.id + "/" + x.id, { ...x, session: s.id });
    } catch (e) { /* the session ended meanwhile */ }
  }));
  changed();
}

// Keeps the badge (count of pending approvals) up to date while signed in.
export function watchPending(el) {
  badge = el;
  if (watcher) return;
  loadAll().catch(() => {});
  watcher = subscribe((e) => {
    if (e.event !== "approval" || !e.data || typeof e.data !== "object") return;
    const d = e.data;
    const k = d.session + "/" + d.approval;
    if (d.state === "pending") {
      pending.set(k, { id: d.approval, session: d.session, kind: d.kind, host: d.host, port: d.port, argv: d.argv, state: d.state, created_at: d.time });
    } else {
      pending.delete(k);
    }
    changed();
  });
}

export function stopWatching() {
  if (watcher) watcher();
  watcher = null;
  pending.clear();
  changed();
}

export async function render(main) {
  const list = h("div", { id: "approvals" });
  function draw() {
    const items = [...pending.values()];
    replace(list, items.length === 0 ? h("p", { class: "muted" }, "Nothing waits for an approval.") :
      items.map((a) => {
        const what = a.kind === "network" ? `network: ${a.host}:${a.port}` : "command: " + (a.argv || []).join(" ");
        const decide = async (decision) => {
          try {
            const r = await post("/v1/sessions/" + enc(a.session) + "/approvals/" + enc(a.id), { decision });
            toast(`${a.id}: ${r.state}`);
            pending.delete(a.session + "/" + a.id);
            changed();
          } catch (x) { toast(x.message); }
        };
        return h("div", { class: "approval card", dataset: { approval: a.id } },
          h("span", { class: "what mono" }, what),
          h("a", { href: "#/session/" + enc(a.session), class: "mono" }, a.session),
          stateSpan(a.state), h("span", { class: "muted" }, fmtTime(a.created_at)),
          h("button", { type: "button", class: "ok", onclick: () => decide("allow") }, "Allow"),
          h("button", { type: "button", class: "danger", onclick: () => decide("deny") }, "Deny"));
      }));
  }
  listeners.add(draw);
  replace(main, h("h1", null, "Approvals"),
    h("p", { class: "muted" }, "Requests held until somebody decides: network requests to a host in neither list, and commands of regular-mode sessions. They appear here as they happen."),
    list);
  await loadAll();
  draw();
  return () => listeners.delete(draw);
}
