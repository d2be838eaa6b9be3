// "SVG" and "PNG" links under every chart. No fetch: the SVG is serialized from the page with the
// page's own chart styles inlined, the PNG is that SVG drawn into a canvas at 2x (a data: image,
// which the page's Content-Security-Policy allows).
(function () {
  var css = [];
  Array.prototype.forEach.call(document.styleSheets, function (sheet) {
    Array.prototype.forEach.call(sheet.cssRules, function (rule) {
      var sel = rule.selectorText || "";
      if (sel.indexOf(":root") === 0 || sel.indexOf("svg") === 0) css.push(rule.cssText);
    });
  });
  function source(svg) {
    var copy = svg.cloneNode(true);
    copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
    var style = document.createElementNS("http://www.w3.org/2000/svg", "style");
    style.textContent = css.join("\n") + "\nsvg{background:#fff}";
    copy.insertBefore(style, copy.firstChild);
    return new XMLSerializer().serializeToString(copy);
  }
  function name(svg, i) {
    var words = (svg.getAttribute("aria-label") || "chart-" + i).toLowerCase().match(/[a-z0-9]+/g) || ["chart"];
    return "fmtbench-" + words.join("-").slice(0, 80);
  }
  function save(blob, file) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = file;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  function png(svg, file) {
    var box = svg.viewBox.baseVal, w = box && box.width ? box.width : svg.clientWidth;
    var h = box && box.height ? box.height : svg.clientHeight;
    var img = new Image();
    img.onload = function () {
      var canvas = document.createElement("canvas");
      canvas.width = 2 * w;
      canvas.height = 2 * h;
      var ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) { save(blob, file); }, "image/png");
    };
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(source(svg));
  }
  document.querySelectorAll("svg.chart").forEach(function (svg, i) {
    var links = document.createElement("div");
    links.className = "chart-links";
    [["SVG", function () {
      save(new Blob([source(svg)], {type: "image/svg+xml"}), name(svg, i) + ".svg");
    }], ["PNG", function () { png(svg, name(svg, i) + ".png"); }]].forEach(function (kind) {
      var a = document.createElement("a");
      a.href = "#";
      a.textContent = kind[0];
      a.title = "download this chart as " + kind[0];
      a.addEventListener("click", function (ev) { ev.preventDefault(); kind[1](); });
      links.appendChild(a);
    });
    svg.parentNode.insertBefore(links, svg.nextSibling);
  });
})();
