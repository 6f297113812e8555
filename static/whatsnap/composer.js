// The reply box's template picker: typing "/" at the start of the box opens a list of the
// location's templates (data: the #composer-templates JSON the page renders, merge fields
// already filled in for this conversation), filtered by what follows the "/" (name or
// shortcut). Arrow keys move, Enter or Tab inserts, Escape closes; a click inserts too.
// The composer is swapped by htmx after each send, so everything is delegated to document.
(function () {
  let active = 0;
  let shown = [];

  function box() { return document.getElementById("composer"); }
  function picker() { return document.getElementById("template-picker"); }
  function templates() {
    const data = document.getElementById("composer-templates");
    if (!data) return [];
    try { return JSON.parse(data.textContent) || []; } catch (e) { return []; }
  }

  // The "/query" being typed: the box starts with "/" and the caret is still in that word.
  function query(el) {
    const value = el.value;
    if (value.charAt(0) !== "/") return null;
    const upto = value.slice(1, el.selectionStart);
    if (/\s/.test(upto) || el.selectionStart < 1) return null;
    return upto.toLowerCase();
  }

  function matches(q) {
    const all = templates();
    const starts = [], contains = [];
    all.forEach(function (t) {
      const name = t.name.toLowerCase(), shortcut = (t.shortcut || "").toLowerCase();
      if (!q || shortcut.indexOf(q) === 0 || name.indexOf(q) === 0) starts.push(t);
      else if (shortcut.indexOf(q) !== -1 || name.indexOf(q) !== -1) contains.push(t);
    });
    return starts.concat(contains);
  }

  function close() {
    const list = picker(), el = box();
    if (list) { list.hidden = true; list.innerHTML = ""; }
    if (el) { el.setAttribute("aria-expanded", "false"); el.removeAttribute("aria-activedescendant"); }
    shown = [];
  }

  function render(q) {
    const list = picker(), el = box();
    if (!list || !el) return;
    shown = matches(q);
    list.innerHTML = "";
    if (!shown.length) {
      const empty = document.createElement("li");
      empty.className = "picker-empty muted";
      empty.textContent = templates().length ? "No template matches “" + q + "”." : "No templates yet: admins add them on the Templates page.";
      list.appendChild(empty);
    }
    shown.forEach(function (t, i) {
      const li = document.createElement("li");
      li.id = "template-option-" + t.id;
      li.setAttribute("role", "option");
      li.dataset.index = i;
      li.className = "picker-option" + (i === active ? " active" : "");
      li.setAttribute("aria-selected", i === active ? "true" : "false");
      const title = document.createElement("strong");
      title.textContent = t.name;
      li.appendChild(title);
      if (t.shortcut) {
        const code = document.createElement("code");
        code.textContent = "/" + t.shortcut;
        li.appendChild(document.createTextNode(" "));
        li.appendChild(code);
      }
      const text = document.createElement("span");
      text.className = "picker-text muted small";
      text.textContent = t.text.length > 90 ? t.text.slice(0, 90) + "…" : t.text;
      li.appendChild(text);
      list.appendChild(li);
    });
    list.hidden = false;
    el.setAttribute("aria-expanded", "true");
    if (shown[active]) el.setAttribute("aria-activedescendant", "template-option-" + shown[active].id);
  }

  function insert(t) {
    const el = box();
    if (!el || !t) return;
    const rest = el.value.slice(el.selectionStart);
    el.value = t.text + rest;
    const caret = t.text.length;
    el.setSelectionRange(caret, caret);
    close();
    el.focus();
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function update() {
    const el = box();
    if (!el) return;
    const q = query(el);
    if (q === null) { close(); return; }
    active = 0;
    render(q);
  }

  document.addEventListener("input", function (e) {
    if (e.target.id === "composer") update();
  });
  document.addEventListener("click", function (e) {
    if (e.target.id === "composer") { update(); return; }
    if (!e.target.closest("#template-picker")) close();
  });
  // mousedown, not click: the box keeps its focus and caret
  document.addEventListener("mousedown", function (e) {
    const option = e.target.closest("#template-picker .picker-option");
    if (!option) return;
    e.preventDefault();
    insert(shown[Number(option.dataset.index)]);
  });
  document.addEventListener("keydown", function (e) {
    if (e.target.id !== "composer") return;
    const list = picker();
    if (!list || list.hidden) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!shown.length) return;
      active = (active + (e.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      const q = query(e.target);
      render(q === null ? "" : q);
      const current = list.querySelector(".picker-option.active");
      if (current) current.scrollIntoView({ block: "nearest" });
    } else if (e.key === "Enter" || e.key === "Tab") {
      if (!shown.length) return;
      e.preventDefault();
      insert(shown[active]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      close();
    }
  });
  // closed when the composer itself is replaced, not by other parts refreshing live (the list)
  document.addEventListener("htmx:beforeSwap", function (e) {
    const list = picker(), target = e.detail && e.detail.target;
    if (list && target && target.contains(list)) close();
  });

  // A cancelled scheduled reply: its text comes back into the reply box when that is empty;
  // otherwise the note keeps showing it. The note is moved out of the scheduled list, which
  // refreshes itself live and would drop it.
  document.addEventListener("htmx:afterSwap", function () {
    const note = document.querySelector("#scheduled-messages [data-cancelled-text]");
    if (!note) return;
    const list = document.getElementById("scheduled-messages");
    const old = document.getElementById("scheduled-cancelled-note");
    if (old) old.remove();
    note.id = "scheduled-cancelled-note";
    list.parentNode.insertBefore(note, list);
    const el = box();
    if (el && !el.value.trim()) {
      el.value = note.dataset.cancelledText;
      el.dispatchEvent(new Event("input", { bubbles: true }));
      note.textContent = "Cancelled; its text is back in the reply box.";
    }
    note.removeAttribute("data-cancelled-text");
  });

  // The Schedule… popover opens below its button (never over the reply box), kept inside the
  // viewport's width, and scrolled into view; an error inside it is shown next to its field.
  function place(menu) {
    const pop = menu.querySelector(".schedule-pop");
    if (!pop || !menu.open) return;
    pop.style.left = "0px";
    const margin = 8, width = document.documentElement.clientWidth;
    const summary = menu.querySelector("summary").getBoundingClientRect();
    const popWidth = Math.min(pop.offsetWidth, width - 2 * margin);
    let left = summary.right - popWidth;  // right edges aligned, as a menu
    left = Math.max(margin, Math.min(left, width - margin - popWidth));
    pop.style.left = (left - summary.left) + "px";
    pop.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("toggle", function (e) {
    if (e.target.id === "schedule-menu") place(e.target);
  }, true);
  function placeOpen() {
    const menu = document.getElementById("schedule-menu");
    if (menu && menu.open) place(menu);
  }
  document.addEventListener("htmx:afterSettle", placeOpen);
  window.addEventListener("resize", placeOpen);
  document.addEventListener("DOMContentLoaded", placeOpen);
})();

// Reply / Private note tabs, and attachments: files chosen with "Attach", dropped onto the
// composer or pasted into the reply box are checked against what the chosen account's backend
// can send (#composer-limits: types, size; the server checks again and reads what a file is
// from its contents), uploaded at once (conversations/upload_views.py) and listed as chips
// with a × to take them back; Send carries their ids (`attachment`). Delegated to document:
// htmx swaps the composer after each send.
(function () {
  const NAMES = { "image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WebP", "application/pdf": "PDF",
    "audio/mpeg": "MP3", "audio/ogg": "OGG", "audio/mp4": "M4A", "audio/aac": "AAC", "audio/amr": "AMR", "audio/wav": "WAV",
    "audio/webm": "WebM audio" };
  const BY_EXTENSION = { jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", gif: "image/gif", webp: "image/webp",
    pdf: "application/pdf", mp3: "audio/mpeg", ogg: "audio/ogg", oga: "audio/ogg", opus: "audio/ogg", m4a: "audio/mp4",
    aac: "audio/aac", amr: "audio/amr", wav: "audio/wav", weba: "audio/webm" };
  const MAX_FILES = 10;  // one send; a backend carrying fewer per message gets several messages
  let uploading = 0;

  function form() { return document.getElementById("composer-form"); }
  function list() { return document.getElementById("composer-attachments"); }
  function isNote() { const n = document.getElementById("mode-note"); return !!(n && n.checked); }

  function limits() {
    const data = document.getElementById("composer-limits"), f = form();
    if (!data || !f) return null;
    let all = {};
    try { all = JSON.parse(data.textContent) || {}; } catch (e) { return null; }
    if (isNote()) return all.note;
    const select = f.querySelector("select[name=account]");
    return all[select && select.value ? select.value : f.dataset.defaultAccount] || null;
  }

  function sizeLabel(n) {
    if (n >= 1048576) return (Math.round(n / 104857.6) / 10) + " MB";
    if (n >= 1024) return Math.round(n / 1024) + " KB";
    return n + " bytes";
  }

  function showError(text) {
    const p = document.getElementById("attach-error");
    if (!p) return;
    p.textContent = text || "";
    p.hidden = !text;
  }

  function typeOf(file) {
    const named = (file.type || "").split(";")[0].trim().toLowerCase();
    if (named) return named === "audio/x-wav" || named === "audio/wave" ? "audio/wav" : named === "audio/mp3" ? "audio/mpeg" : named;
    const ext = (file.name.split(".").pop() || "").toLowerCase();
    return BY_EXTENSION[ext] || "";
  }

  // What the composer can say before uploading; "" when the file may go.
  function problem(file, lim) {
    if (!lim) return "";
    const type = typeOf(file);
    if (!file.size) return file.name + " is empty.";
    if (type && lim.types.indexOf(type) === -1) {
      const kinds = lim.types.map(function (t) { return NAMES[t] || t; }).filter(function (v, i, a) { return a.indexOf(v) === i; });
      return lim.label + " cannot send " + (NAMES[type] || type) + " files; it sends " + kinds.join(", ") + ".";
    }
    if (file.size > lim.max_file_bytes) return file.name + " is " + sizeLabel(file.size) + "; " + lim.label + " sends files up to " + sizeLabel(lim.max_file_bytes) + ".";
    return "";
  }

  function setBusy() {
    const send = document.getElementById("send-reply");
    if (send) send.disabled = uploading > 0;
  }

  function chip(name, size) {
    const li = document.createElement("li");
    li.className = "attachment-chip uploading";
    const kind = document.createElement("span");
    kind.className = "attachment-kind";
    kind.textContent = "…";
    const label = document.createElement("span");
    label.className = "attachment-name";
    label.textContent = name;
    label.title = name;
    const meta = document.createElement("span");
    meta.className = "muted small attachment-progress";
    meta.textContent = sizeLabel(size) + " · uploading";
    li.append(kind, label, meta);
    return li;
  }

  function done(li, data) {
    li.classList.remove("uploading");
    li.dataset.upload = data.id;
    const hidden = document.createElement("input");
    hidden.type = "hidden"; hidden.name = "attachment"; hidden.value = data.id;
    li.prepend(hidden);
    const kind = li.querySelector(".attachment-kind");
    if (data.kind === "image") {
      const img = document.createElement("img");
      img.src = data.url; img.alt = "";
      kind.replaceWith(img);
    } else {
      kind.textContent = data.content_type === "application/pdf" ? "PDF" : "♪";
    }
    li.querySelector(".attachment-progress").textContent = data.size_label;
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "link attachment-remove"; remove.textContent = "×"; remove.title = "Remove";
    remove.setAttribute("aria-label", "Remove " + data.filename);
    remove.dataset.removeUpload = data.remove_url;
    li.append(remove);
  }

  function csrf(f) {
    const input = f.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function upload(file) {
    const f = form(), ul = list();
    if (!f || !ul) return;
    const li = chip(file.name, file.size);
    ul.appendChild(li);
    const body = new FormData();
    body.append("file", file);
    body.append("mode", isNote() ? "note" : "reply");
    const select = f.querySelector("select[name=account]");
    if (select && select.value) body.append("account", select.value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", f.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", csrf(f));
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) li.querySelector(".attachment-progress").textContent = sizeLabel(file.size) + " · " + Math.round(100 * e.loaded / e.total) + "%";
    });
    uploading += 1; setBusy();
    xhr.addEventListener("loadend", function () {
      uploading -= 1; setBusy();
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      if (xhr.status === 201 && data) { done(li, data); return; }
      li.remove();
      showError((data && data.error) || (xhr.status ? "The file could not be uploaded (" + xhr.status + ")." : "The file could not be uploaded: the connection failed."));
    });
    xhr.send(body);
  }

  function attach(files) {
    const ul = list();
    if (!ul || !files || !files.length) return;
    showError("");
    const lim = limits(), refused = [];
    let count = ul.querySelectorAll(".attachment-chip").length;
    Array.prototype.forEach.call(files, function (file) {
      if (count >= MAX_FILES) { refused.push("At most " + MAX_FILES + " files go with one send; " + file.name + " was not attached."); return; }
      const why = problem(file, lim);
      if (why) { refused.push(why); return; }
      count += 1;
      upload(file);
    });
    if (refused.length) showError(refused.join(" "));
  }

  function syncMode() {
    const f = form();
    if (!f) return;
    const note = isNote(), box = document.getElementById("composer"), send = document.getElementById("send-reply");
    f.classList.toggle("is-note", note);
    if (box) box.placeholder = note ? box.dataset.notePlaceholder : box.dataset.replyPlaceholder;
    if (send) send.textContent = note ? send.dataset.noteLabel : send.dataset.replyLabel;
    const lim = limits(), hint = document.getElementById("attach-limits"), input = document.getElementById("composer-files");
    if (lim && hint) { hint.textContent = lim.summary; hint.title = lim.summary; }
    if (lim && input) input.accept = lim.types.join(",");
  }

  document.addEventListener("change", function (e) {
    if (e.target.id === "composer-files") {
      attach(e.target.files);
      e.target.value = "";  // uploaded already: the send carries ids, not the files again
    } else if (e.target.name === "mode" || (e.target.name === "account" && e.target.closest("#composer-form"))) {
      syncMode();
    }
  });
  document.addEventListener("click", function (e) {
    const remove = e.target.closest("[data-remove-upload]");
    if (!remove) return;
    const li = remove.closest(".attachment-chip"), f = form();
    li.remove();
    showError("");
    fetch(remove.dataset.removeUpload, { method: "POST", headers: { "X-CSRFToken": csrf(f) }, credentials: "same-origin" }).catch(function () {});
  });
  document.addEventListener("paste", function (e) {
    if (e.target.id !== "composer" || !e.clipboardData || !e.clipboardData.files.length) return;
    e.preventDefault();
    attach(e.clipboardData.files);
  });
  function dragTarget(e) { return e.target.closest && e.target.closest("#composer-form"); }
  function hasFiles(e) { return e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types || [], "Files") !== -1; }
  document.addEventListener("dragover", function (e) {
    const f = dragTarget(e);
    if (!f || !hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    f.classList.add("dragging");
  });
  document.addEventListener("dragleave", function (e) {
    const f = dragTarget(e);
    if (f && !f.contains(e.relatedTarget)) f.classList.remove("dragging");
  });
  document.addEventListener("drop", function (e) {
    const f = dragTarget(e);
    if (!f || !hasFiles(e)) return;
    e.preventDefault();
    f.classList.remove("dragging");
    attach(e.dataTransfer.files);
  });
  document.addEventListener("htmx:afterSwap", syncMode);
  document.addEventListener("DOMContentLoaded", syncMode);
  // a send while a file is still uploading would leave it behind
  document.addEventListener("htmx:confirm", function (e) {
    if (uploading > 0 && e.target.id === "composer-form") { e.preventDefault(); showError("Wait for the files to finish uploading."); }
  });

  // A reply leaves at once, as in any chat: the box clears when it is sent, and what is typed
  // while the answer is on its way is still in the box after the answer replaces the composer,
  // in the mode (reply or private note) it was typed in. If the send did not go through (an
  // error answer, no network, signed out), its text comes back, above anything typed since.
  // Send is disabled while a send is out (hx-disabled-elt): htmx would queue a second send on
  // the form the answer replaces, and never send it. What is kept travels on the request.
  function fromComposer(e) {
    const from = e.detail.requestConfig && e.detail.requestConfig.elt;  // (detail.elt is the target)
    return from && from.id === "composer-form" && e.detail.xhr;
  }
  function modeNow() { return isNote() ? "note" : "reply"; }
  function setMode(mode) {
    const radio = document.getElementById("mode-" + mode);
    if (radio && !radio.checked) { radio.checked = true; syncMode(); }
  }
  function box() { return document.querySelector("#composer-form textarea[name=text]"); }
  document.addEventListener("htmx:beforeRequest", function (e) {
    const xhr = fromComposer(e), b = box();
    if (!xhr || !b) return;
    xhr.composerSent = { text: b.value, mode: modeNow() };
    b.value = "";
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    const xhr = fromComposer(e), b = box();
    if (!xhr || !b || !e.detail.shouldSwap) return;
    xhr.composerTyped = b.value ? { text: b.value, mode: modeNow() } : null;
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    const xhr = fromComposer(e), typed = xhr && xhr.composerTyped, b = box();
    if (xhr) xhr.composerSwapped = true;
    if (!typed || !b) return;
    xhr.composerTyped = null;
    if (b.value) {  // the answer brought the failed text back with its error
      b.value = b.value + "\n" + typed.text;
    } else {
      setMode(typed.mode);
      b.value = typed.text;
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    const xhr = fromComposer(e), sent = xhr && xhr.composerSent, b = box();
    if (!sent || !b || xhr.composerSwapped) return;  // answered (with its error, if any)
    xhr.composerSent = null;
    if (!sent.text || b.value.indexOf(sent.text) === 0) return;
    b.value = b.value ? sent.text + "\n" + b.value : sent.text;
    setMode(sent.mode);
  });
})();
