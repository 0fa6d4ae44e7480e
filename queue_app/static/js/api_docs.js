// The API's documentation page: Swagger UI over the OpenAPI document named by the page.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    layout: "BaseLayout",
    // no "Try it out" against a bank's live queue from a documentation page
    supportedSubmitMethods: [],
    validatorUrl: null,
  });
})();
