"""Build a form: entity + layout + what the viewer may see and edit → schemas, rules, values.

:func:`build_form` is pure: the platform passes the viewer's field modes (from
their roles' grants), the approval step's field permissions when the form is
an approval task's, the stored record (None for a new one), the language, the
clock and the user. The :class:`Form` it returns carries

- ``schema``: the JSON Schema (2020-12) of what the form may post: hidden fields
  are absent, fields the viewer cannot change are ``readOnly``, ``required``
  lists the fields required for the record's current values;
- ``ui_schema``: tabs → sections (columns) → fields with their widget and its
  options, related lists, and ``rules`` (the program ``static/form_rules.js`` runs);
- ``rules``/``state``: the conditional rules and their state for the initial values.

A field's mode is the narrowest of: the viewer's mode, the approval step's
(a step lists the fields it opens; others are ``read_only`` there), ``read_only``
on a ``view`` layout, and ``read_only`` for computed fields.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from formloom.engine.access.model import FIELD_MODE_RANK
from formloom.engine.conditions import Condition, condition_fields, parse_condition
from formloom.engine.expressions import ExpressionError
from formloom.engine.fields import FieldValueError
from formloom.engine.fields.computed import ComputedFieldType
from formloom.engine.forms.layout import (
    CompiledLayout,
    RuleCondition,
    compile_layout,
    default_layout,
)
from formloom.engine.forms.model import LayoutDoc, Section, Tab
from formloom.engine.forms.rules import FormRules, RuleState, RuleStep
from formloom.engine.forms.widgets import Widget, WidgetContext, form_widgets
from formloom.engine.records.compiled import CompiledEntity, CompiledField
from formloom.engine.records.schema import record_schema

#: The mode of fields an approval step does not list.
STEP_DEFAULT_MODE = "read_only"


@dataclass(frozen=True)
class FormField:
    """One field shown on a form."""

    name: str
    compiled: CompiledField
    mode: str
    widget: Widget
    label: str
    help: str
    placeholder: str
    span: int
    section: str
    tab: str
    options: Mapping[str, Any]

    @property
    def editable(self) -> bool:
        return self.mode == "editable"


@dataclass(frozen=True)
class FormSection:
    name: str
    label: str
    columns: int
    collapsible: bool
    collapsed: bool
    fields: tuple[str, ...]


@dataclass(frozen=True)
class FormTab:
    name: str
    label: str
    sections: tuple[FormSection, ...]


@dataclass(frozen=True)
class Form:
    """A form ready to serve as JSON, to render as HTML and to check a save against."""

    entity: CompiledEntity
    layout: CompiledLayout
    lang: str
    now: datetime
    #: Shown fields, in layout order.
    fields: Mapping[str, FormField]
    tabs: tuple[FormTab, ...]
    rules: FormRules
    state: RuleState
    record: Mapping[str, Any] | None
    schema: Mapping[str, Any]
    ui_schema: Mapping[str, Any]

    @property
    def initial(self) -> Mapping[str, Any]:
        """The values the form opens with: the stored record, or a new record's defaults."""
        return self.rules.initial

    @property
    def is_new(self) -> bool:
        return self.record is None


