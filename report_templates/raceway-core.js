/* Raceway report & web UI: the data model (no DOM). Our own code, no dependencies.
 *
 * Two decoders produce the same event records: fromCompact (the report's embedded rows) and
 * fromWire (the server's wire events). buildModel derives the happens-before DAG from the vector
 * clocks exactly like raceway_server/engine/critical_path.py (HBGraph): per task, events sorted
 * by their own epoch; the cross-task predecessors of an event are, for each clock component that
 * grew since the task's previous event, the last event of that task covered by the clock, keeping
 * only HB-maximal ones. Edges are then named after the events they join (fork, join, lock,
 * queue, http, hb). User strings only ever reach the DOM through textContent/setAttribute. */
(function (global) {
  "use strict";
  var R = global.Raceway = global.Raceway || {};

  var TIMED_MS = { HttpResponse: 1, DatabaseQuery: 1 };

  function str(v) { return v === null || v === undefined ? "" : String(v); }
  R.str = str;

  /* ---------------- decoding ---------------- */

  R.fromCompact = function (doc) {
    var s = doc.strings, vcs = [], rows = doc.events, out = new Array(rows.length);
    for (var k = 0; k < doc.vcs.length; k++) {
      var flat = doc.vcs[k], vc = {};
      for (var j = 0; j < flat.length; j += 2) vc[s[flat[j]]] = flat[j + 1];
      vcs.push(vc);
    }
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      out[i] = {
        i: i, id: r[0], ts: r[1], task: s[r[2]], kind: s[r[3]], name: s[r[4]], op: s[r[5]],
        loc: s[r[6]], value: r[7], dur: r[8] || 0, vc: vcs[r[9]], child: s[r[10]],
        svc: s[r[11]], lock: s[r[12]]
      };
    }
    return out;
  };

  var TS_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i;
  function parseTs(text) {
    var m = TS_RE.exec(str(text));
    if (!m) return null;
    var sec = Date.parse(m[1] + (m[3].toUpperCase() === "Z" ? "Z" : m[3])) / 1000;
    var frac = m[2] ? Number((m[2] + "000000000").slice(0, 9)) : 0;
    return [sec, frac];
  }
  R.parseTs = parseTs;

  function wireFields(kind, d, ext) {
    var loc = str(d.location), child = str(ext.child);
    switch (kind) {
      case "StateChange":
        return [str(d.variable), str(d.access_type), loc, ("value" in ext) ? ext.value : d.new_value, "", ""];
      case "LockAcquire": case "LockRelease":
        return [str(d.lock_type), str(ext.sync || (kind === "LockAcquire" ? "acquire" : "release")), loc, null, "", str(d.lock_id)];
      case "AsyncSpawn":
        return [str(ext.child_name || d.task_id), str(ext.child_kind || "spawn"), loc, null, child, ""];
      case "AsyncAwait":
        return [str(ext.child || d.future_id), "join", str(d.awaited_at), null, child, ""];
      case "FunctionCall":
        return [str(d.function_name), str(d.module), d.file ? d.file + ":" + (d.line || 0) : "", null, "", ""];
      case "HttpRequest": return [str(d.url), str(d.method), loc, null, "", ""];
      case "HttpResponse": return [str(d.status), "", loc, null, "", ""];
      case "DatabaseQuery": return [str(d.query), str(d.database), loc, null, "", ""];
      case "DatabaseResult": return [str(d.rows_affected), "", loc, null, "", ""];
      case "Error": return [str(d.error_type), str(d.message), loc, null, "", ""];
      case "Custom": return [str(d.name), "", loc, null, "", ""];
      case "MemoryFence": return [str(d.ordering), "", loc, null, "", ""];
      default: return ["", "", loc, null, "", ""];
    }
  }

  R.fromWire = function (events) {
    var parsed = [], base = Infinity, i;
    for (i = 0; i < events.length; i++) {
      var t = parseTs(events[i].timestamp) || [0, 0];
      parsed.push(t);
      if (t[0] < base) base = t[0];
    }
    var interned = {}, out = new Array(events.length), t0 = Infinity;
    for (i = 0; i < events.length; i++) {
      var w = events[i], kindObj = w.kind || {}, kind = Object.keys(kindObj)[0] || "Custom";
      var d = kindObj[kind] || {}, ext = w.raceway || {}, meta = w.metadata || {};
      var dur = Number(meta.duration_ns) || 0;
      if (!dur && TIMED_MS[kind] && Number(d.duration_ms) > 0) dur = Math.round(d.duration_ms * 1e6);
      var pairs = (w.causality_vector || []).slice().sort(function (a, b) { return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0; });
      var key = JSON.stringify(pairs), vc = interned[key];
      if (!vc) {
        vc = {};
        for (var j = 0; j < pairs.length; j++) vc[pairs[j][0]] = pairs[j][1];
        interned[key] = vc;
      }
      var f = wireFields(kind, d, ext);
      var ts = (parsed[i][0] - base) * 1e9 + parsed[i][1];
      out[i] = {
        i: i, id: str(w.id), ts: ts, task: str(ext.task || meta.thread_id), kind: kind,
        name: f[0], op: f[1], loc: f[2], value: f[3] === undefined ? null : f[3], dur: dur, vc: vc,
        child: f[4], svc: str(meta.service_name), lock: f[5]
      };
      if (ts - dur < t0) t0 = ts - dur;
    }
    if (!isFinite(t0)) t0 = 0;
    for (i = 0; i < out.length; i++) out[i].ts -= t0;
    return out;
  };

  /* ---------------- labels ---------------- */

  R.formatValue = function (v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "string") return JSON.stringify(v);
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  };

  R.label = function (e) {
    switch (e.kind) {
      case "StateChange":
        var v = R.formatValue(e.value);
        return e.op + " " + e.name + (v ? " = " + v : "");
      case "LockAcquire": case "LockRelease": return e.op + " " + e.name;
      case "AsyncSpawn": return "spawn " + e.name + " (" + e.op + ")";
      case "AsyncAwait": return "join " + e.name;
      case "FunctionCall": return "call " + e.name;
      case "HttpRequest": return e.op + " " + e.name;
      case "HttpResponse": return "response " + e.name;
      case "Custom": return e.name === "raceway.task_end" ? "task end" : "custom " + e.name;
      default: return e.kind + (e.name ? " " + e.name : "");
    }
  };

  R.isWrite = function (op) { return op === "Write" || op === "AtomicWrite" || op === "AtomicRMW"; };

  R.fmtNs = function (ns) {
    var a = Math.abs(ns);
    if (a >= 1e9) return (ns / 1e9).toFixed(a >= 1e10 ? 1 : 3) + " s";
    if (a >= 1e6) return (ns / 1e6).toFixed(a >= 1e7 ? 1 : 3) + " ms";
    if (a >= 1e3) return (ns / 1e3).toFixed(1) + " µs";
    return Math.round(ns) + " ns";
  };

  /* ---------------- the happens-before model ---------------- */

  function classify(a, b, child) {
    if (a.kind === "AsyncSpawn" && a.child === b.task) return "fork";
    if (b.kind === "AsyncAwait" && b.child === a.task) return "join";
    if (child && a.kind === "Custom" && a.name === "raceway.task_end") return "join";
    var lt = (a.kind === "LockRelease" ? a.name : b.kind === "LockAcquire" ? b.name : "").toLowerCase();
    if (a.kind === "HttpRequest" || b.kind === "HttpRequest" || a.kind === "HttpResponse" ||
        b.kind === "HttpResponse" || lt.indexOf("http") >= 0) return "http";
    if (lt.indexOf("queue") >= 0 || lt.indexOf("stream") >= 0) return "queue";
    if (lt) return "lock";
    return "hb";
  }
  R.classify = classify;

  R.buildModel = function (events) {
    var n = events.length, byTask = {}, lanes = [], i, k;
    for (i = 0; i < n; i++) {
      var t = events[i].task;
      if (!byTask[t]) { byTask[t] = []; lanes.push(t); }
      byTask[t].push(i);
    }
    var epochs = {};
    lanes.forEach(function (task) {
      var idxs = byTask[task];
      idxs.sort(function (a, b) {
        var ea = events[a].vc[task] || 0, eb = events[b].vc[task] || 0;
        return ea - eb || a - b;
      });
      epochs[task] = idxs.map(function (x) { return events[x].vc[task] || 0; });
    });
    var po = new Int32Array(n).fill(-1), cross = new Array(n), empty = {};
    lanes.forEach(function (task) {
      var idxs = byTask[task], prev = -1;
      for (var p = 0; p < idxs.length; p++) {
        var x = idxs[p];
        po[x] = prev;
        var prevVc = prev >= 0 ? events[prev].vc : empty, vc = events[x].vc;
        if (vc !== prevVc) {
          var found = [];
          for (var comp in vc) {
            if (comp === task) continue;
            var c = vc[comp];
            if (c <= (prevVc[comp] || 0)) continue;
            var eps = epochs[comp];
            if (!eps) continue;
            var lo = 0, hi = eps.length;           // bisect_right(eps, c) - 1
            while (lo < hi) { var mid = (lo + hi) >> 1; if (eps[mid] <= c) lo = mid + 1; else hi = mid; }
            k = lo - 1;
            if (k < 0 || eps[k] <= (prevVc[comp] || 0)) continue;
            found.push(byTask[comp][k]);
          }
          if (found.length > 1) {
            found = found.filter(function (q) {
              var tq = events[q].task, eq = events[q].vc[tq] || 0;
              return !found.some(function (r) { return r !== q && (events[r].vc[tq] || 0) >= eq; });
            });
          }
          if (found.length) cross[x] = found;
        }
        prev = x;
      }
    });
    var edges = [], have = {};
    for (i = 0; i < n; i++) {
      if (!cross[i]) continue;
      for (k = 0; k < cross[i].length; k++) {
        var q = cross[i][k];
        edges.push({ from: q, to: i, type: classify(events[q], events[i], false) });
        have[q + ":" + i] = 1;
      }
    }
    // Original-SDK events carry no usable clocks: fork/join links from the spawn/await payloads.
    for (i = 0; i < n; i++) {
      var e = events[i];
      if (!e.child || !byTask[e.child] || e.child === e.task) continue;
      var kids = byTask[e.child], from, to;
      if (e.kind === "AsyncSpawn") { from = i; to = kids[0]; } else if (e.kind === "AsyncAwait") { from = kids[kids.length - 1]; to = i; } else continue;
      if (from === to || have[from + ":" + to]) continue;
      var dup = edges.some(function (ed) { return ed.to === to && events[ed.from].task === events[from].task; });
      if (dup) continue;
      edges.push({ from: from, to: to, type: e.kind === "AsyncSpawn" ? "fork" : "join" });
      have[from + ":" + to] = 1;
      (cross[to] = cross[to] || []).push(from);
    }
    // Causal rank: longest path from a source (Kahn); events caught in a cycle follow by time.
    var indeg = new Int32Array(n), succ = new Array(n);
    function link(a, b) { indeg[b]++; (succ[a] = succ[a] || []).push(b); }
    for (i = 0; i < n; i++) {
      if (po[i] >= 0) link(po[i], i);
      if (cross[i]) for (k = 0; k < cross[i].length; k++) link(cross[i][k], i);
    }
    var rank = new Int32Array(n), queue = [], placed = 0;
    for (i = 0; i < n; i++) if (!indeg[i]) queue.push(i);
    for (var h = 0; h < queue.length; h++) {
      var u = queue[h]; placed++;
      var ss = succ[u];
      if (!ss) continue;
      for (k = 0; k < ss.length; k++) {
        var v = ss[k];
        if (rank[u] + 1 > rank[v]) rank[v] = rank[u] + 1;
        if (--indeg[v] === 0) queue.push(v);
      }
    }
    var maxRank = 0;
    for (i = 0; i < n; i++) if (rank[i] > maxRank) maxRank = rank[i];
    if (placed < n) {
      for (i = 0; i < n; i++) if (indeg[i] > 0) rank[i] = ++maxRank;
    }
    var idIndex = {}, tEnd = 0;
    for (i = 0; i < n; i++) { idIndex[events[i].id] = i; if (events[i].ts > tEnd) tEnd = events[i].ts; }
    var services = [];
    events.forEach(function (ev) { if (services.indexOf(ev.svc) < 0) services.push(ev.svc); });
    return {
      events: events, lanes: lanes, byTask: byTask, po: po, cross: cross, edges: edges,
      rank: rank, maxRank: maxRank, idIndex: idIndex, tEnd: tEnd, services: services,
      cyclic: n - placed
    };
  };

  /* Events ordered by causal rank (then time): the DAG's rows. */
  R.rankOrder = function (model) {
    var ev = model.events, order = ev.map(function (e, i) { return i; });
    order.sort(function (a, b) { return model.rank[a] - model.rank[b] || ev[a].ts - ev[b].ts || a - b; });
    return order;
  };

  /* ---------------- filters ---------------- */

  R.matcher = function (f) {
    var q = str(f.search).toLowerCase();
    return function (e) {
      if (f.task && e.task !== f.task) return false;
      if (f.kind && e.kind !== f.kind) return false;
      if (f.variable && !(e.kind === "StateChange" && e.name === f.variable)) return false;
      if (q) {
        var hay = (R.label(e) + " " + e.loc + " " + e.task + " " + e.id + " " + e.svc).toLowerCase();
        if (hay.indexOf(q) < 0) return false;
      }
      return true;
    };
  };

  /* ---------------- analyses in one shape for both sources ---------------- */

  R.racePair = function (model, race) {
    var a = model.idIndex[race.first && race.first.event_id];
    var b = model.idIndex[race.second && race.second.event_id];
    var s = race.stale_read ? model.idIndex[race.stale_read.event_id] : undefined;
    return { a: a === undefined ? -1 : a, b: b === undefined ? -1 : b, stale: s === undefined ? -1 : s };
  };

  /* Critical path steps [{i, ms}] from the report's [[i, ms]] or the API's [{id, duration_ms}]. */
  R.pathSteps = function (model, cp) {
    if (!cp || !cp.path) return [];
    return cp.path.map(function (p) {
      if (Array.isArray(p)) return { i: p[0], ms: p[1] };
      var i = model.idIndex[p.id];
      return { i: i === undefined ? -1 : i, ms: p.duration_ms };
    }).filter(function (s) { return s.i >= 0; });
  };

  /* Audit rows of the report ([i, linked, race_ids, old]) in the API's access shape. */
  R.auditFromCompact = function (model, rows) {
    return rows.map(function (r) {
      var e = model.events[r[0]];
      return {
        event_id: e.id, ts: e.ts, thread_id: e.task, task: e.task, service_name: e.svc,
        access_type: e.op, old_value: r[3], new_value: e.value, location: e.loc,
        has_causal_link_to_previous: !!r[1], is_race: r[2].length > 0, race_ids: r[2]
      };
    });
  };

  /* ---------------- export ---------------- */

  R.csv = function (header, rows) {
    function cell(v) {
      var s = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
      if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;          // no formula injection in spreadsheets
      return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    }
    return [header].concat(rows).map(function (r) { return r.map(cell).join(","); }).join("\r\n") + "\r\n";
  };

  R.eventsCsv = function (model) {
    return R.csv(["index", "id", "time_ns", "task", "service", "kind", "name", "op", "location", "value", "duration_ns"],
      model.events.map(function (e) {
        return [e.i, e.id, e.ts, e.task, e.svc, e.kind, e.name, e.op, e.loc, R.formatValue(e.value), e.dur];
      }));
  };

  R.download = function (name, text, type) {
    var blob = new Blob([text], { type: type || "application/octet-stream" });
    var a = global.document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    global.document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  };
})(typeof window !== "undefined" ? window : this);
