"""The `entity` document kind: schema and semantic checks of entity documents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from formloom.engine.entities.model import ENTITY_SCHEMA_VERSION, EntityDoc, FieldDef
from formloom.engine.errors import DocumentInvalid, Issue, pointer
from formloom.engine.fields import field_types
from formloom.engine.fields.computed import ComputedFieldType
from formloom.engine.meta.kinds import CheckContext, DocumentKind, document_kinds
from formloom.engine.names import SYSTEM_COLUMNS, SYSTEM_TABLE_PREFIX, api_name_problem


class EntityKind(DocumentKind[EntityDoc]):
    name = "entity"
    model = EntityDoc
    current_version = ENTITY_SCHEMA_VERSION

    def schema_key(self) -> tuple[str, ...]:
        return tuple(field_types.names())

    def validation_schema(self) -> dict[str, Any]:
        """The model's own schema: field types and their options are checked semantically."""
        return DocumentKind.json_schema(self)

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
        issues = _entity_name_issues(document.name)
        counts = Counter(f.name for f in document.fields)
        id_counts = Counter(f.id for f in document.fields if f.id)
        broken = set()
        for i, field in enumerate(document.fields):
            at = pointer("fields", i)
            issues += _field_name_issues(field.name, counts, at=at)
            if field.id and id_counts[field.id] > 1:
                issues.append(
                    Issue(at + "/id", "duplicate_id", f"field id `{field.id}` is used twice")
                )
            type_issues = _field_type_issues(field, document.name, context, at=at)
            if type_issues or counts[field.name] > 1:
                broken.add(field.name)
            issues += type_issues
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
        issues += _rule_issues(document, context, broken)
        return issues

    def check_parts(
        self, raw: dict[str, Any], flagged: set[str], context: CheckContext
    ) -> list[Issue]:
        """Check the entity name, every field name, and each field the schema did not flag."""
        name = raw.get("name")
        entity_name = name if isinstance(name, str) else ""
        issues = _entity_name_issues(entity_name) if entity_name else []
        fields = raw.get("fields")
        entries = list(enumerate(fields)) if isinstance(fields, list) else []
        names = {
            i: f["name"]
            for i, f in entries
            if isinstance(f, dict) and isinstance(f.get("name"), str)
        }
        counts = Counter(names.values())
        for i, raw_field in entries:
            at = pointer("fields", i)
            if i in names:
                issues += _field_name_issues(names[i], counts, at=at)
            if any(path == at or path.startswith(at + "/") for path in flagged):
                continue
            try:
                field = FieldDef.model_validate(raw_field)
            except ValidationError:
                continue
            issues += _field_type_issues(field, entity_name, context, at=at)
        return issues


def _entity_name_issues(name: str) -> list[Issue]:
    issues: list[Issue] = []
    problem = api_name_problem(name, what="entity name")
    if problem:
        issues.append(Issue("/name", "reserved_name", problem))
    if name.startswith(SYSTEM_TABLE_PREFIX):
        issues.append(
            Issue(
                "/name",
                "reserved_name",
                f"entity name `{name}` starts with `{SYSTEM_TABLE_PREFIX}`, "
                "which is reserved for the platform's own tables; choose another name",
            )
        )
    return issues


def _field_name_issues(name: str, counts: Counter[str], *, at: str) -> list[Issue]:
    issues: list[Issue] = []
    problem = api_name_problem(name, what="field name")
    if problem:
        issues.append(Issue(at + "/name", "reserved_name", problem))
    if name in SYSTEM_COLUMNS:
        issues.append(
            Issue(
                at + "/name",
                "system_column",
                f"field name `{name}` collides with a system column "
                f"({', '.join(SYSTEM_COLUMNS)}); choose another name",
            )
        )
    if counts[name] > 1:
        issues.append(
            Issue(
                at + "/name",
                "duplicate_field",
                f"field `{name}` is defined {counts[name]} times; "
                "field names must be unique within an entity",
            )
        )
    return issues


def _field_type_issues(
    field: FieldDef, entity_name: str, context: CheckContext, *, at: str
) -> list[Issue]:
    if field.type not in field_types:
        return [Issue(at + "/type", "unknown_type", field_types.unknown_message(field.type))]
    field_type = field_types.get(field.type)
    option_issues = field_type.check_options(field.options, at=at)
    if option_issues:
        return option_issues
    if (field.unique or field.indexed) and field_type.storage(field.options).kind in (
        "text",
        "json",
    ):
        flag = "unique" if field.unique else "indexed"
        return [
            Issue(
                at + "/" + flag,
                "not_indexable",
                f"field `{field.name}` of type `{field.type}` cannot be {flag}: long texts and "
                "structured values have no index; use a `text` field for values to look up",
            )
        ]
    target = field_type.references(field.options) or field_type.junction_target(field.options)
    if target is not None and target != entity_name and not context.exists("entity", target):
        return [
            Issue(
                at + "/options/entity",
                "unknown_entity",
                f"field `{field.name}` looks up entity `{target}`, which does not exist "
                "in this environment; publish that entity first or fix the name",
            )
        ]
    return []


def _rule_issues(document: EntityDoc, context: CheckContext, broken: set[str]) -> list[Issue]:
    """Formulas, conditional required fields, validation and duplicate rules, and rollups.

    Rollups are checked against the environment's other entities (those published
    in the same batch first), in both directions: this entity's rollups, and other
    entities' rollups over this one.
    """
    # Imported here: the rules build on conditions, which import this package.
    from formloom.engine.records.rollup_rules import dependent_rollup_issues, rollup_issues
    from formloom.engine.records.rules import compile_rules

    issues: list[Issue] = []
    if _has_record_rules(document):
        try:
            compile_rules(document, broken=broken)
        except DocumentInvalid as exc:
            issues += exc.issues
    others = _OtherEntities(context, document.name)
    issues += rollup_issues(document, others)
    issues += dependent_rollup_issues(document, others.with_field_type("rollup"))
    issues += _child_table_issues(document, others, others.with_field_type("child_table"), broken)
    return issues