def build_form(
    entity: CompiledEntity,
    layout: LayoutDoc | None,
    *,
    field_modes: Mapping[str, str],
    node_permissions: Mapping[str, str] | None = None,
    record: Mapping[str, Any] | None = None,
    lang: str = "en",
    now: datetime,
    user_id: int | None = None,
    entities: Mapping[str, CompiledEntity] | None = None,
    env: str = "{env}",
) -> Form:
    """The form of ``entity`` through ``layout`` (None: :func:`default_layout`) for one viewer.

    ``field_modes``: field → ``hidden``/``read_only``/``editable`` from the viewer's
    grants (fields not named are editable). ``node_permissions``: the approval
    step's field permissions when the form belongs to an approval task (fields
    not named are read-only). ``record``: the stored record as the records API
    returns it (None: a new record, opened with its defaults). ``now`` is
    timezone-aware, in the business's timezone: it resolves relative dates and
    ``today()`` and is the timezone of date-time inputs. ``user_id`` is the
    current user (``current_user`` defaults). ``entities``: the environment's
    entities by name (related lists and child-table columns; None leaves them
    out). ``env`` fills the URLs of search and upload endpoints.

    Raises :class:`~formloom.engine.errors.DocumentInvalid` if the layout does
    not fit the entity (a published layout always does).
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    compiled = _compiled(entity, layout, entities)
    placed_modes = {
        name: _mode(entity.fields[name], name, compiled, field_modes, node_permissions)
        for name in compiled.placements
    }
    shown = [name for name, mode in placed_modes.items() if mode != "hidden"]
    live = frozenset(name for name in shown if placed_modes[name] == "editable")
    ctx = WidgetContext(env=env, lang=lang, entities=entities or {}, tz=now.tzinfo)
    fields = {name: _form_field(compiled, name, placed_modes[name], ctx) for name in shown}
    initial = (
        dict(record)
        if record is not None
        else _new_record_values(compiled, live, now=now, user_id=user_id)
    )
    rules = _form_rules(compiled, shown, live, initial, now)
    state = rules.evaluate({})
    tabs = _tabs(compiled, fields, lang)
    schema = _schema(entity, fields, state, initial, record is None, lang)
    ui_schema = _ui_schema(compiled, fields, tabs, rules, lang, env)
    return Form(
        entity=entity,
        layout=compiled,
        lang=lang,
        now=now,
        fields=fields,
        tabs=tabs,
        rules=rules,
        state=state,
        record=record,
        schema=schema,
        ui_schema=ui_schema,
    )


# -- building -----------------------------------------------------------------------------------


# Compiled layouts by the identity of what they were compiled from (documents are not
# changed in place once published); the entries hold those objects, so an id is not reused.
_COMPILED: dict[tuple[int, int, int], tuple[Any, ...]] = {}
_CACHE_SIZE = 64
_CACHE_LOCK = threading.Lock()


def _compiled(
    entity: CompiledEntity,
    layout: LayoutDoc | None,
    entities: Mapping[str, CompiledEntity] | None,
) -> CompiledLayout:
    """The compiled layout, reused while the same layout, entity and entities are passed."""
    key = (id(layout), id(entity), id(entities))
    with _CACHE_LOCK:
        hit = _COMPILED.get(key)
    if hit is not None and hit[0] is layout and hit[1] is entity and hit[2] is entities:
        found: CompiledLayout = hit[3]
        return found
    if layout is None:
        compiled = compile_layout(default_layout(entity), entity)
    else:
        compiled = compile_layout(layout, entity, others=entities)
    with _CACHE_LOCK:
        if len(_COMPILED) >= _CACHE_SIZE:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = (layout, entity, entities, compiled)
    return compiled


def _mode(
    compiled: CompiledField,
    name: str,
    layout: CompiledLayout,
    field_modes: Mapping[str, str],
    node_permissions: Mapping[str, str] | None,
) -> str:
    modes = [field_modes.get(name, "editable")]
    if node_permissions is not None:
        modes.append(node_permissions.get(name, STEP_DEFAULT_MODE))
    if layout.document.purpose == "view" or isinstance(compiled.field_type, ComputedFieldType):
        modes.append("read_only")
    return min(modes, key=lambda m: FIELD_MODE_RANK.get(m, 0))


def _form_field(layout: CompiledLayout, name: str, mode: str, ctx: WidgetContext) -> FormField:
    placement, section, tab = layout.placements[name]
    compiled = layout.entity.fields[name]
    widget = form_widgets.get(compiled.field_type.name)
    help_text = placement.help or compiled.definition.help
    return FormField(
        name=name,
        compiled=compiled,
        mode=mode,
        widget=widget,
        label=compiled.label(ctx.lang),
        help=_text(help_text, ctx.lang),
        placeholder=_text(placement.placeholder, ctx.lang),
        span=min(placement.span or 1, max(1, section.columns)),
        section=section.name,
        tab=tab.name,
        options=widget.options(compiled, ctx),
    )


def _text(text: Any, lang: str) -> str:
    if text is None:
        return ""
    chosen: str = text.zh if lang == "zh" else text.en
    return chosen or (text.en if lang == "zh" else text.zh)


def _new_record_values(
    layout: CompiledLayout, live: frozenset[str], *, now: datetime, user_id: int | None
) -> dict[str, Any]:
    """A new record's initial values: the entity's defaults, then the layout's (editable fields)."""
    values: dict[str, Any] = {}
    for name, compiled in layout.entity.fields.items():
        default = compiled.definition.default
        if default is not None:
            values[name] = _json_of(compiled, default)
    stored = {}
    for name, value in values.items():
        stored[name] = _stored_of(layout.entity.fields[name], value)
    for name, default in layout.defaults.items():
        if name not in live:
            continue
        compiled = layout.entity.fields[name]
        if default.current_user:
            values[name] = user_id
        elif default.expression is not None:
            try:
                result = default.expression.evaluate(stored, now=now)
            except ExpressionError:
                result = None
            values[name] = _json_of(compiled, _cel_to_json(compiled, result))
        else:
            values[name] = default.constant
    return values


