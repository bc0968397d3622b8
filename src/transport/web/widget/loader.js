/*! frontdesk widget loader — what GET /widget.js serves (short cache).
 *
 * Responsible for: reading the embed tag's data-* attributes, defining the window.frontdesk
 * queue stub so integrators may call the API before the app has loaded, working out the
 * frontdesk base URL from this script's own src, and injecting the content-hashed app script
 * (long cache). It is kept tiny because it is fetched on every page view without an immutable
 * cache; everything else lives in widget.js. It must never throw on the host page.
 */
(function () {
  "use strict";
  var w = window;
  var fd = w.frontdesk;
  if (typeof fd !== "function") {
    fd = w.frontdesk = function () { fd.q.push(arguments); };
  }
  fd.q = fd.q || [];
  // A second copy of the tag on the same page (common with tag managers) must not boot twice.
  if (fd.boot) return;
  var script = document.currentScript;
  var bot = script && script.getAttribute("data-bot");
  if (!bot) {
    if (w.console) console.warn("frontdesk: the widget's <script> tag needs data-bot=\"bot_...\"; the chat is not shown");
    return;
  }
  var attr = function (name) { return script.getAttribute("data-" + name); };
  // Anything before "/widget.js" is the base, so a frontdesk behind a path prefix still works.
  var base = script.src.replace(/[?#].*$/, "").replace(/\/[^\/]*$/, "");
  fd.boot = {
    base: base,
    css: base + "__FRONTDESK_WIDGET_CSS__",
    bot: bot,
    position: attr("position"),
    lang: attr("lang"),
    open: attr("open"),
    nonce: script.nonce || ""
  };
  var s = document.createElement("script");
  s.src = base + "__FRONTDESK_WIDGET_JS__";
  s.async = true;
  // Pages with a nonce-based CSP ('strict-dynamic') accept scripts that inherit the nonce.
  if (script.nonce) s.nonce = script.nonce;
  (document.head || document.documentElement).appendChild(s);
})();
