// Printing opens every folded section (the terminal summary), so the paper copy has everything.
window.addEventListener("beforeprint", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
});
// Sortable tables: click a header; numbers (data-v) sort numerically, text alphabetically. A self-check on load
// reports a broken figure or image as a console error (the browser test fails on any console error).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, column) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var ascending = th.dataset.order !== "asc";
        th.dataset.order = ascending ? "asc" : "desc";
        rows.sort(function (a, b) {
          var x = a.cells[column], y = b.cells[column];
          var u = x.dataset.v !== undefined ? parseFloat(x.dataset.v) : NaN;
          var w = y.dataset.v !== undefined ? parseFloat(y.dataset.v) : NaN;
          var c = (!isNaN(u) && !isNaN(w)) ? u - w : x.textContent.localeCompare(y.textContent);
          return ascending ? c : -c;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  var broken = [];
  document.querySelectorAll("img").forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) { broken.push(img.alt || img.src.slice(0, 40)); }
  });
  document.querySelectorAll("svg.figure").forEach(function (svg, i) {
    var box = svg.getBBox ? svg.getBBox() : null;
    if (!box || box.width === 0) { broken.push("figure " + i); }
  });
  document.body.dataset.figures = String(document.querySelectorAll("svg.figure").length);
  if (broken.length) { console.error("report: missing figures: " + broken.join(", ")); }
  document.body.dataset.check = broken.length ? "missing" : "ok";
});
