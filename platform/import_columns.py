"""Which column of an import file fills which field: matching headers, suggestions, checks.

A header matches a field by its API name or its label in Chinese or English,
ignoring case, spaces, underscores, full-width forms and a trailing ``*`` (the
"required" mark of many templates). An explicit ``mapping`` (header → field, or
null to ignore the column) wins over matching. Columns that match nothing are
ignored and listed with suggestions (difflib), so a dry run shows them; columns
of system fields (``ID``, ``Created at``…) and of computed fields (formulas,
auto-numbers, rollups: the platform fills them) are ignored too, except the
upsert key: ``id`` or an auto-number can find the records to update.

Every problem of the plan (unknown fields, two columns for one field, a
required field without a column, an upsert or lookup key that is not unique)
is reported together, before a single row is read.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from formloom.engine.errors import Issue, pointer
from formloom.engine.fields.computed import ComputedFieldType
from formloom.engine.records.compiled import CompiledEntity, CompiledField
from formloom.platform.errors import Invalid
from formloom.platform.record_errors import say

#: Updating records matched by their id (``upsert_on``) or resolving lookups by id.
ID = "id"
#: Header spellings of the system fields; only ``id`` can be imported (to update by id).
SYSTEM_HEADERS = {
    "id": ("id", "编号", "记录编号", "recordid"),
    "created_at": ("created_at", "创建时间", "createdat"),
    "updated_at": ("updated_at", "更新时间", "修改时间", "updatedat"),
    "created_by": ("created_by", "创建人", "createdby"),
    "updated_by": ("updated_by", "修改人", "更新人", "updatedby"),
    "owner_id": ("owner_id", "负责人", "所有者", "owner", "ownerid"),
    "version": ("version", "版本"),
}
_SEPARATORS = re.compile(r"[\s_\-]+")

#: Loads the compiled entity a lookup points at.
TargetLoader = Callable[[str], CompiledEntity]


@dataclass(frozen=True)
class ColumnMatch:
    """One column of the file and what it fills: a field, ``id``, or nothing (ignored)."""

    column: str
    index: int
    field: str | None
    matched_by: str
    suggestions: tuple[str, ...] = ()
    #: The field a column names but does not fill (system and computed fields).
    names: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "field": self.field,
            "matched_by": self.matched_by,
            "suggestions": list(self.suggestions),
            "names": self.names,
        }


@dataclass(frozen=True)
class ColumnPlan:
    """The columns of a file matched to fields, the upsert key and each lookup's key field."""

    columns: tuple[ColumnMatch, ...]
    upsert_on: str | None
    #: Lookup field → the target field (or ``id``) its cells name.
    lookup_keys: dict[str, str]

    @property
    def mapped(self) -> tuple[ColumnMatch, ...]:
        """The columns that fill a field (or ``id``), in file order."""
        return tuple(c for c in self.columns if c.field is not None)

    def column_of(self, field: str) -> str | None:
        """The header of the column that fills ``field``."""
        return next((c.column for c in self.columns if c.field == field), None)

    def as_list(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.columns]


def header_key(text: str) -> str:
    """How headers compare: NFKC, case-folded, without spaces, underscores, hyphens and ``*``."""
    folded = unicodedata.normalize("NFKC", text).casefold().strip().strip("*").strip()
    return _SEPARATORS.sub("", folded)


