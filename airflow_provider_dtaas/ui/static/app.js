// DTaaS progress view: the overview of every transfer, and one run's tables, live.
// Plain DOM, no framework: text goes in through textContent only.
(function () {
  "use strict";
  var BASE = "/dtaas";
  var app = document.getElementById("app");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "onclick") node.addEventListener("click", attrs[key]);
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function num(n) { return n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"); }
  function bytes(n) {
    if (!n) return "0 B";
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function duration(s) {
    if (s === null || s === undefined) return "–";
    s = Math.round(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; }
  function chip(status) { return el("span", { class: "chip " + (status || ""), text: status || "no run" }); }
  function bar(pct, status, big) {
    var fill = el("span", {});
    fill.style.width = (pct === null || pct === undefined ? 0 : pct) + "%";
    return el("div", { class: "bar " + (status || "") + (big ? " big" : ""), role: "progressbar",
      "aria-valuenow": pct === null || pct === undefined ? "" : String(pct), "aria-valuemin": "0", "aria-valuemax": "100" }, [fill]);
  }
  function show(children) { app.replaceChildren.apply(app, children.filter(function (c) { return c !== null && c !== undefined; })); }
  function api(path, options) {
    return fetch(BASE + "/api/" + path, Object.assign({ credentials: "same-origin" }, options || {})).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var detail = body && body.detail ? body.detail : r.statusText;
          var err = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
          err.status = r.status;
          throw err;
        }
        return body;
      });
    });
  }
  function failure(err) {
    var text = err.status === 401 ? "Sign in to Airflow to see transfers." : err.message;
    show([el("p", { class: "notice", text: text })]);
  }

  // ---- overview: every transfer the user may read -------------------------------------------
  function overview() {
    api("transfers").then(function (rows) {
      var head = el("tr", {}, ["Transfer", "Mode", "Last run", "Started", "Rows today", "CDC lag", "Failing tables"].map(function (h, i) {
        return el("th", { class: i === 4 || i === 5 ? "num" : "", text: h });
      }));
      var body = rows.map(function (r) {
        return el("tr", {}, [
          el("td", {}, [el("a", { href: BASE + "/dags/" + encodeURIComponent(r.dag_id), text: r.spec_name }),
            el("div", { class: "muted mono", text: r.dag_id })]),
          el("td", { text: r.mode || "–" }),
          el("td", {}, [chip(r.status)]),
          el("td", { text: when(r.started_at) }),
          el("td", { class: "num", text: num(r.rows_today) }),
          el("td", { class: "num", text: r.cdc_lag_seconds === null ? "–" : duration(r.cdc_lag_seconds) }),
          el("td", { class: r.failing_tables.length ? "error" : "muted", text: r.failing_tables.join(", ") || "none" }),
        ]);
      });
      show([
        el("div", { class: "header" }, [el("h1", { text: "Transfers" }), el("span", { class: "muted", text: rows.length + " specs" })]),
        rows.length ? el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)])
          : el("p", { class: "notice", text: "No DTaaS run is recorded yet for a DAG you may read." }),
      ]);
    }).catch(failure);
  }

  // ---- one run: live table progress ----------------------------------------------------------
  function runView(dagId, runId) {
    var state = { canAct: false, view: null, live: false, message: null };
    var path = "dags/" + encodeURIComponent(dagId) + "/runs/" + encodeURIComponent(runId || "latest");

    function act(promise, done) {
      promise.then(function (result) { state.message = done(result); render(); })
        .catch(function (err) { state.message = "Refused: " + err.message; render(); });
    }
    function resync(table) {
      act(api("dags/" + encodeURIComponent(dagId) + "/resync", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ table: table }),
      }), function (r) { return "Started run " + r.run_id + " to load " + table + " again."; });
    }
    function retryFailed() {
      act(api(path.replace(/\/runs\/[^/]+$/, "/runs/" + encodeURIComponent(state.view.run_id)) + "/retry-failed", { method: "POST" }),
        function (r) { return "The failed tables of " + r.run_id + " run again."; });
    }

    function chart(points) {
      var w = 900, h = 140, pad = 28;
      var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("class", "chart"); svg.setAttribute("viewBox", "0 0 " + w + " " + h);
      svg.setAttribute("preserveAspectRatio", "none");
      if (points.length < 2) return el("p", { class: "muted", text: "The throughput chart fills in as batches arrive." });
      var t0 = points[0].t, t1 = points[points.length - 1].t;
      var peak = Math.max.apply(null, points.map(function (p) { return p.rows_per_s; })) || 1;
      function x(t) { return pad + (w - 2 * pad) * (t - t0) / ((t1 - t0) || 1); }
      function y(v) { return h - pad + 4 - (h - 2 * pad) * v / peak; }
      var line = points.map(function (p, i) { return (i ? "L" : "M") + x(p.t).toFixed(1) + " " + y(p.rows_per_s).toFixed(1); }).join(" ");
      function add(tag, attrs, text) {
        var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
        Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
        if (text) node.textContent = text;
        svg.appendChild(node);
      }
      add("line", { class: "grid", x1: pad, x2: w - pad, y1: y(peak), y2: y(peak) });
      add("line", { class: "grid", x1: pad, x2: w - pad, y1: y(0), y2: y(0) });
      add("path", { class: "area", d: line + " L" + x(t1).toFixed(1) + " " + y(0) + " L" + x(t0).toFixed(1) + " " + y(0) + " Z" });
      add("path", { class: "line", d: line });
      add("text", { x: pad, y: y(peak) - 4 }, num(peak) + " rows/s");
      add("text", { x: w - pad, y: h - 4, "text-anchor": "end" }, duration(t1 - t0));
      return svg;
    }

    function render() {
      var v = state.view;
      if (!v) return;
      var t = v.totals;
      var failed = v.tables.filter(function (r) { return r.status === "failed"; }).length;
      var cdc = v.tables.some(function (r) { return r.lsn_from; });
      var drift = v.tables.some(function (r) { return Object.keys(r.schema_changes).length; });
      var errors = v.tables.some(function (r) { return r.error; });
      var columns = [
        ["Table", "", function (r) { return el("td", { class: "mono", text: r.table }); }],
        ["State", "", function (r) { return el("td", {}, [chip(r.status)]); }],
        ["Progress", "", function (r) {
          return el("td", {}, [bar(r.progress_pct, r.status), el("div", { class: "muted", text: r.progress_pct === null ? "" : r.progress_pct + " %" })]);
        }],
        ["Rows", "num", function (r) { return el("td", { class: "num", text: num(r.rows_processed) + (r.estimated_rows ? " / " + num(r.estimated_rows) : "") }); }],
        ["Rows/s", "num", function (r) { return el("td", { class: "num", text: num(r.rows_per_s) }); }],
        ["ETA", "num", function (r) { return el("td", { class: "num", text: r.eta_seconds === null ? "–" : duration(r.eta_seconds) }); }],
        ["Bytes", "num", function (r) { return el("td", { class: "num", text: bytes(r.bytes) }); }],
        ["Retries", "num", function (r) { return el("td", { class: "num", text: String(r.retries) }); }],
      ];
      if (cdc) columns.push(["LSN range", "", function (r) {
        return el("td", { class: "mono", text: r.lsn_from ? "0x" + r.lsn_from + " … 0x" + r.lsn_to : "–" });
      }]);
      if (drift) columns.push(["Schema changes", "", function (r) {
        return el("td", { text: Object.keys(r.schema_changes).map(function (dest) {
          return dest + ": " + r.schema_changes[dest].map(function (c) { return c.kind + " " + c.column; }).join(", ");
        }).join("; ") || "–" });
      }]);
      if (errors) columns.push(["Last error", "", function (r) { return el("td", { class: "error", text: r.error || "" }); }]);
      if (state.canAct) columns.push(["", "", function (r) {
        return el("td", {}, [el("button", { onclick: function () { resync(r.table); }, text: "Resync", title: "load " + r.table + " again in full, in a new run" })]);
      }]);
      var head = el("tr", {}, columns.map(function (c) { return el("th", { class: c[1], text: c[0] }); }));
      var rows = v.tables.map(function (r) {
        return el("tr", { "data-table": r.table }, columns.map(function (c) { return c[2](r); }));
      });
      var actions = state.canAct && failed ? el("button", { class: "primary", onclick: retryFailed, text: "Retry failed tables" }) : null;
      show([
        el("div", { class: "header" }, [
          el("h1", { text: v.spec_name }), chip(v.status),
          el("span", { class: "muted mono", text: v.run_id }),
          el("span", { class: "live" + (state.live ? " on" : ""), text: state.live ? "live" : "reconnecting" }),
          el("a", { href: BASE + "/", text: "all transfers" }),
        ]),
        el("div", { class: "stats" }, [
          stat(t.progress_pct === null ? "–" : t.progress_pct + " %", "overall"),
          stat(num(t.rows), "rows"), stat(num(t.rows_per_s), "rows/s"), stat(bytes(t.bytes), "bytes"),
          stat(t.tables_done + " / " + v.tables_total, "tables done"), stat(duration(t.seconds), "elapsed"),
          stat(num(t.failed_rows), "failed rows"),
        ]),
        bar(t.progress_pct, v.status, true),
        actions, state.message ? el("p", { class: "notice", text: state.message }) : null,
        el("h2", { text: "Throughput" }), chart(v.throughput || []),
        el("h2", { text: "Tables" }),
        el("div", { class: "scroll" }, [el("table", {}, [el("thead", {}, [head]), el("tbody", {}, rows)])]),
        v.error ? el("p", { class: "error", text: v.error }) : null,
      ]);
    }
    function stat(value, label) { return el("div", { class: "stat" }, [el("div", { class: "value", text: value }), el("div", { class: "label", text: label })]); }

    function start() {
      api(path).then(connect).catch(function (err) {
        if (err.status !== 404) return failure(err);
        // the run exists in Airflow before begin_run records it: wait for it
        show([el("p", { class: "notice", text: "Waiting for the run to start… (" + err.message + ")" })]);
        setTimeout(start, 2000);
      });
    }
    function connect(view) {
      state.canAct = view.can_act; state.view = view; render();
      var source = new EventSource(BASE + "/api/" + path + "/stream");
      source.addEventListener("open", function () { state.live = true; render(); });
      source.addEventListener("error", function () { state.live = false; render(); });
      source.addEventListener("run", function (event) {
        var update = JSON.parse(event.data);
        state.view = update; state.live = true; render();
      });
    }
    start();
  }

  var parts = window.location.pathname.replace(/\/+$/, "").split("/").slice(2).map(decodeURIComponent);
  if (parts[0] === "dags" && parts[1]) runView(parts[1], parts[2] === "runs" ? parts[3] : null);
  else overview();
})();
