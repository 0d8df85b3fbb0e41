"""The `layout` document kind: schema and semantic checks of form layouts.

A layout is checked by compiling it against its entity
(:func:`~formloom.engine.forms.layout.compile_layout`: placements, rules,
defaults, dependent picklists, related lists) and against the environment:
its roles must exist, and two layouts of one entity and purpose may not both
apply to the same role (or both to everyone). Field, entity and role names
are plain strings in the model, so a misspelt one is reported as unknown with
a suggestion; the published schema still constrains their shape for tools.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from formloom.engine.entities.model import EntityDoc
from formloom.engine.errors import DocumentInvalid, EngineError, Issue, pointer
from formloom.engine.forms.model import (
    LAYOUT_SCHEMA_VERSION,
    MAX_COLUMNS,
    MAX_RELATED_ROWS,
    LayoutDoc,
)
from formloom.engine.meta.kinds import CheckContext, DocumentKind, document_kinds
from formloom.engine.names import API_NAME_PATTERN

if TYPE_CHECKING:
    from formloom.engine.records.compiled import CompiledEntity

_NAME = {"type": "string", "pattern": API_NAME_PATTERN}


class LayoutKind(DocumentKind[LayoutDoc]):
    name = "layout"
    model = LayoutDoc
    current_version = LAYOUT_SCHEMA_VERSION

    def validation_schema(self) -> dict[str, Any]:
        """The model's own schema: names, columns and spans are checked semantically."""
        return DocumentKind.json_schema(self)

    def json_schema(self) -> dict[str, Any]:
        """The generated schema, with the shapes the semantic checks report filled in."""
        schema = super().json_schema()
        defs = schema["$defs"]
        props = schema["properties"]
        props["entity"]["pattern"] = API_NAME_PATTERN
        props["roles"]["items"] = _NAME
        props["defaults"]["propertyNames"] = {"pattern": API_NAME_PATTERN}
        defs["Placement"]["properties"]["field"]["pattern"] = API_NAME_PATTERN
        defs["Placement"]["properties"]["span"]["anyOf"][0].update(minimum=1, maximum=MAX_COLUMNS)
        defs["Section"]["properties"]["columns"].update(minimum=1, maximum=MAX_COLUMNS)
        related = defs["RelatedList"]["properties"]
        related["entity"]["pattern"] = API_NAME_PATTERN
        related["field"]["anyOf"][0]["pattern"] = API_NAME_PATTERN
        related["columns"]["items"] = _NAME
        related["limit"].update(minimum=1, maximum=MAX_RELATED_ROWS)
        defs["SortKey"]["properties"]["field"]["pattern"] = API_NAME_PATTERN
        defs["FieldRule"]["properties"]["fields"]["items"] = _NAME
        picklist = defs["DependentPicklist"]["properties"]
        picklist["parent"]["pattern"] = API_NAME_PATTERN
        picklist["child"]["pattern"] = API_NAME_PATTERN
        return schema

    def check(self, document: LayoutDoc, context: CheckContext) -> list[Issue]:
        # Imported here: compiling builds on conditions, which import the entity kind.
        from formloom.engine.forms.layout import compile_layout

        entities = _entities(context)
        issues = _role_issues(document, context)
        issues += _overlap_issues(document, context)
        entity = entities.get(document.entity)
        if entity is None:
            issues.append(Issue("/entity", "unknown_entity", _unknown_entity(document, entities)))
            return issues
        others = {name: e for name, e in entities.items() if name != document.entity}
        try:
            compile_layout(document, entity, others=others)
        except DocumentInvalid as exc:
            issues += exc.issues
        return issues


def layout_dependencies(raw_body: dict[str, Any]) -> set[str]:
    """The entity names a raw (not yet validated) layout body refers to.

    The metastore may use it to publish entities before the layouts that show them.
    """
    names = {raw_body.get("entity")}
    related = raw_body.get("related_lists")
    if isinstance(related, list):
        names |= {item.get("entity") for item in related if isinstance(item, dict)}
    return {name for name in names if isinstance(name, str)}


def _entities(context: CheckContext) -> dict[str, CompiledEntity]:
    """The environment's entities that parse (the batch's versions win), compiled."""
    from formloom.engine.records.compiled import compile_entity

    bodies = {**context.published.get("entity", {}), **context.pending.get("entity", {})}
    found = {}
    for name, body in bodies.items():
        try:
            found[name] = compile_entity(EntityDoc.model_validate(body))
        except (ValidationError, EngineError):
            continue
    return found


def _unknown_entity(document: LayoutDoc, entities: Mapping[str, CompiledEntity]) -> str:
    close = difflib.get_close_matches(document.entity, list(entities), n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    return (
        f"unknown entity `{document.entity}`{hint}; a layout shows the records of an entity "
        "that is published or in the same batch"
    )


def _role_issues(document: LayoutDoc, context: CheckContext) -> list[Issue]:
    known = sorted({*context.published.get("role", {}), *context.pending.get("role", {})})
    issues = []
    seen: set[str] = set()
    for i, role in enumerate(document.roles):
        at = pointer("roles", i)
        if role in seen:
            issues.append(Issue(at, "duplicate_role", f"role `{role}` is listed twice"))
        seen.add(role)
        if role not in known:
            close = difflib.get_close_matches(role, known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            issues.append(
                Issue(
                    at,
                    "unknown_role",
                    f"unknown role `{role}`{hint}; name a role that is published or in the same "
                    "batch, or leave `roles` empty for a layout everyone gets",
                )
            )
    return issues


def _overlap_issues(document: LayoutDoc, context: CheckContext) -> list[Issue]:
    """Another layout of the same entity and purpose that applies to the same roles."""
    bodies = {**context.published.get("layout", {}), **context.pending.get("layout", {})}
    issues = []
    mine = set(document.roles)
    for name, body in sorted(bodies.items()):
        if name == document.name or body.get("entity") != document.entity:
            continue
        if body.get("purpose", "edit") != document.purpose:
            continue
        roles = body.get("roles") or []
        theirs = {r for r in roles if isinstance(r, str)}
        shared = mine & theirs
        if mine and not shared:
            continue
        if not mine and theirs:
            continue
        who = f"roles {', '.join(sorted(shared))}" if shared else "everyone (no `roles`)"
        issues.append(
            Issue(
                "/roles",
                "overlapping_layout",
                f"layout `{name}` is already the {document.purpose} layout of "
                f"`{document.entity}` for {who}; give each role one layout per purpose "
                "(change `roles` here or there)",
            )
        )
    return issues


layout_kind = document_kinds.register(LayoutKind())
