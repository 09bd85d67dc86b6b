// Renders each chart of a page: a <script type="application/json" class="chart-spec">
// holds a Vega-Lite spec, drawn into the element its data-target names. Expressions are
// evaluated by vega-interpreter (no eval): the page's content security policy holds.
(function () {
  "use strict";
  function draw() {
    var specs = document.querySelectorAll("script.chart-spec");
    for (var i = 0; i < specs.length; i++) {
      var target = document.getElementById(specs[i].getAttribute("data-target"));
      if (!target) continue;
      var spec = JSON.parse(specs[i].textContent);
      window.vegaEmbed(target, spec, {
        actions: false, renderer: "svg", ast: true, expr: window.vega.expressionInterpreter,
        defaultStyle: false, tooltip: false
      }).then(function (result) {
        result.view.container().setAttribute("data-rendered", "true");
      }).catch(function (error) {
        target.textContent = "The chart could not be drawn: " + error.message;
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
