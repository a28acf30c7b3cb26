// The overview refreshes itself: every few seconds its fragment is fetched and
// swapped in, without a full reload. A failed fetch leaves the last view and says so.
(function () {
  "use strict";
  const box = document.getElementById("overview");
  if (!box) return;
  const url = box.dataset.refreshUrl;
  const every = Math.max(500, 1000 * parseFloat(box.dataset.refreshSeconds || "5"));

  function drawn(root) {
    // A thumbnail's placeholder shows until the CDN image has loaded.
    root.querySelectorAll("img.full").forEach(function (img) {
      if (img.complete && img.naturalWidth > 0) img.classList.add("loaded");
      else img.addEventListener("load", function () { img.classList.add("loaded"); }, { once: true });
    });
  }

  async function refresh() {
    try {
      const response = await fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      box.innerHTML = await response.text();
      box.classList.remove("stale");
      drawn(box);
    } catch (error) {
      box.classList.add("stale");
      box.title = "not refreshed: " + error.message;
    } finally {
      setTimeout(refresh, every);
    }
  }

  drawn(box);
  setTimeout(refresh, every);
})();
