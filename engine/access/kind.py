"""The `role` document kind: schema and semantic checks of role documents.

Entity and field names are checked against the environment's entity documents
(published, or in the same batch: the batch's version wins). Entity and field
names are plain keys in the model, so a misspelt one is reported as an unknown
name with a suggestion rather than as a pattern mismatch; the published schema
still constrains them for tools.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from formloom.engine.access.model import (
    DEFAULT_ENTITY,
    ROLE_SCHEMA_VERSION,
    SCOPE_RANK,
    EntityAccess,
    RoleDoc,
)
from formloom.engine.errors import Issue, pointer
from formloom.engine.meta.kinds import CheckContext, DocumentKind, document_kinds
from formloom.engine.names import API_NAME_PATTERN

_ENTITY_KEY_PATTERN = r"^(\*|[a-z][a-z0-9_]{0,62})$"
_LISTED_NAMES = 20


class RoleKind(DocumentKind[RoleDoc]):
    name = "role"
    model = RoleDoc
    current_version = ROLE_SCHEMA_VERSION

    def validation_schema(self) -> dict[str, Any]:
        """The model's own schema: entity and field names are checked semantically."""
        return DocumentKind.json_schema(self)

    def json_schema(self) -> dict[str, Any]:
        """The generated schema, with the shape of entity and field names filled in."""
        schema = super().json_schema()
        schema["properties"]["entities"]["propertyNames"] = {"pattern": _ENTITY_KEY_PATTERN}
        fields = schema["$defs"]["EntityAccess"]["properties"]["fields"]
        fields["propertyNames"] = {"pattern": API_NAME_PATTERN}
        return schema

    def check(self, document: RoleDoc, context: CheckContext) -> list[Issue]:
        entities = _EntityIndex.of(context)
        issues = _permission_issues(document.permissions)
        for key, access in document.entities.items():
            at = pointer("entities", key)
            issues += _reference_issues(key, access.fields, entities, at=at)
            issues += _consistency_issues(key, access, at=at)
        return issues

    def check_parts(
        self, raw: dict[str, Any], flagged: set[str], context: CheckContext
    ) -> list[Issue]:
        """Check every entity and field name, and each entry that parses on its own."""
        entities = _EntityIndex.of(context)
        permissions = raw.get("permissions")
        issues = []
        if isinstance(permissions, list):
            issues += _permission_issues(p for p in permissions if isinstance(p, str))
        raw_entities = raw.get("entities")
        if not isinstance(raw_entities, dict):
            return issues
        for key, entry in raw_entities.items():
            at = pointer("entities", key)
            raw_fields = entry.get("fields") if isinstance(entry, dict) else None
            field_names = list(raw_fields) if isinstance(raw_fields, dict) else []
            issues += _reference_issues(key, field_names, entities, at=at)
            try:
                access = EntityAccess.model_validate(entry)
            except ValidationError:
                continue
            issues += _consistency_issues(key, access, at=at)
        return issues


def role_dependencies(raw_body: dict[str, Any]) -> set[str]:
    """The entity names a raw (not yet validated) role body refers to.

    The metastore may use it to publish entities before the roles that name
    them; ``"*"`` and anything that is not a name are left out.
    """
    entities = raw_body.get("entities")
    if not isinstance(entities, dict):
        return set()
    return {key for key in entities if isinstance(key, str) and key != DEFAULT_ENTITY}


@dataclass(frozen=True)
class _EntityIndex:
    """Field names of the environment's entities, current and removed (by entity name)."""

    fields: Mapping[str, frozenset[str]]
    retired: Mapping[str, Mapping[str, int]]

    @classmethod
    def of(cls, context: CheckContext) -> _EntityIndex:
        bodies = {**context.published.get("entity", {}), **context.pending.get("entity", {})}
        fields = {}
        retired = {}
        for name, body in bodies.items():
            fields[name] = frozenset(_names(body.get("fields")))
            retired[name] = {
                field_name: entry.get("removed_in_version", 0)
                for entry in _dicts(body.get("retired_fields"))
                for field_name in _names([entry.get("field")])
            }
        return cls(fields=fields, retired=retired)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _names(value: Any) -> Iterable[str]:
    return (f["name"] for f in _dicts(value) if isinstance(f.get("name"), str))


