// The console's entry point: sign-in, the navigation and a hash router
// (#/sessions, #/session/ID, #/approvals, #/jobs, #/job/ID, #/audit,
// #/admin). Each page is a module with render(main, params) that may
// return a cleanup function (streams it opened are closed on leaving).
import { getKey, clearKey, me } from "./api.js";
import { h, replace } from "./dom.js";
import * as signin from "./pages/signin.js";
import * as sessions from "./pages/sessions.js";
import * as session from "./pages/session.js";
import * as approvals from "./pages/approvals.js";
import * as jobs from "./pages/jobs.js";
import * as job from "./pages/job.js";
import * as audit from "./pages/audit.js";
import * as admin from "./pages/admin.js";

const pages = { sessions, session, approvals, jobs, job, audit, admin };
const main = document.getElementById("main");
const nav = document.getElementById("nav");
let cleanup = null;

let generation = 0;
async function show() {
  const mine = ++generation;
  if (cleanup) { try { cleanup(); } catch (e) { /* gone anyway */ } cleanup = null; }
  const parts = location.hash.replace(/^#\/?/, "").split("/").map((p) => { try { return decodeURIComponent(p); } catch (e) { return ""; } });
  if (!getKey()) {
    nav.hidden = true;
    signin.render(main, () => { if (location.hash === "#/sessions") show(); else location.hash = "#/sessions"; });
    return;
  }
  nav.hidden = false;
  const adminLink = nav.querySelector('a[data-page="admin"]');
  try { adminLink.hidden = !(await me()).admin; } catch (e) { adminLink.hidden = true; }
  if (mine !== generation) return;
  approvals.watchPending(document.getElementById("pending-count"));
  const name = pages[parts[0]] ? parts[0] : "sessions";
  for (const a of nav.querySelectorAll("a[data-page]")) {
    const active = a.dataset.page === name || (a.dataset.page + "s") === name || a.dataset.page === name + "s";
    a.classList.toggle("active", active);
  }
  replace(main, h("p", { class: "muted" }, "Loading…"));
  try {
    const done = (await pages[name].render(main, parts.slice(1))) || null;
    // a later navigation while this page loaded: it is not shown any more
    if (mine !== generation) { if (done) done(); } else cleanup = done;
  } catch (e) {
    if (mine === generation) replace(main, h("p", { class: "error" }, "Error: " + e.message));
  }
}

document.getElementById("signout").addEventListener("click", () => {
  clearKey();
  approvals.stopWatching();
  location.hash = "#/";
  show();
});
window.addEventListener("airlock-unauthorized", () => {
  clearKey();
  approvals.stopWatching();
  show();
});
window.addEventListener("hashchange", show);
show();
