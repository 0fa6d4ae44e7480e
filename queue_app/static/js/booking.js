/* The booking form's countdown: how long the chosen time is still kept (the server decides;
   this only shows it). data-seconds: what was left when the page was made. */
(function () {
  "use strict";
  var box = document.querySelector("[data-testid=countdown]");
  if (!box) return;
  var clock = box.querySelector(".bk-clock");
  var end = Date.now() + Number(box.getAttribute("data-seconds")) * 1000;
  function tick() {
    var left = Math.max(0, Math.round((end - Date.now()) / 1000));
    if (clock) {
      var s = left % 60;
      clock.textContent = Math.floor(left / 60) + ":" + (s < 10 ? "0" : "") + s;
    }
    if (left <= 0) {
      box.classList.add("bk-lapsed");
      box.textContent = box.getAttribute("data-lapsed");
      return;
    }
    window.setTimeout(tick, 1000);
  }
  tick();
})();
