// The rule editor's chart: what the rule being edited would have done over
// the last hour on the chosen host (the server replays it: POST
// /rules/preview), redrawn as the form changes. Each point is one
// evaluation's window value; the dashed line is the threshold; the markers
// are where the rule would have fired.
(function () {
  "use strict";
  var plot = null, timer = null, seq = 0;

  function colour(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function draw(el, rp) {
    var xs = [], vs = [], ts = [], fired = [];
    rp.evaluations.forEach(function (p) {
      var v = p.values[0];
      xs.push(Date.parse(p.time) / 1000);
      vs.push(v === null || v === undefined ? null : v);
      ts.push(p.thresholds[0]);
      fired.push(p.transition === "Fired" ? (v === null ? p.thresholds[0] : v) : null);
    });
    var data = [xs, vs, ts, fired];
    var width = Math.max(300, el.clientWidth || 600);
    if (plot) {
      plot.setData(data);
      plot.setSize({ width: width, height: 260 });
      return;
    }
    plot = new uPlot({
      width: width, height: 260,
      scales: { x: { time: true } },
      series: [
        {},
        { label: "window value", stroke: colour("--accent", "#0b5cad"), width: 2, spanGaps: false },
        { label: "threshold", stroke: colour("--warn", "#9a6700"), dash: [6, 4], width: 1.5, points: { show: false } },
        { label: "would fire", stroke: colour("--bad", "#c62828"), fill: colour("--bad", "#c62828"),
          paths: function () { return null; }, points: { show: true, size: 10 } },
      ],
      axes: [{ stroke: colour("--muted", "#57606a") }, { stroke: colour("--muted", "#57606a"), size: 80 }],
    }, data, el);
  }

  function preview(form) {
    var el = document.getElementById("preview-chart");
    var note = document.getElementById("preview-summary");
    if (!el) return;
    var n = ++seq;
    fetch(form.dataset.preview, {
      method: "POST",
      headers: { "Accept": "application/json", "X-CSRF-Token": window.tripcap.csrf() },
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    }).then(function (r) {
      return r.json().then(function (v) { return { ok: r.ok, v: v }; });
    }).then(function (res) {
      if (n !== seq) return;
      if (!res.ok || !res.v.evaluations) {
        note.textContent = "No chart: " + res.v.message;
        return;
      }
      var rp = res.v, have = rp.evaluations.filter(function (p) { return p.values[0] !== null; }).length;
      note.textContent = rp.evaluations.length + " evaluations on " + rp.host + " (" + have + " with data): it would have fired " +
        rp.fired + (rp.fired === 1 ? " time" : " times") + " in the last hour.";
      el.dataset.fired = String(rp.fired);
      el.dataset.evaluations = String(rp.evaluations.length);
      draw(el, rp);
    }).catch(function () {
      if (n === seq) note.textContent = "No chart: the server did not answer.";
    });
  }

  window.tripcap.page("rule", function (root, v) {
    if (v !== null) return;
    var form = document.getElementById("rule-form");
    if (!form || !form.dataset.preview) return;
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { preview(form); }, 400);
    });
    form.addEventListener("change", function () { preview(form); });
    preview(form);
  });
})();
