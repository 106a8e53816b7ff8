/* acctgraph: draw the network from the JSON block; every text goes through textContent, never HTML. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var nodes = new vis.DataSet(data.nodes);
  var edges = new vis.DataSet(data.edges);
  var container = document.getElementById("network");
  var network = new vis.Network(container, { nodes: nodes, edges: edges }, data.options);
  var details = document.getElementById("details");
  var pinned = false;

  function show(text) {
    details.textContent = "";
    String(text || "").split("\n").forEach(function (line) {
      var div = document.createElement("div");
      div.textContent = line;
      details.appendChild(div);
    });
  }
  network.on("hoverNode", function (p) { if (!pinned) { show(nodes.get(p.node).title); } });
  network.on("hoverEdge", function (p) { if (!pinned) { show(edges.get(p.edge).title); } });
  network.on("click", function (p) {
    if (p.nodes.length) { show(nodes.get(p.nodes[0]).title); pinned = true; }
    else if (p.edges.length) { show(edges.get(p.edges[0]).title); pinned = true; }
    else { pinned = false; }
  });
  network.once("stabilizationIterationsDone", function () {
    network.setOptions({ physics: false });
    document.body.setAttribute("data-ready", "1");
  });
  window.acctgraph = { network: network, nodes: nodes.length, edges: edges.length };
}());
