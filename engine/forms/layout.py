"""Compile a layout against its entity, reporting every problem with its place and its fix.

:func:`compile_layout` is what the `layout` kind runs when a layout is
published and what :func:`~formloom.engine.forms.build_form` runs to build a
form, so the object that was checked is the object that runs (STYLE.md).
:func:`default_layout` is the layout of an entity that has none.
"""

from __future__ import annotations

import difflib
import graphlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from formloom.engine.conditions import (
    AllOf,
    AnyOf,
    Condition,
    ConditionInvalid,
    FieldTest,
    Not,
    condition_fields,
    parse_condition,
)
from formloom.engine.errors import DocumentInvalid, Issue, pointer
from formloom.engine.expressions import CompiledExpression, ExpressionInvalid, compile_expression
from formloom.engine.fields import FieldValueError
from formloom.engine.fields.computed import ComputedFieldType
from formloom.engine.forms.model import (
    MAX_COLUMNS,
    MAX_RELATED_ROWS,
    DefaultValue,
    DependentPicklist,
    LayoutDoc,
    Placement,
    RelatedList,
    Section,
    SortKey,
    Tab,
)
from formloom.engine.names import SYSTEM_COLUMNS
from formloom.engine.records.compiled import CompiledEntity, CompiledField
from formloom.engine.records.rules import BUSINESS_TZ, SYSTEM_CEL_TYPES, field_cel_type

_LISTED = 20
#: Rule keys, in the order a field's rules are evaluated.
RULE_KEYS = ("visible_when", "required_when", "read_only_when")
#: CEL result types a default expression is checked against (others are converted when used).
_TYPED_RESULTS = frozenset(("int", "double", "string", "bool", "timestamp"))
_SELECTS = ("single_select", "multi_select")


@dataclass(frozen=True)
class RuleCondition:
    """One checked condition of a layout rule (or an entity's ``required_when``), still raw.

    Raw conditions are parsed again for each form, against the form's ``now``
    (relative dates); ``fields`` are the fields it tests.
    """

    raw: dict[str, Any]
    at: str
    fields: frozenset[str]


@dataclass(frozen=True)
class FieldRules:
    """The conditions governing one placed field (see :class:`~.model.FieldRule`)."""

    visible_when: tuple[RuleCondition, ...] = ()
    required_when: tuple[RuleCondition, ...] = ()
    read_only_when: tuple[RuleCondition, ...] = ()
    #: The entity's own ``required_when``: while it holds the field is required and shown.
    entity_required_when: RuleCondition | None = None

    def changing(self) -> tuple[RuleCondition, ...]:
        """The conditions that decide whether the field's value counts (shown and editable)."""
        shown = self.entity_required_when if self.visible_when else None
        return self.visible_when + self.read_only_when + ((shown,) if shown else ())


@dataclass(frozen=True)
class CompiledDefault:
    """A checked default: a constant (JSON form), a CEL expression, or the current user."""

    constant: Any = None
    expression: CompiledExpression | None = None
    current_user: bool = False


@dataclass(frozen=True)
class CompiledRelatedList:
    """A related list with its lookup resolved."""

    spec: RelatedList
    entity: CompiledEntity
    field: str


