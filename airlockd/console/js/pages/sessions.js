// Sessions: the list (live through the events stream) and a create form.
import { get, post, subscribe } from "../api.js";
import { h, replace, table, stateSpan, fmtTime, toast } from "../dom.js";

function metaText(m) {
  if (!m || typeof m !== "object") return "";
  return Object.entries(m).map(([k, v]) => `${k}=${v}`).join(", ");
}

export async function render(main) {
  const list = h("div", { id: "session-list" });
  const err = h("p", { class: "error" });
  const mode = h("select", { id: "new-mode" }, h("option", { value: "auto-allow" }, "auto-allow"), h("option", { value: "regular" }, "regular"));
  const allow = h("input", { id: "new-allow", placeholder: "example.com, *.pypi.org" });
  const name = h("input", { id: "new-name", placeholder: "what it is for" });
  const repo = h("input", { id: "new-repo", placeholder: "https://github.com/owner/repo (optional)", class: "wide" });
  const strict = h("input", { id: "new-strict", type: "checkbox" });
  const btn = h("button", { type: "submit", id: "create" }, "Create session");
  const form = h("form", { class: "card row", id: "create-form" },
    h("label", null, "Name", name), h("label", null, "Mode", mode),
    h("label", null, "Allowed domains", allow), h("label", null, "Repository", repo),
    h("label", null, "Strict allowlist", strict), btn);

  async function load() {
    const all = [];
    let cursor = null;
    for (let i = 0; i < 20; i++) {
      const r = await get("/v1/sessions?limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      all.push(...r.sessions);
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    all.reverse(); // newest first
    replace(list, all.length === 0 ? h("p", { class: "muted" }, "No sessions yet.") :
      table(["Session", "State", "Mode", "Name / metadata", "User", "Created"], all.map((s) => [
        h("a", { href: "#/session/" + encodeURIComponent(s.id), class: "mono" }, s.id),
        stateSpan(s.state), s.mode, h("span", { class: "meta" }, metaText(s.metadata)),
        s.user, fmtTime(s.created_at)])));
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    const body = { mode: mode.value };
    if (name.value.trim()) body.metadata = { name: name.value.trim() };
    const domains = allow.value.split(/[\s,]+/).filter(Boolean);
    if (domains.length || strict.checked) body.settings = { network: { allowedDomains: domains, strictAllowlist: strict.checked } };
    if (repo.value.trim()) body.repo = repo.value.trim();
    btn.disabled = true;
    btn.textContent = "Creating…";
    try {
      const s = await post("/v1/sessions", body);
      toast("Created " + s.id);
      location.hash = "#/session/" + encodeURIComponent(s.id);
    } catch (x) {
      err.textContent = x.message;
    } finally {
      btn.disabled = false;
      btn.textContent = "Create session";
    }
  });

  replace(main, h("h1", null, "Sessions"), form, err, list);
  await load();
  let timer = null;
  const unsub = subscribe((e) => {
    if (e.event === "state") { clearTimeout(timer); timer = setTimeout(() => load().catch(() => {}), 200); }
  });
  return () => { unsub(); clearTimeout(timer); };
}
