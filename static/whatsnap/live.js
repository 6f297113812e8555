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
})();
