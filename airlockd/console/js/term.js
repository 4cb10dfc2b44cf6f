// A small terminal emulator: the common VT100/xterm subset a shell, less,
// top or vi send (cursor movement, erase, scroll regions, insert/delete,
// SGR colours, the alternate screen), drawn as rows of text spans (never
// HTML). Keys typed into it come out through onData as bytes.
const COLORS = ["#000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
  "#666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#fff"];

function blankCell(attr) { return { ch: " ", a: attr }; }
const DEFAULT_ATTR = { fg: -1, bg: -1, b: false, u: false, r: false };

export class Terminal {
  constructor(el, { onData, onResize } = {}) {
    this.el = el;
    this.onData = onData || (() => {});
    this.onResize = onResize || (() => {});
    this.rows = 24; this.cols = 80;
    this.attr = { ...DEFAULT_ATTR };
    this.dec = new TextDecoder("utf-8");
    this.state = "text"; this.params = ""; this.inter = "";
    this.cursorVisible = true;
    this.scrollback = [];
    this.reset();
    el.tabIndex = 0;
    el.classList.add("term");
    el.setAttribute("role", "textbox");
    el.setAttribute("aria-label", "terminal");
    el.addEventListener("keydown", (e) => this.key(e));
    el.addEventListener("paste", (e) => { e.preventDefault(); this.send((e.clipboardData || new DataTransfer()).getData("text")); });
    this.measureEl = document.createElement("span");
    this.measureEl.className = "measure";
    this.measureEl.textContent = "MMMMMMMMMM";
    this.screenEl = document.createElement("div");
    el.replaceChildren(this.screenEl, this.measureEl);
    this.ro = new ResizeObserver(() => this.fit());
    this.ro.observe(el);
    this.fit();
  }

  reset() {
    this.grid = [];
    for (let i = 0; i < this.rows; i++) this.grid.push(this.blankRow());
    this.x = 0; this.y = 0; this.top = 0; this.bottom = this.rows - 1;
    this.saved = { x: 0, y: 0, attr: { ...DEFAULT_ATTR } };
    this.wrapPending = false;
    this.dirty = true; this.schedule();
  }

  blankRow() { const r = []; for (let i = 0; i < this.cols; i++) r.push(blankCell(this.attr)); return r; }

  // Size from the element and the font; tells onResize when it changed.
  fit() {
    const w = this.measureEl.getBoundingClientRect().width / 10 || 8;
    const lh = parseFloat(getComputedStyle(this.el).lineHeight) || 17;
    const box = this.el.getBoundingClientRect();
    const cols = Math.max(20, Math.min(500, Math.floor((box.width - 8) / w)));
    const rows = Math.max(5, Math.min(200, Math.floor((box.height - 8) / lh)));
    if (cols !== this.cols || rows !== this.rows) this.resize(rows, cols);
  }

  resize(rows, cols) {
    const old = this.grid;
    this.rows = rows; this.cols = cols;
    this.grid = [];
    const start = Math.max(0, old.length - rows);
    for (let i = 0; i < rows; i++) {
      const src = old[start + i];
      const row = this.blankRow();
      if (src) for (let j = 0; j < Math.min(cols, src.length); j++) row[j] = src[j];
      this.grid.push(row);
    }
    this.y = Math.min(rows - 1, Math.max(0, this.y - start));
    this.x = Math.min(cols - 1, this.x);
    this.top = 0; this.bottom = rows - 1;
    this.dirty = true; this.schedule();
    this.onResize(rows, cols);
  }

  send(s) { if (s) this.onData(new TextEncoder().encode(s)); }

