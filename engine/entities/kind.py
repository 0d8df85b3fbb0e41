"""The `entity` document kind: schema and semantic checks of entity documents."""

from __future__ import annotations

from collections import Counter
from typing import Any

from formloom.engine.entities.model import ENTITY_SCHEMA_VERSION, EntityDoc
from formloom.engine.errors import Issue, pointer
from formloom.engine.fields import field_types
from formloom.engine.meta.kinds import CheckContext, DocumentKind, document_kinds
from formloom.engine.names import SYSTEM_COLUMNS, SYSTEM_TABLE_PREFIX, api_name_problem


class EntityKind(DocumentKind[EntityDoc]):
    name = "entity"
    model = EntityDoc
    current_version = ENTITY_SCHEMA_VERSION

    def json_schema(self) -> dict[str, Any]:
        """The generated schema, with the field type list and each type's options filled in."""
        schema = super().json_schema()
        defs = schema.setdefault("$defs", {})
        field_def = defs["FieldDef"]
        field_def["properties"]["type"]["enum"] = field_types.names()
        rules = []
        for field_type in field_types:
            options = field_type.options_model.model_json_schema(ref_template="#/$defs/{model}")
            defs.update(options.pop("$defs", {}))
            rules.append(
                {
                    "if": {
                        "properties": {"type": {"const": field_type.name}},
                        "required": ["type"],
                    },
                    "then": {"properties": {"options": options}},
                }
            )
        field_def["allOf"] = rules
        return schema

    def check(self, document: EntityDoc, context: CheckContext) -> list[Issue]:
        issues: list[Issue] = []
        problem = api_name_problem(document.name, what="entity name")
        if problem:
            issues.append(Issue("/name", "reserved_name", problem))
        if document.name.startswith(SYSTEM_TABLE_PREFIX):
            issues.append(
                Issue(
                    "/name",
                    "reserved_name",
                    f"entity name `{document.name}` starts with `{SYSTEM_TABLE_PREFIX}`, "
                    "which is reserved for the platform's own tables; choose another name",
                )
            )
        issues += self._check_fields(document, context)
        names = {f.name for f in document.fields}
        if document.title_field is not None and document.title_field not in names:
            issues.append(
                Issue(
                    "/title_field",
                    "unknown_field",
                    f"title field `{document.title_field}` is not a field of this entity; "
                    f"use one of: {', '.join(sorted(names)) or '(no fields yet)'}",
                )
            )
        issues += _check_indexes(document, names)
        return issues

    def _check_fields(self, document: EntityDoc, context: CheckContext) -> list[Issue]:
        issues: list[Issue] = []
        counts = Counter(f.name for f in document.fields)
        id_counts = Counter(f.id for f in document.fields if f.id)
        for i, field in enumerate(document.fields):
            at = pointer("fields", i)
            problem = api_name_problem(field.name, what="field name")
            if problem:
                issues.append(Issue(at + "/name", "reserved_name", problem))
            if field.name in SYSTEM_COLUMNS:
                issues.append(
                    Issue(
                        at + "/name",
                        "system_column",
                        f"field name `{field.name}` collides with a system column "
                        f"({', '.join(SYSTEM_COLUMNS)}); choose another name",
                    )
                )
            if counts[field.name] > 1:
                issues.append(
                    Issue(
                        at + "/name",
                        "duplicate_field",
                        f"field `{field.name}` is defined {counts[field.name]} times; "
                        "field names must be unique within an entity",
                    )
                )
            if field.id and id_counts[field.id] > 1:
                issues.append(
                    Issue(at + "/id", "duplicate_id", f"field id `{field.id}` is used twice")
                )
            if field.type not in field_types:
                issues.append(
                    Issue(at + "/type", "unknown_type", field_types.unknown_message(field.type))
                )
                continue
            field_type = field_types.get(field.type)
            option_issues = field_type.check_options(field.options, at=at)
            issues += option_issues
            if option_issues:
                continue
            target = field_type.references(field.options)
            if (
                target is not None
                and target != document.name
                and not context.exists("entity", target)
            ):
                issues.append(
                    Issue(
                        at + "/options/entity",
                        "unknown_entity",
                        f"field `{field.name}` looks up entity `{target}`, which does not exist "
                        "in this environment; publish that entity first or fix the name",
                    )
                )
        return issues


def _check_indexes(document: EntityDoc, names: set[str]) -> list[Issue]:
    issues: list[Issue] = []
    index_counts = Counter(ix.name for ix in document.indexes)
    for i, index in enumerate(document.indexes):
        at = pointer("indexes", i)
        if index_counts[index.name] > 1:
            issues.append(
                Issue(at + "/name", "duplicate_index", f"index `{index.name}` is defined twice")
            )
        for j, field_name in enumerate(index.fields):
            if field_name not in names and field_name not in ("created_at", "updated_at"):
                issues.append(
                    Issue(
                        at + pointer("fields", j),
                        "unknown_field",
                        f"index `{index.name}` names field `{field_name}`, which this entity "
                        "does not have",
                    )
                )
    return issues


entity_kind = document_kinds.register(EntityKind())
