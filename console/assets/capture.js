// A capture's page: the status updates live (console.js); when the session
// ends, or a file or the summary arrives, the page reloads once for them.
(function () {
  "use strict";
  var reloading = false;
  tripcap.page("capture", function (root, v) {
    var sec = document.querySelector("[data-files]");
    if (!v || !sec || reloading) return;
    if (String(v.files) !== sec.dataset.files || String(v.summary) !== sec.dataset.summary || String(v.ended) !== sec.dataset.ended) {
      reloading = true;
      window.location.reload();
    }
  });
})();
