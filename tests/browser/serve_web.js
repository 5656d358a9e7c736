// SPDX-License-Identifier: MIT
// kiln serve's pages in a real browser: Debian's chromium, headless, driven
// by puppeteer-core. Run by tests/integration/test_serve_web.sh, which
// starts kiln serve and passes, in the environment:
//   KILN_BASE (http://127.0.0.1:PORT), KILN_TOKEN, TMP (gate files go
//   there), SHOTS (where screenshots go), CHROMIUM, PUPPETEER_DIR,
//   BIG_LINES (lines of the big log; 0: skip it), BENCH_OUT (a file for
//   the big log's open time, or empty), PROXY_URL (nginx in front of kiln
//   serve --base-path /kiln, e.g. http://127.0.0.1:PORT/kiln, or empty), BIG_BUILD (bench/serve_web.sh: only
//   open that build's big log, nothing else).
// Prints "ok - ..." / "FAIL - ..." lines; exits 1 on a failure.
"use strict";
const path = require("path");
const fs = require("fs");
const net = require("net");
const puppeteer = require(path.join(process.env.PUPPETEER_DIR, "node_modules", "puppeteer-core"));

const BASE = process.env.KILN_BASE, TOKEN = process.env.KILN_TOKEN, TMP = process.env.TMP;
const SHOTS = process.env.SHOTS || TMP;
const BIG = parseInt(process.env.BIG_LINES || "1000000", 10);
let fails = 0, passes = 0;
function check(what, ok, detail) {
  if (ok) { passes++; console.log("ok   - " + what); }
  else { fails++; console.log("FAIL - " + what + (detail !== undefined ? ": " + detail : "")); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, secs = 90) {
  const end = Date.now() + secs * 1000;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e.message; }
    await sleep(100);
  }
  return false;
}
async function api(method, p, body) {
  const r = await fetch(BASE + p, { method, headers: { Authorization: "Bearer " + TOKEN, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined });
  return r.json();
}
const run = (substitutions) => api("POST", "/api/triggers/logs:run", { branch: "master", substitutions });
const status = async (id) => (await api("GET", "/api/builds/" + id)).status;

// A TCP proxy in front of kiln serve, so the test can cut the browser's
// connections (the event stream among them) as a network would.
function proxy(port) {
  const socks = new Set();
  const st = { streams: 0, resumed: 0 };
  const srv = net.createServer((c) => {
    const u = net.connect(port, "127.0.0.1");
    socks.add(c); socks.add(u);
    c.on("data", (d) => { // request heads (keep-alive: several per connection)
      for (const head of d.toString("latin1").split("\r\n\r\n")) {
        if (!/^(GET|POST) /m.test(head) || !/^accept: text\/event-stream/im.test(head)) continue;
        st.streams++;
        if (/^last-event-id: \d+/im.test(head)) st.resumed++;
      }
    });
    c.pipe(u); u.pipe(c);
    const gone = () => { c.destroy(); u.destroy(); socks.delete(c); socks.delete(u); };
    c.on("error", gone); u.on("error", gone); c.on("close", gone); u.on("close", gone);
  });
  return new Promise((res) => srv.listen(0, "127.0.0.1", () => res({
    url: "http://127.0.0.1:" + srv.address().port, st,
    cut() { const n = socks.size; for (const s of socks) s.destroy(); socks.clear(); return n; },
    close() { srv.close(); },
  })));
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  const consoleErrors = [];
  async function newPage(w = 1280, h = 900) {
    const page = await browser.newPage();
    await page.setViewport({ width: w, height: h });
    page.on("console", (m) => {
      // The connections this test cuts on purpose are reported by chromium.
      if (m.type() === "error" && !page.__closing && !(page.__cuts && /ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION|ERR_EMPTY_RESPONSE/.test(m.text())))
        consoleErrors.push(m.text() + " @ " + page.url());
    });
    page.on("pageerror", (e) => consoleErrors.push("pageerror: " + e.message + " @ " + page.url()));
    // Requests in flight when the test closes a page are cut by chromium, not the page.
    const close = page.close.bind(page);
    page.close = () => { page.__closing = true; return close(); };
    return page;
  }
  const port = parseInt(new URL(BASE).port, 10);
  try {
    const ONLY_BIG = process.env.BIG_BUILD || "";
    if (!ONLY_BIG) {
    // ---- 1. a build started through the API appears on / without a reload
    const list = await newPage();
    await list.goto(BASE + "/", { waitUntil: "load" });
    await list.evaluate(() => { window.__noReload = true; });
    const gate1 = path.join(TMP, "web-gate1");
    const a = (await run({ _GATE: gate1, _N: "3", _M: "3000", _PAUSE: "0.1" })).id;
    const row = await until("row", () => list.$(`tr[data-id="${a}"]`), 60);
    check("a build started through the API appears on / without a reload", row && (await list.evaluate(() => window.__noReload === true)));
    const word = await until("status word", async () => {
      const s = await list.$eval(`tr[data-id="${a}"] .st`, (e) => e.textContent);
      return s === "WORKING" ? s : false;
    }, 90);
    check("... and its status word changes to WORKING by itself", word === "WORKING");

    // ---- 2. the build page: DAG, live lines, cut connections
    const prox = await proxy(port);
    const page = await newPage();
    const cdp = await page.target().createCDPSession();
    await cdp.send("Network.enable");
    const sse = []; // ids of every event the browser received, over every connection
    // (the "end" event carries the last id again, as the spec says: not a record)
    cdp.on("Network.eventSourceMessageReceived", (e) => { if (e.eventName === "message") sse.push(parseInt(e.eventId, 10)); });
    await page.goto(prox.url + "/builds/" + a + "#step-first", { waitUntil: "load" });
    const nodeState = (key) => page.$eval(`.node[data-step="${key}"]`, (n) => n.dataset.status).catch(() => null);
    check("the DAG shows step first WORKING", await until("first WORKING", async () => (await nodeState("first")) === "WORKING"));
    check("... and second QUEUED, waiting for it", (await nodeState("second")) === "QUEUED");
    const edges = await page.$$eval(".edge", (es) => es.map((e) => e.dataset.from + ">" + e.dataset.to).sort().join(","));
    check("... with the edges first>second, first>third", edges === "first>second,first>third", edges);
    const waiting = await until("waiting line", () => page.$$eval("#log-rows .ln .tx", (xs) => xs.some((x) => x.textContent === "waiting for the gate")));
    check("a step's lines show up while it still runs", waiting && (await status(a)) === "WORKING" && (await nodeState("first")) === "WORKING");
    const errTag = await page.$$eval("#log-rows .ln.s-stderr", (xs) => xs.map((x) => x.querySelector(".tag").textContent + ":" + x.querySelector(".tx").textContent));
    check("stderr lines are told apart (marked err)", errTag.includes("err:err line"), errTag.join("|"));
    const red = await page.$$eval("#log-rows .ln .tx span.f1", (xs) => xs.map((x) => x.textContent));
    check("ANSI colours are rendered (red as a span, no escape shown)", red.includes("red") &&
      !(await page.$$eval("#log-rows .ln .tx", (xs) => xs.some((x) => x.textContent.includes("\x1b")))));
    // Cut every connection now (the event stream waits at the gate), then
    // again and again while the 3000 lines after the gate stream in.
    page.__cuts = true;
    const cut0 = prox.cut();
    fs.writeFileSync(gate1, "");
    // Then three times more, each once the resumed stream is delivering.
    let cuts = 0;
    for (let k = 0; k < 3; k++) {
      const seen = sse.length;
      if (!(await until("flowing", () => sse.length > seen + 50, 60))) break;
      prox.cut();
      cuts++;
    }
    check("the stream was cut 3 times in the middle of the step's output", cuts === 3, cuts);
    const expected = 3 + 1 + 1 + 1 + 1 + 3000;
    const done = await until("all lines", () => page.evaluate((n) => kilnBuild.view.total === n && kilnBuild.view.complete, expected), 120);
    check("after the connections were cut, the log reaches all " + expected + " lines and ends", !!done,
      await page.evaluate(() => kilnBuild.view.total + " complete=" + kilnBuild.view.complete));
    check("... the stream was cut while open (" + cut0 + " sockets) and resumed with Last-Event-ID (" + prox.st.streams +
      " event streams, " + prox.st.resumed + " resumed)", cut0 > 0 && prox.st.resumed >= 1 && prox.st.streams >= 2);
    const ids = sse.slice().sort((x, y) => x - y);
    const dup = ids.filter((v, i) => i && ids[i - 1] === v);
    check("... the browser received no event twice", dup.length === 0, dup.slice(0, 5).join(","));
    check("... and each record up to the end once: ids " + (ids[0] || "?") + ".." + ids[ids.length - 1] + " with no gap",
      ids.length > 0 && ids.every((v, i) => i === 0 || v === ids[i - 1] + 1) && ids[ids.length - 1] === expected);
    // What it shows: the last lines, as the store has them.
    await page.evaluate(() => { const b = document.getElementById("log"); b.scrollTop = b.scrollHeight; });
    const lastText = await until("last line", () => page.$eval(`#log-rows .ln[data-seq="${expected}"] .tx`, (x) => x.textContent).catch(() => false));
    check("... the last line shown is the step's last (more 3000)", lastText === "more 3000", lastText);
    check("the DAG's states change as steps end: first SUCCESS", await until("first SUCCESS", async () => (await nodeState("first")) === "SUCCESS"));
    check("... second and third SUCCESS", await until("second", async () => (await nodeState("second")) === "SUCCESS" && (await nodeState("third")) === "SUCCESS"));
    check("... and the build's status word says SUCCESS", await until("badge", () => page.$eval("#b-status .st", (e) => e.textContent === "SUCCESS")));
    await page.close();
    prox.close();

    // ---- 3. a line link opens the page at that line
    const lp = await newPage();
    await lp.goto(BASE + "/builds/" + a + "#step-first-L1500", { waitUntil: "load" });
    const shown = await until("line 1500", () => lp.evaluate(() => {
      const r = document.querySelector('#log-rows .ln[data-seq="1500"]');
      if (!r || !r.classList.contains("hl") || r.classList.contains("pending")) return false;
      const box = document.getElementById("log").getBoundingClientRect(), rr = r.getBoundingClientRect();
      return rr.top >= box.top && rr.bottom <= box.bottom ? r.querySelector(".tx").textContent : false;
    }));
    check("a line link (#step-first-L1500) opens the page scrolled to that line, marked", shown === "more 1493", shown);
    const href = await lp.$eval('#log-rows .ln[data-seq="1500"] a.no', (x) => x.getAttribute("href"));
    check("... each line carries its link", href === "#step-first-L1500", href);
    await lp.close();

    // ---- 4. a failed build's page; screenshots
    const f = (await run({ _FAIL: "1" })).id;
    await until("failed", async () => (await status(f)) === "FAILURE", 120);
    const fp = await newPage(1280, 1000);
    await fp.goto(BASE + "/builds/" + f, { waitUntil: "load" });
    check("a failed build's page marks the failed step FAILURE", await until("failure node", async () =>
      (await fp.$eval('.node[data-step="second"]', (n) => n.dataset.status).catch(() => null)) === "FAILURE"));
    check("... and opens the failed step's log, its stderr marked", await until("fails line", () =>
      fp.$$eval("#log-rows .ln.s-stderr .tx", (xs) => xs.some((x) => x.textContent === "second fails"))));
    check("... the status is a word, not colour alone", (await fp.$eval("#b-status .st", (e) => e.textContent)) === "FAILURE");
    await sleep(300);
    await fp.screenshot({ path: path.join(SHOTS, "serve-build-failed.png") });
    await fp.close();
    await list.goto(BASE + "/", { waitUntil: "load" });
    await until("rows", () => list.$(`tr[data-id="${f}"]`));
    await list.screenshot({ path: path.join(SHOTS, "serve-builds.png") });
    check("screenshots saved", fs.existsSync(path.join(SHOTS, "serve-builds.png")) && fs.existsSync(path.join(SHOTS, "serve-build-failed.png")));

    // ---- 4b. kiln's notes marked; a sub-build drawn under its step
    const n = (await api("POST", "/api/triggers/notes:run", { branch: "master" })).id;
    await until("notes done", async () => ["SUCCESS", "FAILURE"].includes(await status(n)), 120);
    const np = await newPage();
    await np.goto(BASE + "/builds/" + n + "#step-flaky", { waitUntil: "load" });
    const note = await until("kiln note", () => np.$$eval("#log-rows .ln.s-kiln", (xs) =>
      xs.map((x) => x.querySelector(".tag").textContent + ":" + x.querySelector(".tx").textContent).find((t) => t.includes("retrying"))));
    check("kiln's own notes are marked (kiln) in the log", !!note && note.startsWith("kiln:"), note);
    const subNodes = await until("sub-build nodes", () => np.$$eval(".subbuilds .node", (xs) => xs.map((x) => x.dataset.step + "=" + x.dataset.status).join(",")));
    check("a sub-build is drawn under its step, with its own steps", subNodes === "c1=SUCCESS,c2=SUCCESS", subNodes);
    const subEdge = await np.$$eval(".subbuilds .edge", (es) => es.map((e) => e.dataset.from + ">" + e.dataset.to).join(","));
    check("... and its edges (c1>c2)", subEdge === "c1>c2", subEdge);
    await np.click('.subbuilds .node[data-step="c2"]');
    check("... clicking its step opens that step's log", await until("c2 log", () => np.$$eval("#log-rows .ln .tx", (xs) => xs.some((x) => x.textContent === "child two"))));
    await np.close();

    // ---- 5. keyboard: the filters and the DAG's nodes are reachable and labelled
    await list.focus("#f-status");
    await list.keyboard.press("Tab");
    const labelled = await list.evaluate(() => [...document.querySelectorAll("select, input")].every((e) => e.closest("label")));
    check("every filter has a label", labelled);

    // ---- 6. cancel from the page (the token is asked for)
    const gate2 = path.join(TMP, "web-gate-never");
    const c = (await run({ _GATE: gate2 })).id;
    await until("working", async () => (await status(c)) === "WORKING", 120);
    const cp = await newPage();
    await cp.goto(BASE + "/builds/" + c, { waitUntil: "load" });
    await cp.waitForSelector("#cancel:not([disabled])");
    await cp.click("#cancel");
    await cp.waitForSelector("#token-dlg[open]");
    await cp.type("#token-input", TOKEN);
    await cp.keyboard.press("Enter");
    check("cancel from the page (with the token asked for) cancels the build", await until("cancelled", async () => (await status(c)) === "CANCELLED", 120));
    check("... and the page says CANCELLED", await until("badge", () => cp.$eval("#b-status .st", (e) => e.textContent === "CANCELLED")));
    await cp.close();

    // ---- 6b. a page opened while its build waits in the queue follows it
    const gate4 = path.join(TMP, "web-gate4");
    const blockers = [(await run({ _GATE: gate4 })).id, (await run({ _GATE: gate4 })).id];
    const q = (await run({ _N: "2" })).id;
    check("a third build waits QUEUED behind two (--max-builds 2)", (await status(q)) === "QUEUED");
    const qp = await newPage();
    await qp.goto(BASE + "/builds/" + q, { waitUntil: "load" });
    await until("queued page", () => qp.$eval("#b-status .st", (e) => e.textContent === "QUEUED"));
    fs.writeFileSync(gate4, "");
    check("... its page, opened then, shows its steps' lines once it runs", await until("queued runs", () =>
      qp.$$eval("#log-rows .ln .tx", (xs) => xs.some((x) => /^(out 2|second runs|third runs)$/.test(x.textContent)))));
    check("... and its DAG ends SUCCESS", await until("queued success", () => qp.$eval('.node[data-step="third"]', (n) => n.dataset.status === "SUCCESS").catch(() => false)));
    await qp.close();
    await until("blockers", async () => (await status(blockers[1])) === "SUCCESS");

    // ---- 7. behind a reverse proxy under /kiln (--base-path)
    const PROXY = process.env.PROXY_URL;
    if (PROXY) {
      const gate3 = path.join(TMP, "web-gate3");
      const p3 = (await run({ _GATE: gate3 })).id;
      const pp = await newPage();
      await pp.goto(PROXY + "/", { waitUntil: "load" });
      const link = await until("proxied row", () => pp.$eval(`tr[data-id="${p3}"] a`, (a) => a.getAttribute("href")).catch(() => false));
      check("behind nginx under /kiln: / lists the builds, linking under /kiln/", link === "/kiln/builds/" + p3, link);
      await Promise.all([pp.waitForNavigation({ waitUntil: "load" }), pp.click(`tr[data-id="${p3}"] a`)]);
      check("... the build page opens through the proxy", pp.url().startsWith(PROXY + "/builds/" + p3));
      check("... with no step asked for, it shows the running step's live log, through the proxy", await until("proxied live", () =>
        pp.$$eval("#log-rows .ln .tx", (xs) => xs.some((x) => x.textContent === "waiting for the gate"))) && (await status(p3)) === "WORKING");
      // Stay on step first (the page would move on to the next running step).
      await pp.click('.node[data-step="first"]');
      fs.writeFileSync(gate3, "");
      check("... and follows it to its end", await until("proxied end", () => pp.$$eval("#log-rows .ln .tx", (xs) => xs.some((x) => x.textContent === "after gate"))));
      check("... the DAG ends SUCCESS", await until("proxied success", () => pp.$eval('.node[data-step="third"]', (n) => n.dataset.status === "SUCCESS").catch(() => false)));
      await pp.close();
    }
    }
    // ---- 8. a 1,000,000-line log
    if (BIG > 0) {
      const big = ONLY_BIG || (await run({ _N: String(BIG) })).id;
      await until("big done", async () => ["SUCCESS", "FAILURE"].includes(await status(big)), 600);
      const total = BIG + 3; // + err line, red line, after gate
      const bp = await newPage();
      const t0 = Date.now();
      await bp.goto(BASE + "/builds/" + big + "#step-first", { waitUntil: "domcontentloaded" });
      const opened = await until("big open", () => bp.evaluate((n) => kilnBuild.view.total === n &&
        !!document.querySelector('#log-rows .ln:not(.pending)'), total), 120);
      const openMs = Date.now() - t0;
      check("a " + BIG.toLocaleString("en") + "-line log opens (in " + openMs + " ms)", !!opened);
      // Jump to the middle: a range fetch fills it.
      const mid = Math.floor(BIG / 2);
      await bp.evaluate((s) => { kilnBuild.view.scrollToLine(s); }, mid);
      const midText = await until("mid", () => bp.$eval(`#log-rows .ln[data-seq="${mid}"] .tx`, (x) => x.textContent).catch(() => false)
        .then((t) => (t && t !== "\u2026" ? t : false)));
      check("... scrolled to line " + mid + ", it shows that record", midText === "out " + mid, midText);
      // Scroll through it a little as a person would.
      for (let k = 0; k < 20; k++) { await bp.evaluate(() => { document.getElementById("log").scrollTop += 5000; }); await sleep(20); }
      const rows = await bp.$$eval("#log-rows .ln", (xs) => xs.length);
      check("... only what is on screen is in the DOM (" + rows + " rows)", rows < 200);
      const m = await bp.metrics();
      const mb = (m.JSHeapTotalSize / 1048576).toFixed(1);
      check("... the page holds under 200 MB (JS heap " + mb + " MB, " + m.Nodes + " DOM nodes)", m.JSHeapTotalSize < 200 * 1048576);
      if (process.env.BENCH_OUT) fs.appendFileSync(process.env.BENCH_OUT, JSON.stringify({ lines: total, openMs, heapMB: +mb, nodes: m.Nodes }) + "\n");
      await bp.close();
    }
    check("no console errors", consoleErrors.length === 0, consoleErrors.slice(0, 5).join(" | "));
  } catch (e) {
    check("the browser test ran to its end", false, e.stack);
  } finally {
    await browser.close();
  }
  console.log(`# browser: ${passes} passed, ${fails} failed`);
  process.exit(fails ? 1 : 0);
})();
