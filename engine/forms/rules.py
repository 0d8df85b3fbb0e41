"""Conditional rules of a form: one evaluator for the server, and the same rules for the browser.

What a form shows and what the server saves are decided by the same function,
:meth:`FormRules.evaluate` (behind :func:`~formloom.engine.forms.evaluate_rules`),
over the form's *effective values*:

1. Start from the form's initial values (the stored record, or a new record's
   defaults). Fields the viewer may edit (*live* fields) take the values given.
   A text that is only spaces counts as empty (as the records API saves it),
   except in long texts.
2. Walk the fields whose state can change, each after the fields its
   conditions test (the layout check refuses circles). A field is **visible**
   while every ``visible_when`` holds, or while the entity's own
   ``required_when`` holds (a field the entity requires is never hidden). It is
   **read-only** when the viewer may not edit it or any ``read_only_when`` holds.
   A live field that is hidden or read-only *by a rule* is **ignored**: its value
   goes back to its initial value (the stored one; on a new record, its default),
   both for the conditions after it and for the save.
3. A field is **required** when it is visible, not read-only, and the entity
   requires it (always, or by its ``required_when``) or any ``required_when`` of
   the layout holds. A hidden or read-only field is never required by the form.
4. A dependent picklist allows the child values its map lists for the parent's
   effective value (none for an empty or unlisted parent value).

Conditions are the structured conditions of :mod:`formloom.engine.conditions`
and are tested by their own ``matches``. :meth:`FormRules.program` writes the
same rules as JSON for ``static/form_rules.js``: tests on fields the viewer
cannot change (not on the form, hidden or read-only for them) are folded into
constants, so the browser never needs (or gets) those values; relative dates
are already resolved to fixed bounds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from formloom.engine.conditions import (
    AllOf,
    AnyOf,
    Condition,
    FieldTest,
    Not,
    Range,
    storage_kind,
    value_shape,
)
from formloom.engine.fields.values import decimal_to_json
from formloom.engine.records.compiled import CompiledEntity

#: Version of the JSON rules program (bump when ``form_rules.js`` must change with it).
PROGRAM_VERSION = 1


@dataclass(frozen=True)
class FieldState:
    """How one field of the form shows for some values."""

    visible: bool = True
    required: bool = False
    read_only: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {"visible": self.visible, "required": self.required, "read_only": self.read_only}


@dataclass(frozen=True)
class RuleState:
    """The state of every field shown on a form, for some values.

    ``values`` are the effective values the rules saw (ignored fields back at
    their initial values); ``choices`` holds, per dependent picklist child, the
    child values allowed now.
    """

    fields: Mapping[str, FieldState]
    values: Mapping[str, Any]
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The fields whose values come from the user (shown and editable for the viewer).
    live: frozenset[str] = frozenset()

    def __getitem__(self, name: str) -> FieldState:
        return self.fields[name]

    def ignored(self, name: str) -> bool:
        """Whether a value given for ``name`` is unused: a live field hidden or locked by a rule."""
        state = self.fields.get(name)
        return name in self.live and (state is None or not state.visible or state.read_only)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (what the browser evaluator returns for the same values)."""
        return {
            "fields": {name: s.as_dict() for name, s in self.fields.items()},
            "choices": {name: list(values) for name, values in self.choices.items()},
        }


