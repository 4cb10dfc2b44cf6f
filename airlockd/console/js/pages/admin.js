// Admin (admins only, by GET /v1/me; the API refuses the rest with 404):
// users (GET /v1/admin/users), keys (GET /v1/admin/keys, never a key's
// value) and machine metrics (GET /metrics, Prometheus text). Read-only:
// users and keys are created and revoked on the host (`airlock admin`).
import { raw, get, me, enc } from "../api.js";
import { h, replace, table, fmtTime } from "../dom.js";

// Parses Prometheus text: [{name, labels, value}] (comments skipped).
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (m) out.push({ name: m[1], labels: m[3] || "", value: m[4] });
  }
  return out;
}

export async function render(main) {
  const who = await me();
  if (!who.admin) {
    replace(main, h("h1", null, "Admin"), h("p", { class: "error", id: "not-admin" }, "This page is for admins."));
    return null;
  }
  const users = h("div", { id: "users" });
  const keys = h("div", { id: "keys" });
  const keyUser = h("select", { id: "keys-user" }, h("option", { value: "" }, "every user"));
  async function loadKeys() {
    try {
      const j = await get("/v1/admin/keys" + (keyUser.value ? "?user=" + enc(keyUser.value) : ""));
      replace(keys, table(["Id", "User", "Name", "Created", "Revoked"], j.keys.map((k) => [
        h("span", { class: "mono" }, k.id), k.user, k.name || "", fmtTime(k.created_at), k.revoked_at ? fmtTime(k.revoked_at) : ""])));
    } catch (x) { replace(keys, h("p", { class: "error" }, x.message)); }
  }
  async function loadUsers() {
    const j = await get("/v1/admin/users");
    replace(users, table(["User", "Admin", "Created", "Live keys", "Live sessions"], j.users.map((u) => [
      u.name, u.admin ? "yes" : "", fmtTime(u.created_at), String(u.keys), String(u.live_sessions)])));
    const was = keyUser.value;
    replace(keyUser, h("option", { value: "" }, "every user"), j.users.map((u) => h("option", { value: u.name }, u.name)));
    keyUser.value = was;
  }
  keyUser.addEventListener("input", loadKeys);
  const metrics = h("div", { id: "metrics" });
  const when = h("p", { class: "muted" });
  async function load() {
    try {
      const r = await raw("GET", "/metrics");
      const rows = parseMetrics(await r.text()).filter((m) => !/_bucket$/.test(m.name));
      replace(metrics, table(["Metric", "Labels", "Value"], rows.map((m) => [h("span", { class: "mono" }, m.name), h("span", { class: "mono" }, m.labels), m.value])));
      when.textContent = "updated " + new Date().toLocaleTimeString();
    } catch (x) { replace(metrics, h("p", { class: "error" }, x.message)); }
  }
  replace(main, h("h1", null, "Admin"),
    h("h2", null, "Users"), users,
    h("h2", null, "Keys"), h("p", { class: "row" }, h("label", null, "User", keyUser)), keys,
    h("div", { class: "card" },
      h("p", null, "Read-only here: an operator creates and revokes users and keys on the host, against the state directory (this works while the daemon runs):"),
      h("pre", { class: "out" }, "airlock admin user ls\nairlock admin user add NAME [--admin] [--max-sessions N] [--max-memory-mb N]\nairlock admin key ls [--user NAME]\nairlock admin key create --user NAME [--name LABEL]\nairlock admin key revoke k_…")),
    h("h2", null, "Machine metrics"), when, metrics);
  await Promise.all([loadUsers().catch((x) => replace(users, h("p", { class: "error" }, x.message))), loadKeys(), load()]);
  const t = setInterval(load, 5000);
  return () => clearInterval(t);
}
