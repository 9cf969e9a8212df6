// Queue: drag a post by its handle (SortableJS) to reorder; the order is posted with htmx and the
// region comes back with each post's new slot. Up/Down/Top buttons are the keyboard alternative;
// after any swap, focus returns to the control that was used (or the outcome message).
(function () {
  "use strict";
  var focusId = null;

  function setup() {
    var list = document.querySelector(".queue-list[data-sortable]");
    if (!list || !window.Sortable || list.sortable) return;
    list.sortable = window.Sortable.create(list, {
      handle: ".drag-handle",
      animation: 150,
      forceFallback: true,
      ghostClass: "is-ghost",
      onEnd: function (event) {
        if (event.oldIndex === event.newIndex) return;
        window.htmx.trigger("#reorder-form", "reorder");
      }
    });
  }

  document.addEventListener("htmx:beforeRequest", function () {
    var active = document.activeElement;
    focusId = active && active.id ? active.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    setup();
    var again = focusId && document.getElementById(focusId);
    if (again && !again.disabled) {
      again.focus();
    } else {
      var message = document.querySelector("#queue-region .message, #schedule-region .message");
      if (message) { message.tabIndex = -1; message.focus(); }
    }
    focusId = null;
  });
  document.addEventListener("DOMContentLoaded", setup);
})();
