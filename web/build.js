// A build's page: its facts, its steps as the pipeline's DAG (states
// refreshed every 1.5 s while it runs), sub-builds under their step, the
// substitutions, the dry-run plan, cancel/retry, and the log view.
"use strict";
const kilnBuild = { id: document.querySelector('meta[name="kiln-build"]').content };
(() => {
  const { el, badge, getJSON, post, fmtTime, duration, TERMINAL } = kiln;
  const id = kilnBuild.id;
  const SVGNS = "http://www.w3.org/2000/svg";
  const stepSel = document.getElementById("step");
  const view = new KilnLogView({
    box: document.getElementById("log"), spacer: document.getElementById("log-spacer"),
    rows: document.getElementById("log-rows"), state: document.getElementById("log-state"),
    follow: document.getElementById("follow"),
  });
  kilnBuild.view = view;
  // auto: no step was asked for (link, click, list): show the failed or
  // running one, and move on with the build until someone chooses.
  let build = null, selected = null, timer = null, firstLoad = true, auto = false;

  const sv = (tag, attrs) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  };
  const stepDur = (s) => (s.timing && s.timing.startTime ? duration(s.timing.startTime, s.timing.endTime) : "");
  // "build-SUB-step-KEY-L12" / "step-KEY-L12" -> {build, step, line}
  function parseHash() {
    const m = /^#(?:build-([A-Za-z0-9_-]+)-)?step-(.+?)(?:-L(\d+))?$/.exec(location.hash);
    if (!m) return null;
    let step;
    try { step = decodeURIComponent(m[2]); } catch (e) { return null; }
    return { build: m[1] || id, step: step === "@build" ? "" : step, line: m[3] ? parseInt(m[3], 10) : 0 };
  }
  function key(b, s) { return b + "\n" + s; }

  function drawGraph(b, into, buildId) {
    const steps = (b.steps || []).concat((b.finally || []).map((s) => Object.assign({ fin: true }, s)));
    const waits = b.waits || {};
    if (!steps.length) {
      into.append(el("p", { class: "detail", text: b.status === "QUEUED" ? "Queued: the steps are known once the build starts." : "No steps yet (fetching and loading the pipeline)." }));
      return;
    }
    const depth = {}, byKey = {};
    for (const s of steps) byKey[s.key] = s;
    const d = (k, seen = new Set()) => {
      if (depth[k] !== undefined) return depth[k];
      if (seen.has(k)) return 0;
      seen.add(k);
      const deps = (waits[k] || []).filter((x) => byKey[x]);
      return (depth[k] = deps.length ? 1 + Math.max(...deps.map((x) => d(x, seen))) : 0);
    };
    let finBase = 0;
    for (const s of steps) if (!s.fin) finBase = Math.max(finBase, d(s.key) + 1);
    for (const s of steps) if (s.fin && !(waits[s.key] || []).length) depth[s.key] = finBase;
    for (const s of steps) d(s.key);
    const cols = {};
    for (const s of steps) (cols[depth[s.key]] = cols[depth[s.key]] || []).push(s);
    const W = 190, H = 50, GX = 50, GY = 14, pos = {};
    let maxRows = 0;
    for (const [c, list] of Object.entries(cols)) {
      list.forEach((s, r) => { pos[s.key] = { x: 8 + c * (W + GX), y: 8 + r * (H + GY) }; });
      maxRows = Math.max(maxRows, list.length);
    }
    const ncols = Math.max(...Object.keys(cols).map(Number)) + 1;
    const svg = sv("svg", { width: 16 + ncols * (W + GX) - GX, height: 16 + maxRows * (H + GY) - GY, role: "group", "aria-label": "steps of build " + buildId });
    const defs = sv("defs");
    const mk = sv("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    mk.append(sv("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa1ab" }));
    defs.append(mk);
    svg.append(defs);
    for (const s of steps) for (const dep of waits[s.key] || []) {
      if (!pos[dep]) continue;
      const a = pos[dep], z = pos[s.key];
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = z.x, y2 = z.y + H / 2;
      svg.append(sv("path", { class: "edge", "data-from": dep, "data-to": s.key, d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}` }));
    }
    for (const s of steps) {
      const p = pos[s.key];
      const dur = stepDur(s);
      const label = `step ${s.key}${s.fin ? " (finally)" : ""}: ${s.status}${dur ? ", " + dur : ""}${s.reason ? ", " + s.reason : ""}`;
      const g = sv("g", { class: "node n-" + s.status, tabindex: 0, role: "button", "aria-label": label, "data-step": s.key, "data-build": buildId, "data-status": s.status, transform: `translate(${p.x},${p.y})` });
      if (selected && selected.build === buildId && selected.step === s.key) g.classList.add("sel");
      const t = sv("title"); t.textContent = label; g.append(t);
      g.append(sv("rect", { width: W, height: H }));
      const name = sv("text", { x: 10, y: 19 }); name.textContent = (s.key.length > 24 ? s.key.slice(0, 23) + "\u2026" : s.key) + (s.fin ? " \u00b7 finally" : "");
      const st = sv("text", { x: 10, y: 38, class: "nst" }); st.textContent = s.status + (dur ? " \u00b7 " + dur : "") + (s.exit_code ? " \u00b7 exit " + s.exit_code : "");
      g.append(name, st);
      const go = () => { auto = false; select(buildId, s.key, 0, true); };
      g.addEventListener("click", go);
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
      svg.append(g);
    }
    into.append(svg);
    for (const s of steps) if (s.builds && s.builds.length) {
      const box = el("div", { class: "subbuilds" });
      for (const sub of s.builds) {
        box.append(el("h3", null, badge(sub.status), "Sub-build ", el("code", { text: sub.id }), " of step " + s.key));
        drawGraph(sub, box, sub.id);
      }
      into.append(box);
    }
  }
  function allSteps(b, buildId, out, prefix) {
    out.push({ build: buildId, step: "", label: prefix + "(kiln's build messages)" });
    for (const s of (b.steps || []).concat(b.finally || [])) {
      out.push({ build: buildId, step: s.key, label: prefix + s.key + " \u2014 " + s.status });
      for (const sub of s.builds || []) allSteps(sub, sub.id, out, prefix + s.key + " \u203a " + sub.id.slice(0, 8) + " \u203a ");
    }
    return out;
  }
  function render(b) {
    const st = document.getElementById("b-status");
    st.replaceChildren(badge(b.status));
    document.title = b.status + " \u00b7 kiln build " + id.slice(0, 8);
    document.getElementById("b-detail").textContent = b.statusDetail || "";
    const facts = document.getElementById("b-facts");
    const f = [["Trigger", b.trigger], ["Source", b.source], ["Repository", b.repo], ["Branch", b.branch || (b.tag ? "tag " + b.tag : "")],
      ["Commit", b.commit], ["Pipeline", b.pipeline], ["Queued", fmtTime(b.createTime)], ["Started", fmtTime(b.startTime)],
      ["Finished", fmtTime(b.finishTime)], ["Duration", b.startTime ? duration(b.startTime, b.finishTime) : ""]];
    facts.replaceChildren(...f.filter((x) => x[1]).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { class: k === "Commit" ? "mono" : null, text: v })]));
    const g = document.getElementById("graph");
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset : {};
    g.replaceChildren();
    drawGraph(b, g, id);
    if (focused.step !== undefined)
      for (const n of g.querySelectorAll(".node")) if (n.dataset.step === focused.step && n.dataset.build === focused.build) n.focus();
    const subs = Object.assign({}, b.resolvedSubstitutions || {}, b.substitutions || {});
    const tb = document.getElementById("subs");
    tb.replaceChildren(...Object.keys(subs).sort().map((k) => el("tr", null, el("th", { scope: "row", text: k }), el("td", { text: subs[k] }))));
    const plans = (b.steps || []).filter((s) => s.plan && s.plan.length);
    document.getElementById("plan-sec").hidden = !plans.length;
    document.getElementById("plan").replaceChildren(...plans.flatMap((s) => [el("h3", { text: "step " + s.key }), el("pre", { class: "plan", text: JSON.stringify(s.plan, null, 2) })]));
    const running = !TERMINAL.has(b.status);
    document.getElementById("cancel").disabled = !running;
    document.getElementById("retry").disabled = running;
    const opts = allSteps(b, id, [], "");
    const cur = stepSel.value;
    stepSel.replaceChildren(...opts.map((o) => el("option", { value: key(o.build, o.step), text: o.label })));
    if (selected) stepSel.value = key(selected.build, selected.step);
    else if (cur) stepSel.value = cur;
  }
  function pickDefault(b) {
    const steps = (b.steps || []).concat(b.finally || []);
    const s = steps.find((x) => x.status === "FAILURE" || x.status === "TIMEOUT") || steps.find((x) => x.status === "WORKING") ||
      [...steps].reverse().find((x) => x.status !== "QUEUED" && x.status !== "SKIPPED") || steps[0];
    return s ? s.key : "";
  }
  // The step to show next when nobody chose: a failed one, else the one
  // shown while it runs, else a running one.
  function autoNext(b) {
    const steps = (b.steps || []).concat(b.finally || []);
    const failed = steps.find((x) => x.status === "FAILURE" || x.status === "TIMEOUT");
    if (failed) return failed.key;
    const cur = steps.find((x) => x.key === selected.step);
    if (!cur) return pickDefault(b);
    const running = steps.find((x) => x.status === "WORKING");
    return cur.status !== "WORKING" && running ? running.key : cur.key;
  }
  function select(buildId, step, line, pushHash) {
    selected = { build: buildId, step };
    stepSel.value = key(buildId, step);
    for (const n of document.querySelectorAll(".node")) n.classList.toggle("sel", n.dataset.build === buildId && n.dataset.step === step);
    if (pushHash) history.replaceState(null, "", "#" + (buildId !== id ? "build-" + buildId + "-" : "") + "step-" + encodeURIComponent(step || "@build"));
    view.open(buildId, step, line);
  }
  async function load() {
    clearTimeout(timer);
    try {
      build = await getJSON("/api/builds/" + encodeURIComponent(id));
      render(build);
      if (firstLoad) {
        firstLoad = false;
        const h = parseHash();
        if (h) select(h.build, h.step, h.line, false);
        else { auto = true; select(id, pickDefault(build), 0, false); }
      } else if (auto) {
        const want = autoNext(build);
        if (want !== selected.step) select(id, want, 0, false);
      }
      if (!TERMINAL.has(build.status)) timer = setTimeout(load, 1500);
    } catch (e) {
      document.getElementById("b-detail").textContent = "Cannot load the build: " + e.message;
      if (e.status !== 404) timer = setTimeout(load, 3000);
    }
  }
  stepSel.addEventListener("change", () => {
    auto = false;
    const [b, s] = stepSel.value.split("\n");
    select(b, s, 0, true);
  });
  window.addEventListener("hashchange", () => {
    const h = parseHash();
    if (!h) return;
    auto = false;
    if (selected && h.build === selected.build && h.step === selected.step && h.line) {
      view.hl = h.line;
      view.scrollToLine(h.line);
      view.render();
    } else select(h.build, h.step, h.line, false);
  });
  const msg = document.getElementById("action-msg");
  async function act(verb) {
    msg.textContent = verb === "cancel" ? "Cancelling\u2026" : "Retrying\u2026";
    const r = await post("/api/builds/" + encodeURIComponent(id) + ":" + verb);
    if (r.ok) {
      if (verb === "retry" && r.body && r.body.id && r.body.id !== id) {
        msg.textContent = "Retried as build " + r.body.id;
        location.href = kiln.url("/builds/" + encodeURIComponent(r.body.id));
        return;
      }
      msg.textContent = verb === "cancel" ? "Cancel requested." : "Retry requested.";
    } else {
      msg.textContent = (verb === "cancel" ? "Cannot cancel: " : "Cannot retry: ") + ((r.body && r.body.error && r.body.error.message) || "HTTP " + r.status);
    }
    load();
  }
  document.getElementById("cancel").addEventListener("click", () => act("cancel"));
  document.getElementById("retry").addEventListener("click", () => act("retry"));
  load();
})();
