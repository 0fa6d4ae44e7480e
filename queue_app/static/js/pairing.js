// The pairing screen asks every 3 seconds whether an admin has paired this device, and
// reloads once it is paired (the page then shows the kiosk or display), once its code ran
// out (the reload shows a new one) or when the device is unknown again (revoked).
(function () {
  "use strict";
  var root = document.querySelector(".pairing[data-status-url]");
  if (!root) return;
  var url = root.getAttribute("data-status-url");
  var shown = root.getAttribute("data-code");
  var EVERY = 3000;

  function check() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        root.classList.remove("offline");
        if (!status) return schedule();
        if (status.state !== "pending" || status.code !== shown) {
          window.location.reload();
          return;
        }
        schedule();
      })
      .catch(function () {
        root.classList.add("offline");  // the server is unreachable: keep trying
        schedule();
      });
  }

  function schedule() { window.setTimeout(check, EVERY); }

  schedule();
})();
