/* frontdesk widget loader (placeholder until the widget lands): loads the hashed widget files. */
(function () {
  var s = document.currentScript;
  if (!s) return;
  var base = s.src.replace(/\/widget\.js(\?.*)?$/, "");
  var f = (window.frontdesk = window.frontdesk || function () { (f.q = f.q || []).push(arguments); });
  f.boot = { base: base, css: base + "__FRONTDESK_WIDGET_CSS__", data: Object.assign({}, s.dataset) };
  var app = document.createElement("script");
  app.src = base + "__FRONTDESK_WIDGET_JS__";
  app.async = true;
  document.head.appendChild(app);
})();
