"""Field types holding structured JSON: free-form tags, and JSON values checked by a schema."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from referencing.exceptions import Unresolvable

from formloom.engine.errors import pointer
from formloom.engine.fields import values
from formloom.engine.fields.base import FieldType, FieldValueError, register
from formloom.engine.fields.objects import shown
from formloom.engine.fields.storage import Storage

_SPACES = re.compile(r"\s+")
#: How many schema violations one message lists before summarising the rest.
_MAX_LISTED = 10


class TagsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_count: int = Field(default=20, ge=1, le=200, description="Most tags on one record")
    max_length: int = Field(default=50, ge=1, le=255, description="Longest tag, in characters")
    suggestions: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Tags offered while typing; other tags are allowed too",
    )

    @model_validator(mode="after")
    def _suggestions_are_tags(self) -> TagsOptions:
        seen: set[str] = set()
        for suggestion in self.suggestions:
            tag = _clean_tag(suggestion)
            if tag != suggestion or not tag:
                raise ValueError(f"suggestion {suggestion!r} must be trimmed and not blank")
            if len(tag) > self.max_length:
                raise ValueError(
                    f"suggestion {suggestion!r} is longer than max_length {self.max_length}"
                )
            if tag.casefold() in seen:
                raise ValueError(f"suggestion {suggestion!r} appears twice")
            seen.add(tag.casefold())
        return self


def _clean_tag(tag: str) -> str:
    """Trim a tag and collapse runs of whitespace inside it to one space."""
    return _SPACES.sub(" ", tag).strip()


@register
class TagsType(FieldType):
    """Free-form labels, e.g. ``["VIP", "华东", "trade show 2026"]``.

    Each tag is trimmed (inner runs of whitespace become one space); blank tags
    are dropped; duplicates are removed ignoring case, keeping the first spelling
    and the order given. ``suggestions`` only help the form; any tag is accepted.
    """

    name = "tags"
    options_model = TagsOptions
    operators = ("contains", "is_empty")
    cel_type = "list(string)"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")

    def value_schema(self, options: TagsOptions) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "string", "maxLength": options.max_length}
        if options.suggestions:
            item["examples"] = options.suggestions
        return {"type": "array", "items": item, "maxItems": options.max_count}

    def normalise(self, value: Any, options: TagsOptions) -> list[str]:
        if not isinstance(value, list):
            raise values.wrong_type(value, "a list of tags", "标签列表")
        tags: list[str] = []
        seen: set[str] = set()
        for position, raw in enumerate(value, start=1):
            tag = self._tag(raw, position, options)
            if tag and tag.casefold() not in seen:
                seen.add(tag.casefold())
                tags.append(tag)
        if len(tags) > options.max_count:
            raise FieldValueError(
                "too_many",
                f"{len(tags)} different tags given; at most {options.max_count} allowed",
                f"共有 {len(tags)} 个不同的标签，最多允许 {options.max_count} 个",
            )
        return tags

    def _tag(self, raw: Any, position: int, options: TagsOptions) -> str:
        if not isinstance(raw, str):
            raise FieldValueError(
                "type",
                f"tag {position} must be text, got {shown(raw)}",
                f"第 {position} 个标签应为文本，实际为 {shown(raw)}",
            )
        tag = _clean_tag(raw)
        if any(unicodedata.category(c) == "Cc" for c in tag):
            raise FieldValueError(
                "invalid_tag",
                f"tag {position} ({shown(tag)}) contains a control character",
                f"第 {position} 个标签（{shown(tag)}）包含控制字符",
            )
        if len(tag) > options.max_length:
            raise FieldValueError(
                "too_long",
                f"tag {position} ({shown(tag)}) is {len(tag)} characters long; "
                f"at most {options.max_length} allowed",
                f"第 {position} 个标签（{shown(tag)}）长度为 {len(tag)} 个字符，"
                f"最多允许 {options.max_length} 个",
            )
        return tag


class JsonOptions(BaseModel):
    """``schema``: a JSON Schema every value must satisfy (draft 2020-12 unless it says
    otherwise with ``$schema``); references must stay inside it (``#/$defs/…``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    json_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="A JSON Schema that every value must satisfy",
    )
    max_bytes: int = Field(
        default=65_536,
        ge=16,
        le=1_048_576,
        description="Largest value, in bytes of compact UTF-8 JSON",
    )
    _validator: Validator | None = PrivateAttr(default=None)

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            problems = schema_problems(schema)
            if problems:
                raise ValueError("not a valid JSON Schema: " + "; ".join(problems))
        return schema

    def model_post_init(self, context: Any) -> None:
        if self.json_schema is not None:
            checker = validator_for(self.json_schema, default=Draft202012Validator)
            self._validator = checker(self.json_schema, format_checker=checker.FORMAT_CHECKER)

    @property
    def validator(self) -> Validator | None:
        """The compiled validator of ``schema`` (None without one)."""
        return self._validator