def _has_record_rules(document: EntityDoc) -> bool:
    """Whether :func:`compile_rules` has anything to check: computed fields (formulas,
    auto-numbers, rollups), conditional required fields, validation or duplicate rules.

    A document without any (most of them) skips it: it would only parse every field's
    options once more, on every publish.
    """
    if document.validation_rules or document.duplicate_rules:
        return True
    for f in document.fields:
        if f.required_when is not None:
            return True
        if f.type in field_types and isinstance(field_types.get(f.type), ComputedFieldType):
            return True
    return False


def _child_table_issues(
    document: EntityDoc,
    others: Mapping[str, EntityDoc],
    parents: Mapping[str, EntityDoc],
    broken: set[str],
) -> list[Issue]:
    """Child tables, both ways: this entity's, and other entities' over this one.

    ``parents`` holds the other entities that have child tables (``others``: all of them).

    A child table names another entity whose lookup points back at the parent
    with ``on_delete: cascade`` (children go to the recycle bin with their parent).
    """
    issues: list[Issue] = []
    for i, f in enumerate(document.fields):
        if f.type != "child_table" or f.name in broken:
            continue
        at = pointer("fields", i, "options")
        child_name, link_name = f.options["entity"], f.options["field"]
        child = others.get(child_name)
        if child is None:
            issues.append(
                Issue(
                    at + "/entity",
                    "unknown_entity",
                    f"child table `{f.name}` names entity `{child_name}`, which does not exist "
                    "in this environment (or is this entity); publish the child entity with a "
                    f"lookup to `{document.name}` first, or in the same batch",
                )
            )
            continue
        problem = _child_link_problem(document.name, child.field(link_name))
        if problem:
            issues.append(
                Issue(
                    at + "/field",
                    "invalid_child_link",
                    f"child table `{f.name}` links its `{child_name}` records through field "
                    f"`{link_name}`, {problem}; give `{child_name}` a lookup field to "
                    f"`{document.name}` with on_delete `cascade` and name it here",
                )
            )
    for parent_name, parent in sorted(parents.items()):
        for f in parent.fields:
            if f.type != "child_table" or f.options.get("entity") != document.name:
                continue
            link_name = f.options.get("field", "")
            problem = _child_link_problem(parent_name, document.field(link_name))
            if problem:
                issues.append(
                    Issue(
                        "",
                        "child_table_broken",
                        f"child table `{parent_name}.{f.name}` keeps its rows in `{document.name}`"
                        f" through field `{link_name}`, {problem}; keep that lookup, or change "
                        "or remove the child table first",
                    )
                )
    return issues


def _child_link_problem(parent: str, link: FieldDef | None) -> str | None:
    """What is wrong with a child entity's lookup back to its parent, or None."""
    if link is None:
        return "which it does not have"
    if link.type != "lookup" or link.options.get("entity") != parent:
        return f"which is not a lookup to `{parent}`"
    if link.options.get("on_delete") != "cascade":
        return (
            "whose on_delete is not `cascade` (child records belong to their parent "
            "and go to the recycle bin with it)"
        )
    return None


class _OtherEntities(Mapping[str, EntityDoc]):
    """The environment's other entity documents that parse (the batch's versions win).

    Each is parsed when first read: an entity's checks read the few it refers to, and
    :meth:`with_field_type` finds the ones with rollups or child tables in their raw
    bodies, so that a publish does not parse every entity of the environment.
    """

    def __init__(self, context: CheckContext, name: str) -> None:
        bodies = {**context.published.get("entity", {}), **context.pending.get("entity", {})}
        self._bodies = {other: body for other, body in bodies.items() if other != name}
        self._parsed: dict[str, EntityDoc | None] = {}

    def _document(self, name: str) -> EntityDoc | None:
        if name not in self._parsed:
            try:
                self._parsed[name] = EntityDoc.model_validate(self._bodies[name])
            except ValidationError:
                self._parsed[name] = None
        return self._parsed[name]

    def __getitem__(self, name: str) -> EntityDoc:
        found = self._document(name) if name in self._bodies else None
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._bodies if self._document(name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def with_field_type(self, type_name: str) -> dict[str, EntityDoc]:
        """The ones that have a field of type ``type_name``."""
        found = {}
        for name, body in self._bodies.items():
            fields = body.get("fields") if isinstance(body, dict) else None
            if not isinstance(fields, list) or not any(
                isinstance(f, dict) and f.get("type") == type_name for f in fields
            ):
                continue
            document = self._document(name)
            if document is not None:
                found[name] = document
        return found


#: System columns an entity's own indexes may name besides its fields. ``owner_id``
#: serves lists limited to one owner's records (record scopes "own" and "team"),
#: e.g. an index (owner_id, close_date) for "my opportunities by close date".
SYSTEM_INDEXABLE = ("created_at", "updated_at", "owner_id")


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
            if field_name == "owner_id" and index.unique:
                issues.append(
                    Issue(
                        at + pointer("fields", j),
                        "owner_in_unique_index",
                        f"index `{index.name}` is unique: the owner can only be part of "
                        "non-unique indexes (e.g. owner + close date, for lists limited to "
                        "one owner's records); drop `unique` or the owner",
                    )
                )
            elif field_name not in names and field_name not in SYSTEM_INDEXABLE:
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
