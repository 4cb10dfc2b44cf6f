// The API client: the key lives in sessionStorage (gone when the tab
// closes) and goes out as "Authorization: Bearer"; never in a cookie, so
// there is no ambient credential for another site to ride on.
const KEY = "airlock.key";

export function getKey() { return sessionStorage.getItem(KEY); }
export function setKey(k) { sessionStorage.setItem(KEY, k); }
export function clearKey() { sessionStorage.removeItem(KEY); meCache = null; }

// GET /v1/me ({user, admin, key_id, ...}), asked once per key: whether to
// show the Admin page. The API enforces it anyway (404 for a non-admin).
let meCache = null;
export function me() {
  const k = getKey();
  if (!meCache || meCache.key !== k) {
    const p = get("/v1/me");
    meCache = { key: k, p };
    p.catch(() => { if (meCache && meCache.p === p) meCache = null; });
  }
  return meCache.p;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  const k = getKey();
  if (k) h.set("Authorization", "Bearer " + k);
  return h;
}

async function failure(r) {
  let code = "http_" + r.status, message = r.status + " " + r.statusText;
  try {
    const j = await r.json();
    if (j && j.error) { code = j.error.code || code; message = j.error.message || message; }
  } catch (e) { /* not JSON */ }
  if (r.status === 401) window.dispatchEvent(new CustomEvent("airlock-unauthorized"));
  return new ApiError(r.status, code, message);
}

// fetch with the key; throws ApiError on a status >= 400.
export async function raw(method, path, { body, headers: extra, signal } = {}) {
  const r = await fetch(path, { method, headers: headers(extra), body, signal, credentials: "omit", cache: "no-store" });
  if (!r.ok) throw await failure(r);
  return r;
}

// A JSON call: `body` (an object) is sent as JSON; returns the parsed answer.
export async function call(method, path, body) {
  const opts = {};
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers = { "Content-Type": "application/json" };
  }
  const r = await raw(method, path, opts);
  const t = await r.text();
  return t ? JSON.parse(t) : null;
}

export const get = (p) => call("GET", p);
export const post = (p, b) => call("POST", p, b === undefined ? {} : b);
export const del = (p) => call("DELETE", p);

// Reads a streamed body line by line: onLine(text) for each line.
export async function readLines(r, onLine) {
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, "");
      buf = buf.slice(i + 1);
      onLine(line);
    }
  }
  buf += dec.decode();
  if (buf) onLine(buf);
}

// POST …/exec streamed (NDJSON): onItem(obj) per line; resolves at the end.
export async function execStream(sid, body, onItem, signal) {
  const r = await raw("POST", `/v1/sessions/${encodeURIComponent(sid)}/exec`, {
    body: JSON.stringify(body), headers: { "Content-Type": "application/json" }, signal,
  });
  await readLines(r, (line) => {
    if (!line.trim()) return;
    try { onItem(JSON.parse(line)); } catch (e) { onItem({ type: "garbled", data: line }); }
  });
}

// A server-sent event stream read with fetch (EventSource cannot send
// the Authorization header). onEvent({id, event, data}) per event (data
// parsed as JSON when it is). Reconnects after a drop, from the last id,
// until stop() is called. Returns {stop}.
export function events(path, onEvent, { fromId = null, onState } = {}) {
  let lastId = fromId, stopped = false, ctl = null;
  async function once() {
    ctl = new AbortController();
    const extra = {};
    if (lastId !== null) extra["Last-Event-ID"] = String(lastId);
    const r = await raw("GET", path, { headers: extra, signal: ctl.signal });
    if (onState) onState("open");
    let ev = { event: "message", data: [], id: null };
    await readLines(r, (line) => {
      if (line === "") {
        if (ev.data.length) {
          const text = ev.data.join("\n");
          let data = text;
          try { data = JSON.parse(text); } catch (e) { /* text */ }
          if (ev.id !== null) lastId = ev.id;
          onEvent({ id: ev.id, event: ev.event, data });
        }
        ev = { event: "message", data: [], id: null };
        return;
      }
      if (line.startsWith(":")) return;
      const c = line.indexOf(":");
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? "" : line.slice(c + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") ev.event = value;
      else if (field === "data") ev.data.push(value);
      else if (field === "id") ev.id = value;
    });
  }
  (async () => {
    while (!stopped) {
      try { await once(); } catch (e) {
        if (stopped) break;
        if (e instanceof ApiError && (e.status === 401 || e.status === 404)) { if (onState) onState("error: " + e.message); break; }
      }
      if (stopped) break;
      if (onState) onState("reconnecting");
      await new Promise((res) => setTimeout(res, 2000));
    }
  })();
  return { stop() { stopped = true; if (ctl) ctl.abort(); } };
}

export const enc = encodeURIComponent;

// One /v1/events stream per tab, shared by every page that listens
// (browsers allow about six connections per server, streams included):
// subscribe(fn) returns the unsubscribe function; the stream opens with
// the first listener and closes with the last.
const hubListeners = new Set();
let hub = null;
export function subscribe(fn) {
  hubListeners.add(fn);
  if (!hub) hub = events("/v1/events", (e) => { for (const f of [...hubListeners]) { try { f(e); } catch (x) { console.error(x); } } });
  return () => {
    hubListeners.delete(fn);
    if (hubListeners.size === 0 && hub) { hub.stop(); hub = null; }
  };
}
