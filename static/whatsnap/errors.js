// A request htmx makes that fails is never swallowed: a 4xx/5xx answer that is not swapped,
// a network failure or a timeout shows a visible message (role="alert") saying what happened
// and what to do. A session that ended (the answer is the sign-in page) says so instead of
// showing the sign-in form inside a part of the page. The message stays until closed; a
// "no connection" message goes by itself once a request succeeds again.
(function () {
  "use strict";

  // How errors look (here, with the behaviour): a refused form's message and the request
  // message read as errors, never in the green of a success.
  var css = document.createElement("style");
  css.textContent =
    ".messages li.error{background:#fdecec;border-color:#f3b8b8;color:#7f1d1d}" +
    ".messages li.warning{background:#fff7e6;border-color:#f5d9a8}" +
    "#request-error{position:fixed;z-index:1000;left:50%;bottom:1.25rem;transform:translateX(-50%);" +
    "width:max-content;max-width:min(560px,calc(100vw - 2rem));box-sizing:border-box;display:flex;gap:.75rem;" +
    "align-items:flex-start;padding:.75rem 1rem;border-radius:8px;background:#7f1d1d;color:#fff;" +
    "box-shadow:0 6px 24px rgba(0,0,0,.25);font-size:14px;line-height:1.4;overflow-wrap:anywhere}" +
    "#request-error[hidden]{display:none}" +
    "#request-error a{color:#fff;text-decoration:underline;margin-left:.35rem}" +
    "#request-error button{margin-left:auto;flex:none;background:transparent;border:1px solid rgba(255,255,255,.6);" +
    "color:#fff;border-radius:6px;padding:.1rem .5rem;cursor:pointer;font:inherit}";
  document.head.appendChild(css);

  function box() {
    var el = document.getElementById("request-error");
    if (el) return el;
    el = document.createElement("div");
    el.id = "request-error";
    el.setAttribute("role", "alert");
    el.hidden = true;
    el.innerHTML = '<span class="request-error-text"></span>' +
      '<button type="button" aria-label="Close this message">Close</button>';
    el.querySelector("button").addEventListener("click", function () { hide(); });
    document.body.appendChild(el);
    return el;
  }

  function show(text, kind, link) {
    var el = box();
    var span = el.querySelector(".request-error-text");
    span.textContent = text;
    if (link) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.label;
      span.appendChild(a);
    }
    el.dataset.kind = kind;
    el.hidden = false;
  }

  function hide() {
    var el = document.getElementById("request-error");
    if (!el) return;
    el.hidden = true;
  }

  function squash(text) {
    return (text || "").replace(/\s+/g, " ").trim();
  }

  // What the server said, when it said something people can read: the styled error page
  // (#error-page: its heading and first paragraph), a JSON {"detail"} or {"error"}, a short text.
  function said(xhr) {
    var body = xhr.responseText || "";
    var type = (xhr.getResponseHeader("Content-Type") || "").toLowerCase();
    if (type.indexOf("json") >= 0) {
      try {
        var data = JSON.parse(body);
        return squash(data.detail || data.error || "");
      } catch (e) { return ""; }
    }
    if (type.indexOf("html") >= 0 || /^\s*</.test(body)) {
      var doc = new DOMParser().parseFromString(body, "text/html");
      var page = doc.getElementById("error-page");
      if (page) {
        var h = page.querySelector("h1"), p = page.querySelector("p");
        return squash((h ? h.textContent + ". " : "") + (p ? p.textContent : ""));
      }
      var list = doc.querySelector(".errorlist, .error, .messages");
      return list ? squash(list.textContent) : "";
    }
    return body.length <= 300 ? squash(body) : "";
  }

  function verbOf(detail) {
    var cfg = detail.requestConfig || {};
    return (cfg.verb || "get").toLowerCase();
  }

  function fallback(status, verb) {
    var unsaved = verb === "get" ? "" : " Nothing was changed.";
    if (status === 400) return "The request was refused as it was sent." + unsaved + " Reload the page and try again.";
    if (status === 403) return "Not allowed: your role in this location does not allow this." + unsaved;
    if (status === 404) return "Not found: what you acted on was deleted or moved. Reload the page to see what is there now.";
    if (status === 409) return "Someone changed this at the same time." + unsaved + " Reload the page and try again.";
    if (status === 413) return "That is too large to send.";
    if (status === 429) return "Too many tries in a short time; wait a minute and try again.";
    if (status >= 500) return "Something went wrong on our side (error " + status + "). The error was logged; try again in a moment.";
    return "The request failed (error " + status + ")." + unsaved;
  }

  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr, status = xhr.status;
    var text = said(xhr);
    if (status === 403 && /CSRF/i.test(xhr.responseText || "")) {
      show("This page was open too long (its security token expired). Reload the page and do it again.", "http",
           { href: location.href, label: "Reload" });
      return;
    }
    show(text || fallback(status, verbOf(e.detail)), "http");
  });

  function offline(e) {
    var verb = verbOf(e.detail);
    show(verb === "get"
      ? "No connection to WhatSnap: this part of the page could not be updated. Check the network; it updates again once it is back."
      : "No connection to WhatSnap: what you sent may not have arrived. Check the network and try again.", "network");
  }
  document.addEventListener("htmx:sendError", offline);
  document.addEventListener("htmx:timeout", offline);

  // A swap or target error is ours, not the person's: still, something they asked for did not happen.
  document.addEventListener("htmx:targetError", function () {
    show("This part of the page could not be updated. Reload the page.", "http", { href: location.href, label: "Reload" });
  });

  // The session ended (signed out elsewhere, expired): htmx followed the redirect to the sign-in
  // page; it is not swapped into a part of this page.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var xhr = e.detail.xhr;
    if (!xhr || !xhr.responseURL) return;
    var path;
    try { path = new URL(xhr.responseURL).pathname; } catch (err) { return; }
    var asked = (e.detail.pathInfo && e.detail.pathInfo.requestPath) || "";
    if (/\/login\/?$/.test(path) && asked.indexOf("/login") < 0) {
      e.detail.shouldSwap = false;
      show("You are signed out (the session ended). Sign in again to continue.", "http",
           { href: path + "?next=" + encodeURIComponent(location.pathname + location.search), label: "Sign in" });
    }
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var el = document.getElementById("request-error");
    if (el && !el.hidden && el.dataset.kind === "network" && e.detail.successful) hide();
  });
})();
