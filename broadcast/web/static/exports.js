/* Export links: the report streams (the download starts at once), but a big one takes a while
   to finish: say it is being prepared, mark the link busy, and ignore a second click meanwhile. */
(function () {
  "use strict";
  var status = document.getElementById("export-status");
  if (!status) { return; }
  document.querySelectorAll("a[data-export]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (link.getAttribute("aria-busy") === "true") { event.preventDefault(); return; }
      link.setAttribute("aria-busy", "true");
      link.classList.add("busy");
      status.textContent = status.getAttribute("data-preparing");
      setTimeout(function () {
        link.removeAttribute("aria-busy");
        link.classList.remove("busy");
        status.textContent = "";
      }, 8000);
    });
  });
})();
