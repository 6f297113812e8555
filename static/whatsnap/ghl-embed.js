// WhatSnap as a custom page inside GoHighLevel (templates/ghl/embed.html, ghl/embed_views.py).
// GHL's documented handshake for custom pages: ask the parent frame for the user data with
// postMessage({message: "REQUEST_USER_DATA"}), and GHL answers with
// {message: "REQUEST_USER_DATA_RESPONSE", payload: <encrypted string>}. The payload goes to
// WhatSnap's server (which alone holds the Shared Secret); on success the frame goes on to
// the inbox, signed in.
(function () {
  "use strict";
  var box = document.getElementById("ghl-embed");
  var hint = document.getElementById("ghl-embed-hint");
  var loginLink = document.getElementById("ghl-embed-login");
  var answered = false;

  // What went wrong, in red; or (error false) where to go instead, in plain text.
  function fail(text, error) {
    box.textContent = text;
    box.classList.toggle("status-error", error !== false);
    var more = text === box.dataset.agency ? box.dataset.agencyHint : text === box.dataset.notConnected ? box.dataset.notConnectedHint : "";
    hint.textContent = more || "";
    hint.hidden = !more;
    loginLink.hidden = false;
  }

  if (window.parent === window) {
    fail(box.dataset.outside, false);
    return;
  }
  if (box.dataset.configured !== "yes") {
    fail(box.dataset.notConfigured);
    return;
  }
  var origins = (box.dataset.origins || "").split(" ").filter(Boolean);

  function signIn(payload) {
    fetch(box.dataset.signIn, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": box.dataset.csrf},
      body: JSON.stringify({encryptedData: payload})
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== 0) {
        if (response.redirected) {
          window.location.assign(response.url);  // sent on to a page (e.g. two-factor setup)
        } else {
          fail(response.status === 429 ? box.dataset.locked : "Signing in did not work (" + response.status + ").");
        }
        return null;
      }
      return response.json().then(function (body) {
        if (body.next) {
          window.location.assign(body.next);
        } else {
          // from the agency view: not an error, the wrong place
          fail(body.error || "Signing in did not work (" + response.status + ").", body.error === box.dataset.agency ? false : undefined);
        }
      });
    }).catch(function () {
      fail("WhatSnap could not be reached. Check the connection and reload.");
    });
  }

  window.addEventListener("message", function (event) {
    if (answered || event.source !== window.parent) return;
    if (origins.length && origins.indexOf(event.origin) === -1) return;  // only GHL's own frame
    var data = event.data || {};
    if (data.message !== "REQUEST_USER_DATA_RESPONSE") return;
    answered = true;
    signIn(data.payload);
  });
  window.parent.postMessage({message: "REQUEST_USER_DATA"}, "*");
  setTimeout(function () {
    if (!answered) fail(box.dataset.noAnswer);
  }, 15000);
})();
