// mrdj ops dashboard: confirm bulk actions, run flush/replay without a reload, refresh the queue cards,
// show times in the operator's timezone and count incident deadlines down.
(function () {
  "use strict";

  function flash(text, level) {
    var box = document.getElementById("flash");
    if (!box) return;
    var line = document.createElement("p");
    line.className = "msg " + (level || "success");
    line.textContent = text;
    box.prepend(line);
  }

  function refreshQueues() {
    var grid = document.querySelector("[data-queues-url]");
    if (!grid) return Promise.resolve();
    return fetch(grid.dataset.queuesUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        document.querySelectorAll("[data-mode]").forEach(function (el) { el.textContent = data.queue_mode; });
        document.querySelectorAll("[data-generated]").forEach(function (el) { el.textContent = data.generated_at; });
        data.queues.forEach(function (q) {
          var card = document.getElementById("queue-" + q.queue);
          if (!card) return;
          card.querySelectorAll("[data-field]").forEach(function (el) { el.textContent = q[el.dataset.field]; });
          card.dataset.severity = q.severity;
          var badge = card.querySelector(".badge");
          badge.textContent = q.severity;
          badge.className = "badge " + q.severity;
          var hint = card.querySelector(".hint");
          hint.textContent = q.hint;
          hint.hidden = !q.hint;
          card.querySelector("form.flush").dataset.confirm =
            "Flush " + q.waiting_retry + " job(s) waiting to retry on " + q.queue + "?";
          card.querySelector("form.replay").dataset.confirm =
            "Replay " + q.dead_letter + " dead-letter job(s) on " + q.queue + "?";
        });
      })
      .catch(function () { /* offline for a moment: the next refresh tries again */ });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (!("async" in form.dataset)) return;  // a plain post: the server answers with a redirect
    event.preventDefault();
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().then(
          function (data) { flash(data.message || data.error, response.ok ? data.level : "error"); },
          function () { flash("The server answered " + response.status + ".", "error"); }
        );
      })
      .then(refreshQueues);
  });

  // Times in the operator's own timezone (the server renders them in TIME_ZONE as a fallback).
  var localTime = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var moment = new Date(el.getAttribute("datetime"));
    if (!isNaN(moment)) el.textContent = localTime.format(moment);
  });

  function spell(ms) {
    var s = Math.floor(Math.abs(ms) / 1000), m = Math.floor(s / 60), h = Math.floor(m / 60);
    if (h) return h + " h " + (m % 60) + " min";
    if (m) return m + " min " + (s % 60) + " s";
    return s + " s";
  }

  function countDown() {
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = new Date(el.dataset.deadline) - new Date();
      var out = el.querySelector(".countdown");
      out.textContent = left > 0 ? "in " + spell(left) : "overdue by " + spell(left);
      out.classList.toggle("overdue", left <= 0);
    });
  }
  if (document.querySelector("[data-deadline]")) {
    countDown();
    window.setInterval(countDown, 1000);
  }

  var grid = document.querySelector("[data-queues-url]");
  if (grid) {
    window.setInterval(refreshQueues, Number(grid.dataset.refreshMs) || 5000);
  }
})();
