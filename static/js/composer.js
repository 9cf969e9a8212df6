// The composer: parts, per-channel versions, media uploads, live checks from the server,
// autosave and the unsaved-changes warning. Counting and validation happen on the server only.
(function () {
  "use strict";
  var form = document.getElementById("composer");
  if (!form) return;
  var limits = JSON.parse(form.dataset.limits || "{}");
  var draftField = form.querySelector("[data-draft-id]");
  var statusLine = document.getElementById("autosave-status");
  var dirty = false, submitting = false, checkSeq = 0, checkTimer = null, saveTimer = null;
  var uploadsInFlight = 0;
  var WHEN_LABELS = { queue: "Add to queue", next: "Share next", now: "Share now", at: "Schedule", draft: "Save draft", keep: "Save changes" };

  function $all(root, selector) { return Array.prototype.slice.call(root.querySelectorAll(selector)); }

  // -- numbering: field names follow the order on screen -------------------------------------------
  function renumber() {
    $all(form, "[data-part-list]").forEach(function (list) {
      var prefix = list.dataset.prefix;
      $all(list, ":scope > [data-part]").forEach(function (part, i) {
        var text = part.querySelector("[data-part-text]");
        text.name = text.id = prefix + "-" + i + "-text";
        var label = part.querySelector("[data-part-label]");
        label.htmlFor = text.id;
        label.textContent = "Text of part " + (i + 1) + (prefix === "part" ? "" : " (" + prefix + ")");
        part.querySelector("[data-part-number]").textContent = String(i + 1);
        $all(part, "[data-media-field]").forEach(function (field) { field.name = prefix + "-" + i + "-media"; });
      });
    });
  }

  function changed() {
    dirty = true;
    clearTimeout(checkTimer);
    checkTimer = setTimeout(runCheck, 400);
    if (form.dataset.autosave === "on") {
      clearTimeout(saveTimer);
      saveTimer = setTimeout(autosave, 2000);
    }
  }

  // -- parts --------------------------------------------------------------------------------------------
  function newPart(list, text) {
    var fragment = document.getElementById("part-template").content.cloneNode(true);
    var part = fragment.querySelector("[data-part]");
    part.querySelector("[data-part-text]").value = text || "";
    list.appendChild(part);
    makeSortable(part.querySelector("[data-media-list]"));
    return part;
  }

  function listOf(button) {
    return button.closest("section, details").querySelector("[data-part-list]");
  }

  function onClick(event) {
    var button = event.target.closest("[data-action]");
    if (!button) return;
    var action = button.dataset.action;
    var part = button.closest("[data-part]");
    var item = button.closest("[data-media-item]");
    if (action === "part-add") {
      var added = newPart(listOf(button), "");
      renumber();
      added.querySelector("[data-part-text]").focus();
    } else if (action === "part-remove") {
      var list = part.parentElement;
      if ($all(list, ":scope > [data-part]").length === 1 && list.dataset.prefix === "part") {
        part.querySelector("[data-part-text]").value = "";
        $all(part, "[data-media-item]").forEach(function (m) { m.remove(); });
      } else {
        part.remove();
      }
      renumber();
    } else if (action === "part-up" && part.previousElementSibling) {
      part.parentElement.insertBefore(part, part.previousElementSibling);
      renumber();
      button.focus();
    } else if (action === "part-down" && part.nextElementSibling) {
      part.parentElement.insertBefore(part.nextElementSibling, part);
      renumber();
      button.focus();
    } else if (action === "media-left" && item.previousElementSibling) {
      item.parentElement.insertBefore(item, item.previousElementSibling);
      button.focus();
    } else if (action === "media-right" && item.nextElementSibling) {
      item.parentElement.insertBefore(item.nextElementSibling, item);
      button.focus();
    } else if (action === "media-remove") {
      item.remove();
    } else if (action === "split") {
      splitPart(part, JSON.parse(button.dataset.pieces));
    } else {
      return;
    }
    changed();
  }

  function splitPart(part, pieces) {
    part.querySelector("[data-part-text]").value = pieces[0];
    var after = part;
    pieces.slice(1).forEach(function (text) {
      var added = newPart(part.parentElement, text);
      part.parentElement.insertBefore(added, after.nextSibling);
      after = added;
    });
    renumber();
  }

  function makeSortable(list) {
    if (!window.Sortable || !list) return;
    window.Sortable.create(list, {
      handle: list.matches("[data-part-list]") ? ".drag-handle" : undefined,
      animation: 120,
      onEnd: function () { renumber(); changed(); },
    });
  }

  // -- per-channel versions -----------------------------------------------------------------------
  function onOverrideToggle(toggle) {
    var box = toggle.closest("[data-override]");
    var list = box.querySelector("[data-part-list]");
    list.hidden = !toggle.checked;
    box.querySelector("[data-action=part-add]").hidden = !toggle.checked;
    if (toggle.checked && !list.children.length) {
      $all(form, "[data-part-list][data-prefix=part] > [data-part]").forEach(function (main) {
        var copy = newPart(list, main.querySelector("[data-part-text]").value);
        $all(main, "[data-media-item]").forEach(function (m) {
          var clone = m.cloneNode(true);
          clone.querySelector("[data-alt]").removeAttribute("name");
          clone.querySelector(".media-meta label").hidden = true;  // alt text belongs to the file: edit it in the main version
          copy.querySelector("[data-media-list]").appendChild(clone);
        });
      });
      renumber();
    }
  }

  function selectedChannels() {
    return $all(form, "[data-channel]").filter(function (box) { return box.checked; });
  }

  function onChannelToggle() {
    var chosen = selectedChannels().map(function (box) { return box.value; });
    var networks = selectedChannels().map(function (box) { return box.dataset.network; });
    $all(form, "[data-override]").forEach(function (box) {
      box.hidden = chosen.indexOf(box.dataset.override) === -1;
    });
    form.querySelector("[data-no-channel-hint]").hidden = chosen.length > 0;
    // Options of networks not chosen are hidden (kept in the form), once any channel is chosen.
    $all(form, "[data-for-network]").forEach(function (label) {
      label.hidden = networks.length > 0 && networks.indexOf(label.dataset.forNetwork) === -1;
    });
  }

  // -- media ---------------------------------------------------------------------------------------------
  function problemFor(file, part) {
    var isVideo = file.type.indexOf("video/") === 0;
    var max = parseInt(form.dataset.maxUpload, 10);
    if (file.size > max) return file.name + " is larger than Herald accepts (" + Math.round(max / 1048576) + " MB).";
    var count = part.querySelectorAll("[data-media-item]").length + 1;
    var problems = [];
    selectedChannels().forEach(function (box) {
      var rule = limits[box.value];
      if (!rule) return;
      if (rule.types.length && rule.types.indexOf(file.type) === -1) problems.push(rule.label + " does not accept " + (file.type || "this kind of") + " files");
      else if (isVideo && !rule.video) problems.push(rule.label + " does not accept video");
      var cap = isVideo ? rule.max_video_bytes : rule.max_image_bytes;
      if (cap && file.size > cap) problems.push(rule.label + " accepts at most " + Math.round(cap / 1024) + " KB");
      if (count > rule.max_media) problems.push(rule.label + " takes at most " + rule.max_media + " attachments per part");
    });
    return problems.length ? file.name + ": " + problems.join("; ") + "." : "";
  }

  function upload(file, part) {
    var status = part.querySelector("[data-upload-status]");
    var problem = problemFor(file, part);
    if (problem) {
      status.textContent = problem;
      status.className = "upload-status error";
      return;
    }
    var row = document.createElement("div");
    var label = document.createElement("span");
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    label.textContent = "Uploading " + file.name + "… ";
    row.appendChild(label); row.appendChild(bar);
    status.className = "upload-status";
    status.appendChild(row);
    var body = new FormData();
    body.append("file", file);
    body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    var request = new XMLHttpRequest();
    uploadsInFlight += 1;
    request.open("POST", form.dataset.uploadUrl);
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
    });
    request.addEventListener("loadend", function () {
      uploadsInFlight -= 1;
      var data = {};
      try { data = JSON.parse(request.responseText); } catch (e) { data = {}; }
      row.remove();
      if (request.status === 201) {
        addMedia(part, data);
        changed();
      } else {
        status.textContent = data.error || ("Uploading " + file.name + " failed; try again.");
        status.className = "upload-status error";
      }
    });
    request.send(body);
  }

  function addMedia(part, data) {
    var fragment = document.getElementById("media-template").content.cloneNode(true);
    var item = fragment.querySelector("[data-media-item]");
    item.dataset.mediaId = data.id;
    item.dataset.kind = data.kind;
    item.querySelector("[data-media-field]").value = data.id;
    var alt = item.querySelector("[data-alt]");
    alt.name = "alt-" + data.id;
    alt.value = data.alt || "";
    var thumb = item.querySelector("img.thumb");
    if (data.kind === "video" && thumb) {
      var span = document.createElement("span");
      span.className = "thumb thumb-video";
      span.textContent = "Video";
      thumb.replaceWith(span);
    } else if (thumb) {
      thumb.src = data.url;
    }
    part.querySelector("[data-media-list]").appendChild(item);
    renumber();
    alt.focus();
  }

  function filesFrom(list) { return Array.prototype.slice.call(list || []); }

  function onDrop(event) {
    var zone = event.target.closest("[data-part]");
    if (!zone || !event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    zone.classList.remove("dragging");
    filesFrom(event.dataTransfer.files).forEach(function (file) { upload(file, zone); });
  }

  function onPaste(event) {
    var part = event.target.closest("[data-part]");
    var files = filesFrom(event.clipboardData && event.clipboardData.files);
    if (!part || !files.length) return;
    event.preventDefault();
    files.forEach(function (file) { upload(file, part); });
  }

  // -- checks from the server ---------------------------------------------------------------------
  function counterText(channel, count) {
    var text = channel.label + " " + count.count + "/" + count.limit;
    return count.over ? text + " · " + count.over + " over" : text;
  }

  function showCounters(data) {
    $all(form, "[data-part-list]").forEach(function (list) {
      var prefix = list.dataset.prefix;
      $all(list, ":scope > [data-part]").forEach(function (part, i) {
        var box = part.querySelector("[data-part-counters]");
        box.textContent = "";
        data.channels.forEach(function (channel) {
          var mine = prefix === "part" ? !channel.own_version : prefix === "override-" + channel.id;
          var count = channel.parts[i];
          if (!mine || !count) return;
          var chip = document.createElement("span");
          chip.className = "counter" + (count.over ? " over" : "");
          chip.dataset.network = channel.network;
          chip.textContent = counterText(channel, count);
          box.appendChild(chip);
        });
        if (prefix === "part") showSplit(part, data.split[String(i)]);
      });
    });
  }

  function showSplit(part, pieces) {
    var box = part.querySelector("[data-part-split]");
    box.textContent = "";
    box.hidden = !(pieces && pieces.length > 1);
    if (box.hidden) return;
    var note = document.createElement("span");
    note.textContent = "Longer than a selected network allows. ";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.dataset.action = "split";
    button.dataset.pieces = JSON.stringify(pieces);
    button.textContent = "Split into " + pieces.length + " parts at sentence ends";
    box.appendChild(note);
    box.appendChild(button);
  }

  function showProblems(data) {
    var box = form.querySelector("[data-checks]");
    box.textContent = "";
    if (!data.channels.length) {
      box.innerHTML = '<p class="muted">Choose a channel to see its counters.</p>';
      return;
    }
    data.channels.forEach(function (channel) {
      var p = document.createElement("p");
      var ok = !channel.problems.length;
      p.className = ok ? "check-ok" : "field-error";
      p.textContent = channel.handle + " (" + channel.label + "): " + (ok ? "ready." : channel.problems.join(" "));
      box.appendChild(p);
    });
  }

  function showSlots(data) {
    ["queue", "next"].forEach(function (kind) {
      var list = form.querySelector("[data-slots=" + kind + "]");
      if (!list) return;
      list.textContent = "";
      selectedChannels().forEach(function (box) {
        var slot = data.slots[box.value] || {};
        var li = document.createElement("li");
        li.textContent = box.dataset.handle + ": " + (slot[kind] || (kind === "queue" ? "no free slot: set its posting schedule" : "no posting schedule yet"));
        list.appendChild(li);
      });
    });
  }

  function runCheck() {
    var seq = ++checkSeq;
    fetch(form.dataset.checkUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data || seq !== checkSeq) return;
        showCounters(data);
        showProblems(data);
        showSlots(data);
        var previews = form.querySelector("[data-previews]");
        previews.innerHTML = data.previews;  // rendered and escaped by the server
        if (window.htmx) window.htmx.process(previews);
      })
      .catch(function () { /* offline: the counters stay as they were; saving still checks */ });
  }

  // -- autosave and leaving -----------------------------------------------------------------------
  function autosave() {
    if (submitting || uploadsInFlight) { saveTimer = setTimeout(autosave, 1000); return; }
    var startedDirty = dirty;
    if (!startedDirty) return;
    dirty = false;
    fetch(form.dataset.autosaveUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (!data.saved) {
          statusLine.textContent = "Not autosaved: " + data.reason;
          dirty = true;
          return;
        }
        draftField.value = data.draft_id;
        statusLine.textContent = "Draft saved " + data.saved_at + ".";
        if (location.pathname !== data.edit_url) {
          form.action = data.edit_url;
          history.replaceState(null, "", data.edit_url);
        }
      })
      .catch(function () {
        dirty = true;
        statusLine.textContent = "Not autosaved: the server could not be reached. Your text is still here.";
      });
  }

  function labelSubmit() {
    var chosen = form.querySelector("[name=when]:checked");
    var button = form.querySelector("[data-submit]");
    if (chosen && WHEN_LABELS[chosen.value]) button.textContent = WHEN_LABELS[chosen.value];
  }

  form.addEventListener("click", onClick);
  form.addEventListener("input", function (event) {
    var alt = event.target.closest("[data-alt]");
    if (alt) alt.closest("[data-media-item]").querySelector("[data-alt-missing]").hidden = !!alt.value.trim();
    changed();
  });
  form.addEventListener("change", function (event) {
    if (event.target.matches("[data-media-input]")) {
      var part = event.target.closest("[data-part]");
      filesFrom(event.target.files).forEach(function (file) { upload(file, part); });
      event.target.value = "";
      return;
    }
    if (event.target.matches("[data-override-toggle]")) onOverrideToggle(event.target);
    if (event.target.matches("[data-channel]")) onChannelToggle();
    if (event.target.matches("[name=when]")) labelSubmit();
    changed();
  });
  form.addEventListener("dragover", function (event) {
    var zone = event.target.closest("[data-part]");
    if (zone && event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") !== -1) {
      event.preventDefault();
      zone.classList.add("dragging");
    }
  });
  form.addEventListener("dragleave", function (event) {
    var zone = event.target.closest("[data-part]");
    if (zone) zone.classList.remove("dragging");
  });
  form.addEventListener("drop", onDrop);
  form.addEventListener("paste", onPaste);
  form.addEventListener("submit", function () { submitting = true; });
  window.addEventListener("beforeunload", function (event) {
    if (dirty && !submitting) { event.preventDefault(); event.returnValue = ""; }
  });

  $all(form, "[data-part-list]").forEach(makeSortable);
  $all(form, "[data-media-list]").forEach(makeSortable);
  renumber();
  labelSubmit();
  onChannelToggle();
  if (selectedChannels().length) runCheck();
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
