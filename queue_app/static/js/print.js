/* A button marked `data-print` prints the page (no inline onclick: the
 * Content-Security-Policy allows only scripts from this site's static files). */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.closest && target.closest("[data-print]")) window.print();
  });
})();
