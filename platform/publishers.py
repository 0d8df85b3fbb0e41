"""What publishing a document of each kind does besides storing it.

Most kinds only store a new version; the `entity` kind also creates or alters
its table, and enqueues the recomputation of existing rows when formulas or
rollups change (in the same transaction). Later issues register publishers
for their own kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from formloom.engine.entities import EntityDoc
from formloom.engine.entities.changes import (
    junction_table_name,
    plan_entity_change,
    plan_entity_removal,
)
from formloom.engine.errors import DocumentInvalid, Issue
from formloom.engine.fields import field_types
from formloom.engine.meta import CheckContext, document_kinds
from formloom.platform.formula_jobs import enqueue_recomputes
from formloom.platform.schema_sync import SchemaSync


@dataclass
class PublishSession:
    """One publishing transaction: the schema synchroniser and what is published so far."""

    sync: SchemaSync
    context: CheckContext
    purge: bool = False
    issues: list[Issue] = field(default_factory=list)


class KindPublisher:
    """Side effects of publishing documents of one kind; the default has none."""

    def publish(
        self, session: PublishSession, old: dict[str, Any] | None, document: BaseModel, version: int
    ) -> dict[str, Any]:
        """Carry out the change and return the body to store as the new version."""
        return document.model_dump(mode="json", exclude_none=True)

    def removal_issues(self, session: PublishSession, name: str) -> list[Issue]:
        """Why the document cannot be removed (e.g. other documents point at it)."""
        return []

    def remove(self, session: PublishSession, old: dict[str, Any]) -> None:
        """Carry out a removal (soft unless ``session.purge``)."""


class EntityPublisher(KindPublisher):
    """Entities become tables: publishing creates or alters them in the same transaction."""

    def publish(
        self, session: PublishSession, old: dict[str, Any] | None, document: BaseModel, version: int
    ) -> dict[str, Any]:
        assert isinstance(document, EntityDoc)
        previous = EntityDoc.model_validate(old) if old is not None else None
        plan = plan_entity_change(previous, document, version=version, purge=session.purge)
        session.sync.apply(plan)
        assert plan.document is not None
        enqueue_recomputes(session.sync.conn, previous, plan.document, version=version)
        body = plan.document.model_dump(mode="json", exclude_none=True)
        if previous is not None:
            session.issues += dependant_issues(session.context, document.name, body)
        return body

    def removal_issues(self, session: PublishSession, name: str) -> list[Issue]:
        """Why entity ``name`` cannot be removed.

        Lookups, rollups and child tables of published entities block any removal. A purge drops
        the table, so any foreign key still pointing at it blocks a purge too (a
        removed field or entity keeps its column, and its foreign key, until it is
        purged).
        """
        issues = dependant_issues(session.context, name, None)
        reported: set[tuple[str, str]] = set()
        for other_name, body in session.context.published.get("entity", {}).items():
            if other_name == name:
                continue
            for f in body.get("fields", []):
                field_type = field_types.get(f["type"])
                relation = f.get("options", {}).get("relation") or {}
                if f["type"] == "rollup" and relation.get("entity") == name:
                    issues.append(
                        Issue(
                            "",
                            "referenced",
                            f"entity `{name}` is summarised by rollup `{other_name}.{f['name']}`; "
                            "remove or change that field first",
                        )
                    )
                elif f["type"] == "child_table" and f.get("options", {}).get("entity") == name:
                    issues.append(
                        Issue(
                            "",
                            "referenced",
                            f"entity `{name}` holds the rows of child table "
                            f"`{other_name}.{f['name']}`; remove that field first",
                        )
                    )
                elif field_type.junction_target(f.get("options", {})) == name:
                    reported.add((junction_table_name(other_name, f["name"]), "target_id"))
                    issues.append(
                        Issue(
                            "",
                            "referenced",
                            f"entity `{name}` is looked up by multi-lookup "
                            f"`{other_name}.{f['name']}`; remove or change that field first",
                        )
                    )
                elif field_type.references(f.get("options", {})) == name:
                    reported.add((other_name, f["name"]))
                    issues.append(
                        Issue(
                            "",
                            "referenced",
                            f"entity `{name}` is looked up by `{other_name}.{f['name']}`; "
                            "remove or change that field first",
                        )
                    )
        if session.purge:
            for table, column in session.sync.references_to(name):
                if (table, column) not in reported:
                    issues.append(
                        Issue(
                            "",
                            "referenced",
                            f"entity `{name}` cannot be purged: column `{table}.{column}` still "
                            "points at it (a removed field or entity keeps its column until "
                            f"purged); purge that field or entity `{table}` first",
                        )
                    )
        return issues

    def remove(self, session: PublishSession, old: dict[str, Any]) -> None:
        plan = plan_entity_removal(EntityDoc.model_validate(old), purge=session.purge)
        session.sync.apply(plan)


def _current(context: CheckContext, kind: str) -> dict[str, Any]:
    """The documents of ``kind`` as they will be after this batch (pending ones win)."""
    return {**context.published.get(kind, {}), **context.pending.get(kind, {})}


def dependant_issues(
    context: CheckContext, entity: str, body: dict[str, Any] | None
) -> list[Issue]:
    """Why roles and flows that name entity ``entity`` would break if it became ``body``
    (None: removed). A change that needs them changed is refused, naming them: change
    them first, or in the same batch."""
    issues = []
    fields = {f["name"] for f in (body or {}).get("fields", [])}
    for role_name, role in _current(context, "role").items():
        rules = role.get("entities", {}) if isinstance(role, dict) else {}
        entry = rules.get(entity)
        if not isinstance(entry, dict):
            continue
        if body is None:
            issues.append(
                Issue(
                    "",
                    "referenced",
                    f"entity `{entity}` is named by role `{role_name}`; remove it from the role "
                    "first (or publish both in one batch)",
                )
            )
            continue
        for field_name in sorted(set(entry.get("fields") or {}) - fields):
            issues.append(
                Issue(
                    "",
                    "referenced",
                    f"field `{entity}.{field_name}` is named by role `{role_name}`; remove it "
                    "from the role first (or publish both in one batch)",
                )
            )
    flows = {
        n: f
        for n, f in _current(context, "flow").items()
        if isinstance(f, dict) and f.get("entity") == entity
    }
    if flows and body is None:
        names = ", ".join(f"`{n}`" for n in sorted(flows))
        issues.append(
            Issue(
                "",
                "referenced",
                f"entity `{entity}` has approval flows ({names}); remove them first",
            )
        )
        return issues
    if flows:
        entities = {**_current(context, "entity"), entity: body}
        after = CheckContext(
            published={**context.published, "entity": entities},
            pending={k: v for k, v in context.pending.items() if k != "entity"},
            users=context.users,
        )
        for flow_name, flow in sorted(flows.items()):
            try:
                document_kinds.get("flow").validate(flow, after)
            except DocumentInvalid as exc:
                issues.append(
                    Issue(
                        "",
                        "referenced",
                        f"approval flow `{flow_name}` would no longer be valid: "
                        f"{exc.issues[0].message}; change the flow first (or publish both in "
                        "one batch)",
                    )
                )
    return issues


_publishers: dict[str, KindPublisher] = {"entity": EntityPublisher()}
_default = KindPublisher()


def publisher_for(kind: str) -> KindPublisher:
    return _publishers.get(kind, _default)


def register_publisher(kind: str, publisher: KindPublisher) -> None:
    _publishers[kind] = publisher