def _json_of(compiled: CompiledField, value: Any) -> Any:
    """``value`` normalised by the field's type, in its JSON form (None if it does not fit)."""
    if value is None:
        return None
    try:
        return compiled.to_json(compiled.field_type.normalise(value, compiled.options))
    except FieldValueError:
        return None


def _stored_of(compiled: CompiledField, value: Any) -> Any:
    if value is None:
        return None
    try:
        return compiled.field_type.normalise(value, compiled.options)
    except FieldValueError:
        return None


def _cel_to_json(compiled: CompiledField, result: Any) -> Any:
    """A CEL result as the JSON value the field's type reads."""
    kind = compiled.field_type.storage(compiled.definition.options).kind
    if isinstance(result, datetime):
        moment = result if result.tzinfo else result.replace(tzinfo=UTC)
        return moment.astimezone(UTC).date().isoformat() if kind == "date" else moment.isoformat()
    if isinstance(result, timedelta):
        return int(result.total_seconds())
    if isinstance(result, float) and kind == "decimal":
        return repr(result)
    return result


def _form_rules(
    layout: CompiledLayout,
    shown: Sequence[str],
    live: frozenset[str],
    initial: Mapping[str, Any],
    now: datetime,
) -> FormRules:
    entity = layout.entity

    def parse(condition: RuleCondition) -> Condition:
        return parse_condition(condition.raw, entity, now=now, tz=now.tzinfo or UTC)

    shown_set = set(shown)
    steps = []
    for name in layout.rule_order:
        rules = layout.rules[name]
        if name not in shown_set:
            continue
        steps.append(
            RuleStep(
                field=name,
                visible_when=tuple(parse(c) for c in rules.visible_when),
                shown_when=parse(rules.entity_required_when)
                if rules.entity_required_when and rules.visible_when
                else None,
                read_only_when=tuple(parse(c) for c in rules.read_only_when),
            )
        )
    required_when: dict[str, tuple[Condition, ...]] = {}
    for name in shown:
        field_rules = layout.rules.get(name)
        if field_rules is None:
            continue
        conditions = [parse(c) for c in field_rules.required_when]
        if field_rules.entity_required_when is not None:
            conditions.append(parse(field_rules.entity_required_when))
        if conditions:
            required_when[name] = tuple(conditions)
    return FormRules(
        entity=entity,
        rendered=tuple(shown),
        live=live,
        steps=tuple(steps),
        required_always=frozenset(n for n in shown if entity.fields[n].definition.required),
        required_when=required_when,
        picklists={c: p for c, p in layout.picklists.items() if c in shown_set},
        initial=initial,
    )


