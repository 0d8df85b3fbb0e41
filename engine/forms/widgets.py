"""Form widgets: how each field type is shown, edited and read back from an HTML form post.

One registered widget per field type (``form_widgets.get("date")``); a field type
without a widget fails loudly (a test checks every registered type has one).
A widget names its UI control (``control``: the macro of ``templates/widgets.html``
and the ``widget`` of the UI schema), adds the control's options to the UI
schema, turns a value into what its inputs show, and turns posted inputs back
into the JSON value the records API takes.

Posted inputs are named ``field`` or, for controls with several inputs,
``field.part`` (``region.province``, ``lines.0.qty``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from formloom.engine.records.compiled import CompiledEntity, CompiledField
from formloom.engine.registry import Registry

#: What the browser searches records with: ``{env}`` and ``{entity}`` are filled in.
RECORD_SEARCH_URL = "/api/envs/{env}/records/{entity}?q="
USER_SEARCH_URL = "/api/envs/{env}/users?q="
TEAM_SEARCH_URL = "/api/envs/{env}/teams?q="
FILE_UPLOAD_URL = "/api/envs/{env}/files"
#: Children of a Chinese division (the provinces for code ``0``), for cascading selects.
REGION_CHILDREN_URL = "/api/regions/{code}/children"

Posted = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class WidgetContext:
    """What a widget may use to describe its control."""

    env: str
    lang: str
    entities: Mapping[str, CompiledEntity]
    tz: tzinfo


class Widget:
    """Base widget: a single text input whose text is the value."""

    control = "text"
    input_type = "text"

    def __init__(self, name: str, **overrides: Any) -> None:
        self.name = name
        for key, value in overrides.items():
            setattr(self, key, value)

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        """The control's options in the UI schema."""
        return {"input_type": self.input_type} if self.control == "text" else {}

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        """What the control's inputs hold for ``value`` (text, or a structure for the macro)."""
        return "" if value is None else str(value)

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        """The JSON value posted for the field (None: empty); absent inputs give ``MISSING``."""
        values = posted.get(name)
        if values is None:
            return MISSING
        text = values[-1] if values else ""
        return None if text.strip() == "" else text


class _Missing:
    """The field was not in the post at all (its inputs were disabled or absent)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class TextArea(Widget):
    control = "textarea"

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        values = posted.get(name)
        if values is None:
            return MISSING
        text = values[-1] if values else ""
        return text if compiled.field_type.name == "long_text" or text.strip() else None


class JsonText(TextArea):
    """JSON values as text; text that does not parse is posted as it is (the save explains)."""

    control = "json"

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        return "" if value is None else json.dumps(value, ensure_ascii=False, indent=2)

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        text = super().from_post(name, posted, compiled, tz)
        if not isinstance(text, str):
            return text
        try:
            return json.loads(text)
        except ValueError:
            return text


class NumberInput(Widget):
    control = "number"

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        options = compiled.options
        found: dict[str, Any] = {}
        scale = getattr(options, "scale", None)
        found["step"] = "1" if self.name in ("integer", "rating", "progress") else "any"
        if scale is not None:
            found["step"] = "1" if scale == 0 else f"0.{'0' * (scale - 1)}1"
        for key in ("min", "max"):
            if getattr(options, key, None) is not None:
                found[key] = getattr(options, key)
        if self.name == "currency":
            found["prefix"] = getattr(options, "currency", "CNY")
        if self.name in ("percent", "progress"):
            found["suffix"] = "%"
        if self.name == "progress":
            found.update(min=0, max=100)
        if self.name == "rating":
            found.update(min=0, max=getattr(options, "max", 5))
        return found


class DurationInput(Widget):
    control = "text"

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        return {"input_type": "text", "placeholder": "1d 2h 30m"}


class DateInput(Widget):
    control = "date"


class DateTimeInput(Widget):
    """``datetime-local`` inputs, in the form's timezone (the timezone of its ``now``)."""

    control = "datetime"

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        return {"timezone": str(ctx.tz)}

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        if not isinstance(value, str) or not value:
            return ""
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if moment.tzinfo is not None:
            moment = moment.astimezone(tz)
        return moment.strftime("%Y-%m-%dT%H:%M")

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        text = super().from_post(name, posted, compiled, tz)
        if not isinstance(text, str):
            return text
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            return text  # the records API explains what it expects
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.isoformat()


