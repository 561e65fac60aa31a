// tripcap console: live updates over server-sent events, forms checked by
// the server as they are typed, and the hook each page's own script uses.
// Served from this origin under a CSP with no inline script: everything a
// page needs is in data-* attributes.
(function () {
  "use strict";
  var pages = {};
  var tripcap = (window.tripcap = {
    // page registers fn(root, event) for <body data-page="name">; it is
    // called with each live value the page receives.
    page: function (name, fn) { pages[name] = fn; },
    csrf: function () { return document.body.dataset.csrf || ""; },
  });

  // fill puts each field of v into the elements with data-field="name".
  function fill(root, v) {
    root.querySelectorAll("[data-field]").forEach(function (el) {
      var path = el.dataset.field.split("."), x = v;
      for (var i = 0; i < path.length && x != null; i++) x = x[path[i]];
      if (x === undefined) return;
      el.textContent = x === null ? "—" : String(x);
      if (el.dataset.stateClass !== undefined) el.className = "state state-" + x;
    });
    root.querySelectorAll("[data-show-if]").forEach(function (el) {
      var path = el.dataset.showIf.split("."), x = v;
      for (var i = 0; i < path.length && x != null; i++) x = x[path[i]];
      if (x !== undefined) el.hidden = !x;
    });
  }
  tripcap.fill = fill;

  // live opens the element's event stream; the server ends it with an
  // "end" event (the thing is gone, or the session ended).
  function live(el) {
    var es = new EventSource(el.dataset.live);
    es.onmessage = function (e) {
      var v;
      try { v = JSON.parse(e.data); } catch (err) { return; }
      fill(el, v);
      var fn = pages[document.body.dataset.page];
      if (fn) fn(el, v);
    };
    function ended(msg) {
      es.close();
      var note = el.querySelector("[data-live-note]");
      if (note) note.textContent = msg || "Live updates ended; reload the page.";
    }
    es.addEventListener("end", function (e) {
      var msg = "";
      try { msg = JSON.parse(e.data); } catch (err) { msg = e.data; }
      ended(msg);
    });
    // The browser reconnects by itself after a dropped stream; it gives up
    // (CLOSED) when the server refuses it (the session ended).
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) ended("");
    };
  }

  // validate asks the server to check a form as it is typed (data-validate
  // = the URL): the answer names the field at fault, which is marked.
  function validate(form) {
    var timer = null, seq = 0;
    var out = form.querySelector("[data-validate-out]");
    function mark(field, msg) {
      form.querySelectorAll("[aria-invalid]").forEach(function (el) {
        el.removeAttribute("aria-invalid");
      });
      form.querySelectorAll(".field-error").forEach(function (el) { el.textContent = ""; el.hidden = true; });
      if (out) out.textContent = msg || "";
      if (!field) return;
      var base = field.split(/[.\[]/)[0];
      var el = form.querySelector('[data-field-name="' + CSS.escape(field) + '"]') ||
        form.querySelector('[data-field-name="' + CSS.escape(base) + '"]');
      if (!el) return;
      el.setAttribute("aria-invalid", "true");
      var fe = document.getElementById(el.id + "-error");
      if (fe) { fe.textContent = msg; fe.hidden = false; }
    }
    function check() {
      var n = ++seq;
      fetch(form.dataset.validate, {
        method: "POST",
        headers: { "Accept": "application/json", "X-CSRF-Token": tripcap.csrf() },
        body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin",
      }).then(function (r) { return r.json(); }).then(function (v) {
        if (n === seq) mark(v.field, v.message);
      }).catch(function () {});
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(check, 250);
    });
  }

  // fetchForm sends a form (data-fetch) without leaving the page: the live
  // updates show what it did; an error is shown beside it.
  function fetchForm(form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var btn = form.querySelector("button");
      if (btn) btn.disabled = true;
      fetch(form.action, {
        method: "POST",
        headers: { "Accept": "application/json", "X-CSRF-Token": tripcap.csrf() },
        body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin",
      }).then(function (r) {
        if (r.ok) return;
        return r.json().then(function (v) {
          var p = form.querySelector(".error") || form.appendChild(document.createElement("span"));
          p.className = "error";
          p.setAttribute("role", "alert");
          p.textContent = " " + (v.message || r.statusText);
          if (btn) btn.disabled = false;
        });
      }).catch(function () { if (btn) btn.disabled = false; });
    });
  }
  tripcap.fetchForm = fetchForm;

  // confirm asks before a destructive form is sent (data-confirm = the question).
  function confirmForm(form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(live);
    document.querySelectorAll("form[data-validate]").forEach(validate);
    document.querySelectorAll("form[data-confirm]").forEach(confirmForm);
    document.querySelectorAll("form[data-fetch]").forEach(fetchForm);
    var fn = pages[document.body.dataset.page];
    if (fn) fn(document.body, null);
  });
})();
