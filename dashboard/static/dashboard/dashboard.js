// mrdj ops dashboard: confirm bulk actions, run flush/replay without a reload, refresh the queue cards.
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

  var grid = document.querySelector("[data-queues-url]");
  if (grid) {
    window.setInterval(refreshQueues, Number(grid.dataset.refreshMs) || 5000);
  }
})();
