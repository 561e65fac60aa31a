// A host's page: one uPlot chart per figure[data-chart], fed each second
// by the page's live stream (console.js), with the thresholds of the rules
// on the host drawn as dashed lines.
(function () {
  "use strict";
  var charts = {};
  var rules = [];

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  // thresholds draws the chart's rule lines (per second, as the points are).
  function thresholds(lines) {
    return {
      hooks: {
        draw: function (u) {
          var ctx = u.ctx;
          lines.forEach(function (l) {
            if (l.dynamic) return;
            var y = u.valToPos(l.perSecond, "y", true);
            if (!isFinite(y) || y < u.bbox.top || y > u.bbox.top + u.bbox.height) return;
            ctx.save();
            ctx.strokeStyle = cssVar("--bad", "#c62828");
            ctx.setLineDash([6, 4]);
            ctx.lineWidth = 1.5 * devicePixelRatio;
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(u.bbox.left + u.bbox.width, y);
            ctx.stroke();
            ctx.fillStyle = ctx.strokeStyle;
            ctx.font = 12 * devicePixelRatio + "px system-ui, sans-serif";
            ctx.fillText(l.rule + (l.enabled ? "" : " (disabled)"), u.bbox.left + 4, y - 4);
            ctx.restore();
          });
        },
      },
    };
  }

  function make(fig) {
    var id = fig.dataset.chart;
    var labels = JSON.parse(fig.dataset.labels || "[]");
    var colors = [cssVar("--accent", "#0b5cad"), cssVar("--warn", "#9a6700")];
    var mine = rules.filter(function (r) { return r.chart === id; });
    var series = [{}];
    labels.forEach(function (l, i) {
      series.push({ label: l, stroke: colors[i % colors.length], width: 1.5, spanGaps: false });
    });
    var el = document.createElement("div");
    fig.appendChild(el);
    var opts = {
      width: Math.max(fig.clientWidth - 16, 200),
      height: 180,
      series: series,
      axes: [
        { stroke: cssVar("--muted", "#57606a"), grid: { stroke: cssVar("--line", "#d0d7de") } },
        { stroke: cssVar("--muted", "#57606a"), grid: { stroke: cssVar("--line", "#d0d7de") }, size: 60 },
      ],
      scales: {
        y: {
          range: function (u, min, max) {
            // Keep the thresholds in view.
            mine.forEach(function (l) { if (!l.dynamic) max = Math.max(max, l.perSecond * 1.1); });
            return [0, max > 0 ? max : 1];
          },
        },
      },
      plugins: [thresholds(mine)],
    };
    var empty = [[]];
    labels.forEach(function () { empty.push([]); });
    charts[id] = new uPlot(opts, empty, el);
  }

  tripcap.page("host", function (root, v) {
    if (!v) {
      var holder = document.getElementById("rule-lines");
      if (holder) rules = JSON.parse(holder.dataset.rules || "null") || [];
      document.querySelectorAll("figure[data-chart]").forEach(make);
      window.addEventListener("resize", function () {
        document.querySelectorAll("figure[data-chart]").forEach(function (fig) {
          var u = charts[fig.dataset.chart];
          if (u) u.setSize({ width: Math.max(fig.clientWidth - 16, 200), height: 180 });
        });
      });
      return;
    }
    Object.keys(v.charts || {}).forEach(function (id) {
      if (charts[id]) charts[id].setData(v.charts[id]);
    });
    if (v.activity) activity(v.activity);
  });

  // activity redraws the captures and alerts tables from a live update:
  // text only, no markup from the server.
  function cell(tr, text, cls, href) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    tr.appendChild(td);
    return td;
  }
  function state(td, s, muted) {
    td.textContent = "";
    var sp = document.createElement("span");
    sp.className = "state state-" + s;
    sp.textContent = s;
    td.appendChild(sp);
    if (muted) {
      var m = document.createElement("span");
      m.className = "muted";
      m.textContent = " muted";
      td.appendChild(m);
    }
  }
  function rows(id, items, cols, empty) {
    var body = document.getElementById(id);
    if (!body) return;
    var trs = items.map(function (it) {
      var tr = document.createElement("tr");
      cols(tr, it);
      return tr;
    });
    if (trs.length === 0) {
      var tr = document.createElement("tr");
      var td = cell(tr, empty);
      td.colSpan = 5;
      trs = [tr];
    }
    body.replaceChildren.apply(body, trs);
  }
  function activity(a) {
    rows("host-captures", a.captures, function (tr, c) {
      cell(tr, c.name, "", "/captures/" + encodeURIComponent(c.id));
      state(cell(tr, ""), c.status);
      cell(tr, String(c.packets), "num");
      cell(tr, c.bytes, "num");
      cell(tr, c.created);
    }, "No captures on this host.");
    rows("host-alerts", a.alerts, function (tr, al) {
      cell(tr, al.rule, "", "/alerts/" + encodeURIComponent(al.id));
      state(cell(tr, ""), al.condition, al.muted);
      cell(tr, al.severity);
      cell(tr, al.fired);
      cell(tr, al.resolved);
    }, "No alerts on this host.");
  }
})();
