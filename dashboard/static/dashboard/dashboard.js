// mrdj ops dashboard: confirm bulk actions, run flush/replay without a reload, refresh the queue
// cards, say how long ago each time was, keep tables readable on a phone, count incident
// deadlines down, and draw the queues' history (uPlot, served from this site's static files).
(function () {
  "use strict";

  // The newest message replaces the last: one answer on screen, never a pile.
  function flash(text, level) {
    var box = document.getElementById("flash");
    if (!box) return;
    var line = document.createElement("p");
    line.className = "msg " + (level || "success");
    line.textContent = text;
    box.replaceChildren(line);
  }

  function fillList(list, items) {
    if (!list) return;
    list.replaceChildren.apply(list, items.map(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
  }

  function refreshQueues() {
    var grid = document.querySelector("[data-queues-url]");
    if (!grid) return Promise.resolve();
    return fetch(grid.dataset.queuesUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        document.querySelectorAll("[data-mode]").forEach(function (el) { el.textContent = data.queue_mode; });
        document.querySelectorAll("[data-generated]").forEach(function (el) { el.textContent = data.generated_at_text; });
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
          var problems = card.querySelector("[data-list=problems]");
          fillList(problems, q.problems);
          problems.hidden = !q.problems.length;
          fillList(card.querySelector("[data-list=causes]"), q.causes);
          card.querySelector("[data-causes]").hidden = !q.causes.length;
          card.querySelector("form.flush").dataset.confirm = q.queue + ": " + q.flush_text + ". Flush?";
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

  function spell(ms) {
    var s = Math.floor(Math.abs(ms) / 1000), m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    if (d) return d + " d " + (h % 24) + " h";
    if (h) return h + " h " + (m % 60) + " min";
    if (m) return m + " min " + (s % 60) + " s";
    return s + " s";
  }

  // Times are written by the server in TIME_ZONE with the zone; this adds "3 min ago".
  function relativeTimes() {
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (isNaN(moment)) return;
      var ago = el.nextElementSibling;
      if (!ago || !ago.classList.contains("ago")) {
        ago = document.createElement("span");
        ago.className = "ago";
        el.after(ago);
      }
      var left = moment - new Date();
      ago.textContent = " (" + (left > 0 ? "in " + spell(left) : spell(left) + " ago") + ")";
    });
  }
  relativeTimes();
  window.setInterval(relativeTimes, 15000);

  // On a phone the tables stack their cells; each cell then shows its column's name.
  document.querySelectorAll("table.list").forEach(function (table) {
    var names = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      return th.textContent.trim();
    });
    table.querySelectorAll("tbody tr").forEach(function (row) {
      Array.prototype.forEach.call(row.children, function (cell, index) {
        if (names[index] && !cell.hasAttribute("colspan")) cell.dataset.label = names[index];
      });
    });
  });

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

  // --- Charts: three per queue, with alerts and operator actions marked on the time axis.
  var CHARTS = {
    jobs: {
      title: "Jobs: backlog, waiting to retry, dead-letter",
      series: [["backlog", "Backlog", "#1f6feb"], ["retrying", "Waiting to retry", "#a35c00"],
               ["dead_letter", "Dead-letter", "#b3261e"]],
    },
    flow: {
      title: "Per minute: deliveries and failed tries",
      perMinute: true,
      series: [["delivered", "Delivered", "#1b7f3b"], ["failed", "Failed tries", "#b3261e"]],
    },
    latency: {
      title: "Seconds: delivery latency p50 and p95, retry age",
      seconds: true,
      series: [["latency_p50_ms", "Latency p50", "#1f6feb"], ["latency_p95_ms", "Latency p95", "#8250df"],
               ["retry_age_ms", "Retry age", "#a35c00"]],
    },
  };
  var MARK_COLOURS = { fired: "#b3261e", resolved: "#1b7f3b", action: "#5f6368" };

  function marksPlugin(marks) {
    return {
      hooks: {
        draw: function (u) {
          var ctx = u.ctx;
          ctx.save();
          marks.forEach(function (mark) {
            var x = Math.round(u.valToPos(mark.t, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.strokeStyle = MARK_COLOURS[mark.kind] || "#5f6368";
            ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
            ctx.setLineDash(mark.kind === "action" ? [4, 4] : []);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          });
          ctx.restore();
        },
      },
    };
  }

  function column(data, name, spec) {
    var scale = spec.perMinute ? 60 / data.resolution_s : spec.seconds ? 0.001 : 1;
    return data.series[name].map(function (value) { return value === null ? null : value * scale; });
  }

  function drawCharts(section) {
    var url = section.dataset.historyUrl + "?range=" + encodeURIComponent(section.dataset.range);
    var status = section.querySelector("[data-chart-status]");
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) {
        var zone = document.body.dataset.timeZone;
        var points = data.series.t.length;
        status.textContent = points
          ? points + " samples, one per " + data.resolution_s / 60 + " min; times in " + zone + "."
          : "No samples yet: mrdj records one per minute while it runs.";
        Object.keys(CHARTS).forEach(function (key) {
          var spec = CHARTS[key];
          var box = section.querySelector("[data-chart=" + key + "]");
          if (box.plot) box.plot.destroy();
          box.replaceChildren();
          var options = {
            title: spec.title,
            width: Math.max(box.clientWidth, 260),
            height: 180,
            tzDate: zone ? function (ts) { return uPlot.tzDate(new Date(ts * 1e3), zone); } : undefined,
            series: [{}].concat(spec.series.map(function (s) {
              return { label: s[1], stroke: s[2], width: 2, spanGaps: false };
            })),
            scales: { x: { time: true } },
            plugins: [marksPlugin(data.marks)],
          };
          var columns = [data.series.t].concat(spec.series.map(function (s) { return column(data, s[0], spec); }));
          box.plot = new uPlot(options, columns, box);
          box.setAttribute("role", "img");
          box.setAttribute("aria-label", spec.title + " over " + data.range);
        });
        var list = section.querySelector("[data-marks]");
        var when = new Intl.DateTimeFormat("en-GB", {
          timeZone: zone || undefined, dateStyle: "short", timeStyle: "medium",
        });
        fillList(list, data.marks.slice().reverse().map(function (mark) {
          return when.format(new Date(mark.t * 1000)) + ": " + mark.text;
        }));
        section.dataset.drawn = String(points);
      })
      .catch(function (problem) {
        status.textContent = "The history could not be loaded (" + problem + "); it is tried again shortly.";
      });
  }

  document.querySelectorAll("section.charts").forEach(function (section) {
    if (typeof uPlot === "undefined") return;
    section.querySelectorAll("[data-range]").forEach(function (button) {
      button.addEventListener("click", function () {
        section.dataset.range = button.dataset.range;
        section.querySelectorAll("button[data-range]").forEach(function (other) {
          other.setAttribute("aria-pressed", String(other === button));
        });
        drawCharts(section);
      });
    });
    drawCharts(section);
    window.setInterval(function () { drawCharts(section); }, 60000);
  });
  var resizing;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(function () {
      document.querySelectorAll("section.charts").forEach(drawCharts);
    }, 250);
  });
})();
