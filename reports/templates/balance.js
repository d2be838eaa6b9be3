// The balanced pick, recomputed in the page when the reader changes the weights: the case with the
// lowest weighted geometric mean of "times worse than the best" over the uses (reports/recommend.py).
(function () {
  var form = document.getElementById("balance-weights");
  if (!form) return;
  var data = JSON.parse(form.dataset.balance);
  var row = document.querySelector('tr.pick-row[data-use="balanced"]');
  if (!row) return;
  function times(f) { return "×" + (f < 10 ? f.toFixed(2) : f.toFixed(0)); }
  function update() {
    var w = data.metrics.map(function (m) { var v = Number(form.elements[m].value); return v > 0 ? v : 0; });
    var total = w.reduce(function (a, b) { return a + b; }, 0);
    var cells = row.querySelectorAll("td");
    if (!(total > 0)) { cells[0].textContent = "every weight is 0"; return; }
    var scores = Object.keys(data.cases).map(function (c) {
      var s = data.cases[c].reduce(function (a, l, i) { return a + w[i] * l; }, 0) / total;
      return [c, Math.exp(s)];
    }).sort(function (a, b) { return a[1] - b[1]; });
    var win = scores[0], logs = data.cases[win[0]];
    cells[0].innerHTML = "";
    var code = document.createElement("code"); code.textContent = win[0]; cells[0].appendChild(code);
    cells[1].textContent = times(win[1]) + " the best, on average";
    if (scores.length > 1) {
      var s2 = scores[1];
      cells[2].innerHTML = "";
      var c2 = document.createElement("code"); c2.textContent = s2[0]; cells[2].appendChild(c2);
      cells[2].appendChild(document.createTextNode(" " + times(s2[1]) + " on average: "));
      var b = document.createElement("b"); b.textContent = times(s2[1] / win[1]); cells[2].appendChild(b);
    }
    cells[3].textContent = data.uses.map(function (u, i) {
      var g = Math.exp(logs[i]);
      return u + (g < 1.01 ? " best" : " " + times(g)) + (w[i] > 0 ? "" : " (weight 0)");
    }).join(" · ");
  }
  form.addEventListener("input", update);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
})();
