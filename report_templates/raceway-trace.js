/* Raceway: the per-trace view (DAG, timeline, critical path, variables, services, anomalies,
 * events) with filters and search; shared by the report and the web UI. Panels render lazily,
 * the first time their tab is shown. */
(function (global) {
  "use strict";
  var R = global.Raceway, el = R.el;
  var TABS = [["dag", "Causal DAG"], ["timeline", "Timeline"], ["critical", "Critical path"], ["variables", "Variables"],
    ["services", "Services"], ["anomalies", "Anomalies"], ["events", "Events"]];
  var KINDS = ["StateChange", "LockAcquire", "LockRelease", "AsyncSpawn", "AsyncAwait", "FunctionCall", "HttpRequest",
    "HttpResponse", "DatabaseQuery", "DatabaseResult", "Error", "Custom", "MemoryFence"];

  function select(name, label, values, current, onchange) {
    return el("label", {}, [label + " ", el("select", { name: name, onchange: function (e) { onchange(e.target.value); } },
      [el("option", { value: "", text: "all" })].concat(values.map(function (v) {
        var val = Array.isArray(v) ? v[0] : v, text = Array.isArray(v) ? v[1] : v;
        return el("option", { value: val, text: text, selected: val === current ? "selected" : null });
      })))]);
  }

  R.TraceView = function (container, input) {
    var self = this, model = input.model, ev = model.events, tasks = input.tasks || {};
    var state = { filter: { task: "", kind: "", variable: "", search: "" }, race: null, selected: -1, tab: "dag", dagStart: 0 };
    var order = R.rankOrder(model), rendered = {}, panels = {}, timeline = null;
    var cpSteps = R.pathSteps(model, input.cp), cpSet = {};
    cpSteps.forEach(function (s) { cpSet[s.i] = 1; });
    var races = input.races || [];
    var variables = input.auditVars || [];
    var presentKinds = KINDS.filter(function (k) { return ev.some(function (e) { return e.kind === k; }); });

    var details = el("div", { "class": "event-details", "aria-live": "polite" });
    var raceBar = el("div", { "class": "trace-races" }, races.length ? [el("span", { text: "Races in this trace: " })].concat(races.map(function (r) {
      return el("button", { type: "button", "class": "race-chip sev-" + r.severity, "data-race": r.id,
        text: "#" + r.id + " " + r.severity + " on " + r.variable, onclick: function () { self.showRace(r.id); } });
    })) : el("span", { "class": "muted", text: "No races in this trace." }));
    var search = el("input", { type: "search", placeholder: "search events (label, location, task, id)", "class": "search",
      oninput: function (e) { state.filter.search = e.target.value; schedule(); } });
    var filters = el("div", { "class": "filters" }, [
      select("task", "task", model.lanes.map(function (t) { return [t, (tasks[t] && tasks[t].name && tasks[t].name !== t) ? tasks[t].name + " (" + t + ")" : t]; }), "", function (v) { state.filter.task = v; refresh(); }),
      select("variable", "variable", variables, "", function (v) { state.filter.variable = v; refresh(); }),
      select("kind", "kind", presentKinds, "", function (v) { state.filter.kind = v; refresh(); }),
      search,
      el("span", { "class": "spacer" }),
      el("button", { type: "button", text: "events CSV", onclick: function () { R.download("trace-" + input.traceId + "-events.csv", R.eventsCsv(model), "text/csv"); } }),
      el("button", { type: "button", text: "JSON", onclick: function () {
        R.download("trace-" + input.traceId + ".json", JSON.stringify(input.exportJson ? input.exportJson() : { events: ev }, null, 1), "application/json");
      } })
    ]);
    var tabBar = el("div", { "class": "tabs", role: "tablist" }, TABS.map(function (t) {
      return el("button", { type: "button", role: "tab", "data-tab": t[0], text: t[1], onclick: function () { self.tab(t[0]); } });
    }));
    var body = el("div", { "class": "tab-body" });
    R.clear(container).classList.add("trace-view");
    container.setAttribute("data-trace", input.traceId || "");
    [raceBar, filters, tabBar, body, details].forEach(function (n) { container.appendChild(n); });
    if (model.cyclic) container.insertBefore(el("p", { "class": "warn", text: model.cyclic + " events have inconsistent clocks (a cycle); they are placed by time." }), filters);

    var timer = null;
    function schedule() { clearTimeout(timer); timer = setTimeout(refresh, 150); }
    function pair() {
      var r = races.filter(function (x) { return x.id === state.race; })[0];
      return r ? R.racePair(model, r) : null;
    }
    function select_(i) { state.selected = i; showDetails(i); if (state.tab === "dag") renderDag(); }
    function showDetails(i) {
      R.clear(details);
      if (i < 0 || !ev[i]) return;
      var e = ev[i], vc = Object.keys(e.vc).sort().map(function (k) { return k + ": " + e.vc[k]; }).join(", ");
      details.appendChild(el("h4", { text: R.label(e) }));
      details.appendChild(R.table(["field", "value"], [
        ["event", e.id], ["kind", e.kind], ["task", e.task + (tasks[e.task] ? " (" + tasks[e.task].kind + " " + tasks[e.task].name + ")" : "")],
        ["service", e.svc], ["location", e.loc], ["time", R.fmtNs(e.ts) + " after trace start"],
        ["duration", e.dur ? R.fmtNs(e.dur) : ""], ["value", R.formatValue(e.value)], ["lock", e.lock],
        ["vector clock", vc], ["causal rank", model.rank[i]], ["on critical path", cpSet[i] ? "yes" : "no"]
      ], "grid kv"));
    }

    function renderDag() {
      var p = panels.dag, holder = p.querySelector(".dag-holder"), info = p.querySelector(".dag-info");
      var pr = pair();
      var svg = R.drawDag(model, { order: order, start: state.dagStart, pair: pr && pr.a >= 0 && pr.b >= 0 ? pr : null, cp: cpSet, task: state.filter.task, tasks: tasks,
        match: R.matcher(state.filter), selected: state.selected, onSelect: select_ });
      R.clear(holder).appendChild(svg);
      var segs = R.dagSegments(model, { pair: pr && pr.a >= 0 && pr.b >= 0 ? pr : null, start: state.dagStart });
      var lost = pr && (pr.a < 0 || pr.b < 0);
      info.textContent = lost ? "Race #" + state.race + ": its accesses are not among the recorded events of this trace (the trace was truncated)." :
        pr ? "Showing race #" + state.race + ": the racing pair (red) and the missing happens-before edge." :
        "Causal steps " + segs[0][0] + "–" + segs[segs.length - 1][1] + " of " + model.maxRank + " · " + svg.getAttribute("data-nodes") + " events" +
        (svg.truncated ? " (more in this window; filter by task to see them)" : "");
      if (pr) {
        var node = svg.querySelector("g.node.racing");
        if (node && node.scrollIntoView) node.scrollIntoView({ block: "center", inline: "center" });
      }
    }
    function page(d) { state.race = null; state.dagStart = Math.max(0, Math.min(model.maxRank, state.dagStart + d)); renderDag(); markRace(); }

    var builders = {
      dag: function (p) {
        p.appendChild(el("div", { "class": "toolbar" }, [
          el("button", { type: "button", text: "◀ earlier", onclick: function () { page(-100); } }),
          el("button", { type: "button", text: "later ▶", onclick: function () { page(100); } }),
          el("button", { type: "button", text: "start", onclick: function () { page(-1e12); } }),
          el("span", { "class": "legend" }, ["fork", "join", "lock", "queue", "http", "hb"].map(function (t) { return el("span", { "class": "lg e-" + t, text: t }); })),
          el("span", { "class": "dag-info hint" })
        ]));
        p.appendChild(el("div", { "class": "dag-holder scroll" }));
        renderDag();
      },
      timeline: function (p) {
        var holder = el("div", { "class": "tl-holder" });
        p.appendChild(holder);
        timeline = new R.Timeline(holder, model, tlOpts());
      },
      critical: function (p) {
        var cp = input.cp;
        if (!cp) { p.appendChild(el("p", { "class": "muted", text: "No critical path (empty trace)." })); return; }
        p.appendChild(el("p", {}, ["Critical path: ", el("strong", { text: cp.total_duration_ms.toFixed(3) + " ms" }), " of " + cp.trace_total_duration_ms.toFixed(3) +
          " ms (" + cp.percentage_of_total.toFixed(1) + "%), " + cp.path_events + " events. Path events are outlined in the DAG and the timeline."]));
        if (cp.approximate_waits) p.appendChild(el("p", { "class": "warn", text: "Waits across tasks were approximated (walk budget exceeded)." }));
        var shown = cpSteps.slice(0, 500);
        p.appendChild(R.table(["#", "event", "task", "location", "self time ms"], shown.map(function (s, k) {
          var e = ev[s.i];
          return [k + 1, el("a", { href: "#", text: R.label(e), onclick: function (x) { x.preventDefault(); select_(s.i); } }), e.task, e.loc, s.ms.toFixed(3)];
        })));
        if (cpSteps.length > shown.length) p.appendChild(el("p", { "class": "muted", text: (cpSteps.length - shown.length) + " more path events not listed." }));
      },
      variables: function (p) {
        var out = el("div", { "class": "audit" });
        p.appendChild(el("div", { "class": "toolbar" }, [select("audit-var", "variable", variables, state.filter.variable, function (v) { showAudit(out, v); })]));
        p.appendChild(out);
        showAudit(out, state.filter.variable || variables[0] || "");
      },
      services: function (p) {
        var deps = input.deps;
        if (!deps) { p.appendChild(el("p", { "class": "muted", text: "No service data." })); return; }
        p.appendChild(R.serviceGraph(deps.services || [], deps.dependencies || []));
        p.appendChild(R.table(["from", "to", "calls", "link types"], (deps.dependencies || []).map(function (d) {
          return [d.from, d.to, d.call_count, JSON.stringify(d.link_types || {})];
        })));
      },
      anomalies: function (p) {
        var list = input.anomalies || [];
        if (!list.length) { p.appendChild(el("p", { "class": "muted", text: "No duration anomalies (needs enough samples of the same operation)." })); return; }
        p.appendChild(R.table(["severity", "kind", "location", "actual ms", "expected ms", "σ", "description"], list.map(function (a) {
          var i = model.idIndex[a.event_id];
          return [a.severity, a.event_kind, i === undefined ? a.location : el("a", { href: "#", text: a.location, onclick: function (x) { x.preventDefault(); select_(i); } }),
            Number(a.actual_duration_ms).toFixed(3), Number(a.expected_duration_ms).toFixed(3), Number(a.std_dev_from_mean).toFixed(1), a.description];
        })));
      },
      events: function (p) {
        var count = el("p", { "class": "muted ev-count" });
        var box = el("div", { "class": "ev-list" });
        p.appendChild(count); p.appendChild(box);
        var list = new R.VirtualList(box, 24, function (i) {
          var e = ev[i];
          return el("div", { "class": "ev-row k-" + e.kind + (i === state.selected ? " selected" : ""), "data-i": i, onclick: function () { select_(i); } }, [
            el("span", { "class": "t", text: R.fmtNs(e.ts) }), el("span", { "class": "task", text: e.task }),
            el("span", { "class": "lbl", text: R.label(e) }), el("span", { "class": "loc", text: e.loc })]);
        });
        p.list = list; p.count = count;
        fillEvents();
      }
    };
    function fillEvents() {
      var p = panels.events;
      if (!p || !p.list) return;
      var m = R.matcher(state.filter), idx = [];
      for (var i = 0; i < ev.length; i++) if (m(ev[i])) idx.push(i);
      idx.sort(function (a, b) { return ev[a].ts - ev[b].ts || a - b; });
      p.count.textContent = idx.length + " of " + ev.length + " events";
      p.list.set(idx);
    }
    function showAudit(out, variable) {
      R.clear(out);
      if (!variable) { out.appendChild(el("p", { "class": "muted", text: "No variables accessed in this trace." })); return; }
      out.appendChild(el("p", { "class": "muted", text: "Loading the audit trail of " + variable + "…" }));
      Promise.resolve(input.audit(variable)).then(function (rows) {
        R.clear(out);
        out.appendChild(el("p", {}, ["Every access to ", el("code", { text: variable }), " in causal order (" + rows.length + "). ",
          "✓: the previous access happened before this one; ✗: concurrent with it."]));
        out.appendChild(R.table(["#", "task", "access", "old → new", "location", "ordered", "race"], rows.slice(0, 2000).map(function (a, k) {
          var i = model.idIndex[a.event_id];
          return [k + 1, a.task || a.thread_id, a.access_type,
            (a.old_value === null || a.old_value === undefined ? "" : R.formatValue(a.old_value) + " → ") + R.formatValue(a.new_value),
            i === undefined ? a.location : el("a", { href: "#", text: a.location, onclick: function (x) { x.preventDefault(); select_(i); } }),
            a.has_causal_link_to_previous ? "✓" : "✗", a.is_race ? el("button", { type: "button", "class": "race-chip", text: "race " + (a.race_ids || []).join(", "),
              onclick: function () { if (a.race_ids && a.race_ids.length) self.showRace(a.race_ids[0]); } }) : ""];
        }), "grid audit-table"));
        if (rows.length > 2000) out.appendChild(el("p", { "class": "muted", text: (rows.length - 2000) + " more accesses not listed; export the trace for all." }));
      }, function (err) { R.clear(out).appendChild(el("p", { "class": "error", text: "Could not load the audit trail: " + err })); });
    }
    function tlOpts() { return { cp: cpSet, pair: pair(), task: state.filter.task, tasks: tasks, match: R.matcher(state.filter) }; }
    function markRace() {
      Array.prototype.forEach.call(raceBar.querySelectorAll(".race-chip"), function (b) {
        b.classList.toggle("active", Number(b.getAttribute("data-race")) === state.race);
      });
    }
    function refresh() {
      if (rendered.dag) renderDag();
      if (timeline) timeline.update(tlOpts());
      fillEvents();
    }
    self.tab = function (name) {
      state.tab = name;
      Array.prototype.forEach.call(tabBar.children, function (b) { b.setAttribute("aria-selected", b.getAttribute("data-tab") === name ? "true" : "false"); });
      for (var k in panels) panels[k].hidden = k !== name;
      if (!rendered[name]) {
        rendered[name] = true;
        panels[name] = el("div", { "class": "panel panel-" + name, "data-panel": name });
        body.appendChild(panels[name]);
        builders[name](panels[name]);
      }
      if (name === "timeline" && timeline) timeline.render();
    };
    self.showRace = function (id) {
      state.race = id;
      markRace();
      var pr = pair();
      if (pr && pr.a >= 0) { state.selected = pr.a; showDetails(pr.a); }
      if (state.tab !== "dag" && state.tab !== "timeline") self.tab("dag");
      refresh();
      container.setAttribute("data-active-race", String(id));
    };
    self.state = state;
    self.tab("dag");
  };
})(window);