def schema_problems(schema: dict[str, Any]) -> list[str]:
    """Why ``schema`` cannot check values: bad keywords, unknown dialect, outside references."""
    dialect = schema.get("$schema")
    if dialect is not None and validator_for(schema, default=None) is None:  # type: ignore[arg-type]
        return [
            f"unknown $schema {dialect!r}; use https://json-schema.org/draft/2020-12/schema "
            "or another published draft"
        ]
    checker = validator_for(schema, default=Draft202012Validator)
    problems = [
        f"at {_where(error.absolute_path)}: {error.message}"
        for error in checker(checker.META_SCHEMA).iter_errors(schema)
    ]
    if problems:
        return problems
    for at, ref in _references(schema, ()):
        if not ref.startswith("#"):
            problems.append(
                f"at {_where(at)}: reference {ref!r} points outside the schema; nothing is "
                "fetched, so put the definition under $defs and refer to it as #/$defs/…"
            )
        elif not _resolves(schema, ref[1:]):
            problems.append(f"at {_where(at)}: reference {ref!r} does not resolve in the schema")
    return problems


def _references(
    node: Any, at: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every ``$ref``/``$dynamicRef`` in a schema, with where it is."""
    if isinstance(node, dict):
        for key, child in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(child, str):
                yield (*at, key), child
            else:
                yield from _references(child, (*at, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _references(child, (*at, index))


def _resolves(schema: dict[str, Any], fragment: str) -> bool:
    """Whether ``#fragment`` names a JSON pointer or an ``$anchor`` inside ``schema``."""
    if fragment == "":
        return True
    if not fragment.startswith("/"):
        return any(
            anchor == fragment
            for _, anchor in _keyword_values(schema, ("$anchor", "$dynamicAnchor"))
        )
    node: Any = schema
    for raw in fragment[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _keyword_values(node: Any, keywords: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, child in node.items():
            if key in keywords:
                yield key, child
            yield from _keyword_values(child, keywords)
    elif isinstance(node, list):
        for child in node:
            yield from _keyword_values(child, keywords)


def _where(path: Any) -> str:
    return pointer(*path) or "/"


@register
class JsonType(FieldType):
    """Any JSON value (object, array, string, number, boolean), e.g. integration payloads.

    With the ``schema`` option every value must satisfy that JSON Schema; all
    violations are reported together (JSON Schema messages are in English, so
    the Chinese message quotes them). ``max_bytes`` bounds the compact UTF-8 JSON.
    """

    name = "json"
    options_model = JsonOptions
    operators = ("is_empty",)
    cel_type = "dyn"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")

    def value_schema(self, options: JsonOptions) -> dict[str, Any]:
        if options.json_schema is None:
            return {}
        if "$id" in options.json_schema:
            return options.json_schema
        # An $id makes the schema its own resource inside the record schema, so
        # that its "#/$defs/…" references still resolve against it.
        digest = hashlib.sha256(json.dumps(options.json_schema, sort_keys=True).encode())
        return {"$id": f"urn:formloom:json-field:{digest.hexdigest()[:16]}", **options.json_schema}

    def normalise(self, value: Any, options: JsonOptions) -> Any:
        try:
            encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError):
            raise FieldValueError(
                "type",
                f"{shown(value)} is not a JSON value (numbers must be finite)",
                f"{shown(value)} 不是有效的 JSON 值（数字必须是有限值）",
            ) from None
        if "\\u0000" in encoded and _has_nul(value):
            raise FieldValueError(
                "invalid_json",
                "the value contains a NUL character (\\u0000), which cannot be stored",
                "值中包含无法存储的 NUL 字符（\\u0000）",
            )
        size = len(encoded.encode())
        if size > options.max_bytes:
            raise FieldValueError(
                "too_large",
                f"the JSON value is {size} bytes; at most {options.max_bytes} allowed",
                f"JSON 值为 {size} 字节，最多允许 {options.max_bytes} 字节",
            )
        if options.validator is not None:
            self._check_schema(value, options.validator)
        return value

    def _check_schema(self, value: Any, validator: Validator) -> None:
        try:
            errors = sorted(validator.iter_errors(value), key=lambda e: e.json_path)
        except Unresolvable as exc:
            raise FieldValueError(
                "invalid_schema",
                f"the field's schema cannot be applied: {exc}",
                f"字段的 JSON Schema 无法使用：{exc}",
            ) from None
        if not errors:
            return
        shown_errors = errors[:_MAX_LISTED]
        en = [f"at {_where(e.absolute_path)}: {e.message}" for e in shown_errors]
        zh = [f"位置 {_where(e.absolute_path)}：{e.message}" for e in shown_errors]
        more = len(errors) - len(shown_errors)
        raise FieldValueError(
            "schema",
            "does not match the field's schema: "
            + "; ".join(en)
            + (f" (and {more} more)" if more else ""),
            "不符合字段的 JSON Schema：" + "；".join(zh) + (f"（另有 {more} 处）" if more else ""),
        )


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
