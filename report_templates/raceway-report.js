/* Raceway report: reads the embedded JSON, draws race cards (in chunks) and opens trace views
 * lazily, one per test, when they are expanded or linked to (#race-N, #trace-ID). */
(function (global) {
  "use strict";
  var R = global.Raceway, el = R.el, doc = global.document, CHUNK = 100;
  R.applyTheme();
  var data = JSON.parse(doc.getElementById("raceway-data").textContent);
  doc.getElementById("theme-slot").appendChild(R.themeButton());

  var traceById = {}, views = {}, sections = {};
  data.traces.forEach(function (t) { traceById[t.trace_id] = t; });
  var racesByTrace = {};
  data.races.forEach(function (r) { (racesByTrace[r.trace_id] = racesByTrace[r.trace_id] || []).push(r); });

  /* ---- traces ---- */
  function openTrace(id) {
    var sec = sections[id];
    if (!sec) return null;
    sec.open = true;
    if (!views[id]) {
      var t = traceById[id], model = R.buildModel(R.fromCompact(t)), holder = sec.querySelector(".trace-body");
      views[id] = new R.TraceView(holder, {
        model: model, tasks: t.tasks, races: racesByTrace[id] || [], cp: t.critical_path, anomalies: t.anomalies,
        deps: t.dependencies, traceId: id, auditVars: Object.keys(t.audit).sort(),
        audit: function (v) { return R.auditFromCompact(model, t.audit[v] || []); },
        exportJson: function () {
          return { trace_id: id, test: t.test, t0: t.t0, events: model.events, tasks: t.tasks, races: racesByTrace[id] || [],
            critical_path: t.critical_path, anomalies: t.anomalies, dependencies: t.dependencies };
        }
      });
    }
    return views[id];
  }
  var tracesBox = doc.getElementById("traces");
  data.traces.forEach(function (t) {
    var n = (racesByTrace[t.trace_id] || []).length;
    var sec = el("details", { "class": "trace", id: "trace-" + t.trace_id, "data-trace": t.trace_id }, [
      el("summary", {}, [el("code", { text: t.test || t.trace_id }), " · " + t.events.length + " events · " + n + (n === 1 ? " race" : " races"),
        t.bad_events ? el("span", { "class": "warn", text: " · " + t.bad_events + " unreadable events skipped" }) : null]),
      el("div", { "class": "trace-body" })
    ]);
    sec.addEventListener("toggle", function () { if (sec.open) openTrace(t.trace_id); });
    sections[t.trace_id] = sec;
    tracesBox.appendChild(sec);
  });
  if (!data.traces.length) tracesBox.appendChild(el("p", { "class": "muted", text: "No traces in this session." }));

  function showInTrace(race) {
    var view = openTrace(race.trace_id);
    if (!view) return;
    view.showRace(race.id);
    sections[race.trace_id].scrollIntoView({ block: "start" });
  }

  /* ---- race cards, filtered, rendered in chunks ---- */
  var racesBox = doc.getElementById("races"), filter = { severity: "", status: "", q: "" }, shown = 0, list = [];
  function matches(r) {
    if (filter.severity && r.severity !== filter.severity) return false;
    if (filter.status && R.str(r.status || "new") !== filter.status) return false;
    var q = filter.q.toLowerCase();
    return !q || (R.str(r.variable) + " " + R.str(r.test) + " " + R.str(r.first.location) + " " + R.str(r.second.location)).toLowerCase().indexOf(q) >= 0;
  }
  function more(upTo) {
    var stop = Math.max(shown + CHUNK, upTo || 0);
    var btn = racesBox.querySelector(".more");
    if (btn) btn.remove();
    for (; shown < list.length && shown < stop; shown++) racesBox.appendChild(R.raceCard(list[shown], { onShow: showInTrace }));
    if (shown < list.length) racesBox.appendChild(el("button", { type: "button", "class": "more", text: "show " + Math.min(CHUNK, list.length - shown) + " more of " + (list.length - shown),
      onclick: function () { more(); } }));
  }
  function redraw() {
    if (!data.races.length) return;
    R.clear(racesBox); shown = 0; list = data.races.filter(matches);
    if (!list.length) racesBox.appendChild(el("p", { "class": "muted", text: "No race matches the filter." }));
    more();
  }
  if (data.races.length) {
    var opts = function (vals) { return [el("option", { value: "", text: "all" })].concat(vals.map(function (v) { return el("option", { value: v, text: v }); })); };
    var uniq = function (f) { var s = []; data.races.forEach(function (r) { var v = f(r); if (s.indexOf(v) < 0) s.push(v); }); return s.sort(); };
    doc.getElementById("race-filters").appendChild(el("div", {}, [
      el("label", {}, ["severity ", el("select", { name: "severity", onchange: function (e) { filter.severity = e.target.value; redraw(); } }, opts(uniq(function (r) { return r.severity; })))]),
      el("label", {}, ["status ", el("select", { name: "status", onchange: function (e) { filter.status = e.target.value; redraw(); } }, opts(uniq(function (r) { return R.str(r.status || "new"); })))]),
      el("input", { type: "search", placeholder: "search variable, test, location", "class": "search", oninput: function (e) { filter.q = e.target.value; redraw(); } })
    ]));
    redraw();
  }

  /* ---- deep links ---- */
  function follow() {
    var h = decodeURIComponent(global.location.hash.slice(1));
    if (!h) return;
    if (h.indexOf("trace-") === 0 && sections[h.slice(6)]) { openTrace(h.slice(6)); sections[h.slice(6)].scrollIntoView(); return; }
    var k = -1;
    for (var j = 0; j < list.length; j++) if (list[j].anchor === h) { k = j; break; }
    if (k < 0) return;
    if (k >= shown) more(k + 1);
    var card = doc.getElementById(h);
    if (card) { card.classList.add("target"); card.scrollIntoView({ block: "start" }); }
  }
  global.addEventListener("hashchange", follow);
  follow();

  global.RacewayReport = { data: data, openTrace: openTrace, showInTrace: showInTrace, views: views };
  doc.documentElement.setAttribute("data-ready", "1");
})(window);