  key(e) {
    if (e.isComposing) return;
    const map = { Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b", ArrowUp: "\x1b[A", ArrowDown: "\x1b[B",
      ArrowRight: "\x1b[C", ArrowLeft: "\x1b[D", Home: "\x1b[H", End: "\x1b[F", Delete: "\x1b[3~",
      PageUp: "\x1b[5~", PageDown: "\x1b[6~", Insert: "\x1b[2~" };
    let s = null;
    if (e.ctrlKey && !e.altKey && !e.metaKey && e.key.length === 1) {
      const c = e.key.toLowerCase().charCodeAt(0);
      if (c >= 97 && c <= 122) s = String.fromCharCode(c - 96);
      else if (e.key === "[") s = "\x1b";
      else if (e.key === " ") s = "\x00";
      else if (e.key === "\\") s = "\x1c";
    } else if (map[e.key]) {
      s = map[e.key];
    } else if (e.key.length === 1 && !e.ctrlKey && !e.metaKey) {
      s = (e.altKey ? "\x1b" : "") + e.key;
    }
    if (s !== null) { e.preventDefault(); this.send(s); }
  }

  // Feeds bytes (Uint8Array) or a string from the program.
  write(data) {
    const text = typeof data === "string" ? data : this.dec.decode(data, { stream: true });
    for (const ch of text) this.feed(ch);
    this.dirty = true; this.schedule();
  }

  feed(ch) {
    const c = ch.codePointAt(0);
    switch (this.state) {
    case "esc": return this.esc(ch);
    case "csi":
      if (c >= 0x30 && c <= 0x3f) { this.params += ch; return; }
      if (c >= 0x20 && c <= 0x2f) { this.inter += ch; return; }
      this.state = "text";
      if (c >= 0x40 && c <= 0x7e) this.csi(ch);
      return;
    case "osc":
      if (c === 7) this.state = "text";
      else if (c === 0x1b) this.state = "osc-esc";
      return;
    case "osc-esc": this.state = ch === "\\" ? "text" : "osc"; return;
    case "charset": this.state = "text"; return;
    }
    if (c === 0x1b) { this.state = "esc"; return; }
    if (c < 0x20 || c === 0x7f) return this.control(c);
    this.print(ch);
  }

  control(c) {
    switch (c) {
    case 8: if (this.x > 0) this.x--; this.wrapPending = false; break;
    case 9: this.x = Math.min(this.cols - 1, (Math.floor(this.x / 8) + 1) * 8); break;
    case 10: case 11: case 12: this.lineFeed(); break;
    case 13: this.x = 0; this.wrapPending = false; break;
    default: break; // BEL and the rest: ignored
    }
  }

  print(ch) {
    if (this.wrapPending) { this.x = 0; this.lineFeed(); this.wrapPending = false; }
    this.grid[this.y][this.x] = { ch, a: this.attr };
    if (this.x === this.cols - 1) this.wrapPending = true; else this.x++;
  }

  lineFeed() {
    if (this.y === this.bottom) this.scrollUp(1);
    else if (this.y < this.rows - 1) this.y++;
  }

  scrollUp(n) {
    for (let i = 0; i < n; i++) {
      const gone = this.grid.splice(this.top, 1)[0];
      if (this.top === 0 && !this.alt) { this.scrollback.push(gone); if (this.scrollback.length > 1000) this.scrollback.shift(); }
      this.grid.splice(this.bottom, 0, this.blankRow());
    }
  }

  scrollDown(n) {
    for (let i = 0; i < n; i++) {
      this.grid.splice(this.bottom, 1);
      this.grid.splice(this.top, 0, this.blankRow());
    }
  }

  esc(ch) {
    this.state = "text";
    switch (ch) {
    case "[": this.state = "csi"; this.params = ""; this.inter = ""; break;
    case "]": this.state = "osc"; break;
    case "(": case ")": case "*": case "+": this.state = "charset"; break;
    case "7": this.saved = { x: this.x, y: this.y, attr: this.attr }; break;
    case "8": this.x = this.saved.x; this.y = this.saved.y; this.attr = this.saved.attr; break;
    case "D": this.lineFeed(); break;
    case "E": this.x = 0; this.lineFeed(); break;
    case "M": if (this.y === this.top) this.scrollDown(1); else if (this.y > 0) this.y--; break;
    case "c": this.attr = { ...DEFAULT_ATTR }; this.reset(); break;
    default: break;
    }
  }

  csi(f) {
    const priv = this.params.startsWith("?");
    const ps = (priv ? this.params.slice(1) : this.params).split(";").map((v) => (v === "" ? NaN : parseInt(v, 10)));
    const p = (i, d) => (isNaN(ps[i]) || ps[i] === undefined ? d : ps[i]);
    const n = Math.max(1, p(0, 1));
    const clampX = (v) => Math.max(0, Math.min(this.cols - 1, v));
    const clampY = (v) => Math.max(0, Math.min(this.rows - 1, v));
    this.wrapPending = false;
    switch (f) {
    case "A": this.y = Math.max(this.y >= this.top ? this.top : 0, this.y - n); break;
    case "B": case "e": this.y = Math.min(this.y <= this.bottom ? this.bottom : this.rows - 1, this.y + n); break;
    case "C": case "a": this.x = clampX(this.x + n); break;
    case "D": this.x = clampX(this.x - n); break;
    case "E": this.x = 0; this.y = clampY(this.y + n); break;
    case "F": this.x = 0; this.y = clampY(this.y - n); break;
    case "G": case "`": this.x = clampX(p(0, 1) - 1); break;
    case "d": this.y = clampY(p(0, 1) - 1); break;
    case "H": case "f": this.y = clampY(p(0, 1) - 1); this.x = clampX(p(1, 1) - 1); break;
    case "J": this.eraseDisplay(p(0, 0)); break;
    case "K": this.eraseLine(p(0, 0)); break;
    case "L": if (this.y >= this.top && this.y <= this.bottom) { const t = this.top; this.top = this.y; this.scrollDown(n); this.top = t; } break;
    case "M": if (this.y >= this.top && this.y <= this.bottom) { const t = this.top; this.top = this.y; this.scrollUp(n); this.top = t; } break;
    case "P": { const r = this.grid[this.y]; r.splice(this.x, Math.min(n, this.cols - this.x)); while (r.length < this.cols) r.push(blankCell(this.attr)); break; }
    case "@": { const r = this.grid[this.y]; for (let i = 0; i < n; i++) r.splice(this.x, 0, blankCell(this.attr)); r.length = this.cols; break; }
    case "X": for (let i = 0; i < n && this.x + i < this.cols; i++) this.grid[this.y][this.x + i] = blankCell(this.attr); break;
    case "S": this.scrollUp(n); break;
    case "T": this.scrollDown(n); break;
    case "r": this.top = clampY(p(0, 1) - 1); this.bottom = clampY(p(1, this.rows) - 1); if (this.bottom <= this.top) { this.top = 0; this.bottom = this.rows - 1; } this.x = 0; this.y = 0; break;
    case "s": this.saved = { x: this.x, y: this.y, attr: this.attr }; break;
    case "u": this.x = this.saved.x; this.y = this.saved.y; break;
    case "m": this.sgr(ps); break;
    case "h": case "l": if (priv) this.mode(ps, f === "h"); break;
    case "n": if (p(0, 0) === 6) this.send(`\x1b[${this.y + 1};${this.x + 1}R`); else if (p(0, 0) === 5) this.send("\x1b[0n"); break;
    case "c": if (!priv && this.inter === "") this.send("\x1b[?1;2c"); break;
    default: break;
    }
  }

  mode(ps, on) {
    for (const m of ps) {
      if (m === 25) this.cursorVisible = on;
      else if (m === 1049 || m === 47 || m === 1047) {
        if (on && !this.alt) { this.altSaved = { grid: this.grid, x: this.x, y: this.y }; this.alt = true; this.grid = []; for (let i = 0; i < this.rows; i++) this.grid.push(this.blankRow()); }
        else if (!on && this.alt) { const s = this.altSaved; this.alt = false; if (s && s.grid.length === this.rows) { this.grid = s.grid; this.x = s.x; this.y = s.y; } }
      }
    }
  }

  sgr(ps) {
    if (ps.length === 0 || (ps.length === 1 && isNaN(ps[0]))) ps = [0];
    const a = { ...this.attr };
    for (let i = 0; i < ps.length; i++) {
      const v = isNaN(ps[i]) ? 0 : ps[i];
      if (v === 0) Object.assign(a, DEFAULT_ATTR);
      else if (v === 1) a.b = true;
      else if (v === 4) a.u = true;
      else if (v === 7) a.r = true;
      else if (v === 22) a.b = false;
      else if (v === 24) a.u = false;
      else if (v === 27) a.r = false;
      else if (v >= 30 && v <= 37) a.fg = v - 30;
      else if (v === 39) a.fg = -1;
      else if (v >= 40 && v <= 47) a.bg = v - 40;
      else if (v === 49) a.bg = -1;
      else if (v >= 90 && v <= 97) a.fg = v - 90 + 8;
      else if (v >= 100 && v <= 107) a.bg = v - 100 + 8;
      else if ((v === 38 || v === 48) && ps[i + 1] === 5) { const c = ps[i + 2]; if (c >= 0 && c < 16) { if (v === 38) a.fg = c; else a.bg = c; } i += 2; }
      else if ((v === 38 || v === 48) && ps[i + 1] === 2) { i += 4; }
    }
    this.attr = a;
  }

  eraseLine(mode) {
    const r = this.grid[this.y];
    const [from, to] = mode === 1 ? [0, this.x] : mode === 2 ? [0, this.cols - 1] : [this.x, this.cols - 1];
    for (let i = from; i <= to; i++) r[i] = blankCell(this.attr);
  }

  eraseDisplay(mode) {
    if (mode === 0) { this.eraseLine(0); for (let y = this.y + 1; y < this.rows; y++) this.grid[y] = this.blankRow(); }
    else if (mode === 1) { this.eraseLine(1); for (let y = 0; y < this.y; y++) this.grid[y] = this.blankRow(); }
    else { for (let y = 0; y < this.rows; y++) this.grid[y] = this.blankRow(); }
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; if (this.dirty) this.render(); });
  }

