"""What a post through a form saves: the rules enforced exactly as the form shows them.

:func:`evaluate_rules` is the one evaluator of a form's conditional rules (see
:mod:`.rules`); :func:`effective_payload` applies it to a posted payload and
:func:`payload_from_form` reads an HTML form post into one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any

from formloom.engine.errors import Issue, pointer
from formloom.engine.forms.build import Form
from formloom.engine.forms.rules import RuleState
from formloom.engine.forms.widgets import MISSING
from formloom.engine.names import SYSTEM_COLUMNS
from formloom.engine.records.payload import WRITABLE_SYSTEM


def evaluate_rules(form: Form, values: Mapping[str, Any]) -> RuleState:
    """The state (visible / required / read-only) of every shown field for ``values``.

    ``values`` are JSON values of the form's fields (the form's initial values
    fill the rest; only fields the viewer may edit are taken). This is the one
    evaluator: the server calls it on save (through :func:`effective_payload`),
    render calls it to draw the form, and ``form_rules.js`` does the same in
    the browser.
    """
    return form.rules.evaluate(values)


def effective_payload(
    form: Form, payload: Mapping[str, Any], *, lang: str | None = None
) -> tuple[dict[str, Any], list[Issue]]:
    """What to save of ``payload`` posted through ``form``, and the form-level problems.

    The form is enforced exactly as it shows:

    - a field the form does not show (not placed, or hidden for the viewer), a
      field the viewer cannot edit (read-only for them, at this approval step,
      on a view layout, computed), a system column or an unknown field is an
      issue (``not_on_form``, ``field_not_writable``, ``read_only``, ``unknown_field``);
    - a field **hidden or read-only by a rule** for the posted values is
      **ignored**: its posted value is not saved (the stored value stays; a new
      record gets its default) and it is never required;
    - a visible, editable field the rules or the entity require must have a value
      (``required``), and a dependent picklist's value must be allowed by its
      parent's value (``dependent_choice``);
    - a new record gets the form's defaults for the fields the payload leaves out.

    ``version`` and ``owner_id`` pass through. Values are not type-checked here:
    the records service checks the returned payload as any other.
    """
    lang = lang or form.lang
    issues: list[Issue] = []
    to_save: dict[str, Any] = {}
    posted: dict[str, Any] = {}
    for key, raw in payload.items():
        path = pointer(key)
        if key in WRITABLE_SYSTEM:
            to_save[key] = raw
        elif key in SYSTEM_COLUMNS:
            message = _say(
                lang,
                f"`{key}` is set by the platform and cannot be written",
                f"`{key}` 由系统维护，不能写入",
            )
            issues.append(Issue(path, "read_only", message))
        elif key not in form.entity.fields:
            issues.append(Issue(path, "unknown_field", _unknown(form, key, lang)))
        elif key not in form.fields:
            issues.append(Issue(path, "not_on_form", _not_on_form(form, key, lang)))
        elif not form.fields[key].editable:
            issues.append(Issue(path, "field_not_writable", _not_writable(form, key, lang)))
        else:
            posted[key] = raw
    state = form.rules.evaluate(posted)
    for name in form.rules.live:
        if state.ignored(name):
            if form.is_new and form.initial.get(name) is not None:
                to_save[name] = form.initial[name]
        elif name in posted:
            to_save[name] = form.rules.blank_as_empty(name, posted[name])
        elif form.is_new and form.initial.get(name) is not None:
            to_save[name] = form.initial[name]
    for name, field_state in state.fields.items():
        value = state.values.get(name)
        if field_state.required and form.fields[name].compiled.field_type.is_empty(value):
            label = _label(form, name, lang)
            issues.append(
                Issue(
                    pointer(name),
                    "required",
                    _say(lang, f"{label} is required", f"{label}为必填项"),
                )
            )
    issues += _picklist_issues(form, state, lang)
    return to_save, issues


def payload_from_form(form: Form, items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The JSON payload of an HTML form post (``items``: name/value pairs, in order).

    Only fields the viewer may edit are read (disabled inputs, i.e. fields hidden
    or locked by a rule, are not posted and stay absent); ``version`` is kept.
    Pass the result to :func:`effective_payload`.
    """
    posted: dict[str, list[str]] = {}
    for name, value in items:
        posted.setdefault(name, []).append(value)
    payload: dict[str, Any] = {}
    if posted.get("version"):
        text = posted["version"][-1].strip()
        payload["version"] = int(text) if text.isdigit() else text
    tz = form.now.tzinfo or UTC
    for name, form_field in form.fields.items():
        if not form_field.editable:
            continue
        value = form_field.widget.from_post(name, posted, form_field.compiled, tz)
        if value is not MISSING:
            payload[name] = value
    return payload


# -- effective payload messages -----------------------------------------------------------------


def _say(lang: str, en: str, zh: str) -> str:
    return zh if lang == "zh" else en


def _label(form: Form, name: str, lang: str) -> str:
    return form.entity.fields[name].label(lang)


def _unknown(form: Form, key: str, lang: str) -> str:
    close = difflib.get_close_matches(key, list(form.fields), n=1)
    hint_en = f"; did you mean `{close[0]}`?" if close else ""
    hint_zh = f"；是否指 `{close[0]}`？" if close else ""
    return _say(
        lang,
        f"`{form.entity.name}` has no field `{key}`{hint_en}",
        f"`{form.entity.name}` 没有字段 `{key}`{hint_zh}",
    )


def _not_on_form(form: Form, key: str, lang: str) -> str:
    return _say(
        lang,
        f"field `{key}` is not on this form, so it cannot be set through it; leave it out",
        f"字段 `{key}` 不在此表单上，不能通过它修改；请去掉该字段",
    )


def _not_writable(form: Form, key: str, lang: str) -> str:
    return _say(
        lang,
        f"field `{key}` is read-only for you on this form; leave it out",
        f"字段 `{key}` 在此表单上对您是只读的；请去掉该字段",
    )


def _picklist_issues(form: Form, state: RuleState, lang: str) -> list[Issue]:
    issues = []
    for child, allowed in state.choices.items():
        field_state = state.fields[child]
        if not field_state.visible or field_state.read_only:
            continue
        value = state.values.get(child)
        chosen = value if isinstance(value, list) else [] if value is None else [value]
        refused = [v for v in chosen if v not in allowed]
        if not refused:
            continue
        parent = form.rules.picklists[child][0]
        label, parent_label = _label(form, child, lang), _label(form, parent, lang)
        shown = ", ".join(f"`{v}`" for v in refused)
        choices = ", ".join(allowed) or _say(lang, "none", "无")
        issues.append(
            Issue(
                pointer(child),
                "dependent_choice",
                _say(
                    lang,
                    f"{label}: {shown} is not allowed with this {parent_label}; choose one of: "
                    f"{choices}",
                    f"{label}：{shown} 与当前的{parent_label}不匹配；可选：{choices}",
                ),
            )
        )
    return issues
