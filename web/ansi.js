// ANSI SGR colours of a log line -> spans with classes (f0..f15 foreground,
// g0..g7 background, b/dim/i/u). Other escape sequences are dropped; a
// carriage return keeps what was printed after it (progress bars). The
// state starts afresh on every line.
"use strict";
const kilnAnsi = (() => {
  const CSI = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
  function render(text) {
    const frag = document.createDocumentFragment();
    const cr = text.lastIndexOf("\r", text.length - 2);
    if (cr >= 0) text = text.slice(cr + 1);
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (text.indexOf("\x1b") < 0) { frag.append(text); return frag; }
    let st = { f: -1, g: -1, b: false, dim: false, i: false, u: false, inv: false };
    let last = 0, m;
    const emit = (s) => {
      if (!s) return;
      let f = st.f, g = st.g;
      if (st.inv) { const t = f; f = g < 0 ? 0 : g; g = t < 0 ? 7 : t % 8; }
      const cls = [];
      if (f >= 0) cls.push("f" + f);
      if (g >= 0) cls.push("g" + g);
      if (st.b) cls.push("b");
      if (st.dim) cls.push("dim");
      if (st.i) cls.push("i");
      if (st.u) cls.push("u");
      if (!cls.length) { frag.append(s); return; }
      const span = document.createElement("span");
      span.className = cls.join(" ");
      span.textContent = s;
      frag.append(span);
    };
    CSI.lastIndex = 0;
    while ((m = CSI.exec(text))) {
      emit(text.slice(last, m.index));
      last = CSI.lastIndex;
      if (m[2] !== "m") continue;
      const codes = m[1] === "" ? [0] : m[1].split(";").map((x) => parseInt(x || "0", 10));
      for (let k = 0; k < codes.length; k++) {
        const c = codes[k];
        if (c === 0) st = { f: -1, g: -1, b: false, dim: false, i: false, u: false, inv: false };
        else if (c === 1) st.b = true;
        else if (c === 2) st.dim = true;
        else if (c === 3) st.i = true;
        else if (c === 4) st.u = true;
        else if (c === 7) st.inv = true;
        else if (c === 22) st.b = st.dim = false;
        else if (c === 23) st.i = false;
        else if (c === 24) st.u = false;
        else if (c === 27) st.inv = false;
        else if (c >= 30 && c <= 37) st.f = c - 30;
        else if (c === 39) st.f = -1;
        else if (c >= 40 && c <= 47) st.g = c - 40;
        else if (c === 49) st.g = -1;
        else if (c >= 90 && c <= 97) st.f = c - 90 + 8;
        else if (c >= 100 && c <= 107) st.g = c - 100;
        else if (c === 38 || c === 48) {
          // 256 colours and true colour: the nearest of the 16.
          let idx = -1;
          if (codes[k + 1] === 5) { idx = codes[k + 2]; k += 2; if (idx >= 16) idx = approx256(idx); }
          else if (codes[k + 1] === 2) { idx = approxRGB(codes[k + 2], codes[k + 3], codes[k + 4]); k += 4; }
          if (idx >= 0) { if (c === 38) st.f = idx; else st.g = idx % 8; }
        }
      }
    }
    emit(text.slice(last));
    return frag;
  }
  function approxRGB(r, g, b) {
    const bright = Math.max(r, g, b) > 200 ? 8 : 0;
    const bit = (v) => (v > 100 ? 1 : 0);
    return bright + (bit(r) | (bit(g) << 1) | (bit(b) << 2));
  }
  function approx256(n) {
    if (n >= 232) return n > 243 ? 7 : 8;
    n -= 16;
    const lv = [0, 95, 135, 175, 215, 255];
    return approxRGB(lv[Math.floor(n / 36)], lv[Math.floor(n / 6) % 6], lv[n % 6]);
  }
  return { render };
})();