def _tabs(
    layout: CompiledLayout, fields: Mapping[str, FormField], lang: str
) -> tuple[FormTab, ...]:
    tabs = []
    for tab in layout.document.tabs:
        sections = []
        for section in tab.sections:
            names = tuple(p.field for p in section.fields if p.field in fields)
            if not names:
                continue
            sections.append(
                FormSection(
                    name=section.name,
                    label=_label_text(section, lang),
                    columns=max(1, min(section.columns, 4)),
                    collapsible=section.collapsible,
                    collapsed=section.collapsed,
                    fields=names,
                )
            )
        if sections:
            label = tab.label.zh if lang == "zh" else tab.label.en
            tabs.append(FormTab(tab.name, label, tuple(sections)))
    return tuple(tabs)


def _label_text(part: Section | Tab, lang: str) -> str:
    if part.label is None:
        return ""
    return part.label.zh if lang == "zh" else part.label.en


def _schema(
    entity: CompiledEntity,
    fields: Mapping[str, FormField],
    state: RuleState,
    initial: Mapping[str, Any],
    is_new: bool,
    lang: str,
) -> dict[str, Any]:
    base = record_schema(entity, lang=lang)
    properties: dict[str, Any] = {}
    if not is_new:
        properties["version"] = base["properties"]["version"]
    for name, form_field in fields.items():
        schema = dict(base["properties"][name])
        schema["anyOf"] = [form_field.compiled.value_schema(), {"type": "null"}]
        if form_field.help:
            schema["description"] = form_field.help
        if not form_field.editable:
            schema["readOnly"] = True
        if is_new and initial.get(name) is not None:
            schema["default"] = initial[name]
        else:
            schema.pop("default", None)
        properties[name] = schema
    required = [name for name, s in state.fields.items() if s.required]
    for name in required:
        properties[name]["anyOf"] = [fields[name].compiled.value_schema()]
    return {
        "$schema": base["$schema"],
        "title": base["title"],
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _ui_schema(
    layout: CompiledLayout,
    fields: Mapping[str, FormField],
    tabs: Sequence[FormTab],
    rules: FormRules,
    lang: str,
    env: str,
) -> dict[str, Any]:
    return {
        "entity": layout.entity.name,
        "layout": layout.name,
        "purpose": layout.document.purpose,
        "lang": lang,
        "order": list(fields),
        "tabs": [
            {
                "name": tab.name,
                "label": tab.label,
                "sections": [
                    {
                        "name": section.name,
                        "label": section.label,
                        "columns": section.columns,
                        "collapsible": section.collapsible,
                        "collapsed": section.collapsed,
                        "fields": [_ui_field(fields[name]) for name in section.fields],
                    }
                    for section in tab.sections
                ],
            }
            for tab in tabs
        ],
        "related_lists": [
            {
                "entity": related.entity.name,
                "field": related.field,
                "label": _related_label(related.spec.label or related.entity.document.label, lang),
                "columns": [
                    {"field": c, "label": _column_label(related.entity, c, lang)}
                    for c in related.spec.columns
                ],
                "sort": [
                    {"field": key.field, "direction": key.direction} for key in related.spec.sort
                ],
                "limit": related.spec.limit,
                "url": _related_url(related.entity.name, related.field, related.spec, env),
            }
            for related in layout.related_lists
        ],
        "rules": rules.program(),
    }


def _ui_field(form_field: FormField) -> dict[str, Any]:
    return {
        "field": form_field.name,
        "type": form_field.compiled.field_type.name,
        "widget": form_field.widget.control,
        "label": form_field.label,
        "help": form_field.help,
        "placeholder": form_field.placeholder,
        "span": form_field.span,
        "mode": form_field.mode,
        "options": dict(form_field.options),
    }


def _related_label(label: Any, lang: str) -> str:
    text: str = label.zh if lang == "zh" else label.en
    return text


def _column_label(entity: CompiledEntity, column: str, lang: str) -> str:
    found = condition_fields(entity).get(column)
    return found.label(lang) if found is not None else column


def _related_url(entity: str, field: str, spec: Any, env: str) -> str:
    sort = ",".join(("-" if k.direction == "desc" else "") + k.field for k in spec.sort)
    url = f"/api/envs/{env}/records/{entity}?{field}={{id}}&limit={spec.limit}"
    url += f"&fields={','.join(spec.columns)}"
    return url + (f"&sort={sort}" if sort else "")
