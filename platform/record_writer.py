"""Writing one record: create, update, soft delete, restore and purge, inside a transaction.

The save pipeline (DESIGN.md §5): normalise and check the payload
(:func:`check_payload`); formulas, conditional required fields, validation and
duplicate rules (:mod:`formloom.platform.save_pipeline`); lookups and unique
values against the database; then, when nothing is wrong, the duplicate
warning (unless confirmed), auto-numbers, the write with a version check, the
audit entries and the rollups of the records this one rolls up into, all in
the same transaction. Every problem of a row is raised as a
:class:`PlatformError` whose issues carry the row's JSON pointer (``at``), so a
bulk request can report each row's errors.

Updates are conditional: ``UPDATE … WHERE id = ? AND version = ? AND deleted_at
IS NULL``; a write that matches no row was overtaken by another (409 with the
current record), never a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Connection, RowMapping, insert, update

from formloom.engine.errors import Issue
from formloom.engine.records.payload import CheckedPayload, check_payload
from formloom.platform.access import Access
from formloom.platform.audit import AuditEvent
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.flow_locks import refuse_locked_change
from formloom.platform.record_cascade import (
    after_delete,
    carry_out_purge,
    plan_purge,
    restore_blocks,
    restore_cascaded,
)
from formloom.platform.record_checks import lookup_issues, unique_issues
from formloom.platform.record_children import (
    ChildRows,
    save_children,
    take_children,
    with_children,
)
from formloom.platform.record_context import WriteContext, full_values
from formloom.platform.record_duplicates import warning
from formloom.platform.record_errors import (
    DeleteRestricted,
    NotInRecycleBin,
    RestoreBlocked,
    VersionRequired,
    invalid,
)
from formloom.platform.record_files import check_file_values
from formloom.platform.record_links import (
    changed_links,
    link_issues,
    save_links,
    take_links,
    with_links,
)
from formloom.platform.rollups import RollupTracker
from formloom.platform.save_pipeline import (
    RuleOutcome,
    assign_auto_numbers,
    recompute_formulas,
    rules_computed,
    run_rules,
)


class RecordWriter(WriteContext):
    """Creates, updates, deletes, restores and purges records in one transaction.

    ``confirm_duplicates`` saves records that ``warn`` duplicate rules find
    (the client has seen the warning). Rollups of the records a write touches
    are recomputed at the end of each write, or once at the end of a
    :meth:`deferred_rollups` block (bulk writes).
    """

    def __init__(
        self,
        conn: Connection,
        *,
        cache_key: str,
        env: str,
        actor_id: int | None,
        lang: str,
        confirm_duplicates: bool = False,
        access: Access | None = None,
    ) -> None:
        super().__init__(
            conn, cache_key=cache_key, env=env, actor_id=actor_id, lang=lang, access=access
        )
        self.confirm_duplicates = confirm_duplicates
        self.rollups = RollupTracker()
        self._deferring = 0
        #: Records the platform changed itself (on-delete rules): their formulas are redone.
        self._caused: dict[str, set[int]] = {}

    def audit(self, events: list[AuditEvent]) -> None:
        """Write audit entries, noting the rollups and formulas the changes touch."""
        super().audit(events)
        for event in events:
            if event.action == "update" and event.cause is not None:
                self._caused.setdefault(event.entity, set()).add(event.record_id)
        self.rollups.note(self, events)

    @contextmanager
    def deferred_rollups(self) -> Iterator[None]:
        """Recompute rollups (and the formulas of records that on-delete rules changed)
        once, when the block ends without an error."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        self._settle()

    def _settle(self) -> None:
        if self._deferring:
            return
        caused, self._caused = self._caused, {}
        for name, ids in sorted(caused.items()):
            recompute_formulas(self, self.entity(name), sorted(ids))
        self.rollups.flush(self)

    def create(self, entity: RuntimeEntity, payload: Any, *, at: str = "") -> dict[str, Any]:
        """Insert a record; ``owner_id`` defaults to the actor. Returns the record's JSON."""
        if self.checking:
            self.access.require(entity.name, "create", lang=self.lang)
        checked = check_payload(entity.compiled, payload, partial=False, lang=self.lang, at=at)
        links = take_links(entity, checked.values, payload)
        children = take_children(entity, checked.values, payload)
        file_issues = check_file_values(self.conn, entity, checked.values, at=at, lang=self.lang)
        given_owner = isinstance(payload, dict) and "owner_id" in payload
        owner_id = checked.owner_id if given_owner else self.actor_id
        if self.checking:
            file_issues += self.access.payload_issues(entity.name, payload, at=at, lang=self.lang)
            if given_owner and owner_id != self.actor_id:
                file_issues += self.owner_issues(entity, owner_id, at=at)
        system = {"id": None, "created_at": self.now, "updated_at": self.now, "owner_id": owner_id}
        outcome = self._rules(entity, {**system, **checked.values}, checked, None, at=at)
        values = {**checked.values, **outcome.formulas}
        issues = [
            *checked.issues,
            *file_issues,
            *lookup_issues(
                self.conn, entity, checked.values, at=at, lang=self.lang, access=self.reader()
            ),
            *link_issues(self, entity, links, at=at),
            *unique_issues(
                self.conn, entity, values, changed=values, record_id=None, at=at, lang=self.lang
            ),
            *outcome.issues,
        ]
        if issues:
            raise invalid(issues)
        self._confirm(entity, outcome, at=at)
        self.check_lock(entity, None, set(values), at=at, values=values)
        values.update(assign_auto_numbers(self, entity))
        row = self.conn.execute(
            insert(entity.table)
            .values(
                **values,
                created_at=self.now,
                created_by=self.actor_id,
                owner_id=owner_id,
                version=1,
                **self.stamp(),
            )
            .returning(*entity.table.c)
        ).one()
        record = self.json(entity, row._mapping)
        linked = changed_links(self, entity, None, links)
        save_links(self, entity, row.id, linked)
        record.update({name: ids for name, (_, ids) in linked.items()})
        self.audit([AuditEvent(entity.name, row.id, "create", full_values(record, entity))])
        return self._finish(entity, record, children, at=at)

    def _finish(
        self, entity: RuntimeEntity, record: dict[str, Any], children: ChildRows, *, at: str
    ) -> dict[str, Any]:
        """Save the child rows sent (rollups settled once); the record with its children and
        multi-lookup ids (see :mod:`formloom.platform.record_children`, ``record_links``)."""
        if children:
            with self.deferred_rollups(), self.trusted():
                save_children(self, entity, record["id"], children, at=at)
            record = self.json(entity, self.live_row(entity, record["id"], at=at))
        self._settle()
        return with_links(self, entity, with_children(self, entity, record))

    def _rules(
        self,
        entity: RuntimeEntity,
        record: Mapping[str, Any],
        checked: CheckedPayload,
        changed: set[str] | None,
        *,
        at: str,
    ) -> RuleOutcome:
        flagged = {i.path for i in checked.issues}
        return run_rules(self, entity, record, changed=changed, flagged=flagged, at=at)

    def _confirm(self, entity: RuntimeEntity, outcome: RuleOutcome, *, at: str) -> None:
        """Raise the duplicate warning (409) unless the client confirmed it."""
        if outcome.warnings and not self.confirm_duplicates:
            raise warning(entity, outcome.warnings, at=at, lang=self.lang)

    def update(
        self,
        entity: RuntimeEntity,
        record_id: int,
        payload: Any,
        *,
        version: int | None,
        replace: bool,
        at: str = "",
    ) -> dict[str, Any]:
        """Change a record: PATCH (``replace`` False: only the fields sent) or PUT (all fields).

        ``version`` (from an ``If-Match`` header) or the payload's ``version`` must name
        the version the change is based on. A PUT leaves ``owner_id`` as it is unless
        sent. A change that changes nothing writes nothing (the version stays).
        """
        checked = check_payload(
            entity.compiled,
            payload,
            partial=not replace,
            lang=self.lang,
            at=at,
            fill_defaults=False,
        )
        links = take_links(entity, checked.values, payload)
        children = take_children(entity, checked.values, payload)
        if self.checking:
            self.access.require(entity.name, "update", lang=self.lang)
        expected = self._expected_version(entity, record_id, version, checked, at=at)
        if expected is None:
            raise invalid(checked.issues)
        before = self.live_row(entity, record_id, at=at)
        self.check_row(entity, before, "update", at=at)
        if before["version"] != expected:
            raise self.stale(entity, before, expected, at=at)
        file_issues = check_file_values(
            self.conn,
            entity,
            checked.values,
            before=cast(Mapping[str, Any], before),
            at=at,
            lang=self.lang,
        )
        if self.checking:
            file_issues += self.access.payload_issues(entity.name, payload, at=at, lang=self.lang)
            moved = isinstance(payload, dict) and "owner_id" in payload
            if moved and checked.owner_id != before["owner_id"]:
                file_issues += self.owner_issues(entity, checked.owner_id, at=at)
        values = dict(checked.values)
        if replace:
            computed = rules_computed(self, entity)
            values = {
                n: values.get(n)
                for n, f in entity.compiled.fields.items()
                if n not in computed and not f.field_type.virtual
            }
        if isinstance(payload, dict) and "owner_id" in payload:
            values["owner_id"] = checked.owner_id
        sent = {k for k, v in values.items() if before[k] != v}
        record = {**before, **values, "updated_at": self.now}
        outcome = self._rules(entity, record, checked, sent, at=at)
        values.update(outcome.formulas)
        changed = {k: v for k, v in values.items() if before[k] != v}
        issues = [
            *checked.issues,
            *file_issues,
            *lookup_issues(self.conn, entity, changed, at=at, lang=self.lang, access=self.reader()),
            *link_issues(self, entity, links, at=at),
            *unique_issues(
                self.conn,
                entity,
                {**before, **values},
                changed=changed,
                record_id=record_id,
                at=at,
                lang=self.lang,
            ),
            *outcome.issues,
        ]
        if issues:
            raise invalid(issues)
        relinked = changed_links(self, entity, record_id, links)
        if not changed and not relinked:
            return self._finish(entity, self.json(entity, before), children, at=at)
        self._confirm(entity, outcome, at=at)
        after = self.write_update(entity, record_id, expected, changed, at=at)
        save_links(self, entity, record_id, relinked)
        old, new = self.json(entity, before), self.json(entity, after)
        changes = {k: [old[k], new[k]] for k in changed}
        changes.update({name: [was, now] for name, (was, now) in relinked.items()})
        self.audit([AuditEvent(entity.name, record_id, "update", changes)])
        return self._finish(entity, new, children, at=at)

    def write_update(
        self,
        entity: RuntimeEntity,
        record_id: int,
        expected: int,
        values: dict[str, Any],
        *,
        at: str,
    ) -> RowMapping:
        """The conditional UPDATE: only version ``expected`` of a live record changes."""
        self.check_lock(entity, record_id, set(values), at=at, values=values)
        table = entity.table
        row = self.conn.execute(
            update(table)
            .where(
                table.c.id == record_id,
                table.c.version == expected,
                table.c.deleted_at.is_(None),
            )
            .values(**values, version=table.c.version + 1, **self.stamp())
            .returning(*table.c)
        ).first()
        if row is None:
            raise self.why_not_written(entity, record_id, expected, at=at)
        return row._mapping

    def check_lock(
        self,
        entity: RuntimeEntity,
        record_id: int | None,
        fields: set[str],
        *,
        at: str,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """Refuse to change ``fields`` of a record in approval, or a row of a child table
        whose parent is in approval (``record_id`` None: a new record; see :mod:`flow_locks`)."""
        refuse_locked_change(self, entity, record_id, fields, at=at, values=values)

    def delete(
        self, entity: RuntimeEntity, record_id: int, *, version: int | None, at: str = ""
    ) -> dict[str, Any]:
        """Move a record to the recycle bin and apply its lookups' on-delete rules.

        ``version`` is optional: when given, a record changed since then is not deleted.
        """
        if self.checking:
            self.access.require(entity.name, "delete", lang=self.lang)
        before = self.live_row(entity, record_id, at=at)
        self.check_row(entity, before, "delete", at=at)
        if version is not None and before["version"] != version:
            raise self.stale(entity, before, version, at=at)
        after = self.write_update(
            entity, record_id, before["version"], {"deleted_at": self.now}, at=at
        )
        record = self.json(entity, after)
        self.audit([AuditEvent(entity.name, record_id, "delete", full_values(record, entity))])
        after_delete(self, entity.name, [record_id], at=at)
        self._settle()
        return record

    def restore(
        self, entity: RuntimeEntity, record_id: int, *, version: int | None, at: str = ""
    ) -> dict[str, Any]:
        """Bring a record back from the recycle bin, with the records its delete cascaded to."""
        before = self._deleted_row(entity, record_id, version, "restore", at=at)
        blocks = restore_blocks(self, entity, before, at=at)
        if blocks:
            message = self.say(
                f"`{entity.name}` {record_id} cannot be restored while it looks up records "
                f"that are deleted: {blocks[0].message}",
                f"`{entity.name}` 记录 {record_id} 引用了已删除的记录，暂不能恢复："
                f"{blocks[0].message}",
            )
            raise RestoreBlocked(message, issues=blocks)
        self.check_lock(entity, record_id, set(), at=at)
        table = entity.table
        row = self.conn.execute(
            update(table)
            .where(table.c.id == record_id, table.c.version == before["version"])
            .values(deleted_at=None, version=table.c.version + 1, **self.stamp())
            .returning(*table.c)
        ).one()
        deleted_at = before["deleted_at"]
        changes = {"deleted_at": [deleted_at.isoformat(), None]}
        self.audit([AuditEvent(entity.name, record_id, "restore", changes)])
        restore_cascaded(self, entity.name, [record_id], deleted_at)
        self._settle()
        return self.json(entity, row._mapping)

    def purge(
        self, entity: RuntimeEntity, record_id: int, *, version: int | None, at: str = ""
    ) -> None:
        """Delete a record from the recycle bin for good (its audit history stays)."""
        before = self._deleted_row(entity, record_id, version, "purge", at=at)
        plan = plan_purge(self, entity, before, at=at)
        if plan.blocks:
            raise DeleteRestricted(plan.blocks[0].message, issues=plan.blocks)
        carry_out_purge(self, plan)
        self._settle()

    def _deleted_row(
        self, entity: RuntimeEntity, record_id: int, version: int | None, action: str, *, at: str
    ) -> RowMapping:
        """The row of a record in the recycle bin, locked for this transaction."""
        if self.checking:
            self.access.require(entity.name, "delete", lang=self.lang)
        table = entity.table
        found = self.conn.execute(
            table.select().where(table.c.id == record_id).with_for_update()
        ).first()
        if found is None:
            raise self.not_found(entity.name, record_id, at=at)
        row = found._mapping
        self.check_row(entity, row, "delete", at=at)
        if row["deleted_at"] is None:
            delete_it = f"DELETE /api/envs/{self.env}/records/{entity.name}/{record_id}"
            message = self.say(
                f"cannot {action} `{entity.name}` {record_id}: it is not in the recycle bin"
                + (f"; delete it first ({delete_it}), then purge it" if action == "purge" else ""),
                f"无法{'彻底删除' if action == 'purge' else '恢复'} `{entity.name}` 记录 "
                f"{record_id}：它不在回收站中"
                + (f"；请先删除（{delete_it}），再彻底删除" if action == "purge" else ""),
            )
            raise NotInRecycleBin(message, issues=[Issue(at, NotInRecycleBin.code, message)])
        if version is not None and row["version"] != version:
            raise self.stale(entity, row, version, at=at)
        return row

    def _expected_version(
        self,
        entity: RuntimeEntity,
        record_id: int,
        header: int | None,
        checked: CheckedPayload,
        *,
        at: str,
    ) -> int | None:
        """The version an update is based on; None when the payload's ``version`` is invalid."""
        body = checked.version
        if header is not None and body is not None and header != body:
            message = self.say(
                f"the body says version {body} but If-Match says {header}; send one of them",
                f"请求体中的版本 {body} 与 If-Match 中的 {header} 不一致，请只提供一个",
            )
            raise invalid([Issue(at + "/version", "version_mismatch", message)])
        expected = header if header is not None else body
        if expected is not None:
            return expected
        if any(i.path == at + "/version" for i in checked.issues):
            return None
        message = self.say(
            f"updating `{entity.name}` {record_id} needs the version your change is based on: "
            'send `version` in the body or an If-Match: "<version>" header (GET returns it in '
            "`version` and as the ETag)",
            f"修改 `{entity.name}` 记录 {record_id} 需要提供所基于的版本：请在请求体中提供 "
            '`version`，或使用 If-Match: "<版本>" 请求头（GET 的 `version` 字段和 ETag 即为版本）',
        )
        raise VersionRequired(
            message, issues=[Issue(at + "/version", VersionRequired.code, message)]
        )