@dataclass(frozen=True)
class RuleStep:
    """One field whose visibility or read-only state depends on values."""

    field: str
    visible_when: tuple[Condition, ...] = ()
    shown_when: Condition | None = None
    read_only_when: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class FormRules:
    """The rules of one form, parsed for its clock, with its initial values."""

    entity: CompiledEntity
    #: Fields shown on the form, in order.
    rendered: tuple[str, ...]
    #: Shown fields the viewer may edit (their values come from the user).
    live: frozenset[str]
    steps: tuple[RuleStep, ...]
    required_always: frozenset[str]
    required_when: Mapping[str, tuple[Condition, ...]]
    #: Child → (parent, parent value → allowed child values).
    picklists: Mapping[str, tuple[str, Mapping[str, tuple[str, ...]]]]
    initial: Mapping[str, Any]

    def effective_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The initial values with the given values of live fields, read by :func:`read_value`."""
        effective = dict(self.initial)
        for name in self.live:
            if name in values:
                compiled = self.entity.fields[name]
                value = self.blank_as_empty(name, values[name])
                effective[name] = read_value(value, storage_kind(compiled), value_shape(compiled))
        return effective

    def blank_as_empty(self, name: str, value: Any) -> Any:
        if isinstance(value, str) and not value.strip() and self._blank_is_empty(name):
            return None
        return value

    def _blank_is_empty(self, name: str) -> bool:
        compiled = self.entity.fields.get(name)
        return compiled is None or compiled.field_type.name != "long_text"

    def evaluate(self, values: Mapping[str, Any]) -> RuleState:
        """The state of every shown field for ``values`` (see the module docstring)."""
        effective = self.effective_values(values)
        visible: dict[str, bool] = {}
        locked: dict[str, bool] = {}
        for step in self.steps:
            shown = all(c.matches(effective) for c in step.visible_when)
            if not shown and step.shown_when is not None:
                shown = step.shown_when.matches(effective)
            read_only = step.field not in self.live or any(
                c.matches(effective) for c in step.read_only_when
            )
            visible[step.field], locked[step.field] = shown, read_only
            if step.field in self.live and (not shown or read_only):
                effective[step.field] = self.initial.get(step.field)
        states = {}
        for name in self.rendered:
            shown = visible.get(name, True)
            read_only = locked.get(name, name not in self.live)
            required = (
                shown
                and not read_only
                and (
                    name in self.required_always
                    or any(c.matches(effective) for c in self.required_when.get(name, ()))
                )
            )
            states[name] = FieldState(shown, required, read_only)
        choices = {
            child: _allowed(allowed, effective.get(parent))
            for child, (parent, allowed) in self.picklists.items()
            if child in states
        }
        return RuleState(states, effective, choices, self.live)

    # -- the browser's copy ---------------------------------------------------------------------

    def program(self) -> dict[str, Any]:
        """The rules as JSON for ``static/form_rules.js`` (same results as :meth:`evaluate`)."""
        fold = _Folder(self)
        return {
            "version": PROGRAM_VERSION,
            "fields": {
                name: {
                    "kind": storage_kind(self.entity.fields[name]),
                    "shape": value_shape(self.entity.fields[name]),
                    "blank_is_empty": self._blank_is_empty(name),
                }
                for name in self.rendered
                if name in self.live
            },
            "initial": {
                name: self.initial.get(name) for name in self.rendered if name in self.live
            },
            "rendered": list(self.rendered),
            "steps": [
                {
                    "field": step.field,
                    "visible_when": [fold(c) for c in step.visible_when],
                    "shown_when": None if step.shown_when is None else fold(step.shown_when),
                    "read_only_when": [fold(c) for c in step.read_only_when],
                }
                for step in self.steps
            ],
            "required": {
                name: {
                    "always": name in self.required_always,
                    "when": [fold(c) for c in self.required_when.get(name, ())],
                }
                for name in self.rendered
                if name in self.required_always or self.required_when.get(name)
            },
            "picklists": {
                child: {"parent": parent, "choices": {k: list(v) for k, v in allowed.items()}}
                for child, (parent, allowed) in self.picklists.items()
                if child in self.rendered
            },
        }


class Unreadable:
    """A value its field cannot hold (``"abc"`` for a number): not empty, and it matches no test.

    Every comparison with it is false, so ``ne`` and ``not_in`` hold; text
    operations on it raise TypeError, which conditions read as "no match".
    """

    def lower(self) -> str:
        raise TypeError("an unreadable value has no text")

    def __repr__(self) -> str:
        return "UNREADABLE"


UNREADABLE: Any = Unreadable()
# ASCII digits only: Python's \d also matches full-width digits, which the browser's does not.
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
_DECIMAL = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")
_DATE = re.compile(r"\s*([0-9]{4})-([0-9]{2})-([0-9]{2})\s*")
_DATETIME = re.compile(
    r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})\s*"
)


def read_value(value: Any, kind: str, shape: str) -> Any:
    """A value given for a form field, as the rules compare it (``form_rules.js`` ``coerce``).

    Only the shape of the value is read, the same way in Python and in the
    browser: numbers from number text, dates from ``YYYY-MM-DD``, date-times from
    ISO text with an offset; anything else a number, date or boolean field cannot
    hold (and any non-text in a text field) is :data:`UNREADABLE`. Limits such as
    decimal places or a minimum are not checked: the save checks them.
    """
    if value is None or shape in ("list", "document"):
        return value
    if shape == "text":
        return value if isinstance(value, str) else UNREADABLE
    if kind in ("integer", "decimal"):
        if isinstance(value, bool):
            return UNREADABLE
        if isinstance(value, int | Decimal):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else UNREADABLE
        pattern = _INTEGER if kind == "integer" else _DECIMAL
        if isinstance(value, str) and pattern.fullmatch(value):
            return int(value) if kind == "integer" else Decimal(value.strip())
        return UNREADABLE
    if kind == "boolean":
        return value if isinstance(value, bool) else UNREADABLE
    if kind == "date":
        found = _DATE.fullmatch(value) if isinstance(value, str) else None
        try:
            return date(*map(int, found.groups())) if found else UNREADABLE
        except ValueError:
            return UNREADABLE
    if kind == "datetime":
        if not isinstance(value, str) or not _DATETIME.fullmatch(value):
            return UNREADABLE
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return value


def _allowed(allowed: Mapping[str, tuple[str, ...]], parent_value: Any) -> tuple[str, ...]:
    return allowed.get(parent_value, ()) if isinstance(parent_value, str) else ()


class _Folder:
    """A parsed condition as JSON; tests of fields the user cannot change become constants."""

    def __init__(self, rules: FormRules) -> None:
        self.rules = rules

    def __call__(self, condition: Condition) -> dict[str, Any]:
        if isinstance(condition, AllOf):
            return {"all": [self(c) for c in condition.conditions]}
        if isinstance(condition, AnyOf):
            return {"any": [self(c) for c in condition.conditions]}
        if isinstance(condition, Not):
            return {"not": self(condition.condition)}
        if condition.field not in self.rules.live:
            return {"const": condition.matches(self.rules.initial)}
        return {"field": condition.field, "op": condition.op, "value": _test_value(condition)}


def _test_value(test: FieldTest) -> Any:
    value = test.value
    if isinstance(value, Range):
        return {
            "low": json_value(value.low),
            "high": json_value(value.high),
            "include_high": value.include_high,
        }
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    return json_value(value)


def json_value(value: Any) -> Any:
    """A stored value in its JSON form (dates as ISO text, decimals as numbers)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return decimal_to_json(value)
    return value