  // Draws the grid: one div per row, one span per run of equal attributes.
  render() {
    this.dirty = false;
    const rows = [];
    for (let y = 0; y < this.rows; y++) {
      const div = document.createElement("div");
      div.className = "row";
      const row = this.grid[y];
      let run = "", runAttr = null, runCur = false;
      const flush = () => {
        if (!run) return;
        const s = document.createElement("span");
        s.textContent = run;
        style(s, runAttr, runCur);
        div.appendChild(s);
        run = "";
      };
      for (let x = 0; x < this.cols; x++) {
        const cell = row[x] || blankCell(DEFAULT_ATTR);
        const cur = this.cursorVisible && x === this.x && y === this.y;
        if (cell.a !== runAttr || cur || runCur) { flush(); runAttr = cell.a; runCur = cur; }
        run += cell.ch;
      }
      flush();
      rows.push(div);
    }
    this.screenEl.replaceChildren(...rows);
  }

  // The visible text, one line per row (for tests and copy).
  text() { return this.grid.map((r) => r.map((c) => c.ch).join("").replace(/\s+$/, "")).join("\n"); }

  dispose() { this.ro.disconnect(); }
}

function style(s, a, cur) {
  let fg = a.fg, bg = a.bg;
  if (a.r) [fg, bg] = [bg < 0 ? 0 : bg, fg < 0 ? 7 : fg];
  if (fg >= 0) s.style.color = COLORS[fg];
  if (bg >= 0) s.style.backgroundColor = COLORS[bg];
  const cls = [];
  if (a.b) cls.push("b");
  if (a.u) cls.push("u");
  if (cur) cls.push("cur");
  if (cls.length) s.className = cls.join(" ");
}
