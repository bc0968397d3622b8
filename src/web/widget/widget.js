/* frontdesk widget (placeholder until the widget lands). */
(function () {})();