def plan_columns(
    entity: CompiledEntity,
    headers: list[str],
    *,
    mapping: Mapping[str, str | None],
    upsert_on: str | None,
    lookup_by: Mapping[str, str],
    targets: TargetLoader,
    lang: str,
) -> ColumnPlan:
    """Match ``headers`` to fields; :class:`Invalid` lists every problem of the plan."""
    issues: list[Issue] = []
    overrides = _overrides(entity, headers, mapping, upsert_on, lang, issues)
    names = _names(entity)
    columns = []
    for index, header in enumerate(headers):
        if header in overrides:
            columns.append(ColumnMatch(header, index, overrides[header], "mapping"))
            continue
        columns.append(_unless_computed(entity, _match(header, index, names, upsert_on), upsert_on))
    _check_once(entity, columns, lang, issues)
    filled = {c.field for c in columns if c.field}
    if not filled - {ID}:
        message = say(
            lang,
            f"no column matches a field of `{entity.name}`: name the columns after the fields "
            '(API name or label) or send a mapping such as {"Company": "name"}',
            f"没有任何列与 `{entity.name}` 的字段对应：请用字段名称或 API 名作为列名，"
            '或提供映射，例如 {"公司": "name"}',
        )
        issues.append(Issue("/options/mapping", "no_columns", message))
    if upsert_on is None:
        _check_required(entity, filled, lang, issues)
    else:
        _check_upsert(entity, upsert_on, filled, lang, issues)
    keys = _lookup_keys(entity, filled, lookup_by, targets, lang, issues)
    if issues:
        raise Invalid(
            say(
                lang,
                f"the import cannot start: {issues[0].message}",
                f"无法开始导入：{issues[0].message}",
            ),
            issues=issues,
        )
    return ColumnPlan(tuple(columns), upsert_on, keys)


def _names(entity: CompiledEntity) -> dict[str, list[tuple[str, str]]]:
    """Header key → [(field, how it matched)]: API names first, then labels, then system names."""
    names: dict[str, list[tuple[str, str]]] = {}
    for name in entity.fields:
        names.setdefault(header_key(name), []).append((name, "name"))
    for name, field in entity.fields.items():
        for lang in ("zh", "en"):
            key = header_key(field.label(lang))
            if (name, "name") not in names.get(key, []):
                names.setdefault(key, []).append((name, f"label_{lang}"))
    for system, spellings in SYSTEM_HEADERS.items():
        for spelling in spellings:
            names.setdefault(header_key(spelling), []).append((system, "system"))
    return names


def _match(
    header: str,
    index: int,
    names: dict[str, list[tuple[str, str]]],
    upsert_on: str | None,
) -> ColumnMatch:
    found = names.get(header_key(header), [])
    fields = [(f, how) for f, how in found if how != "system"]
    distinct = list(dict.fromkeys(f for f, _ in fields))
    if len(distinct) == 1 or (distinct and fields[0][1] == "name"):
        return ColumnMatch(header, index, fields[0][0], fields[0][1])
    if distinct:
        return ColumnMatch(header, index, None, "ambiguous", tuple(distinct))
    if found:
        system = found[0][0]
        filled = ID if system == ID and upsert_on == ID else None
        return ColumnMatch(header, index, filled, "system", names=system)
    candidates = {k: e[0] for k, entries in names.items() for e in entries[:1] if e[1] != "system"}
    close = difflib.get_close_matches(header_key(header), list(candidates), n=3, cutoff=0.6)
    suggestions = tuple(dict.fromkeys(candidates[k] for k in close))
    return ColumnMatch(header, index, None, "", suggestions)


def _unless_computed(
    entity: CompiledEntity, match: ColumnMatch, upsert_on: str | None
) -> ColumnMatch:
    """A column of a computed field (unless it is the upsert key) or a child table fills nothing."""
    if match.field is None or match.field not in entity.fields:
        return match
    field = entity.fields[match.field]
    if is_virtual(field):
        return ColumnMatch(match.column, match.index, None, "child_table", names=match.field)
    if match.field == upsert_on or not is_computed(field):
        return match
    return ColumnMatch(match.column, match.index, None, "computed", names=match.field)


def is_virtual(field: CompiledField) -> bool:
    """Whether the field has no column of its own (child tables: their rows are records)."""
    return bool(field.field_type.virtual)


def is_computed(field: CompiledField) -> bool:
    """Whether the platform computes the field's values (formula, auto-number, rollup)."""
    return isinstance(field.field_type, ComputedFieldType)