class Checkbox(Widget):
    """A checkbox after a hidden ``false`` input, so an unticked box posts false."""

    control = "checkbox"

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        return value is True

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        values = posted.get(name)
        if values is None:
            return MISSING
        return "true" in values


class Select(Widget):
    control = "select"

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        return {"choices": choice_list(compiled, ctx.lang), "multiple": self.name == "multi_select"}

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        if self.name == "multi_select":
            return [str(v) for v in value] if isinstance(value, list) else []
        return "" if value is None else str(value)

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        if self.name != "multi_select":
            return super().from_post(name, posted, compiled, tz)
        values = posted.get(name)
        if values is None:
            return MISSING
        return [v for v in values if v]


class Tags(Widget):
    """Comma-separated tags in one input (、 and ， work too)."""

    control = "tags"

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        return ", ".join(str(v) for v in value) if isinstance(value, list) else ""

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        text = super().from_post(name, posted, compiled, tz)
        if not isinstance(text, str):
            return [] if text is None else text
        parts = text.replace("，", ",").replace("、", ",").split(",")
        return [part.strip() for part in parts if part.strip()]


class Lookup(Widget):
    """A type-ahead search box and the hidden id input(s) it fills."""

    control = "lookup"

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        target = compiled.definition.options.get("entity")
        if self.name == "user":
            url = USER_SEARCH_URL.format(env=ctx.env)
        elif self.name == "team":
            url = TEAM_SEARCH_URL.format(env=ctx.env)
        else:
            url = RECORD_SEARCH_URL.format(env=ctx.env, entity=target)
        found = ctx.entities.get(target) if isinstance(target, str) else None
        title = found.title_field if found is not None else None
        if self.name in ("user", "team"):
            title = "name"  # the directory's answers (``/users``, ``/teams``) name each entry
        return {
            "search_url": url,
            "entity": target,
            "multiple": self.name == "multi_lookup",
            # which field of a search result the type-ahead shows (None: the record's id)
            "title_field": title,
        }

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        if isinstance(value, list):
            return [str(v) for v in value]
        return [] if value is None else [str(value)]

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        values = posted.get(name)
        if values is None:
            return MISSING
        ids = [_id(v) for v in values if v.strip()]
        if self.name == "multi_lookup":
            return ids
        return ids[-1] if ids else None


class Region(Widget):
    """Cascading province → city → district selects (``field.province`` …)."""

    control = "region"

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        levels = getattr(compiled.options, "levels", "district")
        order = ("province", "city", "district")
        return {
            "levels": list(order[: order.index(levels) + 1]),
            "children_url": REGION_CHILDREN_URL,
        }

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        return dict(value) if isinstance(value, dict) else {}

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        parts = _parts(name, posted, ("province", "city", "district"))
        if parts is None:
            return MISSING
        return parts or None


class Address(Widget):
    """Country, cascading region selects, street and postcode (``address.region.city`` …)."""

    control = "address"

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        levels = getattr(compiled.options, "region_levels", "district")
        order = ("province", "city", "district")
        return {
            "levels": list(order[: order.index(levels) + 1]),
            "children_url": REGION_CHILDREN_URL,
            "default_country": getattr(compiled.options, "default_country", "CN"),
        }

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        if not isinstance(value, dict):
            return {}
        region = value.get("region")
        return {
            **{k: v for k, v in value.items() if k != "region"},
            **(dict(region) if isinstance(region, dict) else {}),
        }

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        found = _parts(name, posted, ("country", "street", "postcode"))
        region = _parts(f"{name}.region", posted, ("province", "city", "district"))
        if found is None and region is None:
            return MISSING
        address: dict[str, Any] = dict(found or {})
        if region:
            address["region"] = region
        return address or None


class Geo(Widget):
    control = "geo"

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        return dict(value) if isinstance(value, dict) else {}

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        found = _parts(name, posted, ("lat", "lng"))
        if found is None:
            return MISSING
        return {k: _number(v) for k, v in found.items()} or None


class FileUpload(Widget):
    """A file input that uploads first; the hidden inputs hold the uploaded files' ids."""

    control = "file"

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        options = compiled.options
        return {
            "upload_url": FILE_UPLOAD_URL.format(env=ctx.env),
            "multiple": bool(getattr(options, "multiple", False)),
            "accept": list(getattr(options, "accept", []) or []),
            "image": self.name == "image",
        }

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        return [item for item in items if isinstance(item, dict)]

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        values = posted.get(name)
        if values is None:
            return MISSING
        files = [{"id": v.strip()} for v in values if v.strip()]
        if getattr(compiled.options, "multiple", False):
            return files
        return files[-1] if files else None


