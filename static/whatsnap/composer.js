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
