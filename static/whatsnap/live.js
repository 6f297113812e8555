// Live updates: one websocket per page. Events name topics; every element whose
// data-live lists one of them re-fetches itself (hx-trigger="live"). Whenever the socket
// opens (the first time too: an event published between the page's render and the socket's
// open would otherwise be missed) and after a dropped connection reconnects with backoff,
// every live element refreshes, so the page catches up with whatever it missed.
(function () {
  const url = document.body.dataset.liveUrl;
  if (!url || !window.WebSocket) return;
  const badge = document.getElementById("live-state");
  let delay = 500;
  let everOpen = false;

  function setState(state) {
    document.body.dataset.liveState = state;
    if (badge) {
      badge.textContent = state === "open" ? "Live" : "Reconnecting…";
      badge.className = "live-state live-" + state;
    }
  }
  function busy(el) {
    // Someone is typing in it: a catch-up refresh must not wipe what they wrote.
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    return Array.prototype.some.call(el.querySelectorAll("input, textarea, select"), function (f) {
      if (f.tagName === "SELECT") return Array.prototype.some.call(f.options, function (o) { return o.selected !== o.defaultSelected; });
      if (f.type === "checkbox" || f.type === "radio") return f.checked !== f.defaultChecked;
      return f.value !== f.defaultValue;
    });
  }
  function refresh(filter, catchUp) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      const topics = el.dataset.live.split(/\s+/);
      if (catchUp && busy(el)) return;
      if (!filter || filter.some(function (t) { return topics.indexOf(t) !== -1; })) {
        htmx.trigger(el, "live");
      }
    });
  }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + url);
    ws.onopen = function () {
      delay = 500;
      setState("open");
      // The first open catches up only what nobody is editing; a reconnect, after a
      // possibly long gap, refreshes everything.
      refresh(null, !everOpen);
      everOpen = true;
    };
    ws.onmessage = function (e) {
      const msg = JSON.parse(e.data);
      refresh(msg.topics || []);
      document.dispatchEvent(new CustomEvent("whatsnap:live", { detail: msg }));
    };
    ws.onclose = function () {
      setState("closed");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  connect();

  // A live refresh re-renders its element: a menu or an edit form someone had open inside it
  // (a <details>), what they had typed there, where the caret was and how far they had
  // scrolled it survive the swap, so a message arriving while someone edits another one does
  // not close their form. Keys are the enclosing message (data-message) and the details'
  // class, the same in the new render. Restored right after the swap, in the same task: no
  // keystroke can fall between the old field and the new one. A scrolled element that was at
  // its bottom stays at its bottom (a thread shows what just arrived).
  const kept = {};
  function keyOf(node, root) {
    const msg = node.closest("[data-message]");
    const details = node.closest("details");
    return [msg && root.contains(msg) ? msg.dataset.message : "",
            details && root.contains(details) ? details.className : ""].join("|");
  }
  function fieldKey(f, root) { return keyOf(f, root) + "|" + (f.name || f.id); }
  // a live element re-rendered by its own refresh or by a form inside it (a reaction, an edit)
  function isLiveSwap(d) { return d.target.hasAttribute("data-live") && d.target.id && d.target.contains(d.elt); }
  document.addEventListener("htmx:beforeSwap", function (e) {
    const d = e.detail;
    if (!isLiveSwap(d) || !d.shouldSwap) return;
    const root = d.target;
    const state = { open: [], values: {}, focus: null, scroll: null };
    if (root.scrollHeight > root.clientHeight) {
      state.scroll = { top: root.scrollTop, atBottom: root.scrollHeight - root.scrollTop - root.clientHeight < 40 };
    }
    root.querySelectorAll("details[open]").forEach(function (el) { state.open.push(keyOf(el, root)); });
    root.querySelectorAll("input[type=text], input:not([type]), textarea").forEach(function (f) {
      if (f.value !== f.defaultValue) state.values[fieldKey(f, root)] = f.value;
    });
    const active = document.activeElement;
    if (active && root.contains(active) && active.name !== undefined) {
      state.focus = { key: fieldKey(active, root), start: active.selectionStart, end: active.selectionEnd };
    }
    kept[root.id] = state;
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    const d = e.detail;
    const id = d.target && d.target.id;
    const state = id && kept[id];
    if (!state) return;
    delete kept[id];
    const root = document.getElementById(id);
    if (!root) return;
    root.liveRefreshed = true;  // thread.js: not a newly opened thread, leave its scroll alone
    if (state.scroll) root.scrollTop = state.scroll.atBottom ? root.scrollHeight : state.scroll.top;
    root.querySelectorAll("details").forEach(function (el) {
      if (state.open.indexOf(keyOf(el, root)) !== -1) el.open = true;
    });
    root.querySelectorAll("input, textarea").forEach(function (f) {
      const key = fieldKey(f, root);
      if (Object.prototype.hasOwnProperty.call(state.values, key)) f.value = state.values[key];
      if (state.focus && state.focus.key === key) {
        f.focus();
        try { f.setSelectionRange(state.focus.start, state.focus.end); } catch (err) { /* not a text field */ }
      }
    });
  });
})();
