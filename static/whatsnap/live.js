// Live updates: one websocket per page. Events name topics; every element whose
// data-live lists one of them re-fetches itself (hx-trigger="live"). After a dropped
// connection the socket reconnects with backoff and refreshes every live element, so the
// page catches up with whatever it missed.
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
  function refresh(filter) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      const topics = el.dataset.live.split(/\s+/);
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
      if (everOpen) refresh(null);
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
