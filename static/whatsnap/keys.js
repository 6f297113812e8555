// Keyboard shortcuts (listed on the "?" overlay, templates/_shortcuts.html): j / k next and
// previous conversation, r reply, n private note, e resolve, a assign to me, / search.
// They never fire while someone types in a field (the reply box's own "/" opens its template
// picker there); Esc leaves a field. Each key presses what a mouse would: the list's links,
// the composer's reply/note choice, the header's Resolve button, the panel's assignee form.
(function () {
  const overlay = document.getElementById("shortcuts");
  if (!overlay) return;
  const notice = document.getElementById("shortcut-notice");
  let noticeTimer = null;

  function say(text) {
    if (!notice) return;
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () { notice.hidden = true; }, 2500);
  }
  function typing(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    if (el.tagName !== "INPUT") return false;
    return ["button", "submit", "reset", "checkbox", "radio", "range", "color", "file", "image", "hidden"].indexOf(el.type) === -1;
  }
  function visible(el) { return !!el && el.getClientRects().length > 0; }

  // --- the keys ------------------------------------------------------------------------------------
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#conversation-list [data-conversation]"));
  }
  function currentIndex(list) {
    const m = location.pathname.match(/\/inbox\/(\d+)\//);
    const open = m ? m[1] : null;
    for (let i = 0; i < list.length; i++) {
      if (list[i].dataset.conversation === open || list[i].classList.contains("active")) return i;
    }
    return -1;
  }
  function step(delta) {
    const list = rows();
    if (!list.length) return say(document.getElementById("conversation-list") ? "No conversations in this list." : "Open the inbox to move between conversations.");
    const i = currentIndex(list);
    const next = i === -1 ? (delta > 0 ? 0 : list.length - 1) : i + delta;
    if (next < 0 || next >= list.length) return say(delta > 0 ? "That was the last conversation on this page." : "That was the first conversation on this page.");
    const link = list[next].matches("a[href]") ? list[next] : list[next].querySelector("a[href]");
    (link || list[next]).click();
  }
  function composer() { return document.getElementById("composer"); }
  function mode(which) {
    // The reply/note choice: a tab or radio marked data-composer-mode, else the form's "mode" radio.
    const form = document.getElementById("composer-form");
    const box = composer();
    if (!form || !box) return say("Open a conversation to " + (which === "note" ? "write a note." : "reply."));
    const choice = form.querySelector('[data-composer-mode="' + which + '"]') ||
      form.querySelector('input[name="mode"][value="' + which + '"]') || document.getElementById("mode-" + which);
    if (choice && choice.disabled) return say(which === "note" ? "Notes are not possible here." : "Replies are not possible here.");
    if (choice && !(choice.type === "radio" && choice.checked) && choice.getAttribute("aria-selected") !== "true") choice.click();
    box.focus();
    const end = box.value.length;
    box.setSelectionRange(end, end);
  }
  function resolve() {
    const button = document.querySelector('#conversation-header button[name="action"][value="resolved"]') ||
      document.querySelector('button[name="action"][value="resolved"]');
    if (button) return button.click();
    if (document.querySelector('button[name="action"][value="open"]')) return say("This conversation is already resolved.");
    say("Open a conversation to resolve it.");
  }
  function assignToMe() {
    const me = overlay.dataset.me;
    const mine = document.querySelector("[data-assign-me]");
    if (mine) return mine.click();
    const select = document.querySelector('#contact-panel select[name="assignee"]') || document.querySelector('select[name="assignee"]');
    if (!select) return say("Open a conversation to assign it to yourself.");
    if (select.value === me) return say("It is assigned to you already.");
    const option = Array.prototype.find.call(select.options, function (o) { return o.value === me; });
    if (!option) return say("You cannot be assigned conversations here.");
    select.value = me;
    const form = select.form;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }
  function search() {
    const field = document.querySelector("[data-shortcut-search]") ||
      Array.prototype.find.call(document.querySelectorAll('input[type="search"]'), visible);
    if (field) {
      field.focus();
      field.select();
    } else {
      location.href = overlay.dataset.inboxUrl + "#search";
    }
  }
  function toggleOverlay() {
    if (overlay.open) overlay.close();
    else if (overlay.showModal) overlay.showModal();
    else overlay.setAttribute("open", "");
  }
  const KEYS = {
    j: function () { step(1); }, k: function () { step(-1); },
    r: function () { mode("reply"); }, n: function () { mode("note"); },
    e: resolve, a: assignToMe, "/": search, "?": toggleOverlay,
  };

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    if (e.key === "Escape") {
      // leave the field (the template picker takes its own Escape first: defaultPrevented)
      if (typing(target) && !overlay.open) target.blur();
      return;
    }
    if (typing(target)) return;
    if (overlay.open && e.key !== "?") return;  // the dialog's own keys (Esc, Tab) only
    if (document.querySelector("dialog[open]:not(#shortcuts)")) return;  // another dialog is up
    const action = KEYS[e.key];
    if (!action) return;
    e.preventDefault();  // "/" must not type into the field it focuses
    action();
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-shortcuts-open]") && !overlay.open) toggleOverlay();
  });
  overlay.addEventListener("click", function (e) {
    if (e.target !== overlay) return;
    const r = overlay.getBoundingClientRect();  // the backdrop, not the dialog's own padding
    if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) overlay.close();
  });
  if (location.hash === "#search") {
    const field = document.querySelector('[data-shortcut-search], input[type="search"]');
    if (field) field.focus();
  }
})();
