/* Upload page: send the file with XHR (upload progress from the browser), then poll the
   import's progress (rows read) until the server answers, and open the import report. */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var bar = document.querySelector("#upload-progress span");
  var status = document.getElementById("upload-status");
  var polling = null;

  function token() {
    var a = new Uint8Array(16);
    window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var t = token();
    document.getElementById("progress-token").value = t;
    var data = new FormData(form);
    var xhr = new XMLHttpRequest();
    document.getElementById("upload-progress").hidden = false;
    document.getElementById("upload-submit").disabled = true;
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.style.width = Math.round(50 * e.loaded / e.total) + "%"; status.textContent = "↑ " + Math.round(100 * e.loaded / e.total) + "%"; }
    });
    xhr.upload.addEventListener("load", function () {
      var url = form.getAttribute("data-progress").replace("TOKEN", t);
      polling = setInterval(function () {
        fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (p) {
          if (p && p.state === "running") {
            status.textContent = (p.rows || 0).toLocaleString("vi-VN") + (p.total ? " / " + p.total.toLocaleString("vi-VN") : "");
            if (p.total) { bar.style.width = (50 + Math.round(50 * p.rows / p.total)) + "%"; }
          }
        });
      }, 500);
    });
    xhr.addEventListener("load", function () {
      clearInterval(polling);
      var answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = { message: xhr.statusText }; }
      bar.style.width = "100%";
      if (answer.url) { window.location.assign(answer.url); return; }
      status.textContent = answer.message || xhr.statusText;
      document.getElementById("upload-submit").disabled = false;
    });
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.send(data);
  });
})();