def _overrides(
    entity: CompiledEntity,
    headers: list[str],
    mapping: Mapping[str, str | None],
    upsert_on: str | None,
    lang: str,
    issues: list[Issue],
) -> dict[str, str | None]:
    """The explicit mapping by exact header (headers given loosely are matched by key)."""
    by_key = {header_key(h): h for h in headers}
    chosen: dict[str, str | None] = {}
    for given, field in mapping.items():
        path = "/options/mapping" + pointer(given)
        header = given if given in headers else by_key.get(header_key(given))
        if header is None:
            listed = ", ".join(headers)
            issues.append(
                Issue(
                    path,
                    "unknown_column",
                    say(
                        lang,
                        f"the file has no column `{given}`; its columns are: {listed}",
                        f"文件中没有 `{given}` 列；现有列：{listed}",
                    ),
                )
            )
            continue
        if field in (None, ""):
            chosen[header] = None
        elif field == ID and upsert_on == ID:
            chosen[header] = ID
        elif field not in entity.fields:
            issues.append(_unknown_field(entity, field, path, lang))
        elif is_virtual(entity.fields[field]):
            issues.append(
                Issue(
                    path,
                    "child_table",
                    say(
                        lang,
                        f"`{field}` is a child table: its rows are records of their own; import "
                        "them into the child entity, with a column naming the parent",
                        f"`{field}` 是子表，其行是独立的记录；"
                        "请将它们导入子实体，并用一列指明所属的父记录",
                    ),
                )
            )
        elif is_computed(entity.fields[field]) and field != upsert_on:
            issues.append(
                Issue(
                    path,
                    "read_only",
                    say(
                        lang,
                        f"`{field}` is computed by the platform and cannot be imported; map the "
                        "column elsewhere or ignore it (null)",
                        f"`{field}` 由系统计算，不能导入；请将该列映射到其他字段或忽略（null）",
                    ),
                )
            )
        else:
            chosen[header] = field
    return chosen


def _unknown_field(entity: CompiledEntity, field: str, path: str, lang: str) -> Issue:
    close = difflib.get_close_matches(field, entity.fields, n=1)
    hint_en = (
        f"; did you mean `{close[0]}`?"
        if close
        else f"; its fields are: {', '.join(entity.fields)}"
    )
    hint_zh = f"；是否指 `{close[0]}`？" if close else f"；可用字段：{', '.join(entity.fields)}"
    return Issue(
        path,
        "unknown_field",
        say(
            lang,
            f"`{entity.name}` has no field `{field}`{hint_en}",
            f"`{entity.name}` 没有字段 `{field}`{hint_zh}",
        ),
    )


def _check_once(
    entity: CompiledEntity, columns: list[ColumnMatch], lang: str, issues: list[Issue]
) -> None:
    by_field: dict[str, list[str]] = {}
    for column in columns:
        if column.field is not None:
            by_field.setdefault(column.field, []).append(column.column)
    for field, headers in by_field.items():
        if len(headers) > 1:
            shown = ", ".join(f"`{h}`" for h in headers)
            issues.append(
                Issue(
                    "/options/mapping" + pointer(headers[1]),
                    "duplicate_column",
                    say(
                        lang,
                        f"columns {shown} all fill field `{field}`; map all but one elsewhere "
                        f'or ignore them (e.g. {{"{headers[1]}": null}})',
                        f"{shown} 列都对应字段 `{field}`；请将多余的列映射到其他字段或忽略"
                        f'（例如 {{"{headers[1]}": null}}）',
                    ),
                )
            )


