// Admin: machine metrics (GET /metrics, Prometheus text) and a note on
// users and keys, which airlockd manages on the host (`airlock admin`),
// not over HTTP.
import { raw } from "../api.js";
import { h, replace, table } from "../dom.js";

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
    h("h2", null, "Users and keys"),
    h("div", { class: "card" },
      h("p", null, "airlockd has no HTTP API for users and keys: an operator manages them on the host, against the state directory (this works while the daemon runs):"),
      h("pre", { class: "out" }, "airlock admin user ls\nairlock admin user add NAME [--admin] [--max-sessions N] [--max-memory-mb N]\nairlock admin key ls [--user NAME]\nairlock admin key create --user NAME [--name LABEL]\nairlock admin key revoke k_…")),
    h("h2", null, "Machine metrics"), when, metrics);
  await load();
  const t = setInterval(load, 5000);
  return () => clearInterval(t);
}
