// One session: its details, a command with live output (the exec stream),
// a terminal (the tty WebSocket), files, and its approvals.
import { get, post, del, raw, execStream, subscribe, getKey, enc } from "../api.js";
import { h, replace, table, stateSpan, fmtTime, toast } from "../dom.js";
import { Terminal } from "../term.js";

function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export async function render(main, params) {
  const sid = params[0] || "";
  const base = "/v1/sessions/" + enc(sid);
  const s = await get(base);
  const cleanups = [];
  const info = h("dl", { class: "kv card", id: "session-info" });
  function showInfo(x) {
    const meta = x.metadata && typeof x.metadata === "object" ? Object.entries(x.metadata).map(([k, v]) => `${k}=${v}`).join(", ") : "";
    replace(info,
      h("dt", null, "State"), h("dd", { id: "session-state" }, stateSpan(x.state), x.end_reason ? " (" + x.end_reason + ")" : ""),
      h("dt", null, "Mode"), h("dd", null, x.mode),
      h("dt", null, "User"), h("dd", null, x.user),
      h("dt", null, "Metadata"), h("dd", { class: "meta" }, meta),
      h("dt", null, "Repository"), h("dd", { class: "mono" }, x.repo || "—", x.branch ? " @ " + x.branch : ""),
      h("dt", null, "Created"), h("dd", null, fmtTime(x.created_at)),
      h("dt", null, "Expires"), h("dd", null, fmtTime(x.expires_at)));
  }
  showInfo(s);

  const tabs = h("div", { class: "tabs" });
  const body = h("div");
  const views = { run: runView, terminal: termView, files: filesView, approvals: approvalsView };
  let viewCleanup = null;
  function pick(name) {
    if (viewCleanup) { viewCleanup(); viewCleanup = null; }
    for (const b of tabs.children) b.classList.toggle("active", b.dataset.tab === name);
    viewCleanup = views[name](body) || null;
  }
  for (const [name, label] of [["run", "Run"], ["terminal", "Terminal"], ["files", "Files"], ["approvals", "Approvals"]])
    tabs.append(h("button", { type: "button", dataset: { tab: name }, id: "tab-" + name, onclick: () => pick(name) }, label));

  const delBtn = h("button", { type: "button", class: "danger", onclick: async () => {
    if (!confirm("Delete session " + sid + "?")) return;
    try { showInfo(await del(base)); toast("Deleted"); } catch (x) { toast(x.message); }
  } }, "Delete");

  replace(main, h("h1", { class: "mono" }, "Session ", sid), info, h("p", null, delBtn), tabs, body);
  // this session's events, from the tab's one events stream
  const mine = (e) => e.data && typeof e.data === "object" && e.data.session === sid;
  cleanups.push(subscribe((e) => {
    if (mine(e) && e.event === "state") get(base).then(showInfo).catch(() => {});
  }));
  pick("run");
  return () => { if (viewCleanup) viewCleanup(); cleanups.forEach((f) => f()); };

  // -- run a command, output live ------------------------------------------
  function runView(el) {
    const cmd = h("input", { id: "cmd", class: "wide", placeholder: "make test", autocomplete: "off" });
    const btn = h("button", { type: "submit", id: "run" }, "Run");
    const stop = h("button", { type: "button", class: "secondary", disabled: true }, "Stop");
    const out = h("pre", { class: "out", id: "output" });
    const status = h("p", { id: "run-status", class: "muted" });
    let ctl = null;
    const form = h("form", { class: "row card" }, h("label", null, "Command (sh -c)", cmd), btn, stop);
    stop.addEventListener("click", () => { if (ctl) ctl.abort(); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!cmd.value.trim()) return;
      replace(out);
      status.textContent = "running…";
      btn.disabled = true; stop.disabled = false;
      ctl = new AbortController();
      const dec = { stdout: new TextDecoder(), stderr: new TextDecoder() };
      const add = (text, cls) => { out.append(cls ? h("span", { class: cls }, text) : document.createTextNode(text)); out.scrollTop = out.scrollHeight; };
      try {
        await execStream(sid, { shell: cmd.value, notices: true }, (m) => {
          if (m.type === "stdout" || m.type === "stderr") {
            const text = m.data !== undefined ? m.data : dec[m.type].decode(b64bytes(m.data_b64 || ""), { stream: true });
            add(text, m.type === "stderr" ? "err" : null);
          } else if (m.type === "start") {
            status.textContent = "running as " + m.process;
          } else if (m.type === "notice" && m.data) {
            const d = m.data;
            if (m.event === "approval") {
              add(`[waiting for approval of ${d.host}:${d.port} (${d.approval})] `, "note");
              out.append(approveButtons(d.approval, () => {}));
              add("\n");
            } else {
              add(`[network ${d.decision}: ${d.host}:${d.port} ${d.reason || ""}]\n`, "note");
            }
          } else if (m.type === "exit") {
            status.textContent = `exited: code ${m.code}${m.signal ? " signal " + m.signal : ""} (${m.reason})`;
            status.dataset.exit = String(m.code);
          }
        }, ctl.signal);
      } catch (x) {
        status.textContent = x.name === "AbortError" ? "stopped" : "error: " + x.message;
      } finally {
        btn.disabled = false; stop.disabled = true; ctl = null;
      }
    });
    replace(el, form, status, out);
    cmd.focus();
    return () => { if (ctl) ctl.abort(); };
  }

  function approveButtons(aid, after) {
    const span = h("span", { class: "approve-inline" });
    const decide = async (decision) => {
      try {
        const a = await post(base + "/approvals/" + enc(aid), { decision });
        replace(span, stateSpan(a.state));
        after();
      } catch (x) { toast(x.message); }
    };
    span.append(h("button", { type: "button", class: "ok", dataset: { approval: aid }, onclick: () => decide("allow") }, "Allow"), " ",
      h("button", { type: "button", class: "danger", onclick: () => decide("deny") }, "Deny"));
    return span;
  }

  // -- terminal over the tty WebSocket ------------------------------------
  function termView(el) {
    const shell = h("input", { id: "term-cmd", value: "bash -i", autocomplete: "off" });
    const btn = h("button", { type: "submit", id: "term-open" }, "Open terminal");
    const status = h("p", { class: "muted", id: "term-status" });
    const screen = h("div", { id: "terminal" });
    let ws = null, term = null;
    const form = h("form", { class: "row card" }, h("label", null, "Command", shell), btn);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (ws) ws.close();
      if (term) term.dispose();
      let ready = false;
      term = new Terminal(screen, {
        onData: (bytes) => { if (ws && ws.readyState === 1) ws.send(bytes); },
        onResize: (rows, cols) => { if (ws && ws.readyState === 1 && ready) ws.send(JSON.stringify({ resize: { rows, cols } })); },
      });
      status.textContent = "starting…";
      try {
        const argv = shell.value.trim().split(/\s+/).filter(Boolean);
        const p = await post(base + "/exec", { argv, tty: { rows: term.rows, cols: term.cols }, background: true, env: { TERM: "xterm" } });
        const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + base + "/processes/" + enc(p.id) + "/tty";
        // a browser cannot send Authorization on a WebSocket: the key goes
        // as a subprotocol, which airlockd reads for this route only
        ws = new WebSocket(url, ["airlock.v1", "airlock.bearer." + getKey()]);
        ws.binaryType = "arraybuffer";
        ws.onopen = () => { ready = true; status.textContent = "connected to " + p.id; term.el.focus(); };
        ws.onmessage = (m) => {
          if (typeof m.data === "string") {
            try { const j = JSON.parse(m.data); if (j.exit) status.textContent = `exited: code ${j.exit.code} (${j.exit.reason})`; } catch (x) { /* ignore */ }
          } else {
            term.write(new Uint8Array(m.data));
          }
        };
        ws.onclose = (c) => { if (!/exited/.test(status.textContent)) status.textContent = "closed" + (c.reason ? ": " + c.reason : ""); };
      } catch (x) {
        status.textContent = "error: " + x.message;
      }
    });
    replace(el, form, status, screen);
    return () => { if (ws) ws.close(); if (term) term.dispose(); };
  }

  // -- files -----------------------------------------------------------------
  function filesView(el) {
    let dir = "";
    const where = h("p", { class: "mono", id: "files-path" });
    const listing = h("div", { id: "files" });
    const upload = h("input", { type: "file", id: "upload", multiple: true });
    const mkdir = h("input", { id: "mkdir", placeholder: "new folder" });
    const fileUrl = (p) => base + "/files/" + p.split("/").map(enc).join("/");
    async function load() {
      where.textContent = "/workspace/" + dir;
      try {
        const r = await get(fileUrl(dir));
        const up = dir ? [[h("button", { type: "button", class: "link", onclick: () => { dir = dir.split("/").slice(0, -1).join("/"); load(); } }, ".."), "dir", "", "", ""]] : [];
        replace(listing, table(["Name", "Type", "Size", "Mode", "Modified"], up.concat(r.entries.map((e) => {
          const path = dir ? dir + "/" + e.name : e.name;
          const name = e.type === "dir"
            ? h("button", { type: "button", class: "link", onclick: () => { dir = path; load(); } }, e.name + "/")
            : e.type === "file" ? h("button", { type: "button", class: "link", onclick: () => download(path, e.name) }, e.name) : e.name;
          return [name, e.type, e.type === "file" ? String(e.size) : "", e.mode, fmtTime(e.mtime)];
        }))));
      } catch (x) { replace(listing, h("p", { class: "error" }, x.message)); }
    }
    async function download(path, name) {
      try {
        const r = await raw("GET", fileUrl(path));
        const url = URL.createObjectURL(await r.blob());
        const a = h("a", { download: name });
        a.href = url; // a blob: URL made here, not data from the API
        document.body.append(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (x) { toast(x.message); }
    }
    upload.addEventListener("change", async () => {
      for (const f of upload.files) {
        try { await raw("PUT", fileUrl(dir ? dir + "/" + f.name : f.name), { body: f, headers: { "Content-Type": "application/octet-stream" } }); toast("Uploaded " + f.name); } catch (x) { toast(f.name + ": " + x.message); }
      }
      upload.value = "";
      load();
    });
    const mk = h("button", { type: "button", class: "secondary", onclick: async () => {
      const n = mkdir.value.trim();
      if (!n) return;
      try { await raw("PUT", fileUrl(dir ? dir + "/" + n : n) + "?type=dir"); mkdir.value = ""; load(); } catch (x) { toast(x.message); }
    } }, "Make folder");
    replace(el, h("div", { class: "row card" }, h("label", null, "Upload", upload), h("label", null, "Folder", mkdir), mk,
      h("button", { type: "button", class: "secondary", onclick: load }, "Refresh")), where, listing);
    load();
    return null;
  }

  // -- approvals of this session -----------------------------------------
  function approvalsView(el) {
    const list = h("div", { id: "session-approvals" });
    async function load() {
      try {
        const r = await get(base + "/approvals");
        replace(list, r.approvals.length === 0 ? h("p", { class: "muted" }, "No approvals.") :
          table(["Approval", "Kind", "What", "State", "Created", ""], r.approvals.slice().reverse().map((a) => [
            h("span", { class: "mono" }, a.id), a.kind,
            h("span", { class: "mono" }, a.kind === "network" ? `${a.host}:${a.port}` : (a.argv || []).join(" ")),
            stateSpan(a.state), fmtTime(a.created_at),
            a.state === "pending" ? approveButtons(a.id, load) : ""])));
      } catch (x) { replace(list, h("p", { class: "error" }, x.message)); }
    }
    const unsub = subscribe((e) => { if (mine(e) && e.event === "approval") load(); });
    replace(el, list);
    load();
    return unsub;
  }
}
