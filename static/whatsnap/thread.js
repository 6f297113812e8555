// Thread controls (the inbox and the sandbox phone):
// - "Reply" on a bubble (data-reply=<id>, data-reply-form=<form id>) puts that message in the
//   form's hidden reply_to and shows what is quoted; "Cancel" (data-reply-cancel) forgets it.
// - A quote (a.quote[data-quote]) scrolls to the quoted message when it is in the thread.
// - A reaction the backend refused comes as the live event "message.reaction_failed": its
//   reason is shown above the composer (#thread-notice).
// - The reaction picker and the phone's edit form close when sent.
// - A thread opens scrolled to its newest message.
(function () {
  function setReply(form, id, text) {
    if (!form) return;
    const input = form.querySelector("input[name=reply_to]");
    const preview = form.querySelector(".reply-preview");
    if (input) input.value = id || "";
    if (preview) {
      const label = preview.querySelector(".reply-preview-text");
      if (label) label.textContent = text || "";
      preview.hidden = !id;
    }
    const box = form.querySelector("textarea");
    if (id && box) box.focus();
  }

  document.addEventListener("click", function (e) {
    const reply = e.target.closest("[data-reply]");
    if (reply) {
      e.preventDefault();
      setReply(document.getElementById(reply.dataset.replyForm), reply.dataset.reply, reply.dataset.replyText);
      return;
    }
    const cancel = e.target.closest("[data-reply-cancel]");
    if (cancel) {
      e.preventDefault();
      setReply(cancel.closest("form"), "", "");
      return;
    }
    const quote = e.target.closest("a.quote[data-quote]");
    if (quote) {
      e.preventDefault();
      const original = document.querySelector('[data-message="' + quote.dataset.quote + '"]');
      if (!original) {
        quote.title = "The quoted message is further back in the thread (load older messages).";
        return;
      }
      original.scrollIntoView({ block: "center", behavior: "smooth" });
      original.classList.add("flash");
      setTimeout(function () { original.classList.remove("flash"); }, 1600);
    }
  });

  // htmx swaps the thread after a reaction or an edit: the picker or edit form that was open
  // closes as it is sent (a live refresh meanwhile must not bring it back); a form posted
  // without htmx (no JavaScript) reloads the page instead.
  document.addEventListener("submit", function (e) {
    const picker = e.target.closest("details.react, details.phone-edit");
    if (picker) picker.open = false;
  });

  // A thread opens at its newest message, as in any chat, unless the address names one; so
  // does a thread re-rendered by a send. A live refresh keeps where its reader was (live.js).
  function toNewest(scope) {
    const threads = scope.matches && scope.matches(".thread") ? [scope] : Array.from(scope.querySelectorAll(".thread"));
    threads.forEach(function (thread) {
      if (thread.liveRefreshed) return;
      const named = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
      if (named && thread.contains(named)) return;
      thread.scrollTop = thread.scrollHeight;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { toNewest(document); });
  document.addEventListener("htmx:load", function (e) { if (e.target !== document.body) toNewest(e.target); });

  document.addEventListener("whatsnap:live", function (e) {
    const msg = e.detail || {};
    if (msg.event !== "message.reaction_failed") return;
    const notice = document.getElementById("thread-notice");
    const thread = document.getElementById("thread");
    if (!notice || !thread || !msg.data) return;
    if (thread.dataset.live.split(/\s+/).indexOf("conversation:" + msg.data.conversation) === -1) return;
    notice.textContent = msg.data.error;
    notice.hidden = false;
  });
})();
