// The incident chart: the alert's metric on its host, with the threshold,
// and a vertical line at each moment of the incident (the window that
// fired, the alert, the capture and its pre-trigger start, deliveries, the
// notification), all on the one time axis the server chose.
(function () {
  "use strict";
  var kinds = {
    window: "--muted", alert: "--bad", resolved: "--ok", capture: "--accent",
    pretrigger: "--accent", delivery: "--warn", notification: "--warn", responder: "--warn",
  };

  function colour(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function draw(el, ans) {
    var xs = [], vs = [], th = [];
    var from = Date.parse(ans.from) / 1000, to = Date.parse(ans.to) / 1000;
    var pts = (ans.series && ans.series.points) || [];
    pts.forEach(function (p) {
      xs.push(Date.parse(p.time) / 1000);
      vs.push(p.value === null || p.value === undefined ? null : p.value);
      th.push(ans.threshold === undefined ? null : ans.threshold);
    });
    if (xs.length === 0) { xs = [from, to]; vs = [null, null]; th = [ans.threshold, ans.threshold]; }
    var events = (ans.events || []).map(function (e) {
      return { t: Date.parse(e.time) / 1000, c: colour(kinds[e.kind] || "--fg", "#888"), dash: e.kind === "pretrigger" || e.kind === "window" };
    });
    var label = ans.series ? ans.series.displayName + " (" + ans.series.aggregation + " per " + ans.series.interval + ")" : "metric";
    new uPlot({
      width: Math.max(300, el.clientWidth || 600), height: 260,
      scales: { x: { time: true, range: function () { return [from, to]; } } },
      series: [
        {},
        { label: label, stroke: colour("--accent", "#0b5cad"), width: 2 },
        { label: "threshold", stroke: colour("--warn", "#9a6700"), dash: [6, 4], width: 1.5, points: { show: false } },
      ],
      axes: [{ stroke: colour("--muted", "#57606a") }, { stroke: colour("--muted", "#57606a"), size: 80 }],
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx, top = u.bbox.top, bottom = u.bbox.top + u.bbox.height;
          ctx.save();
          events.forEach(function (e) {
            var x = u.valToPos(e.t, "x", true);
            ctx.strokeStyle = e.c;
            ctx.lineWidth = 2;
            ctx.setLineDash(e.dash ? [4, 4] : []);
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, bottom);
            ctx.stroke();
          });
          ctx.restore();
        }],
      },
    }, [xs, vs, th], el);
    el.dataset.points = String(pts.length);
  }

  window.tripcap.page("incident", function (root, v) {
    if (v !== null) return;
    var el = document.getElementById("incident-chart");
    if (!el) return;
    fetch(el.dataset.series, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (v) { return { ok: r.ok, v: v }; }); })
      .then(function (res) {
        if (!res.ok) {
          document.getElementById("incident-note").textContent = "No chart: " + res.v.message;
          return;
        }
        draw(el, res.v);
      })
      .catch(function () { document.getElementById("incident-note").textContent = "No chart: the server did not answer."; });
  });
})();
