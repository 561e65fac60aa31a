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
    if (v.captures) rows("captures", v.captures, captureRow);
    if (v.alerts) rows("alerts", v.alerts, alertRow);
  });

  // el makes an element with text (never HTML: the values are the user's).
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function state(s) { return el("span", s, "state state-" + s); }

  function captureRow(c) {
    var tr = document.createElement("tr");
    var name = el("td"), a = el("a", c.name);
    a.href = "/captures/" + encodeURIComponent(c.id);
    name.appendChild(a);
    tr.appendChild(name);
    var st = el("td"); st.appendChild(state(c.status)); tr.appendChild(st);
    tr.appendChild(el("td", c.packets, "num"));
    tr.appendChild(el("td", c.bytes, "num"));
    tr.appendChild(el("td", c.created));
    var act = el("td");
    if (c.stop) {
      var f = el("form", null, "inline");
      f.method = "post";
      f.action = "/captures/" + encodeURIComponent(c.id) + "/stop";
      f.dataset.fetch = "";
      var csrf = el("input"); csrf.type = "hidden"; csrf.name = "csrf"; csrf.value = tripcap.csrf();
      var b = el("button", "Stop", "secondary"); b.type = "submit";
      f.appendChild(csrf); f.appendChild(b);
      tripcap.fetchForm(f);
      act.appendChild(f);
    }
    tr.appendChild(act);
    return tr;
  }

  function alertRow(a) {
    var tr = document.createElement("tr");
    tr.appendChild(el("td", a.rule));
    var c = el("td"); c.appendChild(state(a.condition));
    if (a.muted) { c.appendChild(document.createTextNode(" ")); c.appendChild(el("span", "muted", "muted")); }
    tr.appendChild(c);
    tr.appendChild(el("td", a.severity));
    tr.appendChild(el("td", a.fired));
    tr.appendChild(el("td", a.resolved));
    return tr;
  }

  // rows replaces a table body's rows, keeping focus on a row's control
  // where it can, and saying so when there are none.
  function rows(name, list, make) {
    var tb = document.querySelector('tbody[data-rows="' + name + '"]');
    if (!tb) return;
    if (tb.contains(document.activeElement) && document.activeElement.tagName === "BUTTON") return; // not under the user's finger
    var frag = document.createDocumentFragment();
    list.forEach(function (x) { frag.appendChild(make(x)); });
    if (!list.length) {
      var tr = document.createElement("tr"), td = el("td", tb.dataset.empty);
      td.colSpan = tb.parentNode.querySelectorAll("thead th").length;
      tr.appendChild(td);
      frag.appendChild(tr);
    }
    tb.replaceChildren(frag);
  }
})();
