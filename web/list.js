// The builds list: newest first, filters in the URL, paged by cursor,
// refreshed every 2 s while shown (no reload).
"use strict";
(() => {
  const { el, badge, getJSON, url, fmtTime, duration } = kiln;
  const form = document.getElementById("filters");
  const rows = document.getElementById("rows");
  const live = document.getElementById("live");
  const older = document.getElementById("older"), newer = document.getElementById("newer");
  const params = new URLSearchParams(location.search);
  let cursors = [""]; // cursor of each page seen: [0] is the newest
  let page = 0, next = null, timer = null;

  for (const k of ["status", "trigger", "branch"]) if (params.get(k)) form.elements[k].value = params.get(k);

  function query(cursor) {
    const q = new URLSearchParams();
    for (const k of ["status", "trigger", "branch"]) if (form.elements[k].value) q.set(k, form.elements[k].value);
    q.set("pageSize", "25");
    if (cursor) q.set("cursor", cursor);
    return q;
  }
  function short(c) { return c ? c.slice(0, 7) : ""; }
  function row(b) {
    const link = el("a", { href: url("/builds/" + encodeURIComponent(b.id)), class: "mono", text: b.id.slice(0, 8) });
    link.setAttribute("aria-label", "build " + b.id + ", " + b.status);
    return el("tr", { "data-id": b.id, "data-status": b.status },
      el("td", null, badge(b.status)),
      el("td", null, link),
      el("td", { text: b.trigger || "" }),
      el("td", { class: "mono", text: (b.repo || "").replace(/^.*\/(?=[^/]+\/?$)/, ""), title: b.repo || "" }),
      el("td", { text: b.branch || (b.tag ? "tag " + b.tag : "") }),
      el("td", { class: "mono", text: short(b.commit), title: b.commit || "" }),
      el("td", { text: fmtTime(b.startTime || b.createTime) }),
      el("td", { class: "dur", text: b.startTime ? duration(b.startTime, b.finishTime) : "" }));
  }
  async function load() {
    clearTimeout(timer);
    try {
      const q = query(cursors[page]);
      const j = await getJSON("/api/builds?" + q);
      rows.replaceChildren(...j.builds.map(row));
      document.getElementById("empty").hidden = j.builds.length > 0;
      next = j.nextCursor || null;
      older.disabled = !next;
      newer.disabled = page === 0;
      const running = j.builds.filter((b) => b.status === "WORKING" || b.status === "QUEUED").length;
      live.textContent = "Updated " + new Date().toLocaleTimeString() + (running ? " \u00b7 " + running + " running or queued" : "");
    } catch (e) {
      live.textContent = "Cannot load the builds: " + e.message + " (retrying)";
    }
    timer = setTimeout(load, 2000);
  }
  function syncURL() {
    const q = query("");
    q.delete("pageSize");
    history.replaceState(null, "", location.pathname + (q.toString() ? "?" + q : ""));
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); cursors = [""]; page = 0; syncURL(); load(); });
  document.getElementById("f-clear").addEventListener("click", () => { form.reset(); form.dispatchEvent(new Event("submit")); });
  for (const name of ["status", "trigger"]) form.elements[name].addEventListener("change", () => form.requestSubmit());
  older.addEventListener("click", () => { if (!next) return; cursors[page + 1] = next; page++; load(); });
  newer.addEventListener("click", () => { if (page > 0) { page--; load(); } });
  getJSON("/api/triggers").then((j) => {
    const sel = form.elements.trigger;
    for (const t of j.triggers) sel.append(el("option", { value: t.name, text: t.name }));
    if (params.get("trigger")) sel.value = params.get("trigger");
  }).catch(() => {});
  load();
})();
