/* Numbers, durations, rates and encodings in the reader's language, as the server says them
   (broadcast/web/templating.py: browser_texts, the same translated messages). No framework. */
(function () {
  "use strict";
  var node = document.getElementById("loa-i18n");
  var t = node ? JSON.parse(node.textContent) : {};
  var locale = t.locale || "vi-VN";
  function fill(message, values) {
    return (message || "").replace(/%\((\w+)\)s/g, function (all, key) { return values[key]; });
  }
  function number(n) {
    return (n === null || n === undefined || n === "") ? "—" : Number(n).toLocaleString(locale);
  }
  window.LoaText = {
    number: number,
    duration: function (seconds) {
      if (seconds === null || seconds === undefined) { return "—"; }
      var whole = Math.max(0, Math.ceil(seconds));
      if (whole < 60) { return fill(t.s, { seconds: whole }); }
      if (whole < 3600) { return fill(t.min_s, { minutes: Math.floor(whole / 60), seconds: whole % 60 }); }
      return fill(t.h_min, { hours: Math.floor(whole / 3600), minutes: Math.floor((whole % 3600) / 60) });
    },
    rate: function (perSecond) { return fill(t.rate, { rate: number(Math.round(perSecond || 0)) }); },
    encoding: function (key) { return (t.encodings || {})[key] || key; }
  };
})();
