/* Watch page: poll the progress JSON every second, move the bars, draw messages/s and
   receipts/s over the last minutes as an SVG line chart. Stops when the alert is final.
   The communes are ranked by share reached, lowest first (the server's order), and the
   carriers' reports of a targeted commune degraded or down are listed above them.
   Pause and resume follow the status (an alert approved a moment ago is sending now); the
   status and every tenth of the way are said to screen readers through an aria-live line.
   The first poll asks for the series the server kept, so a reload keeps the chart's history;
   reached and failed totals and the failure reasons come from the database. */
(function () {
  "use strict";
  var box = document.getElementById("watch");
  if (!box) { return; }
  var url = box.getAttribute("data-url");
  var svg = document.getElementById("w-chart");
  var NS = "http://www.w3.org/2000/svg";
  var points = [];
  var last = null;
  var FINAL = { completed: true, cancelled: true, draft: true, pending_approval: true };
  var LABELS = JSON.parse(box.getAttribute("data-labels") || "{}");
  var NETWORK = JSON.parse(box.getAttribute("data-network-labels") || "{}");
  var announced = null;
  var NUMBER = new Intl.NumberFormat(document.documentElement.lang === "en" ? "en-US" : "vi-VN");

  function controls(status) {
    var pause = document.getElementById("pause-form");
    var resume = document.getElementById("resume-form");
    if (pause) { pause.hidden = status !== "sending"; }
    if (resume) { resume.hidden = status !== "paused"; }
  }
  function announce(status, percent) {
    var step = Math.floor(percent / 10) * 10;
    var said = status + ":" + step;
    if (said === announced) { return; }
    announced = said;
    document.getElementById("w-announce").textContent = (LABELS[status] || status) + " · " + step + "%";
  }

  var duration = window.LoaText.duration;
  var number = window.LoaText.number;
  var NAMES = JSON.parse(box.getAttribute("data-carrier-names") || "{}");
  function row(code) {
    var tr = box.querySelector('tr[data-carrier="' + code + '"]');
    if (tr) { return tr; }
    tr = document.createElement("tr");
    tr.setAttribute("data-carrier", code);
    var name = document.createElement("td"); name.textContent = NAMES[code] || code; tr.appendChild(name);
    var bar = document.createElement("td");
    var outer = document.createElement("div"); outer.className = "progress";
    outer.setAttribute("role", "progressbar"); outer.setAttribute("aria-label", NAMES[code] || code);
    outer.setAttribute("aria-valuemin", "0"); outer.setAttribute("aria-valuemax", "100");
    var inner = document.createElement("span"); inner.setAttribute("data-bar", "");
    outer.appendChild(inner); bar.appendChild(outer); tr.appendChild(bar);
    ["total", "waiting", "submitted", "delivered", "failed", "cancelled", "rate_limit", "percent"].forEach(function (k) {
      var td = document.createElement("td"); td.className = "num"; td.setAttribute("data-k", k); tr.appendChild(td);
    });
    box.querySelector("tbody").appendChild(tr);
    return tr;
  }
  function line(cls, values, max) {
    var path = document.createElementNS(NS, "polyline");
    var step = 600 / Math.max(values.length - 1, 1);
    path.setAttribute("class", cls);
    path.setAttribute("points", values.map(function (v, i) {
      return (i * step).toFixed(1) + "," + (190 - 180 * v / max).toFixed(1);
    }).join(" "));
    svg.appendChild(path);
  }
  function draw() {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var axis = document.createElementNS(NS, "line");
    axis.setAttribute("class", "axis");
    axis.setAttribute("x1", "0"); axis.setAttribute("y1", "190"); axis.setAttribute("x2", "600"); axis.setAttribute("y2", "190");
    svg.appendChild(axis);
    if (points.length < 2) { return; }
    var max = 1;
    points.forEach(function (p) { max = Math.max(max, p.rate, p.receipts); });
    line("rate", points.map(function (p) { return p.rate; }), max);
    line("receipts", points.map(function (p) { return p.receipts; }), max);
    var label = document.createElementNS(NS, "text");
    label.setAttribute("x", "4"); label.setAttribute("y", "12");
    label.textContent = window.LoaText.rate(max);
    svg.appendChild(label);
  }
  function cell(tr, text, cls, key) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    if (key) { td.setAttribute("data-k", key); }
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function areas(list) {
    var tbody = document.querySelector("#w-areas tbody");
    if (!tbody || !list) { return; }
    tbody.textContent = "";
    list.forEach(function (a) {
      var share = a.total ? Math.floor(1000 * a.delivered / a.total) / 10 : 0;
      var tr = document.createElement("tr");
      tr.setAttribute("data-area", a.code);
      cell(tr, a.name);
      var bar = document.createElement("td");
      var outer = document.createElement("div"); outer.className = "progress";
      outer.setAttribute("role", "progressbar"); outer.setAttribute("aria-label", a.name);
      outer.setAttribute("aria-valuemin", "0"); outer.setAttribute("aria-valuemax", "100");
      outer.setAttribute("aria-valuenow", String(share));
      var inner = document.createElement("span"); inner.setAttribute("data-bar", "");
      inner.style.width = share + "%";
      outer.appendChild(inner); bar.appendChild(outer); tr.appendChild(bar);
      cell(tr, NUMBER.format(a.total), "num", "total");
      cell(tr, NUMBER.format(a.delivered), "num", "delivered");
      cell(tr, NUMBER.format(a.failed), "num", "failed");
      cell(tr, String(share), "num", "share");
      tbody.appendChild(tr);
    });
  }
  function network(list) {
    var ul = document.getElementById("w-network");
    if (!ul || !list) { return; }
    ul.textContent = "";
    list.forEach(function (n) {
      var li = document.createElement("li");
      li.setAttribute("data-carrier", n.carrier);
      li.setAttribute("data-area", n.code);
      li.setAttribute("data-state", n.state);
      li.appendChild(document.createTextNode(n.carrier_name + " · " + n.name + ": "));
      var b = document.createElement("b"); b.textContent = NETWORK[n.state] || n.state;
      li.appendChild(b);
      if (n.note) { li.appendChild(document.createTextNode(" — " + n.note)); }
      ul.appendChild(li);
    });
    ul.hidden = list.length === 0;
  }
  /* The series the server kept (one point a second at most): the chart's history. */
  function seed(history) {
    points = [];
    for (var i = 1; i < history.length; i++) {
      var a = history[i - 1], b = history[i];
      var perSecond = Math.max(0, (b.done - a.done) / Math.max(b.at - a.at, 0.001));
      points.push({ rate: b.rate, receipts: perSecond });
    }
    if (points.length > 300) { points = points.slice(points.length - 300); }
    if (history.length) { last = { receipts: history[history.length - 1].done, at: history[history.length - 1].at }; }
  }
  function totals(data) {
    document.getElementById("w-reached").textContent = NUMBER.format(data.reached);
    document.getElementById("w-failed").textContent = NUMBER.format(data.failed);
    var list = document.getElementById("w-reasons");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    (data.failure_reasons || []).forEach(function (r) {
      var li = document.createElement("li");
      var reason = document.createElement("span"); reason.setAttribute("data-reason", ""); reason.textContent = r.reason;
      var count = document.createElement("span"); count.setAttribute("data-count", ""); count.textContent = NUMBER.format(r.count);
      li.appendChild(reason); li.appendChild(document.createTextNode(": ")); li.appendChild(count);
      list.appendChild(li);
    });
    document.getElementById("w-reasons-box").hidden = !(data.failure_reasons || []).length;
  }
  function update(data) {
    if (data.history) { seed(data.history); }
    totals(data);
    areas(data.areas);
    network(data.network);
    document.getElementById("w-percent").textContent = data.percent;
    var total = document.getElementById("w-total");
    total.setAttribute("aria-valuenow", String(data.percent));
    total.querySelector("[data-bar]").style.width = data.percent + "%";
    document.getElementById("w-eta").textContent = duration(data.eta_seconds);
    document.getElementById("w-rate").textContent = window.LoaText.rate(data.rate_now);
    var receipts = 0;
    Object.keys(data.carriers).forEach(function (code) {
      var f = data.carriers[code];
      f.waiting = f.pending + f.queued;  // not yet handed to the carrier: its own column
      var tr = row(code);
      tr.querySelector("[data-bar]").style.width = f.percent + "%";
      tr.querySelector('[role="progressbar"]').setAttribute("aria-valuenow", String(f.percent));
      ["total", "waiting", "submitted", "delivered", "failed", "cancelled", "percent"].forEach(function (k) {
        tr.querySelector('[data-k="' + k + '"]').textContent = number(f[k]);
      });
      tr.querySelector('[data-k="rate_limit"]').textContent = number(Math.round(f.rate_limit));
      receipts += f.delivered + f.failed;
    });
    var perSecond = last ? Math.max(0, (receipts - last.receipts) / Math.max(data.at - last.at, 0.001)) : 0;
    last = { receipts: receipts, at: data.at };
    points.push({ rate: data.rate_now, receipts: perSecond });
    if (points.length > 300) { points.shift(); }
    draw();
    var status = document.getElementById("alert-status");
    if (status.getAttribute("data-status") !== data.status) {
      status.setAttribute("data-status", data.status);
      status.textContent = LABELS[data.status] || data.status;
    }
    controls(data.status);
    announce(data.status, data.percent);
    box.setAttribute("data-percent", String(data.percent));
    return !FINAL[data.status];
  }
  var first = true;
  function poll() {
    var asked = first ? url + (url.indexOf("?") < 0 ? "?" : "&") + "history=true" : url;
    first = false;
    fetch(asked, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) { if (update(data)) { setTimeout(poll, 1000); } })
      .catch(function () { setTimeout(poll, 3000); });
  }
  poll();
})();
