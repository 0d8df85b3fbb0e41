"""Check a record payload against its entity and turn it into stored values.

Every problem of the payload is collected (unknown fields, read-only system
and computed fields, wrong values with zh/en messages, missing required
fields); nothing is stored unless the list is empty.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, cast

from formloom.engine.errors import Issue, pointer
from formloom.engine.fields import FieldValueError
from formloom.engine.fields.computed import ComputedFieldType
from formloom.engine.names import SYSTEM_COLUMNS
from formloom.engine.records.compiled import CompiledEntity

#: System fields a client may send: `version` (optimistic locking) and `owner_id`.
WRITABLE_SYSTEM = ("version", "owner_id")
_SYSTEM_COLUMNS = frozenset(SYSTEM_COLUMNS)


@dataclass
class CheckedPayload:
    """Stored values to write, the version the client based its change on, and the problems."""

    values: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    owner_id: int | None = None
    issues: list[Issue] = field(default_factory=list)


def check_payload(
    entity: CompiledEntity,
    payload: Any,
    *,
    partial: bool,
    lang: str = "en",
    at: str = "",
    fill_defaults: bool = True,
) -> CheckedPayload:
    """Check ``payload``: ``partial`` (PATCH) checks only the fields present.

    A full payload (create, PUT) must give every required field a value; absent
    fields with a ``default`` get it when ``fill_defaults`` (create; a PUT passes
    False: what it leaves out becomes empty). A partial payload may not empty a
    required field either.
    """
    checked = CheckedPayload()
    if not isinstance(payload, dict):
        message = "expected a JSON object" if lang != "zh" else "应为 JSON 对象"
        checked.issues.append(Issue(at or "", "type", message))
        return checked
    computed = entity.fields_of(ComputedFieldType)
    for key, raw in payload.items():
        # A field's JSON pointer is only built for an issue: most payloads have none, and
        # imports check every row of a file.
        if key in WRITABLE_SYSTEM:
            _system_value(checked, key, raw, at + pointer(key), lang)
        elif key in _SYSTEM_COLUMNS:
            checked.issues.append(
                Issue(
                    at + pointer(key),
                    "read_only",
                    _msg(
                        lang,
                        f"`{key}` is set by the platform and cannot be written",
                        f"`{key}` 由系统维护，不能写入",
                    ),
                )
            )
        elif key not in entity.fields:
            checked.issues.append(_unknown_field(entity, key, at + pointer(key), lang))
        elif key in computed:
            field_type = cast(ComputedFieldType, computed[key].field_type)
            message = field_type.read_only_message(key, lang)
            checked.issues.append(Issue(at + pointer(key), "read_only", message))
        else:
            _field_value(checked, entity, key, raw, at, lang)
    if partial:
        _check_required(checked, entity, [n for n in entity.fields if n in payload], at, lang)
    else:
        if fill_defaults:
            _apply_defaults(checked, entity, payload, at, lang)
        _check_required(checked, entity, list(entity.fields), at, lang)
    return checked


def _unknown_field(entity: CompiledEntity, key: str, path: str, lang: str) -> Issue:
    close = difflib.get_close_matches(key, entity.fields, n=1)
    if close:
        en = f"`{entity.name}` has no field `{key}`; did you mean `{close[0]}`?"
        zh = f"`{entity.name}` 没有字段 `{key}`；是否指 `{close[0]}`？"
    else:
        known = ", ".join(entity.fields)
        en = f"`{entity.name}` has no field `{key}`; its fields are: {known}"
        zh = f"`{entity.name}` 没有字段 `{key}`；可用字段：{known}"
    return Issue(path, "unknown_field", _msg(lang, en, zh))


def _system_value(checked: CheckedPayload, key: str, raw: Any, path: str, lang: str) -> None:
    if raw is None and key == "owner_id":
        checked.owner_id = None
        return
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        setattr(checked, key, raw)
        return
    checked.issues.append(
        Issue(
            path,
            "type",
            _msg(lang, f"`{key}` must be a positive whole number", f"`{key}` 必须是正整数"),
        )
    )


def _field_value(
    checked: CheckedPayload, entity: CompiledEntity, key: str, raw: Any, at: str, lang: str
) -> None:
    """Normalise the value of field ``key``; an issue at ``at`` + the field's pointer if bad."""
    compiled = entity.fields[key]
    if raw is None or (
        isinstance(raw, str) and raw.strip() == "" and compiled.field_type.name != "long_text"
    ):
        checked.values[key] = None
        return
    try:
        checked.values[key] = compiled.field_type.normalise(raw, compiled.options)
    except FieldValueError as exc:
        label = compiled.label(lang)
        separator = "：" if lang == "zh" else ": "
        message = f"{label}{separator}{exc.message(lang)}"
        checked.issues.append(Issue(at + pointer(key), exc.code, message))


def _apply_defaults(
    checked: CheckedPayload, entity: CompiledEntity, payload: dict[str, Any], at: str, lang: str
) -> None:
    for name, compiled in entity.fields.items():
        default = compiled.definition.default
        if name not in payload and default is not None:
            _field_value(checked, entity, name, default, at, lang)


def _check_required(
    checked: CheckedPayload, entity: CompiledEntity, names: list[str], at: str, lang: str
) -> None:
    flagged = {i.path for i in checked.issues}
    for name in names:
        compiled = entity.fields[name]
        if not compiled.definition.required:
            continue
        path = at + pointer(name)
        if path in flagged:
            continue
        if compiled.field_type.is_empty(checked.values.get(name)):
            label = compiled.label(lang)
            checked.issues.append(
                Issue(path, "required", _msg(lang, f"{label} is required", f"{label}为必填项"))
            )


def _msg(lang: str, en: str, zh: str) -> str:
    return zh if lang == "zh" else en
