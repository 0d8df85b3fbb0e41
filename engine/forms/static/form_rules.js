/* formloom form rules: the browser's copy of engine/forms/rules.py (FormRules.evaluate).
 *
 * evaluate(program, values) gives the same answer as the server for the same values:
 * tests use the operators of engine/conditions.py; tests on fields the user cannot
 * change arrive folded to {"const": bool}. bind(form) wires a rendered form: it
 * re-evaluates on every input and shows/hides, requires and locks fields, and
 * filters dependent picklists. Served as a static file; no build step.
 */
(function (root) {
  "use strict";
  /* A value its field cannot hold: not empty, equal to nothing (rules.py UNREADABLE). */
  var INVALID = { unreadable: true };
  var INTEGER = /^\s*[+-]?[0-9]+\s*$/;
  var DECIMAL = /^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$/;
  var DATE = /^\s*([0-9]{4})-([0-9]{2})-([0-9]{2})\s*$/;
  var DATETIME = /^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})\s*$/;

  /* rules.py read_value: read a value by its field's storage kind and value shape. */
  function coerce(value, kind, shape) {
    if (value === null || value === undefined) return null;
    if (shape === "list" || shape === "document") return value;
    if (shape === "text") return typeof value === "string" ? value : INVALID;
    if (kind === "integer" || kind === "decimal") {
      if (typeof value === "number") return isFinite(value) ? value : INVALID;
      if (typeof value !== "string" || !(kind === "integer" ? INTEGER : DECIMAL).test(value)) return INVALID;
      return Number(value.trim());
    }
    if (kind === "boolean") return typeof value === "boolean" ? value : INVALID;
    if (kind === "date") return dateKey(value);
    if (kind === "datetime") {
      if (typeof value !== "string" || !DATETIME.test(value)) return INVALID;
      var ms = Date.parse(value.trim());
      return isNaN(ms) ? INVALID : ms;
    }
    return value;
  }

  function dateKey(value) {
    var m = typeof value === "string" && DATE.exec(value);
    if (!m || +m[1] < 1) return INVALID;
    var d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    if (d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3]) return INVALID;
    return m[1] + "-" + m[2] + "-" + m[3];
  }

  function isEmpty(value, shape) {
    if (value === null || value === undefined) return true;
    if (shape === "text") return value === "";
    if (shape === "list") return !Array.isArray(value) || value.length === 0;
    return false;
  }

  function expectedOf(cond, meta) {
    var c = function (x) { return meta.shape === "scalar" ? coerce(x, meta.kind, "scalar") : x; };
    var e = cond.value;
    if (cond.op === "in" || cond.op === "not_in") return e.map(c);
    if (cond.op === "range") {
      return { low: e.low === null ? null : c(e.low), high: e.high === null ? null : c(e.high),
               include_high: e.include_high };
    }
    if (cond.op === "has_any" || cond.op === "contains" || cond.op === "starts_with") return e;
    return c(e);
  }

  function compare(op, v, e) {
    if (v === INVALID) return false;
    switch (op) {
      case "eq": return v === e;
      case "gt": return v > e;
      case "ge": return v >= e;
      case "lt": return v < e;
      case "le": return v <= e;
      case "in": return e.indexOf(v) >= 0;
      case "contains": return typeof v === "string" && v.toLowerCase().indexOf(e.toLowerCase()) >= 0;
      case "starts_with": return typeof v === "string" && v.toLowerCase().indexOf(e.toLowerCase()) === 0;
      case "has_any": return Array.isArray(v) && e.some(function (x) { return v.indexOf(x) >= 0; });
      case "range":
        if (e.low !== null && v < e.low) return false;
        if (e.high === null) return true;
        return e.include_high ? v <= e.high : v < e.high;
    }
    return false;
  }

  /* One condition, as engine/conditions.py FieldTest.matches and its groups decide it. */
  function matches(cond, values, fields) {
    if ("const" in cond) return cond.const;
    if (cond.all) return cond.all.every(function (c) { return matches(c, values, fields); });
    if (cond.any) return cond.any.some(function (c) { return matches(c, values, fields); });
    if (cond.not) return !matches(cond.not, values, fields);
    var meta = fields[cond.field];
    var v = coerce(values[cond.field], meta.kind, meta.shape);
    var empty = isEmpty(v, meta.shape);
    if (cond.op === "is_empty") return empty === cond.value;
    var e = expectedOf(cond, meta);
    if (cond.op === "ne") return empty || !compare("eq", v, e);
    if (cond.op === "not_in") return empty || !compare("in", v, e);
    return !empty && compare(cond.op, v, e);
  }

  function blank(program, name, value) {
    var meta = program.fields[name];
    if (typeof value === "string" && value.trim() === "" && meta.blank_is_empty) return null;
    return value;
  }

  function evaluate(program, values) {
    var effective = {};
    var live = program.fields;
    Object.keys(program.initial).forEach(function (name) { effective[name] = program.initial[name]; });
    Object.keys(live).forEach(function (name) {
      if (Object.prototype.hasOwnProperty.call(values, name)) effective[name] = blank(program, name, values[name]);
    });
    var visible = {}, locked = {};
    program.steps.forEach(function (step) {
      var f = step.field;
      var test = function (c) { return matches(c, effective, live); };
      var shown = step.visible_when.every(test);
      if (!shown && step.shown_when) shown = test(step.shown_when);
      var ro = !(f in live) || step.read_only_when.some(test);
      visible[f] = shown; locked[f] = ro;
      if ((f in live) && (!shown || ro)) effective[f] = program.initial[f];
    });
    var states = {};
    program.rendered.forEach(function (f) {
      var shown = f in visible ? visible[f] : true;
      var ro = f in locked ? locked[f] : !(f in live);
      var req = program.required[f];
      var required = !!(shown && !ro && req &&
        (req.always || req.when.some(function (c) { return matches(c, effective, live); })));
      states[f] = { visible: shown, required: required, read_only: ro };
    });
    var choices = {};
    Object.keys(program.picklists).forEach(function (child) {
      var p = program.picklists[child];
      var parent = effective[p.parent];
      choices[child] = typeof parent === "string" && p.choices[parent] ? p.choices[parent].slice() : [];
    });
    return { fields: states, choices: choices };
  }

  /* -- the page ------------------------------------------------------------------------- */

  function readValue(form, name, meta) {
    var inputs = form.querySelectorAll('[name="' + name + '"]');
    if (meta.shape === "document" || (meta.shape === "list" && !inputs.length)) {
      var parts = form.querySelectorAll('[name^="' + name + '."]');
      if (!parts.length) return undefined;
      var filled = Array.prototype.some.call(parts, function (p) { return p.value && p.type !== "hidden"; });
      return meta.shape === "list" ? (filled ? [{}] : []) : (filled ? {} : null);
    }
    if (!inputs.length) return undefined;
    var last = inputs[inputs.length - 1];
    if (last.type === "checkbox") return last.checked;
    if (last.multiple) {
      return Array.prototype.filter.call(last.options, function (o) { return o.selected; })
        .map(function (o) { return o.value; });
    }
    if (meta.shape === "list") return last.value.split(/[,，、]/).map(function (s) { return s.trim(); }).filter(Boolean);
    return last.value;
  }

  /* A field hidden or locked by a rule goes back to its initial value, as on the server. */
  function resetValue(form, name, value) {
    var inputs = form.querySelectorAll('[name="' + name + '"]');
    if (inputs.length !== 1 && !(inputs.length === 2 && inputs[1].type === "checkbox")) return;
    var input = inputs[inputs.length - 1];
    if (input.type === "checkbox") input.checked = value === true;
    else if (input.multiple) {
      Array.prototype.forEach.call(input.options, function (o) {
        o.selected = Array.isArray(value) && value.indexOf(o.value) >= 0;
      });
    } else input.value = value === null || value === undefined ? "" : String(value);
  }

  function bind(form) {
    var script = form.querySelector("script[data-fl-rules]");
    if (!script) return;
    var program = JSON.parse(script.textContent);
    var options = {};
    function update() {
      var values = {};
      Object.keys(program.fields).forEach(function (name) {
        var v = readValue(form, name, program.fields[name]);
        if (v !== undefined) values[name] = v;
      });
      var state = evaluate(program, values);
      Object.keys(state.fields).forEach(function (name) {
        var s = state.fields[name];
        var box = form.querySelector('[data-fl-field="' + name + '"]');
        if (!box) return;
        box.hidden = !s.visible;
        var marker = box.querySelector("[data-fl-required-marker]");
        if (marker) marker.hidden = !s.required;
        if (!(name in program.fields)) return;
        if (!s.visible || s.read_only) resetValue(form, name, program.initial[name]);
        box.querySelectorAll("[data-fl-input]").forEach(function (input) {
          input.disabled = !s.visible || s.read_only;
          if (input.id === "fl-" + name) {
            input.required = s.required;
            input.setAttribute("aria-required", s.required ? "true" : "false");
          }
        });
      });
      Object.keys(state.choices).forEach(function (child) {
        var select = form.querySelector('select[name="' + child + '"]');
        if (!select) return;
        if (!options[child]) options[child] = Array.prototype.slice.call(select.options);
        var allowed = state.choices[child];
        var chosen = select.value;
        options[child].forEach(function (o) {
          var keep = o.value === "" || allowed.indexOf(o.value) >= 0;
          if (keep && o.parentNode !== select) select.appendChild(o);
          if (!keep && o.parentNode === select) { o.selected = false; select.removeChild(o); }
        });
        if (allowed.indexOf(chosen) < 0 && !select.multiple) select.value = "";
      });
    }
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    form.addEventListener("click", function (event) { clicked(form, event.target, update); });
    update();
  }

  /* Tabs, and child-table rows (added from the row template, removed with their button). */
  function clicked(form, target, update) {
    var tab = target.closest('[role="tab"]');
    if (tab) {
      form.querySelectorAll('[role="tab"]').forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
      });
      return;
    }
    var grid = target.closest(".fl-grid-table");
    if (!grid) return;
    if (target.closest("[data-fl-remove-row]")) target.closest("tr").remove();
    else if (target.closest("[data-fl-add-row]")) {
      var html = grid.querySelector("template").innerHTML;
      var next = grid.querySelectorAll("tbody tr").length;
      grid.querySelectorAll("tbody tr").forEach(function (row) {
        row.querySelectorAll("[name]").forEach(function (input) {
          var index = +input.name.split(".")[1];
          if (index >= next) next = index + 1;
        });
      });
      grid.querySelector("tbody").insertAdjacentHTML("beforeend", html.split("__index__").join(next));
    } else return;
    update();
  }

  var api = { evaluate: evaluate, matches: matches, bind: bind };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else {
    root.formloomRules = api;
    /* The interactive widgets (type-ahead, uploads) live next door in form_widgets.js. */
    var me = document.currentScript;
    if (me && me.src && !document.querySelector("script[data-fl-widgets]")) {
      var widgets = document.createElement("script");
      widgets.src = me.src.replace(/form_rules\.js(\?.*)?$/, "form_widgets.js");
      widgets.setAttribute("data-fl-widgets", "");
      document.head.appendChild(widgets);
    }
    var start = function () { document.querySelectorAll("form[data-fl-form]").forEach(bind); };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }
})(this);
