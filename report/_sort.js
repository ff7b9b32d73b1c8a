// Sortable tables: click a header to sort by its column (numbers by data-value, else text). No network.
(function () {
  "use strict";
  function key(cell) {
    var raw = cell.getAttribute("data-value");
    var num = raw === null ? parseFloat(cell.textContent.replace(/,/g, "")) : parseFloat(raw);
    return { num: num, text: cell.textContent.trim().toLowerCase() };
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    if (!body) { return; }
    var asc = th.getAttribute("data-dir") !== "asc";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("data-dir"); });
    th.setAttribute("data-dir", asc ? "asc" : "desc");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      var r;
      if (!isNaN(x.num) && !isNaN(y.num)) { r = x.num - y.num; }
      else if (isNaN(x.num) !== isNaN(y.num)) { r = isNaN(x.num) ? 1 : -1; return r; }
      else { r = x.text < y.text ? -1 : (x.text > y.text ? 1 : 0); }
      return asc ? r : -r;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () { sortBy(table, col, th); });
    });
  });
})();