def _check_required(
    entity: CompiledEntity, filled: set[str], lang: str, issues: list[Issue]
) -> None:
    for name, field in entity.fields.items():
        definition = field.definition
        required = definition.required and definition.default is None
        required = required and not is_computed(field) and not is_virtual(field)
        if required and name not in filled:
            label = field.label(lang)
            issues.append(
                Issue(
                    "/options/mapping",
                    "required_column",
                    say(
                        lang,
                        f"required field `{name}` ({label}) has no column: add one named "
                        f"`{field.label('zh')}`, `{field.label('en')}` or `{name}`, or map a "
                        "column to it",
                        f"必填字段 `{name}`（{label}）没有对应的列：请添加名为 "
                        f"`{field.label('zh')}`、`{field.label('en')}` 或 `{name}` 的列，"
                        "或映射一列",
                    ),
                )
            )


def is_unique_key(entity: CompiledEntity, name: str) -> bool:
    """Whether ``name`` names one record: ``id``, a unique field or a one-field unique index."""
    if name == ID:
        return True
    field = entity.fields.get(name)
    if field is None:
        return False
    if field.definition.unique:
        return True
    return any(i.unique and i.fields == [name] for i in entity.document.indexes)


def _check_upsert(
    entity: CompiledEntity, upsert_on: str, filled: set[str], lang: str, issues: list[Issue]
) -> None:
    path = "/options/upsert_on"
    if upsert_on != ID and upsert_on not in entity.fields:
        issues.append(_unknown_field(entity, upsert_on, path, lang))
        return
    if not is_unique_key(entity, upsert_on):
        keys = [ID, *(n for n in entity.fields if is_unique_key(entity, n))]
        issues.append(
            Issue(
                path,
                "not_unique",
                say(
                    lang,
                    f"`{upsert_on}` can hold the same value on several records, so it cannot "
                    f"say which record a row updates; use a unique field: {', '.join(keys)}",
                    f"`{upsert_on}` 的值可能重复，无法确定每行更新哪条记录；"
                    f"请使用唯一字段：{', '.join(keys)}",
                ),
            )
        )
    if upsert_on not in filled:
        issues.append(
            Issue(
                path,
                "no_column",
                say(
                    lang,
                    f"the records to update are found by `{upsert_on}`, but no column fills it",
                    f"按 `{upsert_on}` 匹配要更新的记录，但没有列对应该字段",
                ),
            )
        )


def _lookup_keys(
    entity: CompiledEntity,
    filled: set[str],
    lookup_by: Mapping[str, str],
    targets: TargetLoader,
    lang: str,
    issues: list[Issue],
) -> dict[str, str]:
    keys: dict[str, str] = {}
    for name in lookup_by:
        if name not in entity.fields or lookup_target(entity.fields[name]) is None:
            lookups = [n for n, f in entity.fields.items() if lookup_target(f)]
            issues.append(
                Issue(
                    "/options/lookup_by" + pointer(name),
                    "not_a_lookup",
                    say(
                        lang,
                        f"`{name}` is not a lookup field of `{entity.name}`; its lookups are: "
                        f"{', '.join(lookups) or 'none'}",
                        f"`{name}` 不是 `{entity.name}` 的关联字段；关联字段有："
                        f"{'、'.join(lookups) or '无'}",
                    ),
                )
            )
    for name, field in entity.fields.items():
        target_name = lookup_target(field)
        if target_name is None or name not in filled:
            continue
        target = targets(target_name)
        key = lookup_by.get(name) or target.title_field or ID
        if key != ID and key not in target.fields:
            issues.append(_unknown_field(target, key, "/options/lookup_by" + pointer(name), lang))
        elif key not in (ID, target.title_field) and not is_unique_key(target, key):
            issues.append(
                Issue(
                    "/options/lookup_by" + pointer(name),
                    "not_unique",
                    say(
                        lang,
                        f"`{target_name}`.`{key}` is not unique, so a cell could name several "
                        "records; use a unique field, the title field or id",
                        f"`{target_name}`.`{key}` 不是唯一字段，单元格可能对应多条记录；"
                        "请使用唯一字段、标题字段或 id",
                    ),
                )
            )
        keys[name] = key
    return keys


def lookup_target(field: CompiledField) -> str | None:
    """The entity a lookup field points at (None for other fields)."""
    return field.field_type.references(field.definition.options)
