// kiln serve's pages: what the list and the build page share.
"use strict";
const kiln = (() => {
  const base = (document.querySelector('meta[name="kiln-base"]') || {}).content || "";
  const url = (p) => base + p;
  const STATUSES = ["QUEUED", "WORKING", "SUCCESS", "FAILURE", "TIMEOUT", "CANCELLED", "INTERNAL_ERROR", "SKIPPED"];
  const TERMINAL = new Set(["SUCCESS", "FAILURE", "TIMEOUT", "CANCELLED", "INTERNAL_ERROR", "SKIPPED"]);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  // A status as a word with a symbol and a colour (never colour alone).
  function badge(status) {
    const s = STATUSES.includes(status) ? status : "QUEUED";
    return el("span", { class: "st st-" + s, text: status || "?" });
  }
  async function getJSON(path) {
    const r = await fetch(url(path), { headers: { Accept: "application/json" } });
    if (!r.ok) {
      let msg = "HTTP " + r.status;
      try { msg = (await r.json()).error.message || msg; } catch (e) { /* not JSON */ }
      throw Object.assign(new Error(msg), { status: r.status });
    }
    return r.json();
  }
  const parseTime = (t) => (t ? Date.parse(t) : NaN);
  function fmtTime(t) {
    const d = parseTime(t);
    if (isNaN(d)) return "";
    return new Date(d).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
  }
  function fmtDur(ms) {
    if (!(ms >= 0)) return "";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(Math.floor(s % 60)).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + " min";
  }
  function duration(start, end) {
    const a = parseTime(start);
    if (isNaN(a)) return "";
    const b = end ? parseTime(end) : Date.now();
    return fmtDur(b - a);
  }
  // Writes need the token: asked for once per tab, kept in sessionStorage.
  function askToken() {
    const dlg = document.getElementById("token-dlg");
    if (!dlg) return Promise.resolve(window.prompt("Token") || null);
    return new Promise((resolve) => {
      const input = document.getElementById("token-input");
      input.value = "";
      const done = (v) => { dlg.close(); cleanup(); resolve(v); };
      const onSubmit = (e) => { e.preventDefault(); done(input.value || null); };
      const onCancel = () => done(null);
      const form = document.getElementById("token-form");
      const cancelBtn = document.getElementById("token-cancel");
      function cleanup() {
        form.removeEventListener("submit", onSubmit);
        cancelBtn.removeEventListener("click", onCancel);
        dlg.removeEventListener("cancel", onCancel);
      }
      form.addEventListener("submit", onSubmit);
      cancelBtn.addEventListener("click", onCancel);
      dlg.addEventListener("cancel", onCancel);
      dlg.showModal();
      input.focus();
    });
  }
  async function post(path) {
    for (let attempt = 0; attempt < 3; attempt++) {
      // Every write needs the token: ask before the first one.
      if (!sessionStorage.getItem("kiln-token")) {
        const t = await askToken();
        if (!t) return { ok: false, status: 401, body: { error: { message: "no token given" } } };
        sessionStorage.setItem("kiln-token", t);
      }
      const tok = sessionStorage.getItem("kiln-token");
      const h = { "Content-Type": "application/json" };
      if (tok) h.Authorization = "Bearer " + tok;
      const r = await fetch(url(path), { method: "POST", headers: h, body: "{}" });
      if (r.status !== 401) {
        let body = null;
        try { body = await r.json(); } catch (e) { body = null; }
        return { ok: r.ok, status: r.status, body };
      }
      sessionStorage.removeItem("kiln-token");
    }
    return { ok: false, status: 401, body: { error: { message: "the token was refused" } } };
  }
  return { base, url, el, badge, getJSON, post, fmtTime, fmtDur, duration, parseTime, TERMINAL };
})();
