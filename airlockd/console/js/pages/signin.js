// Sign in with an API key: checked with one call, then kept in
// sessionStorage for this tab only.
import { setKey } from "../api.js";
import { h, replace } from "../dom.js";

export function render(main, done) {
  const key = h("input", { id: "apikey", type: "password", autocomplete: "off", spellcheck: "false", class: "wide", placeholder: "alk_…", required: true });
  const err = h("p", { class: "error", id: "signin-error" });
  const form = h("form", { class: "card signin", id: "signin" },
    h("h1", null, "Sign in"),
    h("p", { class: "muted" }, "Paste an API key (airlock admin key create). It stays in this tab's session storage and is sent as an Authorization header, never as a cookie."),
    h("label", null, "API key", key),
    h("p", null, h("button", { type: "submit" }, "Sign in")),
    err);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    const k = key.value.trim();
    try {
      // checked before it is kept: a refused key is never stored
      const r = await fetch("/v1/sessions?limit=1", { headers: { Authorization: "Bearer " + k }, credentials: "omit", cache: "no-store" });
      if (r.status === 401) { err.textContent = "That key is not valid."; return; }
      if (!r.ok) { err.textContent = "Error: HTTP " + r.status; return; }
      setKey(k);
      key.value = "";
      done();
    } catch (x) {
      err.textContent = "Error: " + x.message;
    }
  });
  replace(main, form);
  key.focus();
}
