/* formloom staff web app, list page: add and remove filter rows, offer only the conditions a
   field's type allows, select all rows, show the inputs of the chosen bulk action.
   Plain script, no build step. The page works without it: the filter form always has one
   blank row, and the server checks everything it receives. */
(function () {
  "use strict";

  function reveal(root) {
    root.querySelectorAll("[data-filter-add], [data-filter-remove], [data-select-all]")
      .forEach(function (el) { el.hidden = false; });
    root.querySelectorAll("[data-filter-row]").forEach(limitOperators);
    root.querySelectorAll("[data-bulk-action]").forEach(showBulkInputs);
    syncBulk();
  }

  /* The bulk form shows once a record is ticked (without this script it always shows). */
  function syncBulk() {
    var form = document.getElementById("bulk-form");
    if (!form) { return; }
    form.hidden = !document.querySelector("[data-row-select]:checked");
  }

  function limitOperators(row) {
    var field = row.querySelector("[data-filter-field]");
    var op = row.querySelector("[data-filter-op]");
    var value = row.querySelector("[data-filter-value]");
    if (!field || !op) { return; }
    var chosen = field.options[field.selectedIndex];
    var allowed = chosen && chosen.dataset.ops ? chosen.dataset.ops.split(" ") : null;
    var template = document.querySelector("[data-filter-template]");
    var every = template ? template.content.querySelector("[data-filter-op]") : null;
    if (every && op.options.length < every.options.length) {
      var current = op.value;
      op.innerHTML = every.innerHTML;
      op.value = current;
    }
    var firstAllowed = null;
    Array.prototype.forEach.call(op.options, function (option) {
      var ok = !allowed || allowed.indexOf(option.value) >= 0;
      option.hidden = !ok;
      option.disabled = !ok;
      if (ok && firstAllowed === null) { firstAllowed = option.value; }
    });
    var selected = op.options[op.selectedIndex];
    if ((!selected || selected.disabled) && firstAllowed !== null) { op.value = firstAllowed; }
    if (value) {
      value.hidden = op.value === "is_empty" || op.value === "is_not_empty";
      var choices = "fl-choices-" + field.value;
      if (field.value && document.getElementById(choices)) {
        value.setAttribute("list", choices);
      } else {
        value.removeAttribute("list");
      }
    }
  }

  function addRow(form) {
    var rows = form.querySelector("[data-filter-rows]");
    var template = form.querySelector("[data-filter-template]");
    if (!rows || !template) { return; }
    var row = template.content.firstElementChild.cloneNode(true);
    row.querySelectorAll("[hidden]").forEach(function (el) {
      if (el.matches("[data-filter-remove]")) { el.hidden = false; }
    });
    rows.appendChild(row);
    limitOperators(row);
    var field = row.querySelector("[data-filter-field]");
    if (field) { field.focus(); }
  }

  function removeRow(row) {
    var form = row.closest("[data-filter-form]");
    row.remove();
    if (form && !form.querySelector("[data-filter-row]")) { addRow(form); }
  }

  function showBulkInputs(select) {
    var form = select.closest("form");
    if (!form) { return; }
    form.querySelectorAll("[data-bulk-for]").forEach(function (el) {
      el.hidden = el.dataset.bulkFor !== select.value;
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var add = target.closest("[data-filter-add]");
    if (add) { event.preventDefault(); addRow(add.closest("[data-filter-form]")); return; }
    var remove = target.closest("[data-filter-remove]");
    if (remove) { event.preventDefault(); removeRow(remove.closest("[data-filter-row]")); }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    if (target.matches("[data-filter-field], [data-filter-op]")) {
      limitOperators(target.closest("[data-filter-row]"));
    } else if (target.matches("[data-select-all]")) {
      document.querySelectorAll("[data-row-select]").forEach(function (box) {
        box.checked = target.checked;
      });
      syncBulk();
    } else if (target.matches("[data-row-select]")) {
      syncBulk();
    } else if (target.matches("[data-bulk-action]")) {
      showBulkInputs(target);
    }
  });

  document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  document.addEventListener("htmx:afterSettle", function (event) { reveal(event.target); });
}());
