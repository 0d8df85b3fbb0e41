/* formloom form widgets: lookup type-ahead, uploads and cascading region selects for forms
 * drawn by engine/forms.
 *
 * Loaded by form_rules.js from the same folder (and it loads form_widgets.css); no build
 * step, no dependencies. The endpoints are the ones the form names: a lookup's
 * data-fl-search (the records list API with ?q=, which answers the signed-in session,
 * read scopes applied) and a file field's data-fl-upload (the files API; a change, so it
 * sends the form's csrf_token as X-CSRF-Token). Text from the server is only ever set
 * with textContent, never parsed as HTML. Child-table rows are form_rules.js's.
 */
(function () {
  "use strict";
  var DELAY = 200;
  var LIMIT = 10;

  function changed(element) {
    element.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function hidden(name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    input.setAttribute("data-fl-input", "");
    return input;
  }

  function removeButton(label, attribute) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = "×";
    button.setAttribute(attribute, "");
    button.setAttribute("aria-label", label);
    return button;
  }

  /* -- lookups ------------------------------------------------------------------------- */

  function titleOf(item, field) {
    var title = field ? item[field] : null;
    return title === null || title === undefined || title === "" ? "#" + item.id : String(title);
  }

  function bindLookup(box) {
    var input = box.querySelector('input[role="combobox"]');
    var list = box.querySelector('[role="listbox"]');
    if (!input || !list || input.disabled) return;
    var multiple = box.hasAttribute("data-fl-multiple");
    var picked = box.querySelector("input[data-fl-picked]");
    var shown = input.value;
    var timer = null;
    var asked = 0;
    var active = -1;

    function options() { return list.querySelectorAll('[role="option"][data-fl-id]'); }

    function close() {
      list.hidden = true;
      list.textContent = "";
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      var all = options();
      if (!all.length) return;
      active = (index + all.length) % all.length;
      Array.prototype.forEach.call(all, function (option, i) {
        option.setAttribute("aria-selected", i === active ? "true" : "false");
      });
      input.setAttribute("aria-activedescendant", all[active].id);
      all[active].scrollIntoView({ block: "nearest" });
    }

    function show(items) {
      list.textContent = "";
      active = -1;
      items.forEach(function (item, i) {
        var option = document.createElement("li");
        option.id = input.id + "-option-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.setAttribute("data-fl-id", String(item.id));
        option.textContent = titleOf(item, box.getAttribute("data-fl-title"));
        list.appendChild(option);
      });
      if (!items.length) {
        var none = document.createElement("li");
        none.className = "fl-no-match";
        none.textContent = box.getAttribute("data-fl-none") || "—";
        list.appendChild(none);
      }
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function search() {
      var term = input.value.trim();
      var ticket = ++asked;
      if (!term) { close(); return; }
      var url = box.getAttribute("data-fl-search") + encodeURIComponent(term) + "&limit=" + LIMIT;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (answer) { return answer.ok ? answer.json() : { items: [] }; })
        .then(function (body) { if (ticket === asked) show(body.items || []); })
        .catch(function () { if (ticket === asked) show([]); });
    }

    /* A form shown again after a failed save knows the id only: read the record's title. */
    function showTitle() {
      var field = box.getAttribute("data-fl-title");
      var base = box.getAttribute("data-fl-search").split("?")[0];
      if (!field) return;
      var directory = base.indexOf("/records/") < 0; /* users and teams: ?id= names an entry */
      fetch(directory ? base + "?id=" + encodeURIComponent(picked.value)
        : base + "/" + encodeURIComponent(picked.value),
        { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (record) {
          if (record && directory) record = (record.items || [])[0];
          if (!record || input.value !== picked.value) return;
          input.value = titleOf(record, field);
          shown = input.value;
        })
        .catch(function () { return null; });
    }

    function pick(option) {
      var id = option.getAttribute("data-fl-id");
      var title = option.textContent;
      if (multiple) {
        addChip(box, id, title);
        input.value = "";
      } else {
        picked.value = id;
        input.value = title;
        shown = title;
        changed(picked);
      }
      close();
    }

    input.addEventListener("input", function () {
      if (!multiple && input.value.trim() === "" && picked.value !== "") {
        picked.value = "";
        shown = "";
        changed(picked);
      }
      clearTimeout(timer);
      timer = setTimeout(search, DELAY);
    });
    input.addEventListener("keydown", function (event) {
      var open = !list.hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (open) highlight(active + (event.key === "ArrowDown" ? 1 : -1));
        else search();
      } else if (event.key === "Enter" && open) {
        event.preventDefault();
        if (active >= 0) pick(options()[active]);
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        close();
      }
    });
    list.addEventListener("mousedown", function (event) {
      var option = event.target.closest('[role="option"][data-fl-id]');
      event.preventDefault();
      if (option) pick(option);
    });
    input.addEventListener("blur", function () {
      close();
      if (!multiple && input.value !== shown) input.value = shown;
    });
    if (!multiple && picked.value !== "" && input.value === picked.value) showTitle();
    box.addEventListener("click", function (event) {
      var button = event.target.closest("[data-fl-unpick]");
      if (!button) return;
      button.closest("[data-fl-chip]").remove();
      changed(input);
    });
  }

  function addChip(box, id, title) {
    var name = box.getAttribute("data-fl-name");
    var chips = box.querySelector(".fl-chips");
    var exists = Array.prototype.some.call(chips.querySelectorAll("input"), function (i) {
      return i.value === id;
    });
    if (exists) return;
    var chip = document.createElement("li");
    chip.setAttribute("data-fl-chip", "");
    var text = document.createElement("span");
    text.textContent = title;
    chip.appendChild(hidden(name, id));
    chip.appendChild(text);
    chip.appendChild(document.createTextNode(" "));
    chip.appendChild(removeButton((box.getAttribute("data-fl-remove") || "×") + " " + title,
      "data-fl-unpick"));
    chips.appendChild(chip);
  }

  /* -- uploads ------------------------------------------------------------------------- */

  function csrfOf(form) {
    var token = form && form.querySelector('input[name="csrf_token"]');
    return token ? token.value : "";
  }

  function bindUpload(box) {
    var input = box.querySelector('input[type="file"]');
    var list = box.querySelector(".fl-file-list");
    if (!input || !list || input.disabled) return;
    var name = box.getAttribute("data-fl-name");
    var multiple = box.hasAttribute("data-fl-multiple");

    function upload(file) {
      var row = document.createElement("li");
      row.setAttribute("aria-busy", "true");
      row.textContent = file.name + " …";
      if (!multiple) list.textContent = "";
      list.appendChild(row);
      var body = new FormData();
      body.append("file", file);
      fetch(box.getAttribute("data-fl-upload"), {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfOf(box.closest("form")), Accept: "application/json" }
      })
        .then(function (answer) {
          return answer.json().then(function (json) { return { ok: answer.ok, json: json }; });
        })
        .then(function (result) { uploaded(row, file, result.ok, result.json); })
        .catch(function () { uploaded(row, file, false, {}); });
    }

    function uploaded(row, file, ok, json) {
      row.removeAttribute("aria-busy");
      row.textContent = "";
      if (!ok) {
        row.className = "fl-error";
        row.setAttribute("role", "alert");
        row.textContent = file.name + ": " + (json.detail || json.title || "—");
        return;
      }
      row.setAttribute("data-fl-file", "");
      row.appendChild(hidden(name, json.id));
      var text = document.createElement("span");
      text.textContent = json.name || file.name;
      row.appendChild(text);
      row.appendChild(document.createTextNode(" "));
      row.appendChild(removeButton((box.getAttribute("data-fl-remove") || "×") + " " + text.textContent,
        "data-fl-remove-file"));
      changed(row.querySelector("input"));
    }

    input.addEventListener("change", function () {
      Array.prototype.forEach.call(input.files, upload);
      input.value = "";
    });
    box.addEventListener("click", function (event) {
      var button = event.target.closest("[data-fl-remove-file]");
      if (button) button.closest("li").remove();
    });
  }

  /* -- cascading region selects -------------------------------------------------------- */

  /* data-fl-children names the children endpoint ({code}: the parent, 0 for the provinces);
   * it answers [{code, name}] (or {items: [...]}). A choice empties the levels below it
   * and loads the next level's options; the stored choice stays selected. */
  function bindRegion(box) {
    var url = box.getAttribute("data-fl-children");
    var selects = Array.prototype.slice.call(box.querySelectorAll("select[data-fl-region-level]"));
    if (!url || !selects.length || selects[0].disabled) return;

    function clear(select) {
      while (select.options.length > 1) select.remove(1);
      select.value = "";
    }

    function load(select, code) {
      var keep = select.value;
      fetch(url.replace("{code}", encodeURIComponent(code)),
        { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (answer) { return answer.ok ? answer.json() : []; })
        .then(function (body) {
          var items = Array.isArray(body) ? body : body.items || [];
          if (!items.length) return;
          clear(select);
          items.forEach(function (division) {
            select.add(new Option(String(division.name), String(division.code)));
          });
          select.value = keep;
          if (select.value !== keep) select.value = "";
        })
        .catch(function () { return null; });
    }

    selects.forEach(function (select, i) {
      var parent = i === 0 ? "0" : selects[i - 1].value;
      if (parent) load(select, parent);
      select.addEventListener("change", function () {
        selects.slice(i + 1).forEach(clear);
        if (select.value && selects[i + 1]) load(selects[i + 1], select.value);
      });
    });
  }

  /* -- start --------------------------------------------------------------------------- */

  function start() {
    var here = document.querySelector("script[data-fl-widgets]");
    if (here && here.src && !document.querySelector("link[data-fl-widgets]")) {
      var style = document.createElement("link");
      style.rel = "stylesheet";
      style.href = here.src.replace(/\.js(\?.*)?$/, ".css");
      style.setAttribute("data-fl-widgets", "");
      document.head.appendChild(style);
    }
    document.querySelectorAll("form[data-fl-form] [data-fl-search]").forEach(bindLookup);
    document.querySelectorAll("form[data-fl-form] [data-fl-upload]").forEach(bindUpload);
    document.querySelectorAll("form[data-fl-form] [data-fl-children]").forEach(bindRegion);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
