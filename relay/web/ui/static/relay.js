// Small enhancements; every page works without them.
(function () {
  "use strict";

  function csrf(form) {
    var field = form.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("#test-button");
    if (button && window.fetch) {
      event.preventDefault();
      var form = button.form;
      var output = document.querySelector(button.getAttribute("data-test-target"));
      button.disabled = true;
      button.textContent = "Testing…";
      fetch(button.getAttribute("formaction"), {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: {"X-Requested-With": "fetch", "X-CSRF-Token": csrf(form)}
      }).then(function (response) { return response.text(); }).then(function (html) {
        output.innerHTML = html;
        var heading = output.querySelector("h3");
        if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
      }).catch(function (error) {
        output.textContent = "The test could not be sent: " + error;
      }).finally(function () {
        button.disabled = false;
        button.textContent = "Test";
      });
      return;
    }
    var copy = event.target.closest("button.copy");
    if (copy && navigator.clipboard) {
      var text = copy.getAttribute("data-copy-text");
      if (text === null) text = document.querySelector(copy.getAttribute("data-copy")).textContent.trim();
      navigator.clipboard.writeText(text).then(function () {
        if (copy.classList.contains("sha")) { copy.classList.add("copied"); } else { copy.textContent = "Copied"; }
      });
    }
  });

  // Once a flagged field is edited, its old error no longer describes it; the server checks again on save.
  document.addEventListener("input", function (event) {
    var field = event.target;
    if (!field.getAttribute || field.getAttribute("aria-invalid") !== "true") { return; }
    field.removeAttribute("aria-invalid");
    var message = document.getElementById(field.getAttribute("aria-describedby"));
    if (message) { message.hidden = true; }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });

  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();  // after a failed submit, start at the list of what to fix

  // A page that waits for work (a delivery not yet ended) asks for its status and swaps in only the parts that
  // changed; a reload would throw away what the reader selected and move their focus (axe: meta-refresh).
  var live = document.querySelector("[data-poll]");
  if (live && window.fetch) {
    var attempts = document.getElementById("attempts");
    var delay = 2000;
    var poll = function () {
      var since = attempts ? attempts.getAttribute("data-count") : "0";
      fetch(live.getAttribute("data-poll") + "?since=" + since, {credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
        .then(function (state) {
          if (live.innerHTML.trim() !== state.live.trim()) live.innerHTML = state.live;
          if (attempts && state.attempts > Number(since)) {
            attempts.insertAdjacentHTML("afterbegin", state.fresh);
            attempts.setAttribute("data-count", String(state.attempts));
            var none = document.getElementById("no-attempts");
            if (none) none.remove();
          }
          if (state.ended) { live.removeAttribute("data-poll"); return; }
          delay = Math.min(delay * 1.5, 10000);
          window.setTimeout(poll, delay);
        })
        .catch(function () { window.setTimeout(poll, 15000); });
    };
    window.setTimeout(poll, delay);
  }

  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var rows = document.querySelectorAll(input.getAttribute("data-filter"));
    var empty = document.querySelector(input.getAttribute("data-empty"));
    // The server's rule, so a count and its filter agree: a state word picks that state exactly (data-state),
    // other text part of what data-text holds (the names), never a delivery status or an event name.
    var states = (input.getAttribute("data-states") || "").split(" ");
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase(), shown = 0;
      var exact = needle !== "" && states.indexOf(needle) >= 0;
      rows.forEach(function (row) {
        var text = (row.getAttribute("data-text") || row.textContent).toLowerCase();
        row.hidden = needle !== "" && (exact ? row.getAttribute("data-state") !== needle : text.indexOf(needle) < 0);
        if (!row.hidden) shown += 1;
      });
      if (empty) {
        empty.hidden = shown > 0;
        var table = rows.length ? rows[0].closest("table") : null;
        if (table) table.hidden = shown === 0;  // no bare header row
      }
    });
  });
})();