def _permission_issues(permissions: Iterable[str]) -> list[Issue]:
    issues = []
    seen: dict[str, int] = {}
    for i, permission in enumerate(permissions):
        if permission in seen:
            issues.append(
                Issue(
                    pointer("permissions", i),
                    "duplicate_permission",
                    f"permission `{permission}` is already listed at /permissions/"
                    f"{seen[permission]}; list each permission once",
                )
            )
        seen.setdefault(permission, i)
    return issues


def _reference_issues(
    key: str, field_names: Iterable[str], entities: _EntityIndex, *, at: str
) -> list[Issue]:
    """The entity must exist, and so must every field named; ``"*"`` names no field."""
    names = list(field_names)
    if key == DEFAULT_ENTITY:
        if not names:
            return []
        return [
            Issue(
                at + "/fields",
                "fields_on_default",
                '`"*"` applies to every entity the role does not name, so it cannot name '
                "fields; give the entity its own entry with its `fields`",
            )
        ]
    known = entities.fields.get(key)
    if known is None:
        return [Issue(at, "unknown_entity", _unknown_entity_message(key, entities.fields))]
    issues = []
    for field_name in names:
        if field_name in known:
            continue
        issues.append(
            Issue(
                at + pointer("fields", field_name),
                "unknown_field",
                _unknown_field_message(key, field_name, known, entities.retired.get(key, {})),
            )
        )
    return issues


def _unknown_entity_message(name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        hint = f"; did you mean `{close[0]}`?"
    elif names:
        listed = ", ".join(names[:_LISTED_NAMES]) + (", …" if len(names) > _LISTED_NAMES else "")
        hint = f"; entities of this environment: {listed}"
    else:
        hint = "; this environment has no entities yet"
    return (
        f"unknown entity `{name}`{hint} (name an entity that is published or in the same "
        'batch, or use `"*"` for every entity the role does not name)'
    )


def _unknown_field_message(
    entity: str, field_name: str, known: frozenset[str], retired: Mapping[str, int]
) -> str:
    if field_name in retired:
        return (
            f"field `{field_name}` was removed from entity `{entity}` (in version "
            f"{retired[field_name]}); remove it from this role"
        )
    names = sorted(known)
    close = difflib.get_close_matches(field_name, names, n=1)
    if close:
        hint = f"did you mean `{close[0]}`?"
    elif names:
        listed = ", ".join(names[:_LISTED_NAMES]) + (", …" if len(names) > _LISTED_NAMES else "")
        hint = f"its fields: {listed}"
    else:
        hint = "it has no fields yet"
    return f"entity `{entity}` has no field `{field_name}`; {hint}"


def _consistency_issues(key: str, access: EntityAccess, *, at: str) -> list[Issue]:
    """A role cannot change, delete or export records it cannot read."""
    what = "every entity the role does not name" if key == DEFAULT_ENTITY else f"`{key}`"
    issues = []
    for action in ("update", "delete"):
        scope = getattr(access, action)
        if SCOPE_RANK[scope] > SCOPE_RANK[access.read]:
            issues.append(
                Issue(
                    at + "/" + action,
                    "wider_than_read",
                    f"{action} scope `{scope}` on {what} is wider than its read scope "
                    f"`{access.read}`: a role cannot {action} records it cannot read; "
                    f"widen read to `{scope}` or narrow {action} to `{access.read}`",
                )
            )
    if access.export and access.read == "none":
        issues.append(
            Issue(
                at + "/export",
                "export_without_read",
                f"export on {what} needs a read scope (an export holds the records the user "
                "may read); set read, or export to false",
            )
        )
    if access.import_ and not access.create and access.update == "none":
        issues.append(
            Issue(
                at + "/import",
                "import_without_write",
                f"import on {what} needs create (to add records) or an update scope (to "
                "change existing ones); allow one of them, or turn import off",
            )
        )
    if access.fields and key != DEFAULT_ENTITY and not access.grants_access():
        issues.append(
            Issue(
                at + "/fields",
                "fields_without_access",
                f"this entry gives no access to {what} (read is `none` and create is false), "
                "so its field rules would have no effect: roles add access, they never take "
                "it away; give read or create, or remove the field rules",
            )
        )
    return issues


role_kind = document_kinds.register(RoleKind())
