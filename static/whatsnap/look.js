// The look (issue 19): text cut short with an ellipsis shows its whole self on hover, even
// where a template gave it no title (a name in a table, a chip); an open menu (<details
// class="menu">) closes on a click outside it or Escape.
(function () {
  "use strict";
  function clipped(el) { return el.scrollWidth > el.clientWidth + 1; }
  document.addEventListener("mouseover", function (event) {
    var el = event.target && event.target.closest && event.target.closest(".trunc, .trunc-name, .chip, td, .preview");
    if (el && !el.hasAttribute("title") && clipped(el)) el.setAttribute("title", el.textContent.trim());
  });
  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) { if (menu !== except) menu.open = false; });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest ? event.target.closest("details.menu") : null);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeMenus(null);
  });
})();
