"""How field values travel through spreadsheet cells: import (cell → JSON) and export (JSON → cell).

Import cells arrive as text (CSV) or as Excel values (numbers, dates, booleans);
the records service takes JSON values. One :class:`CellFormat` per family of
field types turns a cell into the JSON value the field type's ``normalise``
accepts (``"是"`` → ``true``, ``"hot; vip"`` → ``["hot", "vip"]``, an Excel date
→ ``"2026-03-31"``), and a record's JSON value back into a cell a person can
read and that imports again unchanged. Validation stays with the field types:
a format only reshapes what it recognises and passes everything else on, so the
field type reports the problem with its usual message.

Decisions (see ``docs/import-export.md``):

- Choices: a cell may hold the value (``won``) or a label in either language
  (``赢单``, ``Won``), case-insensitively; exports write the label in the
  request's language.
- Several values (multi-select, tags): separated by ``;`` (also ``；``, new
  lines); when a cell holds none of those, by ``,`` or ``，``. Exports join with ``"; "``.
- Booleans: ``是/否``, ``true/false``, ``yes/no``, ``y/n``, ``1/0``, ``对/错``,
  ``✓/✗``; exports write ``是/否`` (Chinese) or ``Yes/No``.
- Date-times without an offset are local time in the import's timezone
  (default Asia/Shanghai); exports write local time in the same way.
- Lookups are resolved by the importer (:mod:`formloom.platform.import_batch`);
  exports write the looked-up record's title.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, ClassVar

from formloom.engine.fields import FieldValueError
from formloom.engine.fields.measures import format_duration
from formloom.engine.records.compiled import CompiledField

#: What a spreadsheet cell holds once read: CSV gives text, XLSX typed values.
Cell = str | int | float | Decimal | bool | date | datetime | time | timedelta | None

_TRUE = frozenset({"是", "true", "yes", "y", "1", "对", "✓", "✔", "√", "t", "on"})
_FALSE = frozenset({"否", "false", "no", "n", "0", "错", "✗", "✘", "×", "f", "off"})
_STRONG_SEPARATORS = re.compile(r"[;；\n]")
_WEAK_SEPARATORS = re.compile(r"[,，、]")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_MONEY_SIGNS = re.compile(r"^[¥￥$€£]|^[A-Z]{3}\s+|\s+[A-Z]{3}$")
_DATE_TIME = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]+(\d{1,2})[:：](\d{2})(?:[:：](\d{2})(?:\.(\d{1,6}))?)?)?$"
)
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True)
class CellContext:
    """What formats need besides the cell: the message language and the local timezone."""

    lang: str
    timezone: tzinfo


class CellFormat:
    """The cell form of some field types; the default passes text through unchanged."""

    #: The field types (registered names) this format serves.
    type_names: ClassVar[tuple[str, ...]] = ()

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        """The JSON value of a non-empty cell; :class:`FieldValueError` for what it refuses."""
        return plain_text(cell)

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        """The cell showing a non-null JSON value (as the records API returns it)."""
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return value  # type: ignore[no-any-return]


_formats: dict[str, CellFormat] = {}
_by_storage = CellFormat()


def register(cls: type[CellFormat]) -> type[CellFormat]:
    """Class decorator: serve the class's ``type_names`` with one instance."""
    instance = cls()
    for name in cls.type_names:
        if name in _formats:
            raise ValueError(f"field type `{name}` already has a cell format")
        _formats[name] = instance
    return cls


def format_of(field: CompiledField) -> CellFormat:
    """The format of a field; types without one are text (or JSON when stored as JSON)."""
    found = _formats.get(field.field_type.name)
    if found is not None:
        return found
    if field.field_type.storage(field.definition.options).kind == "json":
        return _formats["json"]
    return _by_storage


def is_empty(cell: Cell) -> bool:
    """Blank cells (None, or only whitespace) mean "no value"."""
    return cell is None or (isinstance(cell, str) and cell.strip() == "")


