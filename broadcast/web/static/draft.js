/* Draft page: live preview while typing (encoding, parts, UCS-2 characters, folded variant,
   audience and ETA from /api/v1/preview), test banner, all-carriers button. No framework. */
(function () {
  "use strict";
  var form = document.getElementById("draft-form");
  if (!form) { return; }
  var box = document.getElementById("preview");
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var body = document.getElementById("body");
  var fold = document.getElementById("fold");
  var category = document.getElementById("category");
  var timer = null;
  var seq = 0;
  var failures = 0;  // previews lost in a row, each asked again a second later (three at most)

  function $(id) { return document.getElementById(id); }
  function checked(selector) {
    return Array.prototype.map.call(form.querySelectorAll(selector + ":checked"), function (el) { return el.value; });
  }
  var duration = window.LoaText.duration;
  var number = window.LoaText.number;

  function showChars(out, text, bad) {
    Array.from(text).forEach(function (ch) {
      if (bad[ch]) {
        var mark = document.createElement("mark");
        mark.textContent = ch;
        out.appendChild(mark);
      } else {
        out.appendChild(document.createTextNode(ch));
      }
    });
  }
  /* The text on the air, UCS-2 characters marked, template blanks ([[địa bàn]]) boxed. */
  function showText(info) {
    var out = $("pv-text");
    out.textContent = "";
    var bad = {};
    info.ucs2_chars.forEach(function (c) { bad[c] = true; });
    info.text.split(/(\[\[[^\[\]\n]{1,60}\]\])/).forEach(function (piece, i) {
      if (i % 2 === 1) {
        var blank = document.createElement("span");
        blank.className = "placeholder";
        blank.textContent = piece;
        out.appendChild(blank);
      } else {
        showChars(out, piece, bad);
      }
    });
  }
  function fillList(list, items, attribute, key) {
    list.textContent = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.textContent = item.message;
      li.setAttribute(attribute, item[key]);
      list.appendChild(li);
    });
  }

  function render(data) {
    var p = data.preview;
    $("pv-encoding-name").textContent = window.LoaText.encoding(p.encoding);
    $("pv-encoding").textContent = p.encoding === "gsm7" ? "GSM 7-bit" : "UCS-2";
    $("pv-parts").textContent = number(p.parts);
    $("pv-left").textContent = number(p.chars_left);
    showText(p);
    $("pv-ucs2").hidden = p.ucs2_chars.length === 0;
    $("pv-ucs2-list").textContent = p.ucs2_chars.join(" ");
    var f = data.folded;
    $("pv-folded").hidden = fold.checked || f.parts >= p.parts && f.encoding === p.encoding;
    $("pv-folded-parts").textContent = number(f.parts);
    var tbody = document.querySelector("#pv-audience tbody");
    tbody.textContent = "";
    data.audience.forEach(function (row) {
      var tr = document.createElement("tr");
      [row.name, number(row.audience), number(row.reported), duration(row.eta_seconds)].forEach(function (v, i) {
        var td = document.createElement("td");
        td.textContent = v;
        if (i > 0) { td.className = "num"; }
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    $("pv-total").textContent = number(data.audience_total);
    $("pv-eta").textContent = duration(data.eta_seconds);
    var blanks = data.placeholders || [];
    $("pv-placeholders").hidden = blanks.length === 0;
    $("pv-placeholder-list").textContent = blanks.join(", ");
    fillList($("pv-rules"), data.rules || [], "data-rule", "code");
    /* A carrier whose list holds far fewer numbers than it reported: most of its people
       would be missed (the server words the warning in the reader's language). */
    var warnings = $("pv-warnings");
    fillList(warnings, data.warnings || [], "data-carrier", "carrier");
    warnings.hidden = warnings.children.length === 0;
  }

  function refresh() {
    var mine = ++seq;
    fetch(box.getAttribute("data-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({
        text: body.value, fold: fold.checked, category: category.value,
        areas: checked("input[data-area]"), carriers: checked("input[data-carrier]"),
        /* A resend's audience is the unreached numbers of the alert it resends. */
        resend_of: box.hasAttribute("data-resend-of") ? Number(box.getAttribute("data-resend-of")) : null
      })
    }).then(function (r) {
      if (r.status >= 500) { throw new Error("preview " + r.status); }
      return r.json();
    }).then(function (data) {
      failures = 0;
      if (mine === seq && data.preview) { render(data); box.setAttribute("data-ready", String(mine)); }
    }).catch(function () {
      /* A preview lost on the way (a busy server, a dropped connection) is asked again, so the
         encoding and parts on screen are never those of an older text for long. */
      if (mine === seq && failures < 3) {
        failures += 1;
        clearTimeout(timer);
        timer = setTimeout(refresh, 1000);
      }
    });
  }
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 200); }

  form.addEventListener("input", later);
  form.addEventListener("change", function () {
    $("test-banner").hidden = category.value !== "test";
    document.body.classList.toggle("test-alert", category.value === "test");
    $("drill-banner").hidden = category.value !== "exercise";
    document.body.classList.toggle("drill-alert", category.value === "exercise");
    later();
  });
  $("use-folded").addEventListener("click", function () { fold.checked = true; refresh(); });
  $("all-carriers").addEventListener("click", function () {
    form.querySelectorAll("input[data-carrier]").forEach(function (el) { el.checked = true; });
    refresh();
  });
  /* Ticking an area ticks what lies inside it: the tree is a picker, not a form of its own. */
  form.querySelectorAll("input[data-area]").forEach(function (el) {
    el.addEventListener("change", function () {
      var li = el.closest("li");
      li.querySelectorAll(":scope ul input[data-area]").forEach(function (child) { child.checked = false; child.disabled = el.checked; });
    });
  });
  /* Many communes under one node: grouped by level, searchable without diacritics. */
  function plain(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/[đĐ]/g, "d").toLowerCase();
  }
  function countPicked() {
    form.querySelectorAll("details[data-area-group]").forEach(function (group) {
      var n = group.querySelectorAll("input[data-area]:checked").length;
      group.querySelector("[data-picked]").textContent = n ? "✓ " + n : "";
    });
  }
  form.querySelectorAll("input[data-area-search]").forEach(function (search) {
    var li = search.closest("li");
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); }  // Enter searches, never saves
    });
    search.addEventListener("input", function (event) {
      event.stopPropagation();  // a search is not an edit of the draft
      var words = plain(search.value.trim()).split(/\s+/).filter(Boolean);
      var shown = 0;
      li.querySelectorAll("details[data-area-group] li[data-area-item]").forEach(function (item) {
        var name = plain(item.getAttribute("data-name"));
        var match = words.every(function (w) { return name.indexOf(w) !== -1; });
        item.hidden = !match;
        if (match) { shown += 1; }
      });
      li.querySelectorAll("details[data-area-group]").forEach(function (group) {
        var any = group.querySelector("li[data-area-item]:not([hidden])") !== null;
        group.hidden = !any;
        if (words.length) { group.open = any; }
      });
      li.querySelector("[data-area-none]").hidden = shown > 0;
    });
  });
  form.addEventListener("change", countPicked);
  countPicked();
  refresh();
})();
