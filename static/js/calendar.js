// Calendar: drag a post chip onto another day (keeps its time of day) or onto an open slot
// (takes the slot's time); the Move dialog is the keyboard alternative. Both post to the
// calendar's move URL with htmx, which swaps the calendar region. Also the feed's Copy button.
(function () {
  "use strict";
  var dragged = null;

  function region() { return document.getElementById("calendar-region"); }

  function move(values) {
    var target = region();
    if (!target || !window.htmx) return;
    window.htmx.ajax("POST", target.dataset.moveUrl, {
      source: target, target: "#calendar-region", select: "#calendar-region", swap: "outerHTML", values: values
    });
  }

  function dropTarget(event) {
    return event.target.closest ? event.target.closest("[data-drop-at], [data-drop-day]") : null;
  }

  document.addEventListener("dragstart", function (event) {
    var chip = event.target.closest && event.target.closest("[data-delivery]");
    if (!chip || !region() || !region().contains(chip)) return;
    dragged = chip;
    chip.classList.add("is-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", chip.dataset.delivery);
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("is-dragging");
    dragged = null;
    document.querySelectorAll(".is-drop-target").forEach(function (el) { el.classList.remove("is-drop-target"); });
  });
  document.addEventListener("dragover", function (event) {
    var target = dragged && dropTarget(event);
    if (!target) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    document.querySelectorAll(".is-drop-target").forEach(function (el) {
      if (el !== target) el.classList.remove("is-drop-target");
    });
    target.classList.add("is-drop-target");
  });
  document.addEventListener("drop", function (event) {
    var target = dragged && dropTarget(event);
    if (!target) return;
    event.preventDefault();
    var values = { delivery: dragged.dataset.delivery };
    if (target.dataset.dropAt) values.at = target.dataset.dropAt;
    else values.day = target.dataset.dropDay;
    move(values);
  });

  // The keyboard alternative: a dialog asking for the new date and time.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-move]");
    var dialog = document.getElementById("move-dialog");
    if (opener && dialog) {
      dialog.querySelector("[name=delivery]").value = opener.dataset.move;
      dialog.querySelector("[name=at]").value = opener.dataset.at;
      dialog.returnFocusTo = opener.id || null;
      dialog.showModal();
      dialog.querySelector("[name=at]").focus();
      return;
    }
    if (event.target.closest && event.target.closest("[data-close-dialog]")) {
      event.target.closest("dialog").close();
    }
    var copy = event.target.closest && event.target.closest("[data-copy]");
    if (copy) copyText(copy);
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var dialog = document.getElementById("move-dialog");
    if (dialog && dialog.open && dialog.contains(event.target)) dialog.close();
  });

  // After a move the old chip is gone: put focus on the outcome, which says where it went.
  document.addEventListener("htmx:afterSettle", function () {
    var message = document.querySelector("#calendar-region .message, #feed-region .message");
    if (message) { message.tabIndex = -1; message.focus(); }
  });

  function copyText(button) {
    var input = document.querySelector(button.dataset.copy);
    var result = document.querySelector("[data-copy-result]");
    input.select();
    var done = function () { if (result) result.textContent = "Address copied."; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {
        if (result) result.textContent = "Press Ctrl+C (or ⌘C) to copy the selected address.";
      });
    } else {
      document.execCommand("copy");
      done();
    }
  }
})();
