/* Raceway web UI (`raceway serve`): hash-routed pages over the JSON API (relative URLs), the API
 * key from a login prompt kept in sessionStorage and sent as X-Raceway-Key, live refresh from
 * the SSE feed (read with fetch so the key travels in a header, never in the URL). */
(function (global) {
  "use strict";
  var R = global.Raceway, el = R.el, doc = global.document, KEY = "raceway-key", PAGE = 50;
  R.applyTheme();

  function storedKey() { try { return global.sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; } }
  function headers() { var k = storedKey(); return k ? { "X-Raceway-Key": k } : {}; }
  function Unauthorized() { this.message = "Unauthorized"; }

  function fetchRaw(path) {
    return global.fetch(path, { headers: headers(), credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) throw new Unauthorized();
      return r;
    });
  }
  function api(path) {
    return fetchRaw(path).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok || body.success === false) throw new Error(path + ": " + (body.error || r.status));
        return "success" in body ? body.data : body;
      });
    });
  }

  /* loading: trace-list requests in flight (tests wait for 0 before acting on the list) */
  var app = { traces: [], total: 0, page: 1, minEvents: 1, service: "", q: "", raceCounts: {}, races: [], status: null, loading: 0 };
  var main = doc.getElementById("ui-main"), nav = doc.getElementById("ui-nav"), badge = doc.getElementById("ui-status");
  doc.getElementById("ui-theme").appendChild(R.themeButton());
  var PAGES = [["traces", "Traces"], ["races", "Races (causal)"], ["services", "Services"], ["health", "Health"], ["hotspots", "Hotspots"], ["performance", "Performance"]];
  PAGES.forEach(function (p) { nav.appendChild(el("a", { href: "#/" + p[0], "data-page": p[0], text: p[1] })); });
  nav.appendChild(el("a", { href: "#/logout", "data-page": "logout", text: "Forget API key" }));

  function loaded(name) { doc.documentElement.setAttribute("data-page", name); doc.documentElement.setAttribute("data-loaded", "1"); }
  function heading(text, extra) { return el("div", { "class": "page-head toolbar" }, [el("h2", { text: text }), el("span", { "class": "spacer" }), extra || null]); }
  function exportButtons(name, header, rows, raw) {
    return el("span", {}, [
      el("button", { type: "button", text: "CSV", onclick: function () { R.download(name + ".csv", R.csv(header, rows()), "text/csv"); } }),
      el("button", { type: "button", text: "JSON", onclick: function () { R.download(name + ".json", JSON.stringify(raw(), null, 1), "application/json"); } })
    ]);
  }
  function fail(err) {
    if (err instanceof Unauthorized) { login(); return; }
    R.clear(main).appendChild(el("p", { "class": "error", text: String(err && err.message || err) }));
    loaded("error");
  }
  function toast(text) {
    var t = el("div", { "class": "toast", role: "status", text: text });
    doc.body.appendChild(t);
    setTimeout(function () { t.remove(); }, 4000);
  }

  /* ---------------- login ---------------- */
  function login() {
    var keyInput = el("input", { type: "password", name: "api-key", autocomplete: "off", placeholder: "API key" });
    var pwInput = el("input", { type: "password", name: "password", autocomplete: "current-password", placeholder: "UI password (if configured)" });
    var msg = el("p", { "class": "error" });
    R.clear(main).appendChild(el("form", { "class": "login", onsubmit: function (e) {
      e.preventDefault();
      if (keyInput.value) {
        try { global.sessionStorage.setItem(KEY, keyInput.value); } catch (x) { msg.textContent = "sessionStorage unavailable"; return; }
        global.fetch("auth/check", { headers: headers() }).then(function (r) { return r.json(); }).then(function (c) {
          if (c.auth_required && !c.authenticated) { msg.textContent = "That API key was not accepted."; return; }
          startLive(); route();
        }, function (x) { msg.textContent = String(x); });
      } else if (pwInput.value) {
        global.fetch("auth/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ password: pwInput.value }) })
          .then(function (r) { return r.json().then(function (b) { if (!r.ok) throw new Error(b.message || b.error || r.status); boot(); }); })
          .catch(function (x) { msg.textContent = String(x.message || x); });
      }
    } }, [
      el("h2", { text: "This Raceway server needs an API key" }),
      el("p", { "class": "muted", text: "The key stays in this tab (sessionStorage) and is sent as the X-Raceway-Key header." }),
      keyInput, pwInput, el("button", { type: "submit", text: "Continue" }), msg
    ]));
    loaded("login");
  }

  /* ---------------- live feed ---------------- */
  var live = { ctrl: null, retry: 1000, up: false };
  function setBadge() {
    R.clear(badge).appendChild(el("span", { "class": "live-dot" + (live.up ? " on" : ""), title: live.up ? "live" : "not connected" }));
    badge.appendChild(doc.createTextNode((live.up ? "live" : "offline") + (app.status ? " · events " + app.status.events_captured + " · traces " + app.status.traces_active : "") +
      (app.races.length ? " · " + app.races.length + " new races" : "")));
  }
  function onLive(kind, data) {
    if (kind === "hello") { app.status = data; live.up = true; }
    else if (kind === "trace") {
      if (app.status) app.status.traces_active++;
      var known = app.traces.some(function (t) { return t.trace_id === data.trace_id; });
      var fits = (data.event_count || 0) >= app.minEvents && (!app.service || (data.services || []).indexOf(app.service) >= 0);
      if (!known && fits) {
        data.fresh = true; data.race_count = (data.race_count || 0) + (app.raceCounts[data.trace_id] || 0);
        delete app.raceCounts[data.trace_id];
        app.traces.unshift(data); app.total++; if (current.page === "traces") renderTraceRows();
      }
    } else if (kind === "race") {
      app.races.unshift(data);
      var row = app.traces.filter(function (t) { return t.trace_id === data.trace_id; })[0];
      if (row) row.race_count = (row.race_count || 0) + 1;  // the server's count, plus what arrived live
      else app.raceCounts[data.trace_id] = (app.raceCounts[data.trace_id] || 0) + 1;  // its row comes later
      toast("New " + data.severity + " race on " + data.variable);
      if (current.page === "traces") renderTraceRows();
      if (current.page === "races") renderLiveRaces();
    } else if (kind === "lagged") toast("Live feed fell behind: " + data.dropped + " updates dropped; refresh to catch up.");
    setBadge();
  }
  function startLive() {
    if (live.ctrl) live.ctrl.abort();
    var ctrl = live.ctrl = new AbortController();
    global.fetch("api/live", { headers: headers(), signal: ctrl.signal, credentials: "same-origin" }).then(function (resp) {
      if (resp.status === 401) { live.up = false; setBadge(); return; }
      if (!resp.ok || !resp.body) throw new Error("live feed: HTTP " + resp.status);
      live.retry = 1000;
      var reader = resp.body.getReader(), dec = new TextDecoder(), buf = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) throw new Error("live feed closed");
          buf += dec.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
          var cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            var block = buf.slice(0, cut), kind = "message", data = [];
            buf = buf.slice(cut + 2);
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) kind = line.slice(6).trim();
              else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
            });
            if (data.length) { try { onLive(kind, JSON.parse(data.join("\n"))); } catch (x) { /* a malformed message is skipped */ } }
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      live.up = false; setBadge();
      if (ctrl.signal.aborted) return;
      setTimeout(function () { if (live.ctrl === ctrl) startLive(); }, live.retry);
      live.retry = Math.min(30000, live.retry * 2);
    });
  }

  /* ---------------- traces ---------------- */
  var listBox = null;
  function traceUrl() {
    return app.service ? "api/services/" + encodeURIComponent(app.service) + "/traces?page_size=" + PAGE + "&page=" + app.page
      : "api/traces?page_size=" + PAGE + "&page=" + app.page + "&min_events=" + app.minEvents;
  }
  function loadTraces(reset) {
    if (reset) { app.page = 1; app.traces = []; app.raceCounts = {}; }
    app.loading++;
    return api(traceUrl()).then(function (d) {
      var rows = d.traces.filter(function (t) { return t.event_count >= app.minEvents; });
      app.traces = app.traces.concat(rows.filter(function (t) { return !app.traces.some(function (o) { return o.trace_id === t.trace_id; }); }));
      app.total = d.total_traces; app.pages = d.total_pages;
    }).finally(function () { app.loading--; });
  }
  function visibleTraces() {
    var q = app.q.toLowerCase();
    return app.traces.filter(function (t) { return !q || (t.trace_id + " " + (t.services || []).join(" ")).toLowerCase().indexOf(q) >= 0; });
  }
  function renderTraceRows() {
    if (!listBox) return;
    var rows = visibleTraces();
    R.clear(listBox).appendChild(R.table(["trace", "events", "services", "first event", "last event", "races"], rows.map(function (t) {
      var n = t.race_count || 0;
      return [el("a", { href: "#/traces/" + t.trace_id, "class": "trace-link", text: t.trace_id }), t.event_count, (t.services || []).join(", "),
        t.first_timestamp, t.last_timestamp, n ? el("span", { "class": "sev sev-write-write", text: String(n) }) : ""];
    }), "grid trace-table"));
    Array.prototype.forEach.call(listBox.querySelectorAll("tbody tr"), function (tr, k) { if (rows[k].fresh) { tr.classList.add("trace-row", "fresh"); rows[k].fresh = false; } });
    listBox.appendChild(el("p", { "class": "muted", text: rows.length + " shown of " + app.total + " traces (newest first)" }));
    if (app.page < (app.pages || 1)) listBox.appendChild(el("button", { type: "button", "class": "more", text: "load more", onclick: function () { app.page++; loadTraces(false).then(renderTraceRows, fail); } }));
  }
  function pageTraces() {
    var svcSelect = el("select", { name: "service", onchange: function (e) { app.service = e.target.value; loadTraces(true).then(renderTraceRows, fail); } },
      [el("option", { value: "", text: "all services" })]);
    var minSelect = el("select", { name: "min-events", onchange: function (e) { app.minEvents = Number(e.target.value); loadTraces(true).then(renderTraceRows, fail); } },
      [1, 2, 5, 10, 100, 1000].map(function (n) { return el("option", { value: n, text: n + "+ events", selected: n === app.minEvents ? "selected" : null }); }));
    listBox = el("div", { "class": "trace-list" });
    R.clear(main).appendChild(heading("Traces", exportButtons("traces", ["trace_id", "event_count", "services", "first_timestamp", "last_timestamp"],
      function () { return visibleTraces().map(function (t) { return [t.trace_id, t.event_count, (t.services || []).join(" "), t.first_timestamp, t.last_timestamp]; }); },
      visibleTraces)));
    main.appendChild(el("div", { "class": "filters" }, [
      el("input", { type: "search", name: "q", "class": "search", placeholder: "search trace id or service", value: app.q, oninput: function (e) { app.q = e.target.value; renderTraceRows(); } }),
      minSelect, svcSelect,
      el("button", { type: "button", text: "refresh", onclick: function () { loadTraces(true).then(renderTraceRows, fail); } })
    ]));
    main.appendChild(listBox);
    api("api/services").then(function (d) {
      d.services.forEach(function (s) { svcSelect.appendChild(el("option", { value: s.name, text: s.name + " (" + s.trace_count + ")", selected: s.name === app.service ? "selected" : null })); });
    }, function () { /* the list still works without the service filter */ });
    return loadTraces(true).then(function () { renderTraceRows(); loaded("traces"); });
  }

  /* ---------------- one trace ---------------- */
  function pageTrace(id, raceId) {
    R.clear(main).appendChild(el("p", { "class": "muted", text: "Loading trace " + id + "…" }));
    var base = "api/traces/" + encodeURIComponent(id);
    var sessionText;
    return Promise.all([
      fetchRaw(base + "/export?format=session").then(function (r) { return r.text().then(function (t) { if (!r.ok) throw new Error(t); sessionText = t; return JSON.parse(t); }); }),
      api(base + "/critical-path").catch(function () { return null; }),
      api(base + "/anomalies").catch(function () { return { anomalies: [] }; }),
      api(base + "/dependencies").catch(function () { return null; })
    ]).then(function (got) {
      var session = got[0], trace = session.traces[id] || session.traces[Object.keys(session.traces)[0]] || { events: [], tasks: {} };
      var model = R.buildModel(R.fromWire(trace.events || []));
      var races = session.races || [];
      var vars = [];
      model.events.forEach(function (e) { if (e.kind === "StateChange" && vars.indexOf(e.name) < 0) vars.push(e.name); });
      vars.sort();
      R.clear(main).appendChild(heading("Trace " + id, el("span", {}, [
        el("button", { type: "button", text: "session JSON", onclick: function () { R.download("trace-" + id + ".session.json", sessionText, "application/json"); } }),
        el("button", { type: "button", text: "ShiViz log", onclick: function () {
          fetchRaw(base + "/export?format=shiviz").then(function (r) { return r.text(); }).then(function (t) { R.download("trace-" + id + ".shiviz.log", t, "text/plain"); }, fail);
        } })
      ])));
      main.appendChild(el("p", { "class": "muted", text: model.events.length + " events · " + model.lanes.length + " tasks · " + model.services.length + " services · " + races.length + " races" }));
      var viewBox = el("div", { "class": "trace-body" }), view;
      var cards = el("div", { "class": "race-cards" }, races.map(function (r) {
        return R.raceCard(r, { onShow: function (x) { global.location.hash = "#/traces/" + id + "/race/" + x.id; } });
      }));
      main.appendChild(cards);
      main.appendChild(viewBox);
      view = new R.TraceView(viewBox, {
        model: model, tasks: trace.tasks, races: races, cp: got[1], anomalies: (got[2] || {}).anomalies || [], deps: got[3], traceId: id, auditVars: vars,
        audit: function (v) { return api(base + "/audit-trail/" + encodeURIComponent(v)).then(function (d) { return d.accesses; }); },
        exportJson: function () { return { session: session, critical_path: got[1], anomalies: got[2], dependencies: got[3] }; }
      });
      if (raceId !== undefined) { view.showRace(raceId); viewBox.scrollIntoView(); }
      loaded("trace");
    });
  }

  /* ---------------- system pages ---------------- */
  function renderLiveRaces() {
    var box = doc.getElementById("live-races");
    if (!box) return;
    R.clear(box);
    if (!app.races.length) { box.appendChild(el("p", { "class": "muted", text: "No new races since this page was opened (live)." })); return; }
    app.races.slice(0, 50).forEach(function (r) { box.appendChild(R.raceCard(r, { onShow: function (x) { global.location.hash = "#/traces/" + x.trace_id + "/race/" + x.id; } })); });
  }
  function pageRaces() {
    return Promise.all([api("api/analyze/global"), api("api/distributed/global-races")]).then(function (got) {
      var g = got[0], c = got[1];
      R.clear(main).appendChild(heading("Races (causal, across traces)", exportButtons("global-races",
        ["severity", "variable", "trace1_id", "trace2_id", "event1_location", "event2_location", "description"],
        function () { return g.race_details.map(function (d) { return [d.severity, d.variable, d.trace1_id, d.trace2_id, d.event1_location, d.event2_location, d.description]; }); },
        function () { return got; })));
      main.appendChild(el("h3", { text: "New races (live)" }));
      main.appendChild(el("div", { id: "live-races" }));
      renderLiveRaces();
      main.appendChild(el("p", { text: g.total_traces + " traces, " + g.total_events + " events, " + g.potential_races + " concurrent conflicting pairs." }));
      (g.anomalies || []).forEach(function (line) { main.appendChild(el("p", { "class": "muted", text: line })); });
      main.appendChild(R.table(["severity", "variable", "trace 1", "trace 2", "location 1", "location 2", "description"], g.race_details.map(function (d) {
        return [d.severity, d.variable, el("a", { href: "#/traces/" + d.trace1_id, text: R.str(d.trace1_id).slice(0, 8) }), el("a", { href: "#/traces/" + d.trace2_id, text: R.str(d.trace2_id).slice(0, 8) }),
          d.event1_location, d.event2_location, d.description];
      })));
      main.appendChild(el("h3", { text: "Variables with candidate races (" + c.total_races + ")" }));
      main.appendChild(R.table(["variable", "severity", "traces", "accesses", "types", "threads"], c.races.map(function (r) {
        return [r.variable, r.severity, r.trace_count, r.access_count, (r.access_types || []).join(", "), r.thread_count];
      })));
      loaded("races");
    });
  }
  function pageServices() {
    return Promise.all([api("api/services"), api("api/distributed/edges")]).then(function (got) {
      var svcs = got[0].services, edges = got[1].edges.map(function (e) { return { from: e.from_service, to: e.to_service, call_count: e.call_count }; });
      var detail = el("div", { "class": "svc-detail" });
      R.clear(main).appendChild(heading("Services", exportButtons("services", ["name", "event_count", "trace_count"],
        function () { return svcs.map(function (s) { return [s.name, s.event_count, s.trace_count]; }); }, function () { return got; })));
      main.appendChild(R.serviceGraph(svcs, edges));
      main.appendChild(R.table(["service", "events", "traces", ""], svcs.map(function (s) {
        return [s.name, s.event_count, s.trace_count, el("span", {}, [
          el("button", { type: "button", text: "dependencies", onclick: function () {
            api("api/services/" + encodeURIComponent(s.name) + "/dependencies").then(function (d) {
              R.clear(detail).appendChild(el("h3", {}, ["Dependencies of ", el("code", { text: d.service_name })]));
              detail.appendChild(R.table(["calls", "service", "total calls", "traces"], d.calls_to.map(function (x) { return ["→", x.to, x.total_calls, x.trace_count]; })
                .concat(d.called_by.map(function (x) { return ["←", x.to, x.total_calls, x.trace_count]; }))));
            }, fail);
          } }),
          el("button", { type: "button", text: "traces", onclick: function () { app.service = s.name; global.location.hash = "#/traces"; } })])];
      })));
      main.appendChild(detail);
      loaded("services");
    });
  }
  function pageHealth() {
    return Promise.all([api("health"), api("status"), api("api/services/health")]).then(function (got) {
      var w = got[0], s = got[1], rows = got[2];
      R.clear(main).appendChild(heading("Health", exportButtons("service-health", ["name", "status", "trace_count", "last_activity", "minutes_since_last_activity"],
        function () { return rows.map(function (r) { return [r.name, r.status, r.trace_count, r.last_activity, r.minutes_since_last_activity]; }); }, function () { return got; })));
      main.appendChild(el("div", { "class": "cards" }, [
        el("div", { "class": "stat" }, [el("b", { text: w.phase }), el("span", { text: "warm-up" })]),
        el("div", { "class": "stat" }, [el("b", { text: String(s.events_captured) }), el("span", { text: "events" })]),
        el("div", { "class": "stat" }, [el("b", { text: String(s.traces_active) }), el("span", { text: "traces" })]),
        el("div", { "class": "stat" }, [el("b", { text: String(s.uptime_seconds) }), el("span", { text: "uptime s" })]),
        el("div", { "class": "stat" }, [el("b", { text: R.str(s.version) }), el("span", { text: "version" })])
      ]));
      main.appendChild(R.table(["service", "status", "traces", "last activity", "minutes since", "events/trace"], rows.map(function (r) {
        return [r.name, r.status, r.trace_count, r.last_activity, r.minutes_since_last_activity, r.avg_events_per_trace];
      })));
      var extra = Object.keys(s).filter(function (k) { return typeof s[k] !== "object"; });
      main.appendChild(el("details", {}, [el("summary", { text: "server status" }), R.table(["field", "value"], extra.map(function (k) { return [k, s[k]]; }), "grid kv")]));
      loaded("health");
    });
  }
  function pageHotspots() {
    return api("api/distributed/hotspots").then(function (h) {
      R.clear(main).appendChild(heading("Hotspots", exportButtons("hotspots", ["variable", "access_count", "trace_count", "services"],
        function () { return h.top_variables.map(function (v) { return [v.variable, v.access_count, v.trace_count, (v.services || []).join(" ")]; }); }, function () { return h; })));
      main.appendChild(el("h3", { text: "Most accessed variables" }));
      main.appendChild(R.table(["variable", "accesses", "traces", "services"], h.top_variables.map(function (v) { return [v.variable, v.access_count, v.trace_count, (v.services || []).join(", ")]; })));
      main.appendChild(el("h3", { text: "Busiest service calls" }));
      main.appendChild(R.table(["from", "to", "calls"], h.top_service_calls.map(function (c) { return [c.from_service, c.to_service, c.call_count]; })));
      loaded("hotspots");
    });
  }
  function pagePerformance() {
    return api("api/performance/metrics?limit=50").then(function (m) {
      var l = m.trace_latency || {}, t = m.throughput || {};
      R.clear(main).appendChild(heading("Performance", exportButtons("performance", ["trace_id", "duration_ms", "services"],
        function () { return (l.slowest_traces || []).map(function (s) { return [s.trace_id, s.duration_ms, (s.services || []).join(" ")]; }); }, function () { return m; })));
      main.appendChild(el("div", { "class": "cards" }, [["avg_ms", "avg"], ["p50_ms", "p50"], ["p95_ms", "p95"], ["p99_ms", "p99"]].map(function (k) {
        return el("div", { "class": "stat" }, [el("b", { text: Number(l[k[0]] || 0).toFixed(2) + " ms" }), el("span", { text: "trace latency " + k[1] })]);
      }).concat([el("div", { "class": "stat" }, [el("b", { text: Number(t.events_per_second || 0).toFixed(1) }), el("span", { text: "events/s" })])])));
      main.appendChild(el("h3", { text: "Slowest traces" }));
      main.appendChild(R.table(["trace", "duration ms", "services"], (l.slowest_traces || []).map(function (s) {
        return [el("a", { href: "#/traces/" + s.trace_id, text: s.trace_id }), Number(s.duration_ms).toFixed(3), (s.services || []).join(", ")];
      })));
      main.appendChild(el("h3", { text: "Event types" }));
      main.appendChild(R.table(["type", "count", "avg duration ms"], ((m.event_performance || {}).by_type || []).map(function (b) { return [b.type, b.count, Number(b.avg_duration_ms || 0).toFixed(3)]; })));
      main.appendChild(el("h3", { text: "Services" }));
      main.appendChild(R.table(["service", "events", "avg duration ms"], (m.service_latency || []).map(function (s) { return [s.service, s.event_count, Number(s.avg_duration_ms || 0).toFixed(3)]; })));
      loaded("performance");
    });
  }

  /* ---------------- router ---------------- */
  var current = { page: "" };
  function route() {
    var parts = global.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    var page = parts[0] || "traces";
    doc.documentElement.setAttribute("data-loaded", "0");
    Array.prototype.forEach.call(nav.querySelectorAll("a"), function (a) { a.classList.toggle("active", a.getAttribute("data-page") === page); });
    current.page = parts[0] === "traces" && parts[1] ? "trace" : page;
    listBox = null;
    var run;
    if (page === "logout") {
      try { global.sessionStorage.removeItem(KEY); } catch (e) { /* nothing stored */ }
      global.fetch("auth/logout", { method: "POST" }).finally(function () { global.location.hash = "#/traces"; });
      return;
    }
    if (page === "traces" && parts[1]) run = pageTrace(parts[1], parts[2] === "race" ? Number(parts[3]) : undefined);
    else run = ({ traces: pageTraces, races: pageRaces, services: pageServices, health: pageHealth, hotspots: pageHotspots, performance: pagePerformance }[page] || pageTraces)();
    Promise.resolve(run).catch(fail);
  }
  global.addEventListener("hashchange", function () { if (doc.documentElement.getAttribute("data-page") !== "login") route(); });
  /* Ask first (an open path) so a locked server shows the prompt without a burst of 401s. */
  function boot() {
    global.fetch("auth/check", { headers: headers(), credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (c) {
      if (c.auth_required && !c.authenticated) {
        if (storedKey()) { try { global.sessionStorage.removeItem(KEY); } catch (e) { /* ignore */ } }
        login();
        return;
      }
      startLive(); route();
    }, function () { startLive(); route(); });
  }
  setBadge();
  boot();
  global.RacewayUI = { app: app, route: route, live: live };
})(window);
