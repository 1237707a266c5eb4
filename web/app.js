/* app.js - augurd's dashboard: Explore (PromQL-lite with history and autocompletion, graph and
 * table), Anomalies (the most anomalous series with actual values, forecast band and anomalous
 * points), Scaling (per policy: load against the forecast bound, desired replicas, webhook
 * deliveries) and Status (ingest, series, storage, rejections, build, configuration).
 *
 * Everything comes from augurd's own HTTP API; charts are uPlot (embedded, no CDN). A view
 * refreshes every REFRESH_MS while it shows the live range, updating its charts in place. Each
 * chart element carries data-points (the non-null points it draws) for the browser test.
 */
(function () {
  "use strict";
  const REFRESH_MS = 15000;
  const MAX_SERIES = 50;
  const COLORS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c2255c", "#5f3dc4", "#0b7285", "#e67700",
                  "#862e9c", "#364fc7", "#a61e4d"];
  const FUNCS = ["abs", "absent", "absent_over_time", "anomaly_score_hw", "avg", "avg_over_time",
    "bottomk", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "count", "count_over_time",
    "count_values", "day_of_month", "day_of_week", "days_in_month", "delta", "deriv", "exp",
    "floor", "group", "histogram_quantile", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "max",
    "max_over_time", "min", "min_over_time", "minute", "month", "predict_hw", "predict_hw_lower",
    "predict_hw_upper", "predict_linear", "present_over_time", "quantile", "quantile_over_time",
    "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "stddev",
    "stddev_over_time", "stdvar", "stdvar_over_time", "sum", "sum_over_time", "time",
    "timestamp", "topk", "vector", "year"];

  const main = document.getElementById("main");
  const rangeSel = document.getElementById("range");
  const unzoom = document.getElementById("unzoom");
  let zoom = null; // {start, end} seconds while zoomed, else null (live)
  let timer = null;
  let current = null; // {name, refresh()}

  // ---- helpers ---------------------------------------------------------------------------------

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k.nodeType ? k : String(k));
    return e;
  }

  async function api(path, params) {
    const qs = params ? "?" + new URLSearchParams(params).toString() : "";
    const r = await fetch(path + qs);
    let j = null;
    try { j = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok || (j && j.status === "error")) {
      const err = new Error((j && j.error) || ("HTTP " + r.status));
      err.type = j && j.errorType;
      throw err;
    }
    return j && j.data !== undefined ? j.data : j;
  }

  function range() {
    if (zoom) return zoom;
    const end = Math.floor(Date.now() / 1000);
    return {start: end - Number(rangeSel.value), end};
  }

  function stepFor(r) { return Math.max(1, Math.ceil((r.end - r.start) / 600)); }

  function labelText(m, drop) {
    const name = m.__name__ || "";
    const parts = Object.keys(m).filter(k => k !== "__name__" && !(drop || []).includes(k)).sort()
      .map(k => k + '="' + m[k] + '"');
    return name + "{" + parts.join(", ") + "}";
  }

  function fmt(v) {
    if (v == null || !isFinite(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(6));
  }

  // A uPlot chart that keeps its instance across refreshes (setData, no flicker).
  function chart(host, title) {
    const state = {plot: null, key: ""};
    host.classList.add("chart");
    return function draw(xs, series, opts) {
      opts = opts || {};
      const key = series.map(s => s.label).join("\u0001") + "|" + (opts.bands ? 1 : 0);
      const data = [xs].concat(series.map(s => s.values));
      let points = 0;
      for (const s of series) if (!s.nocount) for (const v of s.values) if (v != null) points++;
      host.dataset.points = String(points);
      host.dataset.series = String(series.filter(s => !s.nocount).length);
      if (xs.length) {
        host.dataset.start = String(xs[0]);
        host.dataset.end = String(xs[xs.length - 1]);
        host.dataset.step = String(xs.length > 1 ? xs[1] - xs[0] : 0);
      }
      const width = Math.max(280, host.clientWidth || main.clientWidth - 30);
      if (state.plot && state.key === key) {
        state.plot.setData(data);
        return;
      }
      if (state.plot) state.plot.destroy();
      state.key = key;
      const o = {
        title, width, height: opts.height || 260,
        series: [{}].concat(series.map((s, i) => ({
          label: s.label, stroke: s.stroke || COLORS[i % COLORS.length], width: s.width == null ? 1.5 : s.width,
          fill: s.fill, dash: s.dash, spanGaps: false,
          points: s.points || {show: false}, value: (u, v) => fmt(v)}))),
        axes: [{}, {values: (u, vs) => vs.map(fmt)}],
        legend: {show: series.length <= 12},
        cursor: {drag: {x: true, y: false}},
        hooks: {setSelect: [u => {
          if (u.select.width < 5) return;
          const a = Math.floor(u.posToVal(u.select.left, "x"));
          const b = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
          zoom = {start: a, end: b};
          unzoom.hidden = false;
          render();
        }]},
      };
      if (opts.bands) o.bands = opts.bands;
      state.plot = new uPlot(o, data, host);
    };
  }

  // Matrix results aligned on the query_range grid.
  function align(result, r, step) {
    const xs = [];
    for (let t = r.start; t <= r.end; t += step) xs.push(t);
    const idx = new Map(xs.map((t, i) => [t, i]));
    const series = result.slice(0, MAX_SERIES).map(s => {
      const vals = new Array(xs.length).fill(null);
      for (const [t, v] of s.values) {
        const i = idx.get(Math.round(Number(t)));
        if (i != null) vals[i] = Number(v);
      }
      return {label: labelText(s.metric), metric: s.metric, values: vals};
    });
    return {xs, series};
  }

  async function rangeQuery(q, r, step) {
    const d = await api("/api/v1/query_range", {query: q, start: r.start, end: r.end, step});
    return d.resultType === "matrix" ? d.result : [];
  }

  function showError(host, query, err) {
    host.textContent = "";
    const m = /(?:^|: )(\d+):(\d+): /.exec(err.message);
    if (m && query) {
      const line = query.split("\n")[Number(m[1]) - 1] || "";
      const col = Number(m[2]);
      host.append(el("div", {}, line), el("div", {class: "caret"}, " ".repeat(Math.max(0, col - 1)) + "^"));
    }
    host.append(el("div", {}, err.message));
  }

  // ---- Explore ---------------------------------------------------------------------------------

  const names = {metrics: [], labels: [], loaded: 0};
  async function loadNames() {
    if (Date.now() - names.loaded < 60000) return;
    names.loaded = Date.now();
    try {
      names.metrics = await api("/api/v1/label/__name__/values");
      names.labels = await api("/api/v1/labels");
    } catch (e) { /* suggestions are optional */ }
  }

  function history() {
    try { return JSON.parse(localStorage.getItem("augur.history") || "[]"); } catch (e) { return []; }
  }
  function remember(q) {
    const h = [q].concat(history().filter(x => x !== q)).slice(0, 50);
    try { localStorage.setItem("augur.history", JSON.stringify(h)); } catch (e) { /* private mode */ }
  }

  function explore(initial) {
    const box = el("textarea", {id: "query", rows: "2", spellcheck: "false",
      placeholder: "PromQL-lite, e.g. sum by (job) (rate(http_requests_total[5m]))"});
    box.value = initial || sessionStorage.getItem("augur.query") || "";
    const suggest = el("div", {class: "suggest", hidden: ""});
    const run = el("button", {class: "primary", id: "run"}, "Run");
    const hist = el("select", {class: "history", title: "history"},
      el("option", {value: ""}, "history"), ...history().map(q => el("option", {value: q}, q.slice(0, 80))));
    const err = el("div", {class: "error", id: "query-error"});
    const tabG = el("button", {class: "active"}, "Graph"), tabT = el("button", {}, "Table");
    const g = el("div", {id: "explore-chart"});
    const t = el("div", {id: "explore-table", hidden: ""});
    main.append(el("div", {class: "card"}, el("div", {class: "query"}, box, run, hist, suggest), err,
      el("div", {class: "tabs"}, tabG, tabT), g, t));
    const draw = chart(g, "");
    let mode = "graph", sel = -1, items = [];

    tabG.onclick = () => { mode = "graph"; tabG.classList.add("active"); tabT.classList.remove("active"); g.hidden = false; t.hidden = true; refresh(); };
    tabT.onclick = () => { mode = "table"; tabT.classList.add("active"); tabG.classList.remove("active"); t.hidden = false; g.hidden = true; refresh(); };
    hist.onchange = () => { if (hist.value) { box.value = hist.value; hist.value = ""; refresh(); } };
    run.onclick = () => refresh();

    function token() {
      const upto = box.value.slice(0, box.selectionStart);
      const m = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(upto);
      return m ? {text: m[0], at: m.index} : null;
    }
    function showSuggest() {
      const tk = token();
      suggest.textContent = "";
      sel = -1;
      if (!tk || tk.text.length < 1) { suggest.hidden = true; return; }
      const inBraces = (box.value.slice(0, tk.at).match(/\{/g) || []).length >
                       (box.value.slice(0, tk.at).match(/\}/g) || []).length;
      const pool = inBraces ? names.labels : names.metrics.concat(FUNCS);
      items = pool.filter(x => x.startsWith(tk.text) && x !== tk.text).slice(0, 30);
      if (!items.length) { suggest.hidden = true; return; }
      items.forEach((x, i) => suggest.append(el("div", {onmousedown: e => { e.preventDefault(); pick(i); }}, x)));
      suggest.hidden = false;
    }
    function pick(i) {
      const tk = token();
      if (!tk || !items[i]) return;
      const pos = tk.at + items[i].length;
      box.value = box.value.slice(0, tk.at) + items[i] + box.value.slice(box.selectionStart);
      box.setSelectionRange(pos, pos);
      suggest.hidden = true;
    }
    box.addEventListener("input", () => { loadNames().then(showSuggest); });
    box.addEventListener("blur", () => { suggest.hidden = true; });
    box.addEventListener("keydown", e => {
      if (!suggest.hidden && ["ArrowDown", "ArrowUp", "Tab", "Escape"].includes(e.key) ||
          (!suggest.hidden && e.key === "Enter" && sel >= 0)) {
        e.preventDefault();
        if (e.key === "Escape") { suggest.hidden = true; return; }
        if (e.key === "ArrowDown") sel = Math.min(items.length - 1, sel + 1);
        else if (e.key === "ArrowUp") sel = Math.max(0, sel - 1);
        else { pick(sel < 0 ? 0 : sel); return; }
        [...suggest.children].forEach((c, i) => c.classList.toggle("sel", i === sel));
        return;
      }
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); suggest.hidden = true; refresh(); }
    });

    async function refresh() {
      const q = box.value.trim();
      sessionStorage.setItem("augur.query", box.value);
      if (!q) return;
      err.textContent = "";
      const r = range(), step = stepFor(r);
      try {
        if (mode === "graph") {
          const res = await rangeQuery(q, r, step);
          const a = align(res, r, step);
          draw(a.xs, a.series);
        } else {
          const d = await api("/api/v1/query", {query: q, time: r.end});
          t.textContent = "";
          const rows = d.resultType === "vector" ? d.result.map(s => [labelText(s.metric), s.value[1]])
            : d.resultType === "scalar" || d.resultType === "string" ? [["(" + d.resultType + ")", d.result[1]]]
            : d.result.map(s => [labelText(s.metric), s.values.length + " points"]);
          t.append(el("table", {}, el("tr", {}, el("th", {}, "series"), el("th", {}, "value")),
            ...rows.map(([a, b]) => el("tr", {}, el("td", {}, a), el("td", {class: "num"}, b)))));
          t.dataset.rows = String(rows.length);
        }
        remember(q);
      } catch (e) {
        showError(err, q, e);
      }
    }
    loadNames();
    return {refresh};
  }

  // ---- Anomalies -------------------------------------------------------------------------------

  function anomalies() {
    const list = el("div", {id: "anomaly-list"});
    const charts = el("div", {id: "anomaly-charts"});
    main.append(el("div", {class: "card"}, el("h2", {}, "Most anomalous series"),
      el("p", {class: "muted"}, "Highest anomaly score over the range: configured models " +
        "(augur_anomaly_score) and the zero-config detector on every series (augur_auto_anomaly_score)."),
      list), charts);
    const drawers = new Map();
    let models = [];

    async function refresh() {
      const r = range(), secs = Math.max(60, r.end - r.start);
      try { models = await api("/api/v1/models"); } catch (e) { models = []; }
      const top = [];
      for (const name of ["augur_anomaly_score", "augur_auto_anomaly_score"]) {
        const d = await api("/api/v1/query", {query: "topk(20, max_over_time(" + name + "[" + secs + "s]))", time: r.end});
        const now = await api("/api/v1/query", {query: name, time: r.end});
        const cur = new Map(now.result.map(s => [labelText(s.metric), Number(s.value[1])]));
        for (const s of d.result) {
          const m = Object.assign({}, s.metric, {__name__: name});
          top.push({metric: m, max: Number(s.value[1]), now: cur.get(labelText(m)) || 0, kind: name});
        }
      }
      top.sort((a, b) => b.max - a.max);
      list.textContent = "";
      if (!top.length) { list.append(el("p", {class: "muted"}, "No anomaly scores in this range.")); }
      const tbl = el("table", {}, el("tr", {}, el("th", {}, "series"), el("th", {}, "max score"), el("th", {}, "now")));
      for (const a of top.slice(0, 20)) {
        const src = title(a);
        tbl.append(el("tr", {class: "anomaly-row"}, el("td", {}, src),
          el("td", {class: "num score" + (a.max >= 0.5 ? " hi" : "")}, a.max.toFixed(2)),
          el("td", {class: "num"}, a.now.toFixed(2))));
      }
      list.append(tbl);
      // charts for the top six
      const shown = top.slice(0, 6);
      const keys = new Set();
      for (const a of shown) {
        const key = labelText(a.metric);
        keys.add(key);
        if (!drawers.has(key)) {
          const host = el("div", {class: "anomaly-chart"});
          charts.append(el("div", {class: "card"}, host));
          drawers.set(key, {host, draw: chart(host, title(a))});
        }
        try { await drawAnomaly(a, drawers.get(key).draw, r); } catch (e) { /* one chart failing is shown as empty */ }
      }
      for (const [k, v] of drawers) if (!keys.has(k)) { v.host.parentElement.remove(); drawers.delete(k); }
    }

    function title(a) {
      if (a.kind === "augur_auto_anomaly_score") return autoSource(a.metric);
      const m = Object.assign({}, a.metric);
      delete m.__name__;
      const model = m.model;
      delete m.model;
      return "model " + model + ": " + labelText(m);
    }

    function autoSource(m) {
      const src = {};
      for (const [k, v] of Object.entries(m)) {
        if (k === "__name__" || k === "metric") continue;
        src[k.startsWith("exported_") ? k.slice(9) : k] = v;
      }
      src.__name__ = m.metric || "";
      return labelText(src);
    }

    function matchers(m, skip) {
      return Object.keys(m).filter(k => !skip.includes(k)).map(k => k + '="' + String(m[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"');
    }

    async function drawAnomaly(a, draw, r) {
      const step = stepFor(r);
      const m = a.metric;
      if (a.kind === "augur_auto_anomaly_score") {
        const sel = autoSource(m);
        const actual = align(await rangeQuery(sel, r, step), r, step);
        const score = align(await rangeQuery("augur_auto_anomaly_score{" + matchers(m, ["__name__"]).join(",") + "}", r, step), r, step);
        const vals = actual.series[0] ? actual.series[0].values : new Array(actual.xs.length).fill(null);
        const marks = vals.map((v, i) => score.series[0] && score.series[0].values[i] >= 0.5 ? v : null);
        // The zero-config detector forecasts nothing: the band is an ad-hoc Holt-Winters forecast
        // of each point from the hour (at least) before it (predict_hw*, out of sample).
        const lead = Math.max(60, step), win = Math.min(86400, Math.max(3600, r.end - r.start));
        const hw = (f) => f + "(" + sel + "[" + win + "s] offset " + lead + "s, " + lead + ")";
        const one = async (f) => {
          const x = align(await rangeQuery(hw(f), r, step), r, step);
          return x.series[0] ? x.series[0].values : new Array(actual.xs.length).fill(null);
        };
        draw(actual.xs, [{label: "actual", values: vals},
          {label: "forecast", values: await one("predict_hw"), stroke: "#2b8a3e", dash: [4, 4], nocount: true},
          {label: "upper", values: await one("predict_hw_upper"), stroke: "rgba(43,138,62,.35)", nocount: true},
          {label: "lower", values: await one("predict_hw_lower"), stroke: "rgba(43,138,62,.35)", nocount: true},
          {label: "anomalous", values: marks, stroke: "#b00020", width: 0, points: {show: true, size: 8, fill: "#b00020"}, nocount: true}],
          {bands: [{series: [3, 4], fill: "rgba(43,138,62,.12)"}]});
        return;
      }
      const model = models.find(x => x.name === m.model);
      const lm = matchers(m, ["__name__", "model", "metric"]);
      const base = '{model="' + m.model + '"' + (lm.length ? "," + lm.join(",") : "") + "}";
      const h = model ? Math.round(model.horizon_seconds) : 0;
      const q = (name) => name + base + (h ? " offset " + h + "s" : "");
      const fc = align(await rangeQuery(q("augur_forecast"), r, step), r, step);
      const lo = align(await rangeQuery(q("augur_forecast_lower"), r, step), r, step);
      const hi = align(await rangeQuery(q("augur_forecast_upper"), r, step), r, step);
      const flag = align(await rangeQuery("augur_anomaly" + base, r, step), r, step);
      let actualVals = new Array(fc.xs.length).fill(null);
      if (model) {
        const act = align(await rangeQuery(model.expr, r, step), r, step);
        const want = labelText(Object.assign({}, m, {__name__: undefined}), ["model", "metric", "__name__"]);
        const hit = act.series.find(s => labelText(Object.assign({}, s.metric, {__name__: undefined}), ["__name__"]) === want) || act.series[0];
        if (hit) actualVals = hit.values;
      }
      const nul = () => new Array(fc.xs.length).fill(null);
      const marks = actualVals.map((v, i) => flag.series[0] && flag.series[0].values[i] === 1 ? v : null);
      draw(fc.xs, [
        {label: "actual", values: actualVals},
        {label: "forecast", values: fc.series[0] ? fc.series[0].values : nul(), stroke: "#2b8a3e", dash: [4, 4], nocount: true},
        {label: "upper", values: hi.series[0] ? hi.series[0].values : nul(), stroke: "rgba(43,138,62,.35)", nocount: true},
        {label: "lower", values: lo.series[0] ? lo.series[0].values : nul(), stroke: "rgba(43,138,62,.35)", nocount: true},
        {label: "anomalous", values: marks, stroke: "#b00020", width: 0, points: {show: true, size: 8, fill: "#b00020"}, nocount: true},
      ], {bands: [{series: [3, 4], fill: "rgba(43,138,62,.12)"}]});
    }
    return {refresh};
  }

  // ---- Scaling ---------------------------------------------------------------------------------

  function scaling() {
    const host = el("div", {id: "scalers"});
    main.append(host);
    const cards = new Map();
    async function refresh() {
      const d = await api("/api/v1/scalers");
      const r = range(), step = stepFor(r);
      if (!d.scalers.length) {
        host.textContent = "";
        host.append(el("div", {class: "card"}, el("p", {class: "muted"}, "No scaler policies (scalers: in the configuration).")));
        return;
      }
      for (const s of d.scalers) {
        let c = cards.get(s.name);
        if (!c) {
          const load = el("div", {}), reps = el("div", {}), info = el("div", {}), del = el("div", {});
          host.append(el("div", {class: "card scaler"}, el("h2", {}, s.name), info, load, reps,
            el("h3", {}, "Last webhook deliveries"), del));
          c = {info, del, load: chart(load, "load and the forecast bound"), reps: chart(reps, "desired replicas")};
          cards.set(s.name, c);
        }
        c.info.textContent = "";
        c.info.append(el("div", {class: "grid"},
          stat("desired replicas", s.desired_replicas), stat("current load", fmt(s.current_load)),
          stat("forecast peak", fmt(s.forecast_peak)), stat("lead time", s.lead_time_seconds + " s"),
          stat("bounds", s.min_replicas + " - " + s.max_replicas)));
        const sel = '{scaler="' + s.name + '"}';
        const load = align(await rangeQuery("augur_scaler_load" + sel, r, step), r, step);
        const peak = align(await rangeQuery("augur_scaler_forecast_peak" + sel, r, step), r, step);
        const reps = align(await rangeQuery("augur_scaler_desired_replicas" + sel, r, step), r, step);
        const nul = () => new Array(load.xs.length).fill(null);
        c.load(load.xs, [{label: "load", values: load.series[0] ? load.series[0].values : nul()},
          {label: "forecast bound over the lead time", values: peak.series[0] ? peak.series[0].values : nul(), stroke: "#e8590c"}]);
        c.reps(reps.xs, [{label: "desired replicas", values: reps.series[0] ? reps.series[0].values : nul()}], {height: 180});
        c.del.textContent = "";
        c.del.append(s.deliveries.length ? el("table", {},
          el("tr", {}, el("th", {}, "time"), el("th", {}, "url"), el("th", {}, "status"), el("th", {}, "message")),
          ...s.deliveries.map(x => el("tr", {}, el("td", {}, x.time), el("td", {}, x.url),
            el("td", {class: x.result === "success" ? "" : "score hi"}, x.status || "no answer"), el("td", {}, x.id))))
          : el("p", {class: "muted"}, "No deliveries yet."));
      }
    }
    return {refresh};
  }

  function stat(label, value) {
    return el("div", {class: "stat"}, el("div", {class: "muted"}, label), el("div", {class: "v"}, value));
  }

  // ---- Status ----------------------------------------------------------------------------------

  function parseMetrics(text) {
    const out = [];
    for (const line of text.split("\n")) {
      if (!line || line[0] === "#") continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m) out.push({name: m[1], labels: m[2] || "", value: Number(m[3])});
    }
    return out;
  }

  function status() {
    const stats = el("div", {class: "grid", id: "status-stats"});
    const rej = el("div", {}), build = el("div", {}), cfg = el("pre", {id: "status-config"});
    main.append(el("div", {class: "card"}, el("h2", {}, "Status"), stats),
      el("div", {class: "card"}, el("h3", {}, "Rejected samples by reason"), rej),
      el("div", {class: "card"}, el("h3", {}, "Build"), build),
      el("div", {class: "card"}, el("h3", {}, "Configuration (secrets redacted)"), cfg));
    let prev = null;
    async function refresh() {
      const r = await fetch("/metrics");
      const ms = parseMetrics(await r.text());
      const get = (n) => { const x = ms.find(m => m.name === n && !m.labels); return x ? x.value : NaN; };
      const now = Date.now() / 1000;
      const appended = get("augur_samples_appended_total"), bytes = get("augur_lmdb_file_bytes");
      let rate = "-", growth = "-";
      if (prev) {
        const dt = now - prev.t;
        rate = fmt((appended - prev.appended) / dt) + " /s";
        growth = fmt((bytes - prev.bytes) / dt) + " B/s";
      }
      prev = {t: now, appended, bytes};
      stats.textContent = "";
      stats.append(stat("ingest rate", rate), stat("samples appended", fmt(appended)),
        stat("series", fmt(get("augur_series"))), stat("active series", fmt(get("augur_active_series"))),
        stat("data file", fmt(bytes / 1048576) + " MiB"), stat("storage growth", growth),
        stat("anomalies flagged", fmt(get("augur_anomalies_detected_total"))),
        stat("models / scalers / alert rules", get("augur_models") + " / " + get("augur_scalers") + " / " + get("augur_alert_rules")));
      rej.textContent = "";
      const rejs = ms.filter(m => m.name === "augur_samples_rejected_total");
      rej.append(el("table", {}, ...rejs.map(m => el("tr", {}, el("td", {}, m.labels), el("td", {class: "num"}, fmt(m.value))))));
      const b = await api("/api/v1/status/buildinfo");
      build.textContent = Object.entries(b).map(([k, v]) => k + ": " + v).join("   ");
      const c = await api("/api/v1/status/config");
      cfg.textContent = c.yaml;
    }
    return {refresh};
  }

  // ---- routing ---------------------------------------------------------------------------------

  const VIEWS = {explore, anomalies, scaling, status};

  function render() {
    const name = (location.hash || "#explore").slice(1).split("?")[0];
    const view = VIEWS[name] ? name : "explore";
    document.querySelectorAll("header nav a").forEach(a => a.classList.toggle("active", a.dataset.view === view));
    if (!current || current.name !== view) {
      main.textContent = "";
      const g = new URLSearchParams(location.search).get("g0.expr");
      current = Object.assign({name: view}, VIEWS[view](view === "explore" ? g : undefined));
    }
    tick();
  }

  async function tick() {
    clearTimeout(timer);
    try { await current.refresh(); } catch (e) {
      console.warn("refresh failed:", e.message); // shown in the view where it matters
    }
    if (!zoom) timer = setTimeout(tick, REFRESH_MS);
  }

  window.addEventListener("hashchange", render);
  rangeSel.addEventListener("change", () => { zoom = null; unzoom.hidden = true; tick(); });
  unzoom.addEventListener("click", () => { zoom = null; unzoom.hidden = true; tick(); });
  render();
})();
