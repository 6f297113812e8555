// Notifications of a new message (templates/_shortcuts.html holds the banner and the URLs).
// A message arriving in a conversation assigned to me — or an unassigned one, when my
// preferences say so — raises the unread count in the tab title ("(3) Inbox · WhatSnap"),
// shows a browser notification and plays a sound (each as my preferences on /settings/ say),
// unless I am looking at that very conversation. Permission is asked only when I press a
// button (the banner, or the settings page), never on page load. The live events come from
// live.js ("whatsnap:live"); the count and my preferences from /inbox/notifications/.
(function () {
  const banner = document.getElementById("notify-banner");
  if (!banner || !document.body.dataset.liveUrl) return;
  let framed = true;
  try { framed = window.self !== window.top; } catch (e) { /* a cross-origin parent */ }
  // inside GHL's page (an iframe of another site) browsers refuse to ask: no banner there
  const supported = "Notification" in window && !framed;
  const LATER_KEY = "whatsnap.notify.later";          // "Not now": asked again a week later
  const LATER_MS = 7 * 24 * 3600 * 1000;
  const CLAIM_KEY = "whatsnap.notify.claimed";        // one tab notifies per message
  const RELOAD_ON = ["conversation.read", "conversation.unread", "conversation.assigned", "conversation.status"];
  let state = null;
  let timer = null;
  let audio = null;

  function baseTitle() { return document.title.replace(/^\(\d+\+?\)\s+/, ""); }
  function setTitle(n) {
    document.title = (n > 0 ? "(" + (n > 99 ? "99+" : n) + ") " : "") + baseTitle();
    document.body.dataset.unread = String(n);
  }
  function load() {
    return fetch(banner.dataset.stateUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        state = s;
        setTitle(s.unread);
        showBanner();
        permissionShown();
      })
      .catch(function () { /* offline for a moment: the next event or reconnect loads again */ });
  }
  function reload() {
    clearTimeout(timer);
    timer = setTimeout(load, 250);  // a burst of events, one request
  }

  // --- asking permission, politely ----------------------------------------------------------------
  function later() {
    try { return Date.now() - Number(localStorage.getItem(LATER_KEY) || 0) < LATER_MS; } catch (e) { return false; }
  }
  function showBanner() {
    banner.hidden = !(state && state.browser && supported && Notification.permission === "default" && !later());
    makeRoom();
  }
  // the banner floats over the page's foot: while it shows, the page gets that much room below
  // its last control (a phone's Connect or Send button), so scrolling brings anything clear of it
  function makeRoom() {
    document.body.style.paddingBottom = banner.hidden ? "" : (banner.offsetHeight + 24) + "px";
  }
  window.addEventListener("resize", function () { if (!banner.hidden) makeRoom(); });
  function permissionShown() {
    const text = document.querySelector("[data-notify-permission]");
    const ask = document.querySelector("#notification-prefs [data-notify-ask]");
    if (!text) return;
    let said, canAsk = false;
    if (!supported) said = framed ? "Open WhatSnap in its own tab to allow browser notifications; the tab title and the sound still tell."
      : "This browser does not show notifications; the tab title and the sound still tell.";
    else if (Notification.permission === "granted") said = "Allowed in this browser.";
    else if (Notification.permission === "denied") said = "Blocked in this browser: allow notifications for this site in the browser's site settings.";
    else { said = "Not allowed in this browser yet."; canAsk = true; }
    text.textContent = said;
    if (ask) ask.hidden = !canAsk;
  }
  function ask() {
    if (!supported) return;
    const asked = Notification.requestPermission(function () {});  // older browsers answer by callback only
    Promise.resolve(asked).then(function () { showBanner(); permissionShown(); });
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-notify-ask]")) {
      ask();
    } else if (e.target.closest("[data-notify-dismiss]")) {
      try { localStorage.setItem(LATER_KEY, String(Date.now())); } catch (err) { /* private mode */ }
      banner.hidden = true;
      makeRoom();
    } else if (e.target.closest("[data-notify-test-sound]")) {
      play();
    }
  });

  // --- a new message --------------------------------------------------------------------------
  function openConversation() {
    const m = location.pathname.match(/\/inbox\/(\d+)\//);
    return m ? Number(m[1]) : null;
  }
  function forMe(d) {
    return !!state && (d.assignee === state.me || (d.assignee == null && state.unassigned));
  }
  function lookingAt(d) {
    return document.visibilityState === "visible" && document.hasFocus() && openConversation() === d.conversation;
  }
  function claim(id) {
    // Several tabs of the location hear the same event: the first one to claim it notifies.
    try {
      const seen = (localStorage.getItem(CLAIM_KEY) || "").split(",");
      if (seen.indexOf(String(id)) !== -1) return false;
      localStorage.setItem(CLAIM_KEY, [String(id)].concat(seen).slice(0, 50).join(","));
    } catch (e) { /* no storage: every tab notifies */ }
    return true;
  }
  function once(id, notify) {
    // Tabs hear an event at the same moment, so reading then writing localStorage alone can let
    // two of them claim it. Where the browser has Web Locks, the first tab to take the message's
    // lock (held a few seconds) is the one that claims and notifies; the others skip it.
    if (!navigator.locks || !navigator.locks.request) { if (claim(id)) notify(); return; }
    navigator.locks.request("whatsnap-notify-" + id, {ifAvailable: true}, function (lock) {
      if (!lock || !claim(id)) return null;
      notify();
      return new Promise(function (resolve) { setTimeout(resolve, 5000); });
    });
  }
  function play() {
    if (!audio) audio = new Audio(banner.dataset.soundUrl);
    try { audio.currentTime = 0; } catch (e) { /* not loaded yet */ }
    const p = audio.play();
    if (p && p.catch) p.catch(function () { /* the browser wants a click on the page first */ });
  }
  function show(d) {
    if (!state.browser || !supported || Notification.permission !== "granted") return;
    const icon = document.querySelector("link[rel~=icon]");
    const url = banner.dataset.conversationUrl.replace(/\/0\/$/, "/" + d.conversation + "/");
    try {
      const n = new Notification(d.contact || "New message", {
        body: d.preview || "", tag: "whatsnap-conversation-" + d.conversation, renotify: true,
        icon: icon ? icon.href : undefined,
      });
      n.onclick = function () { window.focus(); n.close(); location.href = url; };
    } catch (e) {
      // Chrome on Android shows notifications only from a service worker: title and sound still tell.
    }
  }
  document.addEventListener("whatsnap:live", function (e) {
    const msg = e.detail || {};
    const d = msg.data || {};
    if (msg.event === "message.received") {
      if (!forMe(d)) return;
      reload();
      if (lookingAt(d)) return;
      once(d.message, function () { show(d); if (state.sound) play(); });
    } else if (RELOAD_ON.indexOf(msg.event) !== -1) {
      reload();
    }
  });

  // the socket (re)opened after a gap, or the tab came back: the count may have moved meanwhile
  new MutationObserver(function () {
    if (document.body.dataset.liveState === "open") reload();
  }).observe(document.body, { attributes: true, attributeFilter: ["data-live-state"] });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reload();
  });
  reload();  // merged with the socket's first open, usually a moment later
})();