def plain_text(cell: Cell) -> str:
    """A cell as text: Excel numbers without a spurious ``.0`` (phone numbers typed as numbers)."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.isoformat(sep=" ")
    if isinstance(cell, date | time):
        return cell.isoformat()
    return str(cell)


def split_values(text: str) -> list[str]:
    """Several values in one cell: ``a; b`` or (with no ``;`` or new line) ``a, b``."""
    separator = _STRONG_SEPARATORS if _STRONG_SEPARATORS.search(text) else _WEAK_SEPARATORS
    return [part.strip() for part in separator.split(text) if part.strip()]


def _refuse(code: str, en: str, zh: str) -> FieldValueError:
    return FieldValueError(code, en, zh)


@register
class WholeNumberFormat(CellFormat):
    """Whole numbers and ids: Excel floats such as ``12.0`` and ``1,234`` become integers."""

    type_names = ("integer", "rating", "progress", "user", "team")

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        if isinstance(cell, float) and cell.is_integer():
            return int(cell)
        if isinstance(cell, str):
            text = unicodedata.normalize("NFKC", cell).strip()
            return text.replace(",", "") if _THOUSANDS.match(text) else text
        return cell


@register
class DecimalFormat(CellFormat):
    """Exact numbers: currency signs (``¥1,234.50``), thousands separators and ``%`` are dropped."""

    type_names = ("decimal", "currency", "percent")

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        if isinstance(cell, float | int | Decimal) and not isinstance(cell, bool):
            return str(cell)
        if not isinstance(cell, str):
            return plain_text(cell)
        text = _MONEY_SIGNS.sub("", unicodedata.normalize("NFKC", cell).strip()).strip()
        if field.field_type.name == "percent":
            text = text.removesuffix("%").strip()
        return text.replace(",", "") if _THOUSANDS.match(text) else text


@register
class DurationFormat(CellFormat):
    """Seconds, text such as ``1h30m``, or an Excel time; exports ``1d 2h 30m``."""

    type_names = ("duration",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        if isinstance(cell, timedelta):
            return int(cell.total_seconds())
        if isinstance(cell, time):
            return cell.hour * 3600 + cell.minute * 60 + cell.second
        if isinstance(cell, float) and cell.is_integer():
            return int(cell)
        return cell if isinstance(cell, str | int) else plain_text(cell)

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        return format_duration(int(value)) if isinstance(value, int) else value


@register
class BooleanFormat(CellFormat):
    type_names = ("boolean",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        if isinstance(cell, bool):
            return cell
        word = plain_text(cell).strip().casefold()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise _refuse(
            "type",
            f"expected yes or no (是/否, true/false, 1/0), got {plain_text(cell)!r}",
            f"应为 是/否（或 true/false、1/0），实际为 “{plain_text(cell)}”",
        )

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        if ctx.lang == "zh":
            return "是" if value else "否"
        return "Yes" if value else "No"


@register
class DateFormat(CellFormat):
    """Dates: Excel dates, ``2026-03-31``, ``2026/3/31``, ``2026年3月31日``."""

    type_names = ("date",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        if isinstance(cell, datetime):
            return cell.date().isoformat()
        if isinstance(cell, date):
            return cell.isoformat()
        text = plain_text(cell).strip()
        found = _DATE_TIME.match(text)
        if found and _valid_date(found) and all(int(p or 0) == 0 for p in found.groups()[3:]):
            return date(int(found[1]), int(found[2]), int(found[3])).isoformat()
        return text

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        return date.fromisoformat(value) if isinstance(value, str) else value


@register
class DateTimeFormat(CellFormat):
    """Moments: with an offset as given; without one, local time in the import's timezone."""

    type_names = ("datetime",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        if isinstance(cell, datetime):
            moment = cell if cell.tzinfo else cell.replace(tzinfo=ctx.timezone)
            return moment.isoformat()
        if isinstance(cell, date):
            return datetime.combine(cell, time(), ctx.timezone).isoformat()
        text = plain_text(cell).strip()
        if _OFFSET.search(text):
            return text
        found = _DATE_TIME.match(text)
        if found is None or not _valid_date(found):
            return text
        hour, minute, second, fraction = (found[i] or "0" for i in (4, 5, 6, 7))
        try:
            moment = datetime(
                int(found[1]),
                int(found[2]),
                int(found[3]),
                int(hour),
                int(minute),
                int(second),
                int(fraction.ljust(6, "0")),
                tzinfo=ctx.timezone,
            )
        except ValueError:
            return text
        return moment.isoformat()

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(ctx.timezone).replace(tzinfo=None)


class _ChoiceFormat(CellFormat):
    """Choices by value or by label in either language, ignoring case and spaces."""

    def choice(self, text: str, field: CompiledField, ctx: CellContext) -> str:
        choices = getattr(field.options, "choices", [])
        wanted = _key(text)
        for choice in choices:
            if choice.value == text.strip():
                return str(choice.value)
        for choice in choices:
            names = [choice.value, *choice.label.values()]
            if any(_key(n) == wanted for n in names):
                return str(choice.value)
        listed = ", ".join(_choice_label(c, ctx.lang) for c in choices)
        raise _refuse(
            "unknown_choice",
            f"{text!r} is not one of the choices: {listed}",
            f"“{text}”不是可选值之一：{listed}",
        )

    def label(self, value: Any, field: CompiledField, ctx: CellContext) -> str:
        for choice in getattr(field.options, "choices", []):
            if choice.value == value:
                return _choice_label(choice, ctx.lang)
        return str(value)


@register
class SingleChoiceFormat(_ChoiceFormat):
    type_names = ("single_select",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        return self.choice(plain_text(cell), field, ctx)

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        return self.label(value, field, ctx)


@register
class MultiChoiceFormat(_ChoiceFormat):
    type_names = ("multi_select",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        return [self.choice(part, field, ctx) for part in split_values(plain_text(cell))]

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        return "; ".join(self.label(v, field, ctx) for v in value)


@register
class TagsFormat(CellFormat):
    type_names = ("tags",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        return split_values(plain_text(cell))

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        return "; ".join(str(v) for v in value)


@register
class RegionFormat(CellFormat):
    """A division code (``440305``) or names from the province down: ``广东省/深圳市/南山区``."""

    type_names = ("region",)
    _LEVELS = ("province", "city", "district")

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        text = plain_text(cell).strip()
        if text.startswith("{"):
            return _json_cell(text)
        if text.isdigit():
            return text
        parts = [p for p in re.split(r"[/\s>，,]+", text) if p]
        return dict(zip(self._LEVELS, parts, strict=False))

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        if not isinstance(value, dict):
            return super().render(value, field, ctx)
        names = [value.get(f"{level}_name") for level in self._LEVELS if level in value]
        if all(names):
            return "/".join(str(n) for n in names)
        deepest = [value[level] for level in self._LEVELS if level in value]
        return str(deepest[-1]) if deepest else None


@register
class GeoFormat(CellFormat):
    """``22.54, 113.93`` (latitude, longitude) or a JSON object."""

    type_names = ("geo",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        text = plain_text(cell).strip()
        if text.startswith("{"):
            return _json_cell(text)
        parts = [p.strip() for p in re.split(r"[,，]", text)]
        try:
            lat, lng = (float(p) for p in parts)
        except ValueError:
            raise _refuse(
                "type",
                f"expected latitude, longitude such as 22.54, 113.93, got {text!r}",
                f"应为“纬度, 经度”，例如 22.54, 113.93，实际为 “{text}”",
            ) from None
        return {"lat": lat, "lng": lng}


@register
class AddressFormat(CellFormat):
    """A JSON object, or plain text taken as the street of an address in the default country."""

    type_names = ("address",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        text = plain_text(cell).strip()
        return _json_cell(text) if text.startswith("{") else {"street": text}


@register
class JsonFormat(CellFormat):
    """Any JSON value, written as JSON text."""

    type_names = ("json",)

    def parse(self, cell: Cell, field: CompiledField, ctx: CellContext) -> Any:
        if isinstance(cell, bool | int | float) and not isinstance(cell, Decimal):
            return cell
        return _json_cell(plain_text(cell).strip())

    def render(self, value: Any, field: CompiledField, ctx: CellContext) -> Cell:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def cell_text(cell: Cell) -> str:
    """How a rendered cell is written to CSV."""
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.isoformat(sep=" ", timespec="seconds" if not cell.microsecond else "auto")
    if isinstance(cell, date | time):
        return cell.isoformat()
    if isinstance(cell, bool):
        return "true" if cell else "false"
    return str(cell)


def _json_cell(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _refuse(
            "invalid_json",
            f"not valid JSON ({exc.args[0] if exc.args else exc})",
            f"不是有效的 JSON（{exc}）",
        ) from None


def _key(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


def _choice_label(choice: Any, lang: str) -> str:
    labels: dict[str, str] = choice.label
    return labels.get(lang) or labels.get("en") or next(iter(labels.values()), choice.value)


def _valid_date(found: re.Match[str]) -> bool:
    try:
        date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return False
    return True
