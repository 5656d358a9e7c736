// A step's log, virtualised: only the rows on screen are in the DOM, and
// records are fetched in pages of 500 from /api/builds/ID/log as they
// scroll into view (at most 80 pages kept), so a log of millions of lines
// opens at once. A step still running is followed over server-sent
// events from the last record known; EventSource resumes from the last
// id it received, and a record is kept by its sequence number, so none is
// lost or shown twice.
"use strict";
class KilnLogView {
  constructor(opts) {
    this.box = opts.box; this.spacer = opts.spacer; this.rowsEl = opts.rows;
    this.stateEl = opts.state; this.followBox = opts.follow; this.onState = opts.onState || (() => {});
    this.ROW = 18; this.PAGE = 500; this.MAX_PAGES = 80;
    this.gen = 0;
    this.box.addEventListener("scroll", () => this.onScroll());
    window.addEventListener("resize", () => this.schedule());
    this.box.addEventListener("keydown", (e) => this.onKey(e));
  }
  // Show build `build`'s step `step` ("" for the build's own messages);
  // line: a sequence number to scroll to and mark.
  async open(build, step, line) {
    this.close();
    const gen = ++this.gen;
    Object.assign(this, { build, step, hl: line || 0, total: 0, complete: false, pages: new Map(), fetching: new Set(), received: 0 });
    this.spacer.style.height = "0px";
    this.rowsEl.replaceChildren();
    this.setState("loading\u2026");
    let j;
    try { j = await this.fetchRange(1, 0); } catch (e) { if (gen === this.gen) this.setState("cannot load the log: " + e.message); return; }
    if (gen !== this.gen) return;
    this.total = j.total; this.complete = j.complete;
    this.resize();
    if (this.hl) this.scrollToLine(this.hl);
    else if (this.followBox.checked) this.box.scrollTop = this.box.scrollHeight;
    this.render();
    if (!this.complete) this.follow(this.total + 1);
    this.updateState();
  }
  close() {
    if (this.es) { this.es.close(); this.es = null; }
    clearTimeout(this.retryTimer);
  }
  qs(extra) {
    const q = new URLSearchParams();
    if (this.step) q.set("step", this.step);
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    return kiln.url("/api/builds/" + encodeURIComponent(this.build) + "/log?" + q);
  }
  async fetchRange(from, limit) {
    const r = await fetch(this.qs({ from, limit }), { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }
  follow(from) {
    const gen = this.gen;
    const es = new EventSource(this.qs({ from }));
    this.es = es;
    es.onmessage = (ev) => { if (gen === this.gen) this.add(JSON.parse(ev.data)); };
    es.addEventListener("end", (ev) => {
      es.close();
      if (gen !== this.gen) return;
      this.es = null;
      const d = JSON.parse(ev.data);
      this.complete = true;
      if (d.total > this.total) { this.total = d.total; this.resize(); }
      this.updateState();
      this.render();
    });
    es.onerror = () => {
      if (gen !== this.gen) return;
      // CONNECTING: EventSource reconnects by itself with Last-Event-ID.
      if (es.readyState === EventSource.CLOSED) {
        this.setState("connection lost; reconnecting\u2026");
        this.retryTimer = setTimeout(() => { if (gen === this.gen) this.follow(this.contiguous() + 1); }, 2000);
      } else this.setState("reconnecting\u2026");
    };
    es.onopen = () => { if (gen === this.gen) this.updateState(); };
  }
  contiguous() { // the last seq such that every record up to it is known or fetchable
    return this.total;
  }
  add(rec) {
    const p = Math.floor((rec.seq - 1) / this.PAGE);
    let page = this.pages.get(p);
    if (!page) { page = { recs: [], at: 0 }; this.pages.set(p, page); }
    page.recs[(rec.seq - 1) % this.PAGE] = rec;
    this.received++;
    if (rec.seq > this.total) { this.total = rec.seq; this.grown = true; }
    this.schedule();
  }
  resize() { this.spacer.style.height = this.total * this.ROW + "px"; }
  schedule() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      if (this.grown) {
        this.grown = false;
        const atEnd = this.followBox.checked;
        this.resize();
        if (atEnd) this.box.scrollTop = this.box.scrollHeight;
        this.updateState();
      }
      this.render();
    });
  }
  onScroll() {
    const b = this.box;
    if (!this.programmatic && b.scrollTop + b.clientHeight < b.scrollHeight - 3 * this.ROW && this.followBox.checked && !this.complete)
      this.followBox.checked = false;
    this.programmatic = false;
    this.schedule();
  }
  onKey(e) {
    const b = this.box, page = b.clientHeight - this.ROW;
    const keys = { ArrowDown: this.ROW, ArrowUp: -this.ROW, PageDown: page, PageUp: -page, " ": page };
    if (e.key in keys) { b.scrollTop += keys[e.key]; e.preventDefault(); }
    else if (e.key === "Home") { b.scrollTop = 0; e.preventDefault(); }
    else if (e.key === "End") { b.scrollTop = b.scrollHeight; e.preventDefault(); }
  }
  scrollToLine(seq) {
    this.followBox.checked = false;
    this.programmatic = true;
    this.box.scrollTop = Math.max(0, (seq - 1) * this.ROW - this.box.clientHeight / 3);
  }
  ensure(p) {
    if (this.fetching.has(p)) return;
    const page = this.pages.get(p);
    const want = Math.min(this.PAGE, this.total - p * this.PAGE);
    if (page && page.full) return;
    if (page) { let n = 0; for (const r of page.recs) if (r) n++; if (n >= want) return; }
    this.fetching.add(p);
    const gen = this.gen;
    this.fetchRange(p * this.PAGE + 1, this.PAGE).then((j) => {
      if (gen !== this.gen) return;
      this.fetching.delete(p);
      let pg = this.pages.get(p);
      if (!pg) { pg = { recs: [], at: 0 }; this.pages.set(p, pg); }
      for (const r of j.records) if (!pg.recs[(r.seq - 1) % this.PAGE]) pg.recs[(r.seq - 1) % this.PAGE] = r;
      pg.full = j.records.length === this.PAGE;
      if (j.total > this.total) { this.total = j.total; this.grown = true; }
      this.evict();
      this.schedule();
    }, () => { this.fetching.delete(p); });
  }
  evict() {
    if (this.pages.size <= this.MAX_PAGES) return;
    const order = [...this.pages.entries()].sort((a, b) => a[1].at - b[1].at);
    for (let k = 0; k < order.length - this.MAX_PAGES; k++) this.pages.delete(order[k][0]);
  }
  anchor(seq) {
    return (this.build !== kilnBuild.id ? "build-" + this.build + "-" : "") + "step-" + encodeURIComponent(this.step || "@build") + "-L" + seq;
  }
  render() {
    const b = this.box, ROW = this.ROW;
    if (!this.total) { this.rowsEl.replaceChildren(); return; }
    const first = Math.max(1, Math.floor(b.scrollTop / ROW) + 1 - 20);
    const last = Math.min(this.total, Math.ceil((b.scrollTop + b.clientHeight) / ROW) + 20);
    const now = performance.now();
    const rows = [];
    for (let s = first; s <= last; s++) {
      const p = Math.floor((s - 1) / this.PAGE);
      const page = this.pages.get(p);
      const rec = page && page.recs[(s - 1) % this.PAGE];
      if (page) page.at = now;
      if (!rec) this.ensure(p);
      rows.push(this.row(s, rec));
    }
    this.rowsEl.style.transform = "translateY(" + (first - 1) * ROW + "px)";
    this.rowsEl.replaceChildren(...rows);
  }
  row(seq, rec) {
    const id = this.anchor(seq);
    const no = document.createElement("a");
    no.className = "no"; no.href = "#" + id; no.textContent = seq;
    no.setAttribute("aria-label", "line " + seq);
    const tag = document.createElement("span");
    tag.className = "tag";
    const tx = document.createElement("span");
    tx.className = "tx";
    const div = document.createElement("div");
    div.id = id;
    div.dataset.seq = seq;
    if (!rec) { div.className = "ln pending"; tx.textContent = "\u2026"; }
    else {
      div.className = "ln s-" + rec.stream + (rec.level ? " lv-" + rec.level : "") + (seq === this.hl ? " hl" : "");
      tag.textContent = rec.stream === "stderr" ? "err" : rec.stream === "kiln" ? "kiln" : "";
      tx.append(kilnAnsi.render(rec.text));
      if (rec.partial) tx.append("\u21b5");
    }
    div.append(no, tag, tx);
    return div;
  }
  setState(s) { this.stateEl.textContent = s; }
  updateState() {
    const n = this.total.toLocaleString();
    this.setState(this.complete ? n + " lines" : n + " lines \u00b7 " + (this.es && this.es.readyState === 1 ? "live" : "waiting for the step"));
    this.onState(this);
  }
}
