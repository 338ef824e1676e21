// A transfer's page follows its event stream: the progress bar and the status move as the
// server reports them, and the runs and objects are fetched again when a run ends.
(function () {
  "use strict";
  const FINAL = ["COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED"];

  function size(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let amount = bytes, unit = 0;
    while (amount >= 1024 && unit < units.length - 1) { amount /= 1024; unit += 1; }
    return unit === 0 ? amount + " B" : amount.toFixed(1) + " " + units[unit];
  }

  // Each section is its request's source: htmx drops a request from an element that has one
  // in flight, and the page (the default source) would have lost one refresh of two.
  function refresh(section) {
    if (window.htmx) {
      htmx.ajax("GET", window.location.pathname + window.location.search,
        {source: section, target: section, select: section, swap: "outerHTML"});
    }
  }

  function refreshDetails() { refresh("#details"); }

  function follow(live) {
    const bar = document.getElementById("bar");
    const status = document.getElementById("status");
    const moved = document.getElementById("moved");
    const rate = document.getElementById("rate");
    const source = new EventSource(live.dataset.events);

    source.addEventListener("progress", function (message) {
      const p = JSON.parse(message.data);
      if (p.bytes_total) { bar.value = Math.min(100, Math.round(100 * p.bytes_moved / p.bytes_total)); }
      moved.textContent = size(p.bytes_moved) + (p.bytes_total ? " of " + size(p.bytes_total) : "");
      rate.textContent = p.rate_bps ? size(Math.round(p.rate_bps)) + "/s" : "";
    });
    source.addEventListener("transfer", function (message) {
      const t = JSON.parse(message.data);
      status.textContent = t.status;
      status.className = "status " + t.status;
      if (t.status === "COMPLETED") { bar.value = 100; rate.textContent = ""; }
      if (FINAL.includes(t.status)) {
        source.close();
        const cancel = document.getElementById("cancel");
        if (cancel) { cancel.closest("form").remove(); }
        // The last progress event may predate the last object's end: the server's own
        // figures of the ended run replace the live ones.
        refresh("#live");
        refreshDetails();
      }
    });
    source.addEventListener("run", refreshDetails);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const live = document.getElementById("live");
    if (live && live.dataset.final !== "yes") { follow(live); }
  });
})();
