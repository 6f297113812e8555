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
        fire(el);
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

  // htmx fires a request's events on the element that made it. When that element was replaced
  // while the request was out (a live refresh overtaken by a send's answer), it is no longer in
  // the page and its events never reach the document. So the handlers below are attached to
  // every live element as well, and each runs once per event, where the event reaches it first.
  const handlers = [];
  function on(type, fn) {
    function once(e) {
      const seen = e.whatsnapSeen || (e.whatsnapSeen = []);
      if (seen.indexOf(fn) !== -1) return;
      seen.push(fn);
      fn(e);
    }
    handlers.push([type, once]);
    document.addEventListener(type, once);
  }
  // the live elements in root, root included (every live element has an id)
  function liveIn(root) {
    const live = Array.prototype.slice.call(root.querySelectorAll("[data-live][id]"));
    if (root.id && root.hasAttribute("data-live")) live.push(root);
    return live;
  }
  htmx.onLoad(function (root) {
    if (!root.querySelectorAll) return;
    liveIn(root).forEach(function (el) {
      handlers.forEach(function (h) { el.addEventListener(h[0], h[1]); });
      el.whatsnapLoaded = true;
      const flight = flights[el.id];
      if (flight && flight.afterLoad) {
        delete flights[el.id];
        fire(el);
      }
    });
  });

  // One refresh per live element at a time, and none lost. An event that arrives while the
  // element's refresh is out may describe a change that refresh read too early. htmx would
  // queue the second request on the element, but the first one's answer replaces that element
  // and htmx then never sends the queued request: the change stayed off the page until the
  // next event. Instead the element is fetched once more when its refresh is back, however
  // many events came meanwhile.
  const flights = {};  // id → { more: an event came meanwhile, since, afterLoad }
  function fire(el) {
    const flight = el.id && flights[el.id];
    if (flight && Date.now() - flight.since < 30000) {  // (a request that hangs does not stop refreshes)
      flight.more = true;
      return;
    }
    if (flight) delete flights[el.id];
    if (el.id && !el.whatsnapLoaded) {
      // just swapped in, not yet wired (htmx does that when the swap settles, ~20 ms later): an
      // event now would find no listener, so it waits for the element's load
      flights[el.id] = { more: true, since: Date.now(), afterLoad: true };
      return;
    }
    htmx.trigger(el, "live");
  }
  document.addEventListener("htmx:beforeSend", function (e) {
    const el = e.detail.elt;
    if (el.id && el.hasAttribute("data-live")) flights[el.id] = { more: false, since: Date.now(), afterLoad: false };
  });
  on("htmx:afterRequest", function (e) {
    const el = e.detail.elt;
    const flight = el.id && el.hasAttribute("data-live") && flights[el.id];
    if (!flight || flight.afterLoad) return;
    delete flights[el.id];
    if (!flight.more) return;
    const current = document.getElementById(el.id);
    if (!current) return;
    if (current === el || current.whatsnapLoaded) {  // not replaced, or already wired
      fire(current);
    } else {  // replaced: htmx wires the new element when the swap settles
      flight.afterLoad = true;
      flight.since = Date.now();
      flights[el.id] = flight;
    }
  });

  // Newest request wins. A live part of the page can be rendered by two requests in flight at
  // once: a send's own answer (read before the worker filed the message) and the live refresh
  // the filing set off. htmx aims each answer at the element that was there when the request
  // left; when an answer replaced it meanwhile, htmx drops the other answer without a word, so
  // an older render could stay over a newer one. Here every request is numbered when issued
  // and each live element remembers the number of the request that rendered it:
  // - an answer for a live element that was replaced meanwhile goes to its successor;
  // - an answer older than what that live element already shows is dropped;
  // - an answer that re-renders live elements inside a larger block (a reply's thread and
  //   composer) is swapped, and each live element in it that had been newer fetches itself again.
  let issued = 0;
  function redirected(d) {
    try {
      const asked = new URL(d.pathInfo.requestPath, location.href).pathname;
      return new URL(d.xhr.responseURL).pathname !== asked;
    } catch (err) { return true; }
  }
  document.addEventListener("htmx:beforeRequest", function (e) { e.detail.xhr.whatsnapIssued = ++issued; });
  on("htmx:beforeSwap", function (e) {
    const d = e.detail;
    const n = d.xhr && d.xhr.whatsnapIssued;
    if (!n || !d.target || !d.shouldSwap) return;
    if (!d.target.isConnected && d.target.id && d.target.hasAttribute("data-live")) {
      // only the same view (a filter or page picked meanwhile stands) and only an answer from
      // the address asked (a redirect to the sign-in page is not swapped in; errors.js says so)
      const successor = document.getElementById(d.target.id);
      if (!successor || successor.getAttribute("hx-get") !== d.target.getAttribute("hx-get")) return;
      if (redirected(d)) return;
      d.target = successor;
    }
    if (d.target.hasAttribute("data-live") && (d.target.whatsnapShown || 0) > n) {
      d.shouldSwap = false;
      return;
    }
    d.xhr.whatsnapBefore = liveIn(d.target).map(function (el) { return { id: el.id, old: el, shown: el.whatsnapShown || 0 }; });
  });
  on("htmx:afterSwap", function (e) {
    const xhr = e.detail.xhr;
    const n = xhr && xhr.whatsnapIssued;
    const was = n && xhr.whatsnapBefore;
    if (!was) return;
    delete xhr.whatsnapBefore;
    const stale = [];
    was.forEach(function (w) {
      const el = document.getElementById(w.id);
      if (!el || el === w.old) return;  // gone, or not re-rendered by this answer
      el.whatsnapShown = n;
      if (w.shown > n) stale.push(el);
    });
    xhr.whatsnapStale = stale;
  });
  // htmx wires the new elements' triggers when the swap settles
  on("htmx:afterSettle", function (e) {
    const xhr = e.detail.xhr;
    const stale = xhr && xhr.whatsnapStale;
    if (!stale) return;
    delete xhr.whatsnapStale;
    stale.forEach(function (el) { if (el.isConnected) fire(el); });
  });

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
  // a live element re-rendered by its own refresh or by a form inside it (a reaction, an edit);
  // htmx fires the swap events on the target, so detail.elt is the target itself
  function isLiveSwap(d) {
    return d.target.hasAttribute("data-live") && d.target.id && (d.target.contains(d.elt) || d.elt.id === d.target.id);
  }
  on("htmx:beforeSwap", function (e) {
    const d = e.detail;
    if (!isLiveSwap(d) || !d.shouldSwap) return;
    const root = d.target;
    const state = { open: [], values: {}, focus: null, scroll: null };
    // (a thread that did not scroll yet shows its newest message: it stays at its bottom)
    if (root.scrollHeight > root.clientHeight || root.classList.contains("thread")) {
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
  on("htmx:afterSwap", function (e) {
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
