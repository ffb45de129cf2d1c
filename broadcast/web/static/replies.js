/* Watch page, replies: poll the replies JSON every two seconds and redraw the counts by
   keyword and the table by commune. People answer for hours after an alert, so the polling
   goes on while the page is open. Numbers in the page's language (vi-VN: 1.234). */
(function () {
  "use strict";
  var box = document.getElementById("replies");
  if (!box) { return; }
  var url = box.getAttribute("data-url");
  var words = JSON.parse(box.getAttribute("data-words") || "[]");
  var unknown = box.getAttribute("data-unknown");
  var number = new Intl.NumberFormat(document.documentElement.lang || "vi");

  function td(text, numeric) {
    var cell = document.createElement("td");
    cell.textContent = text;
    if (numeric) { cell.className = "num"; }
    return cell;
  }
  function update(data) {
    document.getElementById("r-total").textContent = number.format(data.total);
    words.forEach(function (w) {
      var tr = box.querySelector('#r-keywords tr[data-keyword="' + CSS.escape(w) + '"]');
      if (tr) { tr.querySelector('[data-k="count"]').textContent = number.format(data.by_keyword[w] || 0); }
    });
    var tbody = box.querySelector("#r-areas tbody");
    var rows = document.createDocumentFragment();
    data.by_area.forEach(function (a) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-area", a.code || "");
      tr.appendChild(td(a.name || unknown, false));
      tr.appendChild(td(number.format(a.total), true));
      words.forEach(function (w) {
        var cell = td(number.format(a.by_keyword[w] || 0), true);
        cell.setAttribute("data-k", w);
        tr.appendChild(cell);
      });
      rows.appendChild(tr);
    });
    tbody.replaceChildren(rows);
    box.setAttribute("data-total", String(data.total));
  }
  function poll() {
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) { update(data); setTimeout(poll, 2000); })
      .catch(function () { setTimeout(poll, 6000); });
  }
  poll();
})();
