/* Upload page: send the file with XHR (upload progress from the browser); the server saves it
   and enqueues the import as a background job, so then poll the job's progress (rows read)
   until it ends, and open the upload's status page, which leads to the import report. */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var box = document.getElementById("upload-progress");
  var bar = box.querySelector("span");
  var status = document.getElementById("upload-status");
  var FINAL = { done: true, rejected: true, failed: true };

  function token() {
    var a = new Uint8Array(16);
    window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function show(percent, text) {
    bar.style.width = percent + "%";
    box.setAttribute("aria-valuenow", String(percent));
    if (text !== undefined) { status.textContent = text; }
  }
  function follow(progressUrl, pageUrl) {
    fetch(progressUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (p && FINAL[p.state]) { show(100); window.location.assign(pageUrl); return; }
        if (p && p.state === "running") {
          var number = window.LoaText.number;  /* the reader's format: 99.935 or 99,935 */
          show(p.total ? 30 + Math.round(70 * p.rows / p.total) : 30,
               number(p.rows || 0) + (p.total ? " / " + number(p.total) : ""));
        } else if (p && p.state === "queued") {
          status.textContent = form.getAttribute("data-queued");
        }
        setTimeout(function () { follow(progressUrl, pageUrl); }, 500);
      })
      .catch(function () { setTimeout(function () { follow(progressUrl, pageUrl); }, 2000); });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var t = token();
    document.getElementById("progress-token").value = t;
    var data = new FormData(form);
    var xhr = new XMLHttpRequest();
    box.hidden = false;
    document.getElementById("upload-submit").disabled = true;
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { show(Math.round(30 * e.loaded / e.total), "↑ " + Math.round(100 * e.loaded / e.total) + "%"); }
    });
    xhr.addEventListener("load", function () {
      var answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = { message: xhr.statusText }; }
      if (answer.ok && answer.url) {
        follow(form.getAttribute("data-progress").replace("TOKEN", answer.token), answer.url);
        return;
      }
      show(0, answer.message || xhr.statusText);
      document.getElementById("upload-submit").disabled = false;
    });
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.send(data);
  });
})();

/* The coverage table: one row per commune, filtered as the user types (no diacritics needed). */
(function () {
  var search = document.getElementById("coverage-search");
  if (!search) { return; }
  function plain(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/[đĐ]/g, "d").toLowerCase();
  }
  search.addEventListener("input", function () {
    var words = plain(search.value.trim()).split(/\s+/).filter(Boolean);
    document.querySelectorAll("#coverage tbody[data-coverage-group]").forEach(function (group) {
      var shown = 0;
      group.querySelectorAll("tr[data-coverage-row]").forEach(function (row) {
        var name = plain(row.getAttribute("data-name"));
        row.hidden = !words.every(function (w) { return name.indexOf(w) !== -1; });
        if (!row.hidden) { shown += 1; }
      });
      group.hidden = shown === 0;
    });
  });
})();