@dataclass(frozen=True)
class CompiledLayout:
    """A layout checked against its entity, ready to build forms from."""

    document: LayoutDoc
    entity: CompiledEntity
    #: Placed fields, in document order, with their placement and section.
    placements: Mapping[str, tuple[Placement, Section, Tab]]
    rules: Mapping[str, FieldRules]
    #: Fields whose visibility or read-only state can change, each after the fields it tests.
    rule_order: tuple[str, ...]
    defaults: Mapping[str, CompiledDefault]
    #: Child field → (parent field, parent value → allowed child values).
    picklists: Mapping[str, tuple[str, Mapping[str, tuple[str, ...]]]]
    related_lists: tuple[CompiledRelatedList, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.document.name


def default_layout(entity: CompiledEntity) -> LayoutDoc:
    """The layout of an entity without one: every field in document order, 2 columns."""
    return LayoutDoc(
        name="default",
        label=entity.document.label,
        entity=entity.name,
        tabs=[
            Tab(
                name="main",
                label=entity.document.label,
                sections=[
                    Section(
                        name="main",
                        columns=2,
                        fields=[
                            Placement(field=name, span=_default_span(compiled))
                            for name, compiled in entity.fields.items()
                        ],
                    )
                ],
            )
        ],
    )


def _default_span(compiled: CompiledField) -> int | None:
    """Wide widgets (long text, grids, addresses) take the whole row of a default layout."""
    wide = ("long_text", "rich_text", "child_table", "address", "json", "signature")
    return 2 if compiled.field_type.name in wide else None


def compile_layout(
    layout: LayoutDoc,
    entity: CompiledEntity,
    *,
    others: Mapping[str, CompiledEntity] | None = None,
) -> CompiledLayout:
    """Check ``layout`` against ``entity`` (and, for related lists, ``others``); compile it.

    ``others`` maps the environment's other entities by name (None: related
    lists are not checked against them and are left out). Raises
    :class:`~formloom.engine.errors.DocumentInvalid` listing every problem.
    """
    return _Compiler(layout, entity, others).run()


class _Compiler:
    def __init__(
        self,
        layout: LayoutDoc,
        entity: CompiledEntity,
        others: Mapping[str, CompiledEntity] | None,
    ) -> None:
        self.layout, self.entity, self.others = layout, entity, others
        self.issues: list[Issue] = []
        self.now = datetime.now(UTC)
        self.placed: dict[str, tuple[Placement, Section, Tab]] = {}

    def fail(self, at: str, code: str, message: str) -> None:
        self.issues.append(Issue(at, code, message))

    def run(self) -> CompiledLayout:
        if self.layout.entity != self.entity.name:
            self.fail(
                "/entity",
                "wrong_entity",
                f"this layout is for entity `{self.layout.entity}`, not `{self.entity.name}`",
            )
            raise DocumentInvalid(self.issues)
        self._structure()
        self._missing_required()
        rules = self._rules()
        order = self._rule_order(rules)
        defaults = self._defaults()
        picklists = self._picklists()
        related = self._related_lists()
        if self.issues:
            raise DocumentInvalid(self.issues)
        return CompiledLayout(
            document=self.layout,
            entity=self.entity,
            placements=self.placed,
            rules=rules,
            rule_order=order,
            defaults=defaults,
            picklists=picklists,
            related_lists=related,
        )

    # -- tabs, sections, placements -------------------------------------------------------------

    def _structure(self) -> None:
        tab_names: dict[str, str] = {}
        section_names: dict[str, str] = {}
        first_place: dict[str, str] = {}
        for t, tab in enumerate(self.layout.tabs):
            self._unique_name(tab.name, pointer("tabs", t, "name"), tab_names, "tab")
            for s, section in enumerate(tab.sections):
                at = pointer("tabs", t, "sections", s)
                self._unique_name(section.name, at + "/name", section_names, "section")
                self._section(section, at)
                for p, placement in enumerate(section.fields):
                    where = at + pointer("fields", p)
                    self._placement(placement, section, tab, where, first_place)

    def _unique_name(self, name: str, at: str, seen: dict[str, str], what: str) -> None:
        if name in seen:
            self.fail(
                at,
                "duplicate_name",
                f"{what} name `{name}` is already used at {seen[name]}; each {what} of a "
                "layout needs its own name",
            )
        seen.setdefault(name, at)

    def _section(self, section: Section, at: str) -> None:
        if not 1 <= section.columns <= MAX_COLUMNS:
            self.fail(
                at + "/columns",
                "bad_columns",
                f"section `{section.name}` has {section.columns} columns; use 1 to {MAX_COLUMNS}",
            )
        if section.collapsed and not section.collapsible:
            self.fail(
                at + "/collapsed",
                "not_collapsible",
                f"section `{section.name}` starts collapsed but is not collapsible; set "
                "`collapsible: true` or remove `collapsed`",
            )

    def _placement(
        self,
        placement: Placement,
        section: Section,
        tab: Tab,
        at: str,
        first_place: dict[str, str],
    ) -> None:
        name = placement.field
        if name not in self.entity.fields:
            self.fail(at + "/field", "unknown_field", self._unknown_field(name))
            return
        if name in first_place:
            self.fail(
                at + "/field",
                "duplicate_field",
                f"field `{name}` is already placed at {first_place[name]}; place each field "
                "once (remove one of them)",
            )
            return
        first_place[name] = at
        self.placed[name] = (placement, section, tab)
        columns = max(1, min(section.columns, MAX_COLUMNS))
        if placement.span is not None and not 1 <= placement.span <= columns:
            self.fail(
                at + "/span",
                "bad_span",
                f"field `{name}` spans {placement.span} columns but section `{section.name}` "
                f"has {columns}; use a span from 1 to {columns}",
            )

    def _missing_required(self) -> None:
        if self.layout.purpose != "edit":
            return
        for name, compiled in self.entity.fields.items():
            if not compiled.definition.required or name in self.placed:
                continue
            if isinstance(compiled.field_type, ComputedFieldType):
                continue
            self.fail(
                "/tabs",
                "missing_required_field",
                f"field `{name}` is required by entity `{self.entity.name}` but this edit layout "
                "does not place it, so a new record could never be saved; add "
                f'{{"field": "{name}"}} to a section\'s `fields`',
            )

    # -- rules ----------------------------------------------------------------------------------

    def _rules(self) -> dict[str, FieldRules]:
        found: dict[str, dict[str, list[RuleCondition]]] = {}
        for r, rule in enumerate(self.layout.rules):
            at = pointer("rules", r)
            given = [key for key in RULE_KEYS if getattr(rule, key) is not None]
            if not given:
                self.fail(
                    at,
                    "empty_rule",
                    "this rule has no condition; give it `visible_when`, `required_when` or "
                    "`read_only_when` (or remove it)",
                )
            parsed = {key: self._condition(getattr(rule, key), at + "/" + key) for key in given}
            for i, name in enumerate(rule.fields):
                if not self._governed(name, rule.fields[:i], pointer("rules", r, "fields", i)):
                    continue
                for key, condition in parsed.items():
                    if condition is None or not self._rule_fits(name, key, at + "/" + key):
                        continue
                    found.setdefault(name, {}).setdefault(key, []).append(condition)
        rules = {}
        for name in self.placed:
            entity_when = self._entity_required_when(name)
            mine = found.get(name, {})
            if not mine and entity_when is None:
                continue
            rules[name] = FieldRules(
                visible_when=tuple(mine.get("visible_when", ())),
                required_when=tuple(mine.get("required_when", ())),
                read_only_when=tuple(mine.get("read_only_when", ())),
                entity_required_when=entity_when,
            )
        return rules

    def _governed(self, name: str, before: list[str], at: str) -> bool:
        if name in before:
            self.fail(at, "repeated_field", f"field `{name}` is listed twice in this rule")
            return False
        if name not in self.entity.fields:
            self.fail(at, "unknown_field", self._unknown_field(name))
            return False
        if name not in self.placed:
            self.fail(
                at,
                "not_placed",
                f"field `{name}` is not placed on this layout, so a rule on it has no effect; "
                "place the field or remove it from the rule",
            )
            return False
        return True

    def _rule_fits(self, name: str, key: str, at: str) -> bool:
        compiled = self.entity.fields[name]
        definition = compiled.definition
        if key == "visible_when" and definition.required:
            self.fail(
                at,
                "hides_required",
                f"field `{name}` is required by entity `{self.entity.name}`, so the form cannot "
                "hide it; make the field not required (use its `required_when`, or this rule's "
                "`required_when`) or remove `visible_when`",
            )
            return False
        if key == "required_when" and isinstance(compiled.field_type, ComputedFieldType):
            self.fail(
                at,
                "computed_field",
                f"field `{name}` is computed by the platform, so it cannot be required; remove "
                "it from the rule",
            )
            return False
        if key == "required_when" and definition.required:
            self.fail(
                at,
                "redundant_condition",
                f"field `{name}` is always required by entity `{self.entity.name}`; remove it "
                "from this rule",
            )
            return False
        return True

    def _condition(self, raw: dict[str, Any] | None, at: str) -> RuleCondition | None:
        try:
            parsed = parse_condition(raw, self.entity, now=self.now, tz=BUSINESS_TZ, at=at)
        except ConditionInvalid as exc:
            self.issues += exc.issues
            return None
        assert raw is not None
        return RuleCondition(raw, at, frozenset(tested_fields(parsed)))

    def _entity_required_when(self, name: str) -> RuleCondition | None:
        raw = self.entity.fields[name].definition.required_when
        if raw is None:
            return None
        try:
            parsed = parse_condition(raw, self.entity, now=self.now, tz=BUSINESS_TZ)
        except ConditionInvalid:
            return None  # reported when the entity was published
        return RuleCondition(raw, f"entity `{self.entity.name}`", frozenset(tested_fields(parsed)))

    def _rule_order(self, rules: Mapping[str, FieldRules]) -> tuple[str, ...]:
        """Fields whose state can change, each after the fields its conditions test.

        A field hidden or locked by a rule keeps its initial value, so the state of
        the fields its value decides must be known first; a circle has no answer.
        """
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        changing = {name: r.changing() for name, r in rules.items() if r.changing()}
        for name, conditions in changing.items():
            tested = set().union(*(c.fields for c in conditions))
            sorter.add(name, *(f for f in tested if f in changing))
        try:
            return tuple(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle: list[str] = list(exc.args[1])
            first = cycle[0]
            where = next((c.at for c in changing[first] if c.at.startswith("/")), pointer("rules"))
            shown = " → ".join(f"`{n}`" for n in cycle)
            self.fail(
                where,
                "rule_cycle",
                f"rules depend on each other in a circle: {shown} (whether a field is shown or "
                "editable depends on a field whose own state depends on it); break the circle "
                "by testing another field in one of these conditions",
            )
            return ()

    # -- defaults -------------------------------------------------------------------------------

    def _defaults(self) -> dict[str, CompiledDefault]:
        compiled_defaults = {}
        cel_types = dict(SYSTEM_CEL_TYPES)
        for name, entity_field in self.entity.fields.items():
            cel_types[name] = field_cel_type(entity_field.definition)
        for name, default in self.layout.defaults.items():
            at = pointer("defaults", name)
            compiled = self.entity.fields.get(name)
            if compiled is None:
                self.fail(at, "unknown_field", self._unknown_field(name))
                continue
            if name not in self.placed:
                self.fail(
                    at,
                    "not_placed",
                    f"field `{name}` is not placed on this layout, so the form cannot give it a "
                    "default; place it, or use the entity field's own `default`",
                )
                continue
            if isinstance(compiled.field_type, ComputedFieldType) or compiled.field_type.virtual:
                self.fail(
                    at,
                    "not_settable",
                    f"field `{name}` ({compiled.field_type.name}) takes no default: its values "
                    "are computed or kept in other records",
                )
                continue
            found = self._default(name, compiled, default, cel_types, at)
            if found is not None:
                compiled_defaults[name] = found
        return compiled_defaults

    def _default(
        self,
        name: str,
        compiled: CompiledField,
        default: DefaultValue,
        cel_types: dict[str, str],
        at: str,
    ) -> CompiledDefault | None:
        given = [
            key
            for key, present in (
                ("value", default.value is not None),
                ("expression", default.expression is not None),
                ("current_user", default.current_user),
            )
            if present
        ]
        if len(given) != 1:
            self.fail(
                at,
                "invalid_default",
                f"the default of field `{name}` must give exactly one of `value`, `expression` "
                f"or `current_user: true`; it gives {', '.join(given) or 'none'}",
            )
            return None
        if default.current_user:
            if compiled.field_type.name != "user":
                self.fail(
                    at + "/current_user",
                    "not_a_user_field",
                    f"field `{name}` is a {compiled.field_type.name} field; only user fields can "
                    "default to the current user",
                )
                return None
            return CompiledDefault(current_user=True)
        if default.expression is not None:
            wanted = cel_types[name]
            try:
                expression = compile_expression(
                    default.expression,
                    cel_types,
                    result=wanted if wanted in _TYPED_RESULTS else None,
                )
            except ExpressionInvalid as exc:
                for issue in exc.issues:
                    found = issue.to_issue(at + "/expression")
                    self.fail(found.path, found.code, f"default of `{name}`: {found.message}")
                return None
            return CompiledDefault(expression=expression)
        try:
            value = compiled.field_type.normalise(default.value, compiled.options)
        except FieldValueError as exc:
            self.fail(at + "/value", exc.code, f"default of field `{name}`: {exc.en}")
            return None
        return CompiledDefault(constant=compiled.to_json(value))

    # -- dependent picklists --------------------------------------------------------------------

    def _picklists(self) -> dict[str, tuple[str, Mapping[str, tuple[str, ...]]]]:
        found: dict[str, tuple[str, Mapping[str, tuple[str, ...]]]] = {}
        for i, picklist in enumerate(self.layout.dependent_picklists):
            at = pointer("dependent_picklists", i)
            checked = self._picklist(picklist, at, found)
            if checked is not None:
                found[picklist.child] = (picklist.parent, checked)
        self._picklist_cycles(found)
        return found

    def _picklist(
        self,
        picklist: DependentPicklist,
        at: str,
        found: Mapping[str, tuple[str, Mapping[str, tuple[str, ...]]]],
    ) -> dict[str, tuple[str, ...]] | None:
        parent = self._select(picklist.parent, at + "/parent", ("single_select",))
        child = self._select(picklist.child, at + "/child", _SELECTS)
        if parent is None or child is None:
            return None
        if picklist.parent == picklist.child:
            self.fail(at + "/child", "same_field", "a field cannot depend on itself")
            return None
        if picklist.child in found:
            self.fail(
                at + "/child",
                "duplicate_child",
                f"field `{picklist.child}` already depends on `{found[picklist.child][0]}`; a "
                "field's choices can depend on one other field only",
            )
            return None
        if picklist.child not in self.placed:
            self.fail(
                at + "/child",
                "not_placed",
                f"field `{picklist.child}` is not placed on this layout; place it or remove "
                "this dependent picklist",
            )
        parent_values = _choice_values(parent)
        child_values = _choice_values(child)
        allowed: dict[str, tuple[str, ...]] = {}
        for key, values in picklist.choices.items():
            where = at + pointer("choices", key)
            if key not in parent_values:
                self.fail(
                    where,
                    "unknown_choice",
                    f"`{key}` is not a choice of `{picklist.parent}`"
                    f"{_hint(key, parent_values, 'its choices')}",
                )
                continue
            for j, value in enumerate(values):
                if value not in child_values:
                    self.fail(
                        where + pointer(j),
                        "unknown_choice",
                        f"`{value}` is not a choice of `{picklist.child}`"
                        f"{_hint(value, child_values, 'its choices')}",
                    )
            allowed[key] = tuple(dict.fromkeys(v for v in values if v in child_values))
        return allowed

    def _select(self, name: str, at: str, types: tuple[str, ...]) -> CompiledField | None:
        compiled = self.entity.fields.get(name)
        if compiled is None:
            self.fail(at, "unknown_field", self._unknown_field(name))
            return None
        if compiled.field_type.name not in types:
            self.fail(
                at,
                "not_a_select",
                f"field `{name}` is a {compiled.field_type.name} field; dependent picklists "
                f"need {' or '.join(types)} fields",
            )
            return None
        return compiled

    def _picklist_cycles(self, found: Mapping[str, tuple[str, Any]]) -> None:
        for start in found:
            seen = [start]
            current = found[start][0]
            while current in found and current not in seen:
                seen.append(current)
                current = found[current][0]
            if current == start:
                index = next(
                    i for i, p in enumerate(self.layout.dependent_picklists) if p.child == start
                )
                shown = " → ".join(f"`{n}`" for n in [*seen, start])
                self.fail(
                    pointer("dependent_picklists", index, "parent"),
                    "picklist_cycle",
                    f"dependent picklists form a circle: {shown}; remove one of them",
                )
                return

    # -- related lists --------------------------------------------------------------------------

    def _related_lists(self) -> tuple[CompiledRelatedList, ...]:
        found = []
        for i, related in enumerate(self.layout.related_lists):
            at = pointer("related_lists", i)
            checked = self._related_list(related, at)
            if checked is not None:
                found.append(checked)
        return tuple(found)

    def _related_list(self, related: RelatedList, at: str) -> CompiledRelatedList | None:
        if not 1 <= related.limit <= MAX_RELATED_ROWS:
            self.fail(
                at + "/limit",
                "bad_limit",
                f"a related list shows 1 to {MAX_RELATED_ROWS} rows; got {related.limit}",
            )
        if self.others is None:
            return None
        known = {**self.others, self.entity.name: self.entity}
        target = known.get(related.entity)
        if target is None:
            self.fail(
                at + "/entity",
                "unknown_entity",
                f"unknown entity `{related.entity}`{_hint(related.entity, known, 'entities')}",
            )
            return None
        link = self._lookup_back(related, target, at)
        columns = condition_fields(target)
        for j, column in enumerate(related.columns):
            compiled = columns.get(column)
            if compiled is None:
                self.fail(
                    at + pointer("columns", j),
                    "unknown_field",
                    f"entity `{target.name}` has no field `{column}`"
                    f"{_hint(column, columns, 'its fields')}",
                )
            elif compiled.field_type.virtual:
                self.fail(
                    at + pointer("columns", j),
                    "not_listable",
                    f"field `{column}` ({compiled.field_type.name}) keeps its values in other "
                    "records and cannot be a column; choose another field",
                )
        self._sort(related.sort, columns, target.name, at)
        if link is None:
            return None
        return CompiledRelatedList(related, target, link)

    def _lookup_back(self, related: RelatedList, target: CompiledEntity, at: str) -> str | None:
        back = [
            name
            for name, compiled in target.fields.items()
            if compiled.field_type.name == "lookup"
            and compiled.definition.options.get("entity") == self.entity.name
        ]
        if related.field is None:
            if len(back) == 1:
                return back[0]
            problem = (
                f"entity `{target.name}` has no lookup to `{self.entity.name}`, so no record of "
                f"it belongs to a `{self.entity.name}`; add such a lookup to `{target.name}` or "
                "list another entity"
                if not back
                else f"entity `{target.name}` has several lookups to `{self.entity.name}` "
                f"({', '.join(back)}); name the one to list by in `field`"
            )
            self.fail(at, "no_lookup_back" if not back else "ambiguous_lookup", problem)
            return None
        if related.field in back:
            return related.field
        compiled = target.fields.get(related.field)
        what = (
            "which it does not have"
            if compiled is None
            else f"which is a {compiled.field_type.name} field, not a lookup to "
            f"`{self.entity.name}`"
        )
        fix = f"use one of: {', '.join(back)}" if back else f"give `{target.name}` such a lookup"
        self.fail(
            at + "/field",
            "no_lookup_back",
            f"the related list names field `{related.field}` of `{target.name}`, {what}; {fix}",
        )
        return None

    def _sort(
        self, sort: list[SortKey], columns: Mapping[str, CompiledField], entity: str, at: str
    ) -> None:
        for k, key in enumerate(sort):
            compiled = columns.get(key.field)
            if compiled is None:
                self.fail(
                    at + pointer("sort", k, "field"),
                    "unknown_field",
                    f"entity `{entity}` has no field `{key.field}`"
                    f"{_hint(key.field, columns, 'its fields')}",
                )
            elif compiled.field_type.storage(compiled.definition.options).kind in ("text", "json"):
                self.fail(
                    at + pointer("sort", k, "field"),
                    "not_sortable",
                    f"field `{key.field}` ({compiled.field_type.name}) cannot be sorted on; "
                    "choose a short text, number or date field",
                )

    # -- messages -------------------------------------------------------------------------------

    def _unknown_field(self, name: str) -> str:
        if name in SYSTEM_COLUMNS:
            return (
                f"`{name}` is a system column, managed by the platform; it cannot be placed "
                "or given rules on a form"
            )
        retired = self.entity.document.retired(name)
        if retired is not None:
            return (
                f"field `{name}` was removed from entity `{self.entity.name}` (in version "
                f"{retired.removed_in_version}); remove it from this layout"
            )
        return (
            f"entity `{self.entity.name}` has no field `{name}`"
            f"{_hint(name, self.entity.fields, 'its fields')}"
        )


def tested_fields(condition: Condition) -> Iterable[str]:
    """The fields a parsed condition tests."""
    if isinstance(condition, FieldTest):
        yield condition.field
    elif isinstance(condition, AllOf | AnyOf):
        for part in condition.conditions:
            yield from tested_fields(part)
    elif isinstance(condition, Not):
        yield from tested_fields(condition.condition)


def _choice_values(compiled: CompiledField) -> list[str]:
    return [choice["value"] for choice in compiled.definition.options.get("choices", [])]


def _hint(name: str, known: Iterable[str], what: str) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f" (did you mean `{close[0]}`?)"
    if names:
        listed = ", ".join(names[:_LISTED]) + (", …" if len(names) > _LISTED else "")
        return f"; {what}: {listed}"
    return f"; there are no {what} yet"
