// Draws each process map of a page: a JSON script element of class "graph-spec"
// holds the graph (registry/process_map.py `graph`: nodes with sizes, edges with widths,
// colours and titles), laid out in layers by the vendored dagre and drawn as SVG into the
// element its data-target names. Every text goes in through textContent, never as markup.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }

  function text(parent, attrs, value) {
    var t = el("text", attrs, parent);
    t.textContent = value;
    return t;
  }

  function line(points) {
    var d = "M" + points[0].x.toFixed(1) + "," + points[0].y.toFixed(1);
    for (var i = 1; i < points.length; i++) d += " L" + points[i].x.toFixed(1) + "," + points[i].y.toFixed(1);
    return d;
  }

  function draw(script) {
    var target = document.getElementById(script.getAttribute("data-target"));
    if (!target) return;
    var spec = JSON.parse(script.textContent);
    var g = new window.dagre.graphlib.Graph();
    // Room above the nodes for loops (a step right after itself), which are drawn here.
    g.setGraph({rankdir: "LR", nodesep: 30, ranksep: 64, edgesep: 12, marginx: 12, marginy: 34});
    g.setDefaultEdgeLabel(function () { return {}; });
    spec.nodes.forEach(function (n) { g.setNode(n.id, {width: n.w, height: n.h}); });
    // The designed path weighs more, so the layout keeps it straight.
    spec.edges.forEach(function (e, i) {
      if (e.source !== e.target) g.setEdge(e.source, e.target, {index: i, weight: e.designed ? 8 : 1});
    });
    window.dagre.layout(g);
    var size = g.graph();
    var svg = el("svg", {viewBox: "0 0 " + Math.ceil(size.width) + " " + Math.ceil(size.height),
                         width: Math.ceil(size.width), height: Math.ceil(size.height),
                         "class": "process-map", role: "img",
                         "aria-label": target.getAttribute("data-label") || "Process map"});
    var defs = el("defs", {}, svg);
    var markers = {};
    spec.edges.forEach(function (e) {
      if (markers[e.color]) return;
      var id = "arrow-" + Object.keys(markers).length + "-" + target.id;
      var m = el("marker", {id: id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9,
                            markerUnits: "userSpaceOnUse", orient: "auto-start-reverse"}, defs);
      el("path", {d: "M0,0 L10,5 L0,10 z", fill: e.color}, m);
      markers[e.color] = id;
    });
    var edges = el("g", {"class": "edges"}, svg);
    spec.edges.forEach(function (e) {
      var d;
      if (e.source === e.target) {  // a loop over the top of its node
        var p = g.node(e.source), top = p.y - p.height / 2, q = p.width / 4;
        d = "M" + (p.x + q).toFixed(1) + "," + top.toFixed(1) + " C" + (p.x + q).toFixed(1) + "," + (top - 30).toFixed(1) +
            " " + (p.x - q).toFixed(1) + "," + (top - 30).toFixed(1) + " " + (p.x - q).toFixed(1) + "," + top.toFixed(1);
      } else {
        d = line(g.edge(e.source, e.target).points);
      }
      var group = el("g", {"class": e.designed ? "edge designed" : "edge"}, edges);
      var title = el("title", {}, group);
      title.textContent = e.title;
      if (e.designed) el("path", {d: d, "class": "designed-under", "stroke-width": e.width + 6, fill: "none"}, group);
      el("path", {d: d, "class": "edge-line", stroke: e.color, "stroke-width": e.width, fill: "none",
                  "stroke-opacity": 0.85, "marker-end": "url(#" + markers[e.color] + ")"}, group);
    });
    var nodes = el("g", {"class": "nodes"}, svg);
    spec.nodes.forEach(function (n) {
      var p = g.node(n.id);
      var group = el("g", {"class": n.designed ? "node designed" : "node",
                           transform: "translate(" + (p.x - n.w / 2).toFixed(1) + "," + (p.y - n.h / 2).toFixed(1) + ")"}, nodes);
      var title = el("title", {}, group);
      title.textContent = n.id + ": " + n.text;
      el("rect", {width: n.w, height: n.h, rx: 6}, group);
      text(group, {x: n.w / 2, y: n.h / 2 - 2, "text-anchor": "middle", "class": "name"}, n.id);
      text(group, {x: n.w / 2, y: n.h / 2 + 12, "text-anchor": "middle", "class": "count"}, n.text);
    });
    target.textContent = "";
    target.appendChild(svg);
    target.setAttribute("data-rendered", "true");
  }

  function drawAll() {
    var specs = document.querySelectorAll("script.graph-spec");
    for (var i = 0; i < specs.length; i++) {
      try {
        draw(specs[i]);
      } catch (error) {
        var target = document.getElementById(specs[i].getAttribute("data-target"));
        if (target) target.textContent = "The process map could not be drawn: " + error.message;
      }
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
