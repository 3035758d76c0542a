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
      var source = document.querySelector(copy.getAttribute("data-copy"));
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        copy.textContent = "Copied";
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

  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var rows = document.querySelectorAll(input.getAttribute("data-filter"));
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      rows.forEach(function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) < 0;
      });
    });
  });
})();
