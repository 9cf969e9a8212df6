// Team pages: no inline scripts (the Content-Security-Policy allows only files from 'self').
(function () {
  "use strict";

  // A new account's time zone starts as the browser's own, when the list offers it.
  function defaultTimezone() {
    var select = document.querySelector("select[data-default-timezone]");
    if (!select || select.dataset.touched) { return; }
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
    if (select.value === "UTC" && zone) {
      for (var i = 0; i < select.options.length; i++) {
        if (select.options[i].value === zone) { select.value = zone; break; }
      }
    }
  }

  // Buttons that remove something ask first (a keyboard user gets the same dialog).
  function confirmDangerous(event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  }

  document.addEventListener("DOMContentLoaded", defaultTimezone);
  document.addEventListener("click", confirmDangerous);
})();
