/* The kiosk without JavaScript works (forms, links, <noscript> refresh); this only adds:
   the on-screen keypads, one submit per form, the return to the start screen after
   inactivity (or the countdown of the ticket screen) and the print button. */
(function () {
  "use strict";
  var body = document.body;
  var home = body.getAttribute("data-home") || "/kiosk/";
  var idle = parseInt(body.getAttribute("data-idle-return") || "0", 10);
  var returnAfter = parseInt(body.getAttribute("data-return-after") || "0", 10);
  var ACTIVITY = ["pointerdown", "keydown", "input", "touchstart", "wheel"];

  function goHome() {
    window.location.replace(home);
  }

  if (returnAfter > 0) {
    // the ticket screen counts down; a touch gives the customer the full time again
    var left = returnAfter;
    var shown = document.querySelector("[data-countdown]");
    var show = function () {
      if (shown) shown.textContent = String(Math.max(left, 0));
    };
    setInterval(function () {
      left -= 1;
      show();
      if (left <= 0) goHome();
    }, 1000);
    ACTIVITY.forEach(function (name) {
      document.addEventListener(name, function () { left = returnAfter; show(); }, { passive: true });
    });
  } else if (idle > 0) {
    var timer = null;
    var arm = function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(goHome, idle * 1000);
    };
    arm();
    ACTIVITY.forEach(function (name) {
      document.addEventListener(name, arm, { passive: true });
    });
  }

  // on-screen keypads type into their field (a barcode scanner still types as a keyboard)
  Array.prototype.forEach.call(document.querySelectorAll("[data-keypad]"), function (pad) {
    var input = document.getElementById(pad.getAttribute("data-keypad"));
    if (!input) return;
    pad.hidden = false;
    input.setAttribute("inputmode", "none"); // no system keyboard over the keypad
    var limit = input.maxLength > 0 ? input.maxLength : 64;
    pad.addEventListener("click", function (event) {
      var key = event.target.closest("[data-key]");
      if (!key) return;
      var value = key.getAttribute("data-key");
      if (value === "back") input.value = input.value.slice(0, -1);
      else if (value === "clear") input.value = "";
      else if (input.value.length < limit) input.value += value;
      input.removeAttribute("aria-invalid");
    });
  });

  // one submit per form: a double tap sends it once (the server answers a repeat with the
  // first ticket anyway)
  Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent")) {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "1");
    });
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    Array.prototype.forEach.call(document.querySelectorAll("form[data-sent]"), function (form) {
      form.removeAttribute("data-sent");
    });
  });

  var printButton = document.querySelector("[data-print]");
  if (printButton) {
    printButton.hidden = false;
    printButton.addEventListener("click", function () { window.print(); });
  }
})();
