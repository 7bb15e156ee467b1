/* tunery dashboard: a single page over the JSON API (routes in the URL's hash).
 *
 * Plain JavaScript, no build step, no network but this server. Every piece of data goes into the
 * DOM through textContent / createElement (never innerHTML), so a study called
 * "<script>alert(1)</script>" is just text. Charts are uPlot (vendored). Running trials grow
 * live from the study's server-sent event stream; nothing polls.
 */
"use strict";

(function () {
  const CSRF = metaContent("tunery-csrf");
  const READ_ONLY = metaContent("tunery-read-only") === "true";
  const MAX_LIVE_CURVES = 600; // curves kept on the study chart while new trials keep arriving
  const TABLE_PAGE = 100;
  const STUDIES_EVERY = 3000; // ms between looks at the studies list while it is shown
  // Trial numbers and epochs: ticks on whole steps only.
  const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];

  // What the current page holds (charts, streams, timers); released on every route change.
  let current = { disposers: [] };

  function metaContent(name) {
    const found = document.querySelector(`meta[name="${name}"]`);
    return found ? found.getAttribute("content") : "";
  }

  // -- DOM -------------------------------------------------------------------------------------

  /** el("td", {class: "num", text: "3"}, child, "text") — text always through textContent. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      put(node, child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** node.append without the nulls of optional parts (append would write "null"). */
  function put(node, ...children) {
    node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function card(title, ...children) {
    return el("section", { class: "card" }, title ? el("h2", { text: title }) : null, ...children);
  }

  function stat(label, value, attrs) {
    return el("div", Object.assign({ class: "stat" }, attrs || {}), el("b", { text: value }),
      el("span", { text: label }));
  }

  /** Marks a panel as drawn (at least once): what the browser tests and bench/dashboard.py wait on. */
  function ready(node) {
    node.dataset.ready = "1";
    return node;
  }

  function stateBadge(state) {
    return el("span", { class: `state ${state}`, text: state });
  }

  // -- numbers and times -----------------------------------------------------------------------

  function fmt(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value !== "number") return String(value);
    if (!Number.isFinite(value)) return String(value);
    if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
    return String(Number(value.toPrecision(4))); // JavaScript's own switch to 1e-7 style
  }

  function since(iso) {
    if (!iso) return "—";
    const seconds = (Date.now() - Date.parse(iso)) / 1000;
    if (!Number.isFinite(seconds)) return iso;
    if (seconds < 60) return "just now";
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
    return `${Math.round(seconds / 86400)} days ago`;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    if (seconds < 120) return `${seconds.toFixed(1)} s`;
    return `${(seconds / 60).toFixed(1)} min`;
  }

  function paramsText(params) {
    return Object.entries(params || {}).map(([k, v]) => `${k}=${fmt(v)}`).join("  ");
  }

  // -- the server ------------------------------------------------------------------------------

  async function api(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    return answer(response);
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Tunery-CSRF": CSRF },
      body: JSON.stringify(body || {}),
    });
    return answer(response);
  }

  async function answer(response) {
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const why = data && data.error ? data.error : `${response.status} ${response.statusText}`;
      throw new Error(why);
    }
    return data;
  }

  const enc = encodeURIComponent;
  const studyPath = (name) => `/api/studies/${enc(name)}`;
  const studyHash = (name) => `#/study/${enc(name)}`;
  const trialHash = (name, number) => `#/study/${enc(name)}/trial/${number}`;

  /** The study's event stream; reconnects from the last points cursor and control-event time
   * it saw, so nothing sent during the gap (a point, a nudge, a rollback) is missed. */
  function subscribe(name, cursor, handlers) {
    let source = null;
    let stopped = false;
    let at = cursor;
    let since = null;
    const live = document.getElementById("live");
    function open() {
      const query = new URLSearchParams();
      if (at !== null && at !== undefined) query.set("cursor", at);
      if (since !== null) query.set("since", since);
      const text = query.toString();
      source = new EventSource(`${studyPath(name)}/stream${text ? "?" + text : ""}`);
      source.addEventListener("open", () => { live.className = "live on"; live.textContent = "live"; });
      source.addEventListener("ping", (event) => {
        const data = JSON.parse(event.data);
        at = data.cursor;
        since = data.since;
      });
      source.addEventListener("points", (event) => {
        const data = JSON.parse(event.data);
        at = data.cursor;
        handlers.points && handlers.points(data.points);
      });
      source.addEventListener("trials", (event) => {
        handlers.trials && handlers.trials(JSON.parse(event.data).trials);
      });
      source.addEventListener("events", (event) => {
        const data = JSON.parse(event.data);
        since = data.since;
        handlers.events && handlers.events(data.events);
      });
      source.addEventListener("error", () => {
        source.close();
        live.className = "live off";
        live.textContent = "reconnecting";
        if (!stopped) setTimeout(() => { if (!stopped) open(); }, 2000);
      });
    }
    open();
    current.disposers.push(() => {
      stopped = true;
      source.close();
      live.className = "live";
      live.textContent = "";
    });
  }

  /** Run fn at most once per `wait` ms, the last call winning (for refreshes driven by events). */
  function debounce(fn, wait) {
    let timer = null;
    // A refresh that fails (the server went away, a study was deleted) waits for the next event.
    const run = () => {
      timer = null;
      Promise.resolve().then(fn).catch((error) => console.warn("refresh failed:", error.message));
    };
    current.disposers.push(() => timer && clearTimeout(timer));
    return () => { if (timer === null) timer = setTimeout(run, wait); };
  }

  // -- charts ----------------------------------------------------------------------------------

  const PALETTE = ["#2f6fde", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#1098ad", "#f08c00", "#5c940d"];
  // viridis, a few stops: bad values dark purple, good values yellow
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function viridis(t) {
    const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
    const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const f = x - i;
    const c = VIRIDIS[i].map((a, k) => Math.round(a + (VIRIDIS[i + 1][k] - a) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  function colorScale(node) {
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `${viridis(t)} ${t * 100}%`).join(", ");
    node.style.background = `linear-gradient(to right, ${stops})`;
    return node;
  }

  /** A uPlot chart filling `holder`'s width, kept in `current` (destroyed with the page). */
  function makeChart(holder, options, data) {
    const width = Math.max(300, holder.clientWidth || 600);
    const chart = new uPlot(Object.assign({ width, height: 260 }, options), data, holder);
    holder.uplot = chart; // for the browser tests and the console
    const watcher = new ResizeObserver(() => {
      const w = Math.max(300, holder.clientWidth);
      if (Math.abs(w - chart.width) > 4) chart.setSize({ width: w, height: chart.height });
    });
    watcher.observe(holder);
    let alive = true;
    holder.dropChart = () => {
      if (!alive) return;
      alive = false;
      watcher.disconnect();
      chart.destroy();
      holder.uplot = null;
    };
    current.disposers.push(holder.dropChart);
    return chart;
  }

  function dropChart(holder) {
    if (holder.dropChart) holder.dropChart();
    clear(holder);
  }

  function decade(v) {
    if (!(v > 0)) return false;
    const k = Math.log10(v);
    return Math.abs(k - Math.round(k)) < 1e-6;
  }

  /** How a parameter's values map onto its axis: log for a log scale, log of 1−v for β. */
  function axisOf(spec) {
    const scale = (spec && spec.scale) || "linear";
    if (spec && spec.kind === "choice") {
      const choices = spec.choices || [];
      return {
        to: (v) => v,
        scale: { range: () => [-0.5, Math.max(0.5, choices.length - 0.5)] },
        axis: {
          splits: () => choices.map((_, i) => i),
          values: (u, splits) => splits.map((i) => String(choices[i])),
        },
        note: "",
      };
    }
    if (scale === "log") {
      return { to: (v) => v, scale: { distr: 3 }, axis: { values: (u, s) => s.map((v) => (decade(v) ? fmt(v) : "")) }, note: " (log)" };
    }
    if (scale === "one_minus_log") {
      return {
        to: (v) => 1 - v,
        scale: { distr: 3, dir: -1 },
        axis: { values: (u, splits) => splits.map((s) => (decade(s) ? fmt(Number((1 - s).toPrecision(6))) : "")) },
        note: " (log of 1−β)",
      };
    }
    return { to: (v) => v, scale: {}, axis: { values: (u, s) => s.map(fmt) }, note: "" };
  }

  function validFor(axis, spec) {
    const logged = spec && (spec.scale === "log" || spec.scale === "one_minus_log") && spec.kind !== "choice";
    return (x) => Number.isFinite(x) && (!logged || axis.to(x) > 0);
  }

  /** Points only (no lines), in uPlot's aligned mode: x sorted, one y series per group. */
  function scatterData(xs, ys, groups, keys) {
    const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
    const data = [order.map((i) => xs[i])];
    for (const key of keys) data.push(order.map((i) => (groups[i] === key ? ys[i] : null)));
    return data;
  }

  function pointSeries(label, color, count) {
    const size = count > 2000 ? 3 : count > 300 ? 4 : 6; // thousands of dots: small ones
    return {
      label,
      stroke: color,
      fill: color,
      paths: () => null,
      points: { show: true, size, stroke: color, fill: color },
    };
  }

  /** Draws each coarse-to-fine round's range of one parameter as a band with its number. */
  function roundBoxes(rounds, param, spec, axis) {
    return {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx;
          const { top, height } = u.bbox;
          rounds.forEach((round, k) => {
            const spans = [];
            if (round.box && round.box[param]) spans.push(round.box[param].map(axis.to));
            if (round.choices && round.choices[param] && spec.choices) {
              for (const kept of round.choices[param]) {
                const i = spec.choices.findIndex((c) => JSON.stringify(c) === JSON.stringify(kept));
                if (i >= 0) spans.push([i - 0.4, i + 0.4]);
              }
            }
            const color = PALETTE[k % PALETTE.length];
            for (const [lo, hi] of spans) {
              if (!(lo > 0) && u.scales.x.distr === 3) continue;
              const a = u.valToPos(lo, "x", true);
              const b = u.valToPos(hi, "x", true);
              const left = Math.min(a, b);
              const inset = k * 3 * devicePixelRatio;
              ctx.save();
              ctx.globalAlpha = 0.08;
              ctx.fillStyle = color;
              ctx.fillRect(left, top + inset, Math.abs(b - a), height - 2 * inset);
              ctx.globalAlpha = 0.9;
              ctx.strokeStyle = color;
              ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
              ctx.lineWidth = devicePixelRatio;
              ctx.strokeRect(left, top + inset, Math.abs(b - a), height - 2 * inset);
              ctx.fillStyle = color;
              ctx.font = `${11 * devicePixelRatio}px sans-serif`;
              const labelX = Math.max(left, u.bbox.left) + 3 * devicePixelRatio;
              ctx.fillText(`round ${round.number}`, labelX, top + inset + 12 * devicePixelRatio);
              ctx.restore();
            }
          });
        }],
      },
    };
  }

  // -- routing ---------------------------------------------------------------------------------

  function route() {
    for (const dispose of current.disposers.splice(0)) {
      try { dispose(); } catch (_) { /* a chart already gone */ }
    }
    current = { disposers: [] };
    const root = clear(document.getElementById("app"));
    delete root.dataset.ready;
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "");
    const names = parts.map((p) => { try { return decodeURIComponent(p); } catch (_) { return p; } });
    let shown;
    if (names[0] === "study" && names.length === 2) shown = studyPage(root, names[1]);
    else if (names[0] === "study" && names[2] === "trial" && names.length === 4) shown = trialPage(root, names[1], names[3]);
    else if (names[0] === "compare" && parts.length === 2) {
      shown = comparePage(root, parts[1].split(",").filter(Boolean).map(decodeURIComponent));
    } else shown = studiesPage(root);
    Promise.resolve(shown).catch((error) => {
      put(root, el("p", { class: "error", text: `Could not load this page: ${error.message}` }));
    });
  }

  function crumbs(...items) {
    const nav = clear(document.getElementById("crumbs"));
    put(nav, el("a", { href: "#/", text: "studies" }));
    for (const [text, href] of items) {
      put(nav, " / ", href ? el("a", { href, text }) : el("span", { text }));
    }
  }

  // -- studies ---------------------------------------------------------------------------------

  const STATES = ["RUNNING", "COMPLETE", "PRUNED", "FAILED", "DIVERGED"];

  async function studiesPage(root) {
    crumbs();
    document.title = "tunery dashboard";
    const data = await api("/api/studies");
    const picked = new Set();
    const compare = el("button", { class: "primary", text: "Compare selected", disabled: true, id: "compare" });
    compare.addEventListener("click", () => {
      location.hash = `#/compare/${[...picked].map(enc).join(",")}`;
    });
    const head = el("tr", {}, el("th", { text: "" }), el("th", { text: "study" }), el("th", { text: "direction" }),
      el("th", { text: "metric" }), ...STATES.map((s) => el("th", { class: "num", text: s.toLowerCase() })),
      el("th", { class: "num", text: "trials" }), el("th", { class: "num", text: "best" }), el("th", { text: "last activity" }));
    const body = el("tbody");
    const count = el("span", { class: "muted" });
    const empty = el("p", { class: "muted", text: "No study in this store yet: run `tunery tune CONFIG`." });
    fillStudies(data.studies);
    // Live without a reload: the list is small and the server answers it from a cache kept by the
    // store's change marker, so a look every few seconds costs next to nothing.
    let shown = JSON.stringify(data.studies);
    const timer = setInterval(async () => {
      try {
        const fresh = await api("/api/studies");
        const text = JSON.stringify(fresh.studies);
        if (text !== shown) { shown = text; fillStudies(fresh.studies); }
      } catch (_) { /* the server went away: the next look tries again */ }
    }, STUDIES_EVERY);
    current.disposers.push(() => clearInterval(timer));
    const refresh = el("button", { text: "Refresh", onclick: () => route() });
    put(root, el("h1", { text: "Studies" }),
      card(null, el("div", { class: "row" }, compare, refresh, count),
      el("div", { class: "table-wrap" }, el("table", { id: "studies" }, el("thead", {}, head), body))), empty);
    ready(body);

    function fillStudies(studies) {
      clear(body);
      for (const name of [...picked]) if (!studies.some((s) => s.name === name)) picked.delete(name);
      for (const study of studies) put(body, studyRow(study));
      compare.disabled = picked.size < 2;
      count.textContent = `${studies.length} studies in this store; pick two or more to compare them side by side`;
      empty.hidden = studies.length > 0;
    }

    function studyRow(study) {
      const box = el("input", { type: "checkbox", class: "pick", title: "pick to compare", dataset: { study: study.name }, checked: picked.has(study.name) });
      box.addEventListener("change", () => {
        if (box.checked) picked.add(study.name); else picked.delete(study.name);
        compare.disabled = picked.size < 2;
      });
      return el("tr", { dataset: { study: study.name } },
        el("td", {}, box),
        el("td", { class: "name" }, el("a", { href: studyHash(study.name), text: study.name })),
        el("td", { text: study.direction }),
        el("td", { text: study.metric }),
        ...STATES.map((s) => el("td", { class: "num", text: study.counts[s] || 0 })),
        el("td", { class: "num", text: study.n_trials }),
        el("td", { class: "num", text: fmt(study.best_value) }),
        el("td", { text: since(study.last_activity), title: study.last_activity || "" }));
    }
  }

  // -- one study -------------------------------------------------------------------------------

  async function studyPage(root, name) {
    const page = current;
    crumbs([name, null]);
    document.title = `${name} · tunery`;
    const study = await api(studyPath(name));
    const title = el("h1", { text: study.name });
    const stats = el("div", { class: "stats", id: "stats" });
    const running = el("ul", { id: "running", class: "events" });
    const bestHolder = el("div", { class: "chart", id: "best-chart" });
    const curvesHolder = el("div", { class: "chart", id: "curves-chart" });
    const readout = el("div", { class: "muted", id: "curve-readout", text: "hover a curve to see its trial" });
    const metricPick = el("select", { id: "metric" }, ...study.metrics.map((m) => el("option", { value: m, text: m })));
    metricPick.value = study.metric;
    // Both come a moment after the curves (the ranking is a forest fitted on first call): each
    // says so until it is drawn.
    const scatterGrid = el("div", { class: "grid", id: "scatters" }, el("p", { class: "muted", text: "loading…" }));
    const importance = el("div", { id: "importance" }, el("p", { class: "muted", text: "computing…" }));
    const table = trialsTable(name, study);
    const pandaLink = study.panda ? el("p", {}, "A panda study: ", el("a", { href: trialHash(name, study.n_trials - 1), text: "open its latest branch to steer it" })) : null;

    put(root, title, stats, pandaLink,
      el("div", { class: "grid" },
        card("Best so far", bestHolder),
        card("Running now", running)),
      card("Learning curves", el("div", { class: "row" }, el("label", { text: "metric " }, metricPick),
        el("span", { class: "muted" }, "worse ", colorScale(el("span", { class: "legend-scale" })), " better · running trials in orange")),
      curvesHolder, readout),
      card("Each parameter against " + study.metric, scatterGrid),
      card("Importance", importance),
      table.node);

    renderStats(stats, study);
    const curves = liveCurves(name, study, curvesHolder, readout, running);
    metricPick.addEventListener("change", () => curves.load(metricPick.value).catch((e) => { readout.textContent = e.message; }));
    // The curves, the best so far and the table first; the scatters and the importance (a forest
    // fitted on first call) only once the curves are drawn, so they do not delay them on a big study.
    const loads = [curves.load(study.metric), drawBest(bestHolder, name, study), table.load()];
    // The study as first read goes stale while it runs (a first round appears, new metrics):
    // each refresh takes the new one and redraws what it changed.
    const refreshScatters = debounce(() => Promise.all([drawScatters(scatterGrid, name, study), drawImportance(importance, name)]), 8000);
    const refreshSummary = debounce(async () => {
      const fresh = await api(studyPath(name));
      const reshaped = JSON.stringify([fresh.params, fresh.rounds]) !== JSON.stringify([study.params, study.rounds]);
      Object.assign(study, fresh);
      renderStats(stats, fresh);
      for (const metric of fresh.metrics) {
        if (![...metricPick.options].some((o) => o.value === metric)) put(metricPick, el("option", { value: metric, text: metric }));
      }
      table.rounds(fresh.rounds);
      if (reshaped) await drawScatters(scatterGrid, name, study);
      await drawBest(bestHolder, name, fresh);
    }, 2000);
    const refreshTable = debounce(() => table.load(), 3000);
    const cursor = await loads[0];
    loads.push(drawScatters(scatterGrid, name, study), drawImportance(importance, name));
    subscribe(name, cursor, {
      points: (points) => { curves.points(points); refreshTable(); }, // the epochs column
      trials: (trials) => {
        curves.trials(trials);
        refreshSummary();
        refreshTable();
        refreshScatters();
      },
    });
    await Promise.all(loads.slice(1));
    if (current === page) root.dataset.ready = "study"; // not if the user has moved on meanwhile
  }

  function renderStats(node, study) {
    clear(node);
    put(node, stat("direction", study.direction), stat("metric", study.metric), stat("trials", study.n_trials));
    for (const s of STATES) {
      if (study.counts[s]) put(node, stat(s.toLowerCase(), study.counts[s], { dataset: { state: s } }));
    }
    if (study.best) {
      put(node, stat("best value", fmt(study.best.value)),
        el("div", { class: "stat" }, el("b", {}, el("a", { href: trialHash(study.name, study.best.number), text: `#${study.best.number}` })),
          el("span", { text: "best trial" })));
    }
  }

  async function drawBest(holder, name, study) {
    const data = await api(`${studyPath(name)}/best?max_points=2000`);
    dropChart(holder);
    if (!data.numbers.length) {
      put(ready(holder), el("p", { class: "muted", text: "No complete trial yet." }));
      return;
    }
    makeChart(holder, {
      height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "trial", incrs: INTEGER_STEPS }, { label: study.metric, values: (u, s) => s.map(fmt) }],
      series: [
        { label: "trial" },
        pointSeries("value", "rgba(102,112,133,0.6)", data.numbers.length),
        { label: "best so far", stroke: PALETTE[0], width: 2, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
      ],
    }, [data.numbers, data.values, data.best]);
    if (data.total > data.numbers.length) put(holder, el("p", { class: "muted", text: `${data.numbers.length} of ${data.total} complete trials shown (every change of the best kept)` }));
    ready(holder);
  }

  /** Every shown trial's curve on one chart, coloured by its value; points arrive live. */
  function liveCurves(name, study, holder, readout, runningList) {
    const lines = new Map(); // number -> {state, value, points: Map(epoch -> value)}
    let metric = study.metric;
    let dirty = false;
    let rebuild = false;
    let timer = null;
    let rebuilt = 0; // when the chart was last made anew (recolouring 400 curves is not free)
    let arriving = null; // points that came while /curves was being read, applied after it
    const maximize = study.direction === "maximize";

    function flushSoon(structure) {
      dirty = true;
      rebuild = rebuild || structure;
      if (timer === null) timer = setTimeout(flush, 250);
    }
    current.disposers.push(() => timer && clearTimeout(timer));

    async function load(chosen) {
      metric = chosen;
      arriving = [];
      let data;
      try {
        data = await api(`${studyPath(name)}/curves?metric=${enc(metric)}&max_trials=400&max_points=200`);
      } finally {
        const late = arriving;
        arriving = null;
        if (data) {
          lines.clear();
          for (const c of data.curves) {
            lines.set(c.number, { state: c.state, value: c.value, points: new Map(c.epochs.map((e, i) => [e, c.values[i]])) });
          }
          holder.dataset.total = data.total;
        }
        points(late);
        // Drawn now, not after the stream's batching delay: the page waits for these curves.
        if (timer !== null) { clearTimeout(timer); timer = null; }
        dirty = true;
        rebuild = true;
        flush();
      }
      return data.cursor;
    }

    function points(batch) {
      if (arriving !== null) { arriving.push(...batch); return; }
      let structure = false;
      for (const p of batch) {
        if (p.metric !== metric) continue;
        let line = lines.get(p.number);
        if (!line) {
          line = { state: "RUNNING", value: null, points: new Map() };
          lines.set(p.number, line);
          structure = true;
        }
        if (!line.points.has(p.epoch)) structure = structure || line.points.size === 0;
        line.points.set(p.epoch, p.value);
      }
      if (lines.size > MAX_LIVE_CURVES) { trim(); structure = true; }
      flushSoon(structure);
    }

    function trials(changed) {
      for (const t of changed) {
        const line = lines.get(t.number);
        if (line) { line.state = t.state; line.value = t.value; }
      }
      flushSoon(true);
    }

    function trim() {
      const finished = [...lines.entries()].filter(([, l]) => l.state !== "RUNNING");
      finished.sort((a, b) => a[0] - b[0]);
      for (const [number] of finished.slice(0, lines.size - MAX_LIVE_CURVES)) lines.delete(number);
    }

    function flush() {
      timer = null;
      if (!dirty) return;
      dirty = false;
      const numbers = [...lines.keys()].sort((a, b) => a - b);
      const epochs = [...new Set(numbers.flatMap((n) => [...lines.get(n).points.keys()]))].sort((a, b) => a - b);
      const data = [epochs, ...numbers.map((n) => epochs.map((e) => (lines.get(n).points.has(e) ? lines.get(n).points.get(e) : null)))];
      holder.dataset.points = String(data.slice(1).reduce((sum, ys) => sum + ys.filter((y) => y !== null).length, 0));
      holder.dataset.series = String(numbers.length);
      renderRunning(numbers);
      const fits = holder.uplot && holder.uplot.series.length === numbers.length + 1;
      const wait = 1500 - (Date.now() - rebuilt);
      if (fits && (!rebuild || wait > 0)) {
        holder.uplot.setData(data);
        if (rebuild) { dirty = true; timer = setTimeout(flush, wait); } // recolour a little later
        return;
      }
      rebuild = false;
      rebuilt = Date.now();
      dropChart(holder);
      if (!numbers.length) {
        put(ready(holder), el("p", { class: "muted", text: "No curve reported yet." }));
        return;
      }
      const values = numbers.map((n) => lines.get(n).value).filter((v) => v !== null && Number.isFinite(v));
      const low = Math.min(...values);
      const high = Math.max(...values);
      const series = [{ label: "epoch" }, ...numbers.map((n) => {
        const line = lines.get(n);
        let color = "rgba(150,150,150,0.5)";
        let width = 1;
        if (line.state === "RUNNING") { color = "#e8590c"; width = 2.5; }
        else if (line.value !== null && high > low) {
          const t = (line.value - low) / (high - low);
          color = viridis(maximize ? t : 1 - t);
        } else if (line.value !== null) color = viridis(1);
        return { label: `#${n}`, stroke: color, width, points: { show: false }, spanGaps: true };
      })];
      makeChart(holder, {
        height: 320,
        legend: { show: false },
        cursor: { focus: { prox: 12 }, points: { show: false } },
        focus: { alpha: 0.25 },
        scales: { x: { time: false } },
        axes: [{ label: "epoch", incrs: INTEGER_STEPS }, { label: metric, values: (u, s) => s.map(fmt) }],
        series,
        hooks: {
          setSeries: [(u, index) => {
            if (index === null || index === undefined || index === 0) return;
            const number = numbers[index - 1];
            const line = lines.get(number);
            if (!line) return;
            put(clear(readout), el("a", { href: trialHash(name, number), text: `trial #${number}` }),
              ` · ${line.state} · value ${fmt(line.value)} · ${line.points.size} epochs`);
          }],
        },
      }, data);
      holder.uplot.over.addEventListener("click", () => {
        const focused = holder.uplot.series.findIndex((s, i) => i > 0 && s._focus);
        if (focused > 0) location.hash = trialHash(name, numbers[focused - 1]);
      });
      ready(holder);
    }

    function renderRunning(numbers) {
      clear(runningList);
      const live = numbers.filter((n) => lines.get(n).state === "RUNNING");
      if (!live.length) {
        put(runningList, el("li", { class: "muted", text: "No trial is running." }));
        return;
      }
      for (const n of live) {
        const line = lines.get(n);
        const last = Math.max(...line.points.keys());
        put(runningList, el("li", { dataset: { trial: n, epochs: line.points.size } },
          el("a", { href: trialHash(name, n), text: `trial #${n}` }),
          ` · epoch ${last} · ${metric} ${fmt(line.points.get(last))}`));
      }
    }

    return { load, points, trials };
  }

  async function drawScatters(grid, name, study) {
    const names = Object.keys(study.params);
    if (!names.length) {
      put(ready(clear(grid)), el("p", { class: "muted", text: "This study has no parameters." }));
      return;
    }
    const found = await Promise.all(names.map((p) => api(`${studyPath(name)}/scatter?param=${enc(p)}&max_points=5000`)));
    for (const node of [...grid.querySelectorAll(".chart")]) dropChart(node);
    clear(grid);
    found.forEach((data, k) => {
      const param = names[k];
      const spec = study.params[param];
      const holder = el("div", { class: "chart", dataset: { param } });
      const shown = data.total > data.x.length ? ` (${data.x.length} of ${data.total} shown)` : "";
      put(grid, el("div", {}, el("h2", { text: param + axisOf(spec).note + shown }), holder));
      drawScatter(holder, data, spec, study.rounds, study.metric, param);
    });
    ready(grid);
  }

  function drawScatter(holder, data, spec, rounds, metric, param) {
    const axis = axisOf(spec);
    const ok = validFor(axis, spec);
    const keep = data.x.map((x, i) => i).filter((i) => ok(data.x[i]) && data.y[i] !== null);
    if (!keep.length) {
      put(holder, el("p", { class: "muted", text: "No trial with a value yet." }));
      return;
    }
    const roundNumbers = [...new Set(keep.map((i) => data.rounds[i]))].sort((a, b) => a - b);
    const xs = keep.map((i) => axis.to(data.x[i]));
    const chartData = scatterData(xs, keep.map((i) => data.y[i]), keep.map((i) => data.rounds[i]), roundNumbers);
    const roundIndex = new Map(rounds.map((r, k) => [r.number, k]));
    makeChart(holder, {
      height: 240,
      plugins: [roundBoxes(rounds, param, spec, axis)],
      scales: { x: Object.assign({ time: false }, axis.scale) },
      axes: [Object.assign({ label: param + axis.note }, axis.axis), { label: metric, values: (u, s) => s.map(fmt) }],
      series: [{ label: param, value: (u, v) => (v === null ? "—" : fmt(spec.scale === "one_minus_log" ? 1 - v : v)) },
        ...roundNumbers.map((r) => pointSeries(`round ${r}`, PALETTE[(roundIndex.get(r) || 0) % PALETTE.length], keep.length))],
    }, chartData);
  }

  async function drawImportance(node, name) {
    const data = await api(`${studyPath(name)}/importance`);
    clear(node);
    const entries = Object.entries(data.importance).sort((a, b) => b[1] - a[1]);
    if (!entries.length) {
      put(ready(node), el("p", { class: "muted", text: data.note || "Not enough complete trials to rank the parameters." }));
      return;
    }
    const top = Math.max(...entries.map((e) => e[1]), 1e-12);
    const bars = el("div", { class: "bars" });
    for (const [param, weight] of entries) {
      const bar = el("div", { class: "bar" });
      bar.style.width = `${(100 * weight) / top}%`;
      put(bars, el("span", { text: param }), el("div", {}, bar), el("span", { class: "num", text: `${(100 * weight).toFixed(1)} %` }));
    }
    put(ready(node), bars, el("p", { class: "muted", text: `from ${data.n_trials} complete trials` }));
  }

  /** The trials, a page of 100 at a time from the server: sorts and filters there, so 50k is fine. */
  function trialsTable(name, study) {
    const query = { sort: "number", order: "asc", offset: 0, states: new Set(), round: "", min: "", max: "" };
    const body = el("tbody");
    const info = el("span", { class: "muted", id: "table-info" });
    const prev = el("button", { text: "← previous" });
    const next = el("button", { text: "next →" });
    const stateBoxes = STATES.map((s) => {
      const box = el("input", { type: "checkbox", value: s, dataset: { filterState: s } });
      box.addEventListener("change", () => {
        if (box.checked) query.states.add(s); else query.states.delete(s);
        query.offset = 0;
        load();
      });
      return el("label", {}, box, ` ${s.toLowerCase()}`);
    });
    const roundPick = el("select", { id: "filter-round" }, el("option", { value: "", text: "every round" }),
      ...study.rounds.map((r) => el("option", { value: r.number, text: `round ${r.number}` })));
    const minBox = el("input", { type: "number", step: "any", placeholder: "value ≥", id: "filter-min" });
    const maxBox = el("input", { type: "number", step: "any", placeholder: "value ≤", id: "filter-max" });
    for (const [input, key] of [[roundPick, "round"], [minBox, "min"], [maxBox, "max"]]) {
      input.addEventListener("change", () => { query[key] = input.value; query.offset = 0; load(); });
    }
    const heads = [["number", "#"], [null, "state"], [null, "round"], ["value", study.metric], [null, "epochs"], ["duration", "duration"], [null, "params"]];
    const headRow = el("tr", {}, ...heads.map(([key, text]) => {
      const th = el("th", { text, class: key ? "sortable" : null, dataset: key ? { sort: key } : null });
      if (key) {
        th.addEventListener("click", () => {
          query.order = query.sort === key && query.order === "asc" ? "desc" : "asc";
          query.sort = key;
          query.offset = 0;
          load();
        });
      }
      return th;
    }));
    prev.addEventListener("click", () => { query.offset = Math.max(0, query.offset - TABLE_PAGE); load(); });
    next.addEventListener("click", () => { query.offset += TABLE_PAGE; load(); });
    const table = el("table", { id: "trials" }, el("thead", {}, headRow), body);
    let asked = 0;

    async function load() {
      const mine = ++asked;
      const q = new URLSearchParams({ sort: query.sort, order: query.order, offset: query.offset, limit: TABLE_PAGE });
      if (query.states.size) q.set("state", [...query.states].join(","));
      if (query.round) q.set("round", query.round);
      if (query.min !== "") q.set("value_min", query.min);
      if (query.max !== "") q.set("value_max", query.max);
      let data;
      try {
        data = await api(`${studyPath(name)}/trials?${q}`);
      } catch (error) {
        info.textContent = error.message;
        return;
      }
      if (mine !== asked) return; // a newer question is on its way
      for (const th of headRow.querySelectorAll("th.sortable")) {
        th.classList.toggle("asc", th.dataset.sort === query.sort && query.order === "asc");
        th.classList.toggle("desc", th.dataset.sort === query.sort && query.order === "desc");
      }
      clear(body);
      for (const t of data.trials) {
        put(body, el("tr", { dataset: { number: t.number } },
          el("td", { class: "num" }, el("a", { href: trialHash(name, t.number), text: t.number })),
          el("td", {}, stateBadge(t.state)),
          el("td", { class: "num", text: t.round ?? "—" }),
          el("td", { class: "num", text: fmt(t.value) }),
          el("td", { class: "num", text: t.epochs }),
          el("td", { class: "num", text: duration(t.duration) }),
          el("td", { class: "params", text: paramsText(t.params) })));
      }
      const first = data.total ? query.offset + 1 : 0;
      info.textContent = `trials ${first}–${query.offset + data.trials.length} of ${data.total}`;
      prev.disabled = query.offset === 0;
      next.disabled = query.offset + TABLE_PAGE >= data.total;
      ready(table);
    }

    function rounds(list) {
      for (const r of list) {
        if (![...roundPick.options].some((o) => o.value === String(r.number))) put(roundPick, el("option", { value: r.number, text: `round ${r.number}` }));
      }
    }

    const node = card("Trials",
      el("div", { class: "row" }, ...stateBoxes, roundPick, minBox, maxBox),
      el("div", { class: "row" }, prev, next, info),
      el("div", { class: "table-wrap" }, table));
    return { node, load, rounds };
  }

  // -- one trial -------------------------------------------------------------------------------

  async function trialPage(root, name, numberText) {
    crumbs([name, studyHash(name)], [`trial #${numberText}`, null]);
    document.title = `#${numberText} · ${name} · tunery`;
    const path = `${studyPath(name)}/trials/${enc(numberText)}`;
    const [study, trial] = await Promise.all([api(studyPath(name)), api(path)]);
    const view = { trial, refresh: null, redraw: null };
    const head = el("div");
    const charts = el("div", { class: "grid", id: "trial-charts" });
    const side = el("div", { class: "grid" });
    const controls = trial.panda && !READ_ONLY ? pandaControls(name, view) : null;
    const drawn = new Map(); // metric -> {holder, update(line)}
    put(root, head, controls ? controls.node : null, charts, side);

    function render(fresh) {
      view.trial = fresh;
      put(clear(head), el("h1", {}, `trial #${fresh.number} `, stateBadge(fresh.state)),
        el("div", { class: "stats" }, stat("value", fmt(fresh.value)), stat("round", fresh.round ?? "—"),
          stat("epochs", Math.max(0, ...Object.values(fresh.curves).map((c) => c.epochs.length))),
          fresh.parent ? el("div", { class: "stat" }, el("b", {}, el("a", { href: trialHash(name, fresh.parent[0]), text: `#${fresh.parent[0]} @ ${fresh.parent[1]}` })), el("span", { text: "branched from" })) : null,
          fresh.panda && fresh.head !== null && fresh.head !== fresh.number ? el("div", { class: "stat", id: "head" }, el("b", {}, el("a", { href: trialHash(name, fresh.head), text: `#${fresh.head}` })), el("span", { text: "latest branch" })) : null),
        fresh.error ? el("p", { class: "error", text: fresh.error }) : null);
      renderCharts(fresh);
      put(clear(side), paramsCard(fresh), eventsCard(fresh), lineageCard(name, fresh),
        card("Checkpoints", el("p", { id: "checkpoints", text: fresh.checkpoints.length ? `epochs ${fresh.checkpoints.join(", ")}` : "none kept" })),
        fresh.output ? card("Output", el("pre", { text: fresh.output })) : null);
      if (controls) controls.update(fresh);
    }

    /** A chart per metric, built once and then given new data (a live panda reports every epoch). */
    function renderCharts(fresh) {
      const lines = fresh.path_curves || fresh.curves;
      const metrics = Object.keys(lines).sort((a, b) => (a === study.metric ? -1 : b === study.metric ? 1 : a.localeCompare(b)));
      const same = metrics.length === drawn.size && metrics.every((m) => drawn.has(m));
      if (same) {
        for (const metric of metrics) drawn.get(metric).update(lines[metric], fresh);
        return;
      }
      for (const { holder } of drawn.values()) dropChart(holder);
      drawn.clear();
      clear(charts);
      for (const metric of metrics) {
        const holder = el("div", { class: "chart", dataset: { metric } });
        put(charts, card(metric + (fresh.path_curves ? " (along this branch's path)" : ""), holder));
        drawn.set(metric, trialCurve(holder, lines[metric], metric, fresh, controls && metric === study.metric ? controls : null));
      }
      if (!metrics.length) put(charts, card("Curves", el("p", { class: "muted", text: "No epoch reported yet." })));
    }

    render(trial);
    view.redraw = () => drawn.forEach(({ holder }) => holder.uplot && holder.uplot.redraw(false));
    view.refresh = debounce(async () => {
      try { render(await api(path)); } catch (_) { /* the next event tries again */ }
    }, 700);
    // Any new point may be this trial's or its panda's next branch, and a control event sent or
    // applied (by the page, the CLI or panda) changes its events: one cheap re-read, debounced.
    const refresh = () => view.refresh();
    subscribe(name, null, { points: refresh, trials: refresh, events: refresh });
  }

  /** One metric's curve; marks checkpoints and events; with controls, a click picks an epoch. */
  function trialCurve(holder, line, metric, trial, controls) {
    const shown = { line, trial };
    const positive = line.values.every((v) => v !== null && v > 0);
    const logged = positive && (metric === "lr" || metric.endsWith("_lr"));
    const chart = makeChart(holder, {
      height: 220,
      scales: { x: { time: false }, y: logged ? { distr: 3 } : {} },
      axes: [{ label: "epoch", incrs: INTEGER_STEPS }, { label: metric + (logged ? " (log)" : ""), values: (u, s) => s.map((v) => (!logged || decade(v) ? fmt(v) : "")) }],
      series: [{ label: "epoch" }, { label: metric, stroke: PALETTE[0], width: 2, points: { show: true, size: 5 } }],
      hooks: { draw: [(u) => drawMarks(u, shown.trial, controls)] },
    }, [line.epochs, line.values]);
    put(holder, el("p", { class: "muted", text: controls ? "green ticks: checkpoints · click an epoch to roll back to it" : "green ticks: checkpoints" }));
    if (controls) {
      chart.over.style.cursor = "pointer";
      chart.over.addEventListener("click", () => {
        const index = chart.cursor.idx;
        if (index === null || index === undefined) return;
        controls.pick(shown.line.epochs[index]);
      });
    }
    return {
      holder,
      update(fresh, freshTrial) {
        shown.line = fresh;
        shown.trial = freshTrial;
        chart.setData([fresh.epochs, fresh.values]);
      },
    };
  }

  /** Events as dashed lines at the epoch they were applied, checkpoints as green ticks. */
  function drawMarks(u, trial, controls) {
    const ctx = u.ctx;
    const px = devicePixelRatio;
    const { top, height } = u.bbox;
    ctx.save();
    ctx.font = `${10 * px}px sans-serif`;
    for (const event of trial.events) {
      if (event.epoch === null) continue;
      const x = u.valToPos(event.epoch, "x", true);
      ctx.strokeStyle = event.kind === "rollback" ? "#c92a2a" : event.kind === "nudge" ? "#e8590c" : "#667085";
      ctx.fillStyle = ctx.strokeStyle;
      ctx.setLineDash([3 * px, 3 * px]);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
      ctx.fillText(event.kind, x + 2 * px, top + 10 * px);
    }
    ctx.setLineDash([]);
    ctx.fillStyle = "#2b8a3e";
    for (const epoch of trial.checkpoints) {
      const x = u.valToPos(epoch, "x", true);
      ctx.fillRect(x - 2 * px, top + height - 6 * px, 4 * px, 6 * px);
    }
    if (controls && controls.epoch() !== null) {
      const x = u.valToPos(controls.epoch(), "x", true);
      ctx.strokeStyle = "#c92a2a";
      ctx.lineWidth = 2 * px;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
    }
    ctx.restore();
  }

  function paramsCard(trial) {
    const rows = Object.entries(trial.params).map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { class: "num", text: fmt(v) }),
      trial.hyperparameters ? el("td", { class: "num", text: fmt(trial.hyperparameters[k]) }) : null));
    if (trial.hyperparameters) {
      for (const [k, v] of Object.entries(trial.hyperparameters)) {
        if (!(k in trial.params)) rows.push(el("tr", {}, el("td", { text: k }), el("td", { text: "—" }), el("td", { class: "num", text: fmt(v) })));
      }
    }
    const headRow = el("tr", {}, el("th", { text: "parameter" }), el("th", { text: "value" }), trial.hyperparameters ? el("th", { text: "now (with nudges)" }) : null);
    return card("Parameters", el("table", { id: "params" }, el("thead", {}, headRow), el("tbody", {}, rows)));
  }

  function eventsCard(trial) {
    const list = el("ul", { class: "events", id: "events" });
    for (const e of trial.events) {
      const when = e.epoch !== null ? `applied at epoch ${e.epoch}` : e.applied ? "applied" : "pending";
      put(list, el("li", { dataset: { kind: e.kind, applied: e.applied ? "yes" : "no" } },
        el("b", { text: e.kind }), " ", el("span", { class: "params", text: JSON.stringify(e.payload) }),
        ` · ${when}`, e.error ? el("span", { class: "error", text: ` · ${e.error}` }) : null));
    }
    if (!trial.events.length) put(list, el("li", { class: "muted", text: "No nudge, pause or rollback was sent to this trial." }));
    return card("Events", list);
  }

  function lineageCard(name, trial) {
    if (!trial.lineage.length) return card("Lineage", el("p", { class: "muted", text: "A single trial: no branches." }));
    const children = new Map();
    for (const node of trial.lineage) {
      const parent = node.parent ? node.parent[0] : null;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(node);
    }
    const known = new Set(trial.lineage.map((n) => n.number));
    const roots = trial.lineage.filter((n) => !n.parent || !known.has(n.parent[0]));
    function branch(node) {
      const label = el("li", { class: node.number === trial.number ? "here" : null, dataset: { number: node.number } },
        el("a", { href: trialHash(name, node.number), text: `#${node.number}` }),
        ` ${node.origin}`, node.parent ? ` from #${node.parent[0]} @ epoch ${node.parent[1]}` : "", " ", stateBadge(node.state));
      const kids = children.get(node.number) || [];
      if (kids.length) put(label, el("ul", {}, kids.map(branch)));
      return label;
    }
    return card("Lineage", el("ul", { class: "lineage", id: "lineage" }, roots.map(branch)));
  }

  // -- panda controls --------------------------------------------------------------------------

  /** A value's slider position: log10 on a log scale, log10(1 − v) for β-like ones. */
  function sliderOf(spec) {
    if (spec.scale === "log") return { to: Math.log10, from: (s) => 10 ** s };
    if (spec.scale === "one_minus_log") return { to: (v) => Math.log10(1 - v), from: (s) => 1 - 10 ** s };
    return { to: (v) => v, from: (s) => s };
  }

  function pandaControls(name, view) {
    const message = el("p", { class: "message", id: "control-message" });
    const rows = el("div", { class: "nudge" });
    const rollback = el("button", { class: "primary", id: "rollback", text: "Roll back", disabled: true });
    const pickedText = el("span", { class: "muted", id: "picked", text: "click an epoch on the curve" });
    let picked = null;
    let built = false;
    // The keyboard's way to the same rollback: this branch's checkpoint epochs.
    const epochPick = el("select", { id: "rollback-epoch", title: "a checkpoint epoch to roll back to" });
    epochPick.addEventListener("change", () => {
      if (epochPick.value !== "") controls.pick(Number(epochPick.value));
    });

    function say(text, bad) {
      message.className = bad ? "message error" : "message";
      message.textContent = text;
    }

    async function send(kind, body) {
      try {
        const { event } = await post(`${studyPath(name)}/${kind}`, body);
        say(`Queued ${event.kind} ${JSON.stringify(event.payload)} for trial #${event.trial_number}: panda applies it at the next epoch boundary.`);
        return event; // the stream tells when panda applied it (an `events` event)
      } catch (error) {
        say(error.message, true);
        return null;
      }
    }

    const nowNotes = new Map(); // param -> the span that shows its current value

    /** Slider ends: the bounds on the slider's own scale, a decade wider on a log one (a
     * nudge may leave the searched box), always holding the current value. */
    function sliderEnds(spec, slide, now) {
      const ends = [slide.to(spec.low), slide.to(spec.high)];
      if (now !== null && now !== undefined && Number.isFinite(slide.to(now))) ends.push(slide.to(now));
      let [a, b] = [Math.min(...ends), Math.max(...ends)];
      if (spec.scale === "log") { a -= 1; b += 1; }
      if (spec.scale === "one_minus_log") { a -= 1; b = Math.min(b + 1, -1e-9); }
      return [a, b];
    }

    function nudgeRow(param, spec, now) {
      const slide = sliderOf(spec);
      const bounded = spec.low !== null && spec.high !== null && Number.isFinite(slide.to(spec.low)) && Number.isFinite(slide.to(spec.high));
      const input = el("input", { type: "number", step: "any", dataset: { nudge: param }, value: now ?? "" });
      const range = el("input", { type: "range", dataset: { slider: param }, disabled: !bounded, title: `${param} on a ${spec.scale} scale` });
      if (bounded) {
        const [a, b] = sliderEnds(spec, slide, now);
        Object.assign(range, { min: a, max: b, step: (b - a) / 400 });
        range.value = now !== null && now !== undefined ? slide.to(now) : (a + b) / 2;
        range.addEventListener("input", () => {
          const v = slide.from(Number(range.value));
          input.value = spec.kind === "int" ? Math.max(1, Math.round(v)) : Number(v.toPrecision(3));
        });
        input.addEventListener("input", () => {
          const at = slide.to(Number(input.value));
          if (Number.isFinite(at)) range.value = at;
        });
      }
      const set = el("button", { text: `Set ${param}`, dataset: { set: param } });
      set.addEventListener("click", () => {
        const value = Number(input.value);
        if (input.value === "" || !Number.isFinite(value)) { say(`${param}: type a number`, true); return; }
        send("nudge", { changes: { [param]: spec.kind === "int" ? Math.round(value) : value } });
      });
      const scale = spec.scale === "one_minus_log" ? "log of 1−v" : spec.scale;
      const show = (v) => (spec.scale === "one_minus_log" ? String(Number(v.toPrecision(8))) : fmt(v)); // 0.99999, not 1
      const box = bounded ? `, searched ${show(spec.low)}–${show(spec.high)}` : "";
      const note = el("span", { class: "muted", dataset: { now: param } });
      nowNotes.set(param, [note, `${scale}${box}`]);
      put(rows, el("label", { text: param }), range, input, el("span", {}, set, note));
    }

    function update(trial) {
      const now = trial.hyperparameters || trial.params;
      if (!built) { // built once: what the user is typing stays
        built = true;
        const known = Object.keys(trial.nudgeable).sort((a, b) => (b in now) - (a in now));
        for (const param of known) nudgeRow(param, trial.nudgeable[param], now[param]);
      }
      for (const [param, [note, text]] of nowNotes) note.textContent = ` now ${fmt(now[param])} · ${text}`;
      const offered = [...epochPick.options].map((o) => o.value).join(",");
      if (offered !== ["", ...trial.checkpoints].join(",")) {
        clear(epochPick);
        put(epochPick, el("option", { value: "", text: "—" }), trial.checkpoints.map((e) => el("option", { value: e, text: e })));
        epochPick.value = picked === null ? "" : String(picked);
      }
    }

    rollback.addEventListener("click", async () => {
      if (picked === null) return;
      const sent = await send("rollback", { epoch: picked, trial: view.trial.number });
      if (sent) {
        picked = null;
        rollback.disabled = true;
        rollback.textContent = "Roll back";
        pickedText.textContent = "click an epoch on the curve";
        epochPick.value = "";
        if (view.redraw) view.redraw();
      }
    });

    const node = el("section", { class: "card controls", id: "controls" },
      el("h2", { text: "Steer this panda" }),
      el("p", { class: "muted", text: "Changes go to the latest branch; panda applies them at its next epoch boundary (the CLI's nudge, pause, resume and rollback write the same events)." }),
      rows,
      el("div", { class: "row" },
        el("button", { text: "Pause", id: "pause", onclick: () => send("pause", {}) }),
        el("button", { text: "Resume", id: "resume", onclick: () => send("resume", {}) }),
        rollback, el("label", { class: "muted" }, "or epoch ", epochPick), pickedText),
      message);
    const controls = {
      node,
      update,
      epoch: () => picked,
      pick(epoch) {
        picked = epoch;
        rollback.disabled = false;
        rollback.textContent = `Roll back to epoch ${epoch}`;
        pickedText.textContent = view.trial.checkpoints.includes(epoch) || view.trial.parent ? "" : `(checkpoints: ${view.trial.checkpoints.join(", ") || "none"})`;
        epochPick.value = view.trial.checkpoints.includes(epoch) ? String(epoch) : "";
        if (view.redraw) view.redraw();
      },
    };
    return controls;
  }

  // -- compare ---------------------------------------------------------------------------------

  async function comparePage(root, names) {
    crumbs([`compare ${names.length} studies`, null]);
    document.title = "compare · tunery";
    // A study whose detail does not load (gone meanwhile, or an older server that could not
    // route a name with "/") is still compared through /api/compare's query.
    const details = await Promise.all(names.map((n) => api(studyPath(n)).catch(() => ({ name: n, params: null }))));
    const loaded = details.filter((d) => d.params);
    const params = [...new Set(loaded.flatMap((d) => Object.keys(d.params)))];
    const shared = params.filter((p) => loaded.every((d) => p in d.params));
    const pick = el("select", { id: "compare-param" }, ...params.map((p) => el("option", { value: p, text: p + (shared.includes(p) ? "" : " (not in all)") })));
    if (shared.length) pick.value = shared[0];
    const bestHolder = el("div", { class: "chart", id: "compare-best" });
    const scatterHolder = el("div", { class: "chart", id: "compare-scatter" });
    const picked = names.map((n) => `study=${enc(n)}`).join("&"); // a name may hold a comma
    const first = await api(`/api/compare?${picked}`);
    const metrics = [...new Set(first.studies.map((d) => d.metric))];
    put(root, el("h1", { text: `Comparing ${names.join(", ")}` }),
      card("Best so far", el("p", { class: "muted", text: `x: trial number · y: ${metrics.join(" / ")}` }), bestHolder),
      card("One parameter in every study", el("div", { class: "row" }, el("label", { text: "parameter " }, pick)), scatterHolder));

    async function draw() {
      const data = await api(`/api/compare?${picked}&param=${enc(pick.value)}`);
      dropChart(bestHolder);
      const tables = data.studies.map((s) => [s.best.numbers, s.best.best]);
      makeChart(bestHolder, {
        height: 280,
        scales: { x: { time: false } },
        axes: [{ label: "trial", incrs: INTEGER_STEPS }, { label: metrics.join(" / "), values: (u, s) => s.map(fmt) }],
        series: [{ label: "trial" }, ...data.studies.map((s, k) => ({ label: `${s.name} (${s.direction} ${s.metric})`, stroke: PALETTE[k % PALETTE.length], width: 2,
          spanGaps: true, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } }))],
      }, uPlot.join(tables));
      dropChart(scatterHolder);
      const spec = loaded.map((d) => d.params[pick.value]).find(Boolean);
      const axis = axisOf(spec);
      const ok = validFor(axis, spec);
      const xs = [];
      const ys = [];
      const groups = [];
      data.studies.forEach((s, k) => {
        if (!s.scatter) return;
        s.scatter.x.forEach((x, i) => { if (ok(x)) { xs.push(axis.to(x)); ys.push(s.scatter.y[i]); groups.push(k); } });
      });
      if (!xs.length) { put(scatterHolder, el("p", { class: "muted", text: "No trial with this parameter and a value." })); return; }
      const keys = data.studies.map((_, k) => k);
      makeChart(scatterHolder, {
        height: 280,
        scales: { x: Object.assign({ time: false }, axis.scale) },
        axes: [Object.assign({ label: pick.value + axis.note }, axis.axis), { label: metrics.join(" / "), values: (u, s) => s.map(fmt) }],
        series: [{ label: pick.value }, ...data.studies.map((s, k) => pointSeries(s.name, PALETTE[k % PALETTE.length], xs.length))],
      }, scatterData(xs, ys, groups, keys));
    }
    pick.addEventListener("change", () => draw().catch((e) => put(scatterHolder, el("p", { class: "error", text: e.message }))));
    await draw();
  }

  // -- start -----------------------------------------------------------------------------------

  document.getElementById("mode").textContent = READ_ONLY ? "read-only" : "";
  window.addEventListener("hashchange", route);
  route();
})();
