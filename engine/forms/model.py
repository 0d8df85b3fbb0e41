"""The layout document: how an entity's form is arranged, and its rules, defaults and picklists.

A layout is bound to one entity. It places the entity's fields in ``tabs`` →
``sections`` (1–4 columns), lists related records (``related_lists``), and adds
form behaviour: conditional ``rules`` (visible / required / read-only when a
structured condition holds), ``defaults`` for new records, and dependent
picklists (a select's choices filtered by another select's value). ``roles``
and ``purpose`` say whom and what it is for; see :func:`~formloom.engine.forms.choose_layout`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from formloom.engine.labels import HelpText, Label
from formloom.engine.names import API_NAME_PATTERN

LAYOUT_SCHEMA_VERSION = 1
MAX_TABS = 20
MAX_SECTIONS = 50
MAX_PLACEMENTS = 500
MAX_RULES = 200
MAX_RELATED_LISTS = 20
MAX_PICKLISTS = 50
MAX_COLUMNS = 4
MAX_RELATED_COLUMNS = 12
MAX_RELATED_ROWS = 100

Purpose = Literal["edit", "view"]
"""What a layout is for: `edit` (create and edit forms) or `view` (the record page, read-only)."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Placement(_Part):
    """One field placed in a section."""

    field: str = Field(description="API name of a field of the layout's entity")
    span: int | None = Field(
        default=None, description="Columns the field takes (1 to the section's `columns`)"
    )
    help: HelpText | None = Field(
        default=None, description="Help text under the field (replaces the field's own)"
    )
    placeholder: HelpText | None = Field(default=None, description="Hint shown in an empty input")


class Section(_Part):
    """A group of fields laid out in columns."""

    name: str = Field(
        pattern=API_NAME_PATTERN, description="API name of the section, unique in the layout"
    )
    label: Label | None = Field(default=None, description="Heading (none: no heading)")
    columns: int = Field(default=2, description="Columns of the section, 1 to 4")
    collapsible: bool = False
    collapsed: bool = Field(default=False, description="Starts collapsed (needs `collapsible`)")
    fields: list[Placement] = Field(default_factory=list, max_length=MAX_PLACEMENTS)


class Tab(_Part):
    """A tab of the form; a layout with a single tab shows no tab strip."""

    name: str = Field(
        pattern=API_NAME_PATTERN, description="API name of the tab, unique in the layout"
    )
    label: Label
    sections: list[Section] = Field(min_length=1, max_length=MAX_SECTIONS)


class SortKey(_Part):
    field: str
    direction: Literal["asc", "desc"] = "asc"


class RelatedList(_Part):
    """Records of another entity that look this record up (an account's contacts)."""

    entity: str = Field(description="The related entity")
    field: str | None = Field(
        default=None,
        description=(
            "Its lookup field pointing at this layout's entity (may be left out when it has "
            "exactly one)"
        ),
    )
    label: Label | None = Field(default=None, description="Heading (none: the entity's label)")
    columns: list[str] = Field(min_length=1, max_length=MAX_RELATED_COLUMNS)
    sort: list[SortKey] = Field(default_factory=list, max_length=4)
    limit: int = Field(default=10, description=f"Rows shown, 1 to {MAX_RELATED_ROWS}")


class FieldRule(_Part):
    """Conditions that show, require or lock fields, tested on the form's current values.

    Several rules may name the same field: it is visible while *every*
    ``visible_when`` holds, required when *any* ``required_when`` holds and
    read-only when *any* ``read_only_when`` holds.
    """

    fields: list[str] = Field(min_length=1, max_length=100, description="The fields it governs")
    visible_when: dict[str, Any] | None = Field(
        default=None, description="Structured condition: the fields show only while it holds"
    )
    required_when: dict[str, Any] | None = Field(
        default=None, description="Structured condition: the fields must be filled while it holds"
    )
    read_only_when: dict[str, Any] | None = Field(
        default=None, description="Structured condition: the fields cannot be edited while it holds"
    )


class DefaultValue(_Part):
    """A new record's initial value: exactly one of `value`, `expression`, `current_user`."""

    value: Any = Field(default=None, description="A constant, as the records API takes it")
    expression: str | None = Field(
        default=None,
        max_length=2000,
        description="CEL over the record's fields, e.g. `today()`, `now()`",
    )
    current_user: bool = Field(
        default=False, description="The user filling in the form (user fields)"
    )


class DependentPicklist(_Part):
    """A select whose choices depend on another select's value (product line → product)."""

    parent: str = Field(description="The controlling single-select field")
    child: str = Field(description="The dependent single- or multi-select field")
    choices: dict[str, list[str]] = Field(
        description=(
            "Parent value → the child values allowed with it; a parent value not listed (or an "
            "empty parent) allows none"
        )
    )


class LayoutDoc(BaseModel):
    """A form layout of one entity."""

    model_config = ConfigDict(extra="forbid", strict=True, title="layout")

    schema_version: int = Field(default=LAYOUT_SCHEMA_VERSION, ge=1)
    name: str = Field(pattern=API_NAME_PATTERN, description="API name of the layout")
    label: Label
    description: str = Field(default="", max_length=2000)
    entity: str = Field(description="The entity whose records the layout shows")
    purpose: Purpose = "edit"
    roles: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Roles it applies to (none: everyone without a role-specific layout)",
    )
    tabs: list[Tab] = Field(min_length=1, max_length=MAX_TABS)
    related_lists: list[RelatedList] = Field(default_factory=list, max_length=MAX_RELATED_LISTS)
    rules: list[FieldRule] = Field(default_factory=list, max_length=MAX_RULES)
    defaults: dict[str, DefaultValue] = Field(
        default_factory=dict, description="Field → its value in a new record's form"
    )
    dependent_picklists: list[DependentPicklist] = Field(
        default_factory=list, max_length=MAX_PICKLISTS
    )

    def placements(self) -> list[tuple[str, Placement]]:
        """Every placement with its JSON pointer, in document order."""
        return [
            (f"/tabs/{t}/sections/{s}/fields/{p}", placement)
            for t, tab in enumerate(self.tabs)
            for s, section in enumerate(tab.sections)
            for p, placement in enumerate(section.fields)
        ]
