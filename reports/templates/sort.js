// Sort a table by the clicked header: numbers by their data-v value, text otherwise; click again to reverse.
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th[data-col]").forEach(function (th) {
    th.addEventListener("click", function () {
      var col = Number(th.dataset.col);
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      table.querySelectorAll("th[data-col]").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col];
        var vx = x.dataset.v, vy = y.dataset.v;
        if (vx !== undefined && vy !== undefined) {
          if (vx === "" && vy === "") return 0;
          if (vx === "") return 1;  // unmeasured last, whichever direction
          if (vy === "") return -1;
          return dir * (Number(vx) - Number(vy));
        }
        return dir * x.textContent.trim().localeCompare(y.textContent.trim());
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