class Grid(Widget):
    """Child rows as a table with add/remove buttons (``lines.0.qty``, ``lines.0.id`` …)."""

    control = "grid"

    def options(self, compiled: CompiledField, ctx: WidgetContext) -> dict[str, Any]:
        child_name = compiled.definition.options.get("entity", "")
        link = compiled.definition.options.get("field")
        child = ctx.entities.get(child_name)
        columns = []
        if child is not None:
            for name, column in child.fields.items():
                if name == link or not _grid_cell(column):
                    continue
                columns.append(
                    {
                        "field": name,
                        "label": column.label(ctx.lang),
                        "type": column.field_type.name,
                        "input_type": _CELL_INPUTS.get(column.field_type.name, "text"),
                        "required": column.definition.required,
                        "choices": choice_list(column, ctx.lang),
                    }
                )
        return {"entity": child_name, "columns": columns}

    def shown(self, value: Any, compiled: CompiledField, tz: tzinfo) -> Any:
        return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []

    def from_post(self, name: str, posted: Posted, compiled: CompiledField, tz: tzinfo) -> Any:
        prefix = name + "."
        rows: dict[int, dict[str, Any]] = {}
        seen = name + ".rows" in posted
        for key, values in posted.items():
            if not key.startswith(prefix):
                continue
            index, _, column = key[len(prefix) :].partition(".")
            if not index.isdigit() or not column:
                continue
            seen = True
            text = values[-1] if values else ""
            cell: Any = None if text.strip() == "" else text
            if column in ("id", "version") and cell is not None:
                cell = _id(cell)
            rows.setdefault(int(index), {})[column] = cell
        if not seen:
            return MISSING
        return [
            {k: v for k, v in row.items() if v is not None or k not in ("id", "version")}
            for _, row in sorted(rows.items())
        ]


class Display(Widget):
    """Computed fields: shown, never edited."""

    control = "display"


_CELL_INPUTS = {
    "integer": "number",
    "decimal": "number",
    "currency": "number",
    "percent": "number",
    "date": "date",
    "boolean": "checkbox",
    "single_select": "select",
    "email": "email",
    "url": "url",
    "phone": "tel",
}


def _grid_cell(column: CompiledField) -> bool:
    """Whether a child field gets an input in a grid row (simple values only)."""
    return column.field_type.name in (*_CELL_INPUTS, "text", "lookup", "user")


def choice_list(compiled: CompiledField, lang: str) -> list[dict[str, str]]:
    """The choices of a select field as ``{value, label}`` in ``lang``."""
    choices = compiled.definition.options.get("choices", [])
    return [
        {
            "value": choice["value"],
            "label": choice["label"].get(lang) or next(iter(choice["label"].values())),
        }
        for choice in choices
    ]


def _parts(name: str, posted: Posted, parts: Sequence[str]) -> dict[str, str] | None:
    found = {}
    present = False
    for part in parts:
        values = posted.get(f"{name}.{part}")
        if values is None:
            continue
        present = True
        text = values[-1].strip() if values else ""
        if text:
            found[part] = text
    return found if present else None


def _id(text: str) -> Any:
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() else stripped


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


form_widgets: Registry[Widget] = Registry("form widget")
for _widget in (
    Widget("text"),
    Widget("email", input_type="email"),
    Widget("phone", input_type="tel"),
    Widget("url", input_type="url"),
    TextArea("long_text"),
    TextArea("rich_text", control="rich_text"),
    JsonText("json"),
    TextArea("signature", control="signature"),
    NumberInput("integer"),
    NumberInput("decimal"),
    NumberInput("currency"),
    NumberInput("percent"),
    NumberInput("rating"),
    NumberInput("progress"),
    DurationInput("duration"),
    DateInput("date"),
    DateTimeInput("datetime"),
    Checkbox("boolean"),
    Select("single_select"),
    Select("multi_select"),
    Tags("tags"),
    Lookup("lookup"),
    Lookup("multi_lookup"),
    Lookup("user"),
    Lookup("team"),
    Region("region"),
    Address("address"),
    Geo("geo"),
    FileUpload("file"),
    FileUpload("image"),
    Grid("child_table"),
    Display("formula"),
    Display("auto_number"),
    Display("rollup"),
):
    form_widgets.register(_widget)
