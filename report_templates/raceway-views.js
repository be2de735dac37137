/* Raceway report & web UI: DOM and SVG views shared by both (our own drawing code).
 * Every string from user code is set with textContent or setAttribute, never parsed as HTML. */
(function (global) {
  "use strict";
  var R = global.Raceway, doc = global.document, SVGNS = "http://www.w3.org/2000/svg";

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === "object" ? child : doc.createTextNode(String(child)));
  }
  function build(node, attrs, children) {
    for (var k in attrs || {}) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k.slice(0, 2) === "on" && typeof v === "function") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, String(v));
    }
    append(node, children);
    return node;
  }
  R.el = function (tag, attrs, children) { return build(doc.createElement(tag), attrs, children); };
  R.S = function (tag, attrs, children) { return build(doc.createElementNS(SVGNS, tag), attrs, children); };
  R.clear = function (node) { while (node.firstChild) node.removeChild(node.firstChild); return node; };
  var el = R.el, S = R.S;

  R.table = function (header, rows, cls) {
    return el("table", { "class": cls || "grid" }, [
      el("thead", {}, el("tr", {}, header.map(function (h) { return el("th", { text: h }); }))),
      el("tbody", {}, rows.map(function (r) {
        return el("tr", {}, r.map(function (c) { return c && c.nodeType ? el("td", {}, c) : el("td", { text: R.str(c) }); }));
      }))
    ]);
  };

  /* ---------------- theme ---------------- */
  R.applyTheme = function () {
    var t = null;
    try { t = global.localStorage.getItem("raceway-theme"); } catch (e) { t = null; }
    if (t !== "dark" && t !== "light") t = global.matchMedia && global.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    doc.documentElement.setAttribute("data-theme", t);
  };
  R.themeButton = function () {
    return el("button", { "class": "theme-toggle", type: "button", title: "Switch dark / light theme", text: "◐ theme",
      onclick: function () {
        var next = doc.documentElement.getAttribute("data-theme") === "dark" ? "light" : "dark";
        doc.documentElement.setAttribute("data-theme", next);
        try { global.localStorage.setItem("raceway-theme", next); } catch (e) { /* file:// without storage */ }
      } });
  };

  /* ---------------- race cards ---------------- */
  function frames(stack) {
    if (!Array.isArray(stack) || !stack.length) return null;
    return el("ol", { "class": "stack" }, stack.map(function (f) {
      return el("li", {}, [el("code", { text: R.str(f[0]) + ":" + R.str(f[1]) }), " in ", el("code", { text: R.str(f[2]) })]);
    }));
  }
  function snippet(src) {
    if (!src || !src.lines) return null;
    return el("pre", { "class": "source", "data-file": src.file }, src.lines.map(function (line, k) {
      var n = src.start + k;
      return el("span", { "class": n === src.line ? "src-line hit" : "src-line" }, [
        el("span", { "class": "ln", text: String(n) }), line + "\n"]);
    }));
  }
  function accessPanel(title, acc, src) {
    var verb = R.isWrite(acc.access_type) ? "write" : "read";
    var v = R.formatValue(acc.value);
    return el("section", { "class": "access " + verb }, [
      el("h4", {}, [title + ": ", el("span", { "class": "atype", text: acc.access_type }), " at ", el("code", { text: acc.location })]),
      el("p", {}, ["by task ", el("strong", { text: acc.task_name || acc.task }),
        " (" + R.str(acc.task_kind || "task") + ", ", el("code", { text: acc.task }), ")",
        acc.func ? [" in ", el("code", { text: acc.func })] : null]),
      el("p", { "class": "created" }, acc.task_created_at ? ["task started at ", el("code", { text: acc.task_created_at })] :
        "task started outside this trace (main thread or an earlier test)"),
      acc.origin_test ? el("p", { "class": "created" }, ["task leaked from test ", el("code", { text: acc.origin_test })]) : null,
      v ? el("p", {}, ["value: ", el("code", { "class": "value", text: v })]) : null,
      snippet(src),
      frames(acc.stack),
      acc.task_stack && acc.task_stack.length ? el("details", {}, [el("summary", { text: "where the task was started" }), frames(acc.task_stack)]) : null
    ]);
  }
  R.raceCard = function (race, opts) {
    opts = opts || {};
    var src = race.source || {};
    var anchor = race.anchor || "race-" + race.id;
    var status = R.str(race.status || "new");
    return el("article", { "class": "race-card sev-" + race.severity + " st-" + status, id: anchor, "data-race": race.id }, [
      el("header", {}, [
        el("a", { "class": "anchor", href: "#" + anchor, text: "#" + race.id }),
        el("span", { "class": "sev", text: race.severity }),
        el("span", { "class": "status", text: status }),
        " on ", el("code", { "class": "var", text: race.variable }),
        race.test ? el("span", { "class": "test" }, ["in ", el("code", { text: race.test })]) : null,
        opts.onShow ? el("button", { type: "button", "class": "show-trace", text: "show in trace",
          onclick: function () { opts.onShow(race); } }) : null
      ]),
      el("p", { "class": "explanation", text: race.explanation || "" }),
      race.reason ? el("p", { "class": "reason", text: "suppressed: " + race.reason }) : null,
      el("div", { "class": "accesses" }, [
        race.stale_read ? accessPanel("stale read", race.stale_read, src.stale_read) : null,
        accessPanel("first", race.first, src.first),
        accessPanel("second", race.second, src.second)
      ])
    ]);
  };

  /* ---------------- virtual list ---------------- */
  R.VirtualList = function (container, rowHeight, renderRow) {
    var self = this, items = [];
    var spacer = el("div", { "class": "vspacer" }), body = el("div", { "class": "vbody" });
    R.clear(container).classList.add("vlist");
    container.appendChild(spacer); spacer.appendChild(body);
    function paint() {
      var top = container.scrollTop, h = container.clientHeight || 400;
      var first = Math.max(0, Math.floor(top / rowHeight) - 5), last = Math.min(items.length, Math.ceil((top + h) / rowHeight) + 5);
      R.clear(body);
      body.style.transform = "translateY(" + first * rowHeight + "px)";
      for (var k = first; k < last; k++) body.appendChild(renderRow(items[k], k));
    }
    container.addEventListener("scroll", function () { global.requestAnimationFrame(paint); });
    self.set = function (list) { items = list; spacer.style.height = items.length * rowHeight + "px"; paint(); };
    self.paint = paint;
  };

  /* ---------------- space-time DAG ---------------- */
  var LANE_W = 130, ROW_H = 30, TOP = 46, LEFT = 20, MAX_NODES = 1500, WIN = 120;

  /* Rank segments to draw: a window, or the neighbourhoods of the racing pair. */
  R.dagSegments = function (model, opts) {
    var pair = opts.pair;
    if (pair && pair.a >= 0 && pair.b >= 0) {
      var ra = model.rank[pair.a], rb = model.rank[pair.b], lo = Math.min(ra, rb), hi = Math.max(ra, rb);
      if (hi - lo <= 40) return [[Math.max(0, lo - 4), hi + 4]];
      return [[Math.max(0, lo - 4), lo + 4], [hi - 4, hi + 4]];
    }
    var r0 = Math.max(0, opts.start || 0);
    return [[r0, Math.min(model.maxRank, r0 + (opts.win || WIN) - 1)]];
  };

  R.drawDag = function (model, opts) {
    opts = opts || {};
    var ev = model.events, match = opts.match || function () { return true; };
    var order = opts.order || R.rankOrder(model), segs = R.dagSegments(model, opts);
    var inSeg = function (r) { for (var s = 0; s < segs.length; s++) if (r >= segs[s][0] && r <= segs[s][1]) return s; return -1; };
    var laneOk = function (t) { return !opts.task || t === opts.task; };
    var nodes = [], yOf = {}, row = 0, lanesUsed = {}, truncated = false;
    segs.forEach(function (seg, s) {
      if (s > 0) row += 1.5;                                   // room for the elision marker
      var lo = 0, hi = order.length;
      while (lo < hi) { var m = (lo + hi) >> 1; if (model.rank[order[m]] < seg[0]) lo = m + 1; else hi = m; }
      var base = row, maxRow = row;
      for (var k = lo; k < order.length && model.rank[order[k]] <= seg[1]; k++) {
        var i = order[k];
        if (!laneOk(ev[i].task)) continue;
        if (nodes.length >= MAX_NODES && !(opts.pair && (i === opts.pair.a || i === opts.pair.b))) { truncated = true; continue; }
        var y = base + (model.rank[i] - seg[0]);
        yOf[i] = y; nodes.push(i); lanesUsed[ev[i].task] = 1;
        if (y > maxRow) maxRow = y;
      }
      row = maxRow + 1;
    });
    var lanes = model.lanes.filter(function (t) { return lanesUsed[t] || (opts.task === t); });
    lanes.sort(function (a, b) {
      var sa = ev[model.byTask[a][0]].svc, sb = ev[model.byTask[b][0]].svc;
      return sa < sb ? -1 : sa > sb ? 1 : model.lanes.indexOf(a) - model.lanes.indexOf(b);
    });
    var xOf = {};
    lanes.forEach(function (t, k) { xOf[t] = LEFT + LANE_W / 2 + k * LANE_W; });
    var width = Math.max(300, LEFT * 2 + lanes.length * LANE_W), height = TOP + Math.max(1, row) * ROW_H + 20;
    var Y = function (i) { return TOP + yOf[i] * ROW_H + ROW_H / 2; };
    var svg = S("svg", { "class": "dag", "data-view": "dag", width: width, height: height, viewBox: "0 0 " + width + " " + height,
      "data-lanes": lanes.length, "data-nodes": nodes.length, role: "img" });
    svg.appendChild(S("defs", {}, ["fork", "join", "lock", "queue", "http", "hb"].map(function (t) {
      return S("marker", { id: "arrow-" + t, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        S("path", { d: "M0,0 L10,5 L0,10 z", "class": "arrowhead e-" + t }));
    })));
    var gl = S("g", { "class": "lanes" });
    lanes.forEach(function (t) {
      var first = model.byTask[t][0], info = (opts.tasks || {})[t] || {};
      var name = info.name && info.name !== t ? info.name : t;
      gl.appendChild(S("g", { "class": "lane", "data-lane": t }, [
        S("line", { x1: xOf[t], x2: xOf[t], y1: TOP - 6, y2: height - 10, "class": "lane-line" }),
        S("text", { x: xOf[t], y: 16, "class": "lane-name", "text-anchor": "middle" }, [name.length > 18 ? name.slice(0, 17) + "…" : name, S("title", { text: t + (info.kind ? " (" + info.kind + ")" : "") })]),
        S("text", { x: xOf[t], y: 32, "class": "lane-svc", "text-anchor": "middle", text: ev[first].svc })
      ]));
    });
    svg.appendChild(gl);
    segs.forEach(function (seg, s) {
      if (s === 0) return;
      var yb = TOP + (segs[0][1] - segs[0][0] + 1.2) * ROW_H;
      svg.appendChild(S("text", { x: 8, y: yb, "class": "elided", text: "⋯ " + (seg[0] - segs[s - 1][1] - 1) + " causal steps not shown ⋯" }));
    });
    var ge = S("g", { "class": "edges" }), shown = 0;
    model.edges.forEach(function (ed) {
      var fa = yOf[ed.from] !== undefined, fb = yOf[ed.to] !== undefined;
      if (!fa && !fb) return;
      var ta = ev[ed.from].task, tb = ev[ed.to].task;
      if (xOf[ta] === undefined || xOf[tb] === undefined) return;
      var x1 = xOf[ta], x2 = xOf[tb];
      var y1 = fa ? Y(ed.from) : TOP - 4, y2 = fb ? Y(ed.to) : height - 12;
      var dx = x2 > x1 ? -7 : 7;
      ge.appendChild(S("line", { x1: x1, y1: y1, x2: fb ? x2 + dx : x2, y2: y2, "class": "edge e-" + ed.type + (fa && fb ? "" : " stub"),
        "data-type": ed.type, "data-from": ed.from, "data-to": ed.to, "marker-end": "url(#arrow-" + ed.type + ")" },
        S("title", { text: ed.type + " edge: " + R.label(ev[ed.from]) + " → " + R.label(ev[ed.to]) })));
      shown++;
    });
    svg.setAttribute("data-edges", shown);
    svg.appendChild(ge);
    var cp = opts.cp || {}, pair = opts.pair || { a: -1, b: -1, stale: -1 };
    if (pair.a >= 0 && pair.b >= 0 && yOf[pair.a] !== undefined && yOf[pair.b] !== undefined) {
      var ax = xOf[ev[pair.a].task], ay = Y(pair.a), bx = xOf[ev[pair.b].task], by = Y(pair.b);
      var mx = (ax + bx) / 2, my = (ay + by) / 2;
      svg.appendChild(S("g", { "class": "missing-edge" }, [
        S("line", { x1: ax, y1: ay, x2: bx, y2: by }),
        S("circle", { cx: mx, cy: my, r: 9 }),
        S("text", { x: mx, y: my + 4, "text-anchor": "middle", text: "✕" }),
        S("text", { x: mx + 12, y: my - 10, "class": "missing-label", text: "no happens-before edge" }),
        S("title", { text: "Missing happens-before edge between the two racing accesses: neither task's clock covers the other's access." })
      ]));
    }
    var gn = S("g", { "class": "nodes" });
    nodes.forEach(function (i) {
      var e = ev[i], cls = "node k-" + e.kind + (e.kind === "StateChange" ? (R.isWrite(e.op) ? " w" : " r") : "");
      if (cp[i]) cls += " cp";
      if (i === pair.a || i === pair.b || i === pair.stale) cls += " racing";
      if (!match(e)) cls += " dim";
      if (opts.selected === i) cls += " selected";
      var g = S("g", { "class": cls, "data-i": i, transform: "translate(" + xOf[e.task] + "," + Y(i) + ")", tabindex: 0 }, [
        S("circle", { r: e.kind === "StateChange" ? 7 : 5 }),
        S("text", { x: 10, y: 4, "class": "node-label", text: R.label(e).slice(0, 22) }),
        S("title", { text: R.label(e) + "\n" + e.task + (e.loc ? " @ " + e.loc : "") + "\nt = " + R.fmtNs(e.ts) })
      ]);
      gn.appendChild(g);
    });
    svg.appendChild(gn);
    if (opts.onSelect) svg.addEventListener("click", function (evt) {
      var g = evt.target.closest ? evt.target.closest("g.node") : null;
      if (g) opts.onSelect(Number(g.getAttribute("data-i")));
    });
    svg.truncated = truncated;
    return svg;
  };

  /* ---------------- wall-clock timeline ---------------- */
  var LABEL_W = 150, LANE_H = 22, AXIS_H = 26, BUCKET_PX = 3;

  function niceStep(span, px) {
    var raw = span / Math.max(1, px / 90), p = Math.pow(10, Math.floor(Math.log10(raw || 1))), m = raw / p;
    return (m < 2 ? 2 : m < 5 ? 5 : 10) * p;
  }

  R.Timeline = function (container, model, opts) {
    var self = this, ev = model.events, full = Math.max(1, model.tEnd * 1.02 + 1);
    self.v0 = 0; self.v1 = full; opts = opts || {};
    var lanesSorted = {};
    model.lanes.forEach(function (t) {
      var idx = model.byTask[t].slice().sort(function (a, b) { return ev[a].ts - ev[b].ts; });
      var maxDur = 0;
      idx.forEach(function (i) { if (ev[i].dur > maxDur) maxDur = ev[i].dur; });
      lanesSorted[t] = { idx: idx, maxDur: maxDur };
    });
    var svg = S("svg", { "class": "timeline", "data-view": "timeline" });
    var bar = el("div", { "class": "toolbar" }, [
      el("button", { type: "button", text: "+", title: "zoom in", onclick: function () { self.zoom(0.5); } }),
      el("button", { type: "button", text: "−", title: "zoom out", onclick: function () { self.zoom(2); } }),
      el("button", { type: "button", text: "reset", title: "show everything", onclick: function () { self.v0 = 0; self.v1 = full; self.render(); } }),
      el("span", { "class": "hint", text: "wheel: zoom · drag: pan" })
    ]);
    R.clear(container).appendChild(bar);
    container.appendChild(el("div", { "class": "tl-wrap" }, svg));
    self.svg = svg;
    self.zoom = function (f, at) {
      var span = self.v1 - self.v0, c = at === undefined ? self.v0 + span / 2 : at;
      var ns = Math.max(1000, Math.min(full, span * f));
      self.v0 = Math.max(0, c - (c - self.v0) * ns / span);
      self.v1 = Math.min(full, self.v0 + ns);
      self.v0 = Math.max(0, self.v1 - ns);
      self.render();
    };
    var width = function () { return Math.max(400, (container.clientWidth || 900) - 4); };
    var toNs = function (px) { return self.v0 + (px - LABEL_W) / (width() - LABEL_W) * (self.v1 - self.v0); };
    svg.addEventListener("wheel", function (evt) {
      evt.preventDefault();
      var r = svg.getBoundingClientRect();
      self.zoom(evt.deltaY < 0 ? 0.8 : 1.25, toNs(evt.clientX - r.left));
    }, { passive: false });
    var drag = null;
    svg.addEventListener("pointerdown", function (evt) { drag = { x: evt.clientX, v0: self.v0, v1: self.v1 }; });
    global.addEventListener("pointerup", function () { drag = null; });
    svg.addEventListener("pointermove", function (evt) {
      if (!drag) return;
      var dn = (drag.x - evt.clientX) / (width() - LABEL_W) * (drag.v1 - drag.v0);
      var span = drag.v1 - drag.v0;
      self.v0 = Math.max(0, Math.min(full - span, drag.v0 + dn)); self.v1 = self.v0 + span;
      if (!self.pending) { self.pending = true; global.requestAnimationFrame(function () { self.pending = false; self.render(); }); }
    });
    self.render = function () {
      var W = width(), track = W - LABEL_W, span = self.v1 - self.v0, o = self.opts || opts;
      var lanes = model.lanes.filter(function (t) { return !o.task || t === o.task; });
      var H = AXIS_H + lanes.length * LANE_H + 6, match = o.match || function () { return true; };
      var X = function (ns) { return LABEL_W + (ns - self.v0) / span * track; };
      R.clear(svg);
      svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("data-lanes", lanes.length);
      var axis = S("g", { "class": "axis" }), step = niceStep(span, track);
      for (var t = Math.ceil(self.v0 / step) * step; t <= self.v1; t += step) {
        axis.appendChild(S("line", { x1: X(t), x2: X(t), y1: AXIS_H - 6, y2: H, "class": "tick" }));
        axis.appendChild(S("text", { x: X(t) + 2, y: AXIS_H - 10, text: R.fmtNs(t) }));
      }
      svg.appendChild(axis);
      var cp = o.cp || {}, pair = o.pair || { a: -1, b: -1, stale: -1 }, marks = 0;
      lanes.forEach(function (task, k) {
        var y = AXIS_H + k * LANE_H, info = lanesSorted[task], g = S("g", { "class": "tl-lane", "data-lane": task });
        var name = ((o.tasks || {})[task] || {}).name || task;
        g.appendChild(S("rect", { x: 0, y: y, width: W, height: LANE_H, "class": k % 2 ? "band odd" : "band" }));
        g.appendChild(S("text", { x: 4, y: y + 15, "class": "lane-name" }, [name.length > 20 ? name.slice(0, 19) + "…" : name, S("title", { text: task })]));
        var idx = info.idx, lo = 0, hi = idx.length, from = self.v0;
        while (lo < hi) { var m = (lo + hi) >> 1; if (ev[idx[m]].ts < from) lo = m + 1; else hi = m; }
        var vis = [];
        for (var p = lo; p < idx.length && ev[idx[p]].ts - ev[idx[p]].dur <= self.v1; p++) vis.push(idx[p]);
        if (info.maxDur > 0) {  // spans that started earlier but end after v1 or inside the view
          for (var q = 0; q < lo; q++) { var e0 = ev[idx[q]]; if (e0.dur && e0.ts >= self.v0) vis.push(idx[q]); }
        }
        var agg = vis.length > track / BUCKET_PX, isPair = function (i) { return i === pair.a || i === pair.b || i === pair.stale; };
        if (agg) {  // too many to tell apart: density bars per 3 px (critical-path ones in their own colour)
          var buckets = [{}, {}], maxC = 1;
          vis.forEach(function (i) {
            if (isPair(i)) return;
            var b = Math.floor((X(ev[i].ts) - LABEL_W) / BUCKET_PX), set = buckets[cp[i] ? 1 : 0];
            set[b] = (set[b] || 0) + 1;
            if (set[b] > maxC) maxC = set[b];
          });
          buckets.forEach(function (set, onPath) {
            for (var b in set) {
              var c = set[b], h = 4 + (LANE_H - 8) * c / maxC;
              g.appendChild(S("rect", { x: LABEL_W + b * BUCKET_PX, y: y + LANE_H - 2 - h, width: BUCKET_PX - 0.5, height: h, "class": onPath ? "agg cp" : "agg" },
                S("title", { text: c + " events" + (onPath ? " on the critical path" : "") })));
            }
          });
          g.setAttribute("data-aggregated", "1");
        }
        vis.forEach(function (i) {
          var e = ev[i], racing = isPair(i);
          if (agg && !racing) return;
          var cls = "tl-ev k-" + e.kind + (cp[i] ? " cp" : "") + (racing ? " racing" : "") + (match(e) ? "" : " dim");
          if (racing) marks++;
          var x1 = X(e.ts - e.dur), x2 = X(e.ts), wdt = Math.max(2, x2 - x1);
          g.appendChild(S("rect", { x: Math.max(LABEL_W, x1), y: y + 4, width: Math.min(wdt, W - Math.max(LABEL_W, x1)), height: LANE_H - 8, "class": cls, "data-i": i },
            S("title", { text: R.label(e) + (e.dur ? " (" + R.fmtNs(e.dur) + ")" : "") + "\n" + e.task + " @ " + R.fmtNs(e.ts) })));
        });
        svg.appendChild(g);
      });
      svg.setAttribute("data-racing", marks);
    };
    self.opts = opts;
    self.update = function (o) { self.opts = o; self.render(); };
    self.render();
  };

  /* ---------------- service dependency graph ---------------- */
  R.serviceGraph = function (services, deps) {
    var n = Math.max(1, services.length), W = 520, H = n > 1 ? 360 : 140, cx = W / 2, cy = H / 2, rad = n > 1 ? Math.min(cx, cy) - 60 : 0;
    var pos = {};
    services.forEach(function (s, k) {
      var a = 2 * Math.PI * k / n - Math.PI / 2;
      pos[s.name] = [cx + rad * Math.cos(a), cy + rad * Math.sin(a)];
    });
    var svg = S("svg", { "class": "svc-graph", "data-view": "services", width: W, height: H, viewBox: "0 0 " + W + " " + H });
    svg.appendChild(S("defs", {}, S("marker", { id: "arrow-svc", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      S("path", { d: "M0,0 L10,5 L0,10 z", "class": "arrowhead" }))));
    deps.forEach(function (d) {
      var a = pos[d.from], b = pos[d.to];
      if (!a || !b) return;
      var dx = b[0] - a[0], dy = b[1] - a[1], len = Math.sqrt(dx * dx + dy * dy) || 1, ux = dx / len, uy = dy / len;
      svg.appendChild(S("g", { "class": "svc-edge", "data-from": d.from, "data-to": d.to }, [
        S("line", { x1: a[0] + ux * 28, y1: a[1] + uy * 28, x2: b[0] - ux * 30, y2: b[1] - uy * 30, "marker-end": "url(#arrow-svc)" }),
        S("text", { x: (a[0] + b[0]) / 2 + uy * 10, y: (a[1] + b[1]) / 2 - ux * 10, text: "×" + d.call_count })
      ]));
    });
    services.forEach(function (s) {
      var p = pos[s.name];
      svg.appendChild(S("g", { "class": "svc-node", "data-service": s.name, transform: "translate(" + p[0] + "," + p[1] + ")" }, [
        S("circle", { r: 26 }),
        S("text", { y: 4, "text-anchor": "middle", text: s.name.length > 12 ? s.name.slice(0, 11) + "…" : s.name }),
        S("title", { text: s.name + (s.event_count !== undefined ? ": " + s.event_count + " events" : "") })
      ]));
    });
    return svg;
  };
})(window);
