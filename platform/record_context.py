"""What every record write shares: the transaction, the clock, the actor and the language.

A :class:`WriteContext` lives for one transaction. Every row it writes gets the
same timestamp (so the records one delete cascades to share their
``deleted_at``, which is how a restore finds them again), the same actor, and
audit entries in the same transaction. ``access`` holds what the actor may do
(:mod:`formloom.platform.access`); without one the context acts for the
platform itself and checks nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, RowMapping, select

from formloom.engine.errors import Issue
from formloom.platform.access import Access, AccessDenied, system_access
from formloom.platform.audit import AuditEvent, record_events
from formloom.platform.entity_runtime import RuntimeEntity, load_entity
from formloom.platform.errors import PlatformError
from formloom.platform.principal import Principal
from formloom.platform.record_errors import (
    RecordInRecycleBin,
    RecordNotFound,
    StaleVersion,
    say,
)
from formloom.platform.record_json import record_to_json
from formloom.platform.record_references import Reference, references_to


class WriteContext:
    """One write transaction of the records service in environment ``env``."""

    def __init__(
        self,
        conn: Connection,
        *,
        cache_key: str,
        env: str,
        actor_id: int | None,
        lang: str,
        access: Access | None = None,
    ) -> None:
        self.conn = conn
        self.cache_key = cache_key
        self.env = env
        self.actor_id = actor_id if access is None else access.user_id
        self.lang = lang
        self.access = access or system_access(
            Principal(user_id=actor_id, login="system", admin=True), env
        )
        self.now = datetime.now(UTC)
        self._entities: dict[str, RuntimeEntity] = {}
        self._trusted = 0

    @property
    def checking(self) -> bool:
        """Whether this write checks the actor's permissions (not inside a parent's save)."""
        return self._trusted == 0 and not self.access.bypass

    def reader(self) -> Access | None:
        """The access that limits which records this write may point at (None: any)."""
        return self.access if self.checking else None

    @contextmanager
    def trusted(self) -> Iterator[None]:
        """Writes the platform makes on behalf of an allowed one (a parent's child rows)."""
        self._trusted += 1
        try:
            yield
        finally:
            self._trusted -= 1

    def entity(self, name: str) -> RuntimeEntity:
        """The published entity ``name`` (loaded once per transaction)."""
        found = self._entities.get(name)
        if found is None:
            found = load_entity(self.conn, namespace=self.cache_key, env=self.env, name=name)
            self._entities[name] = found
        return found

    def references(self, target: str) -> list[Reference]:
        """The columns that look up entity ``target``."""
        return references_to(self.conn, cache_key=self.cache_key, env=self.env, target=target)

    def audit(self, events: list[AuditEvent]) -> None:
        """Write audit entries for ``events`` in this transaction."""
        record_events(self.conn, events, actor_id=self.actor_id, at=self.now)

    def stamp(self) -> dict[str, Any]:
        """The system values every write sets."""
        return {"updated_at": self.now, "updated_by": self.actor_id}

    def say(self, en: str, zh: str) -> str:
        """The message in this request's language."""
        return say(self.lang, en, zh)

    # -- reading rows -----------------------------------------------------------------------

    def row(self, entity: RuntimeEntity, record_id: int) -> RowMapping | None:
        """The stored row (deleted or not), or None."""
        query = select(entity.table).where(entity.table.c.id == record_id)
        found = self.conn.execute(query).first()
        return None if found is None else found._mapping

    def existing_row(self, entity: RuntimeEntity, record_id: int, *, at: str) -> RowMapping:
        """The stored row, deleted or not; :class:`RecordNotFound` if there is none."""
        found = self.row(entity, record_id)
        if found is None:
            raise self.not_found(entity.name, record_id, at=at)
        return found

    def live_row(self, entity: RuntimeEntity, record_id: int, *, at: str) -> RowMapping:
        """The row of a record that is not deleted; raises if it is missing or deleted."""
        found = self.existing_row(entity, record_id, at=at)
        if found["deleted_at"] is not None:
            raise self.in_recycle_bin(entity.name, record_id, found["deleted_at"], at=at)
        return found

    def check_row(
        self, entity: RuntimeEntity, row: Mapping[Any, Any], action: str, *, at: str
    ) -> None:
        """Refuse ``action`` on a row outside the actor's scope for it.

        A row the actor may not even read is reported as not found (its existence
        is not leaked); one they may read but not change is a 403 that says so.
        """
        if not self.checking:
            return
        self.access.require(entity.name, action, lang=self.lang)
        if self.access.allows_row(entity.name, action, row):
            return
        if action == "read" or not self.access.allows_row(entity.name, "read", row):
            raise self.not_found(entity.name, row["id"], at=at)
        en, zh = {"update": ("change", "修改"), "delete": ("delete", "删除")}.get(
            action, (action, action)
        )
        message = self.say(
            f"you may read `{entity.name}` {row['id']} but not {en} it: it belongs to user "
            f"{row['owner_id']}, outside your roles' {en} scope; ask its owner or an administrator",
            f"您可以查看 `{entity.name}` 记录 {row['id']}，但无权{zh}：它属于用户 "
            f"{row['owner_id']}，超出您的角色的{zh}范围；请联系其负责人或管理员",
        )
        raise AccessDenied(message, issues=[Issue(at, AccessDenied.code, message)])

    def owner_issues(self, entity: RuntimeEntity, owner_id: Any, *, at: str) -> list[Issue]:
        """Why the actor may not give a record of ``entity`` to ``owner_id`` (empty if they may)."""
        if not self.checking or self.access.may_own(entity.name, owner_id):
            return []
        message = self.say(
            f"you may not give `{entity.name}` records to user {owner_id}: your roles only let "
            "you assign records to owners within your update scope",
            f"您无权将 `{entity.name}` 记录分配给用户 {owner_id}："
            "您的角色只允许分配给修改范围内的负责人",
        )
        return [Issue(at + "/owner_id", "owner_not_allowed", message)]

    def json(self, entity: RuntimeEntity, row: RowMapping) -> dict[str, Any]:
        """A stored row as the records API shows it."""
        return record_to_json(entity, cast(Mapping[str, Any], row))

    # -- errors -----------------------------------------------------------------------------

    def not_found(self, entity: str, record_id: int, *, at: str) -> RecordNotFound:
        message = self.say(
            f"`{entity}` {record_id} does not exist in environment `{self.env}` "
            "(it may have been purged); check the id",
            f"环境 `{self.env}` 中不存在 `{entity}` 记录 {record_id}"
            "（可能已被彻底删除），请检查编号",
        )
        return RecordNotFound(message, issues=[Issue(at, RecordNotFound.code, message)])

    def in_recycle_bin(
        self, entity: str, record_id: int, deleted_at: datetime, *, at: str
    ) -> RecordInRecycleBin:
        restore = f"POST /api/envs/{self.env}/records/{entity}/{record_id}/restore"
        message = self.say(
            f"`{entity}` {record_id} is in the recycle bin (deleted at "
            f"{deleted_at.isoformat()}); restore it first with {restore}",
            f"`{entity}` 记录 {record_id} 在回收站中（删除于 {deleted_at.isoformat()}），"
            f"请先恢复：{restore}",
        )
        return RecordInRecycleBin(message, issues=[Issue(at, RecordInRecycleBin.code, message)])

    def stale(
        self, entity: RuntimeEntity, row: RowMapping, expected: int, *, at: str
    ) -> StaleVersion:
        current = row["version"]
        message = self.say(
            f"`{entity.name}` {row['id']} was changed by someone else: your change is based "
            f"on version {expected}, the record is at version {current}; reload it (see "
            f"`current`), apply your change again and send version {current}",
            f"`{entity.name}` 记录 {row['id']} 已被他人修改：您的修改基于版本 {expected}，"
            f"当前版本为 {current}；请重新加载（见 `current`），重新修改后以版本 {current} 提交",
        )
        current_record = self.access.visible(entity.name, self.json(entity, row))
        error = StaleVersion(message, current=current_record)
        error.issues = [Issue(at + "/version", StaleVersion.code, message)]
        return error

    def why_not_written(
        self, entity: RuntimeEntity, record_id: int, expected: int, *, at: str
    ) -> PlatformError:
        """Explain a conditional write that matched no row: gone, deleted, or changed meanwhile."""
        found = self.existing_row(entity, record_id, at=at)
        if found["deleted_at"] is not None:
            return self.in_recycle_bin(entity.name, record_id, found["deleted_at"], at=at)
        return self.stale(entity, found, expected, at=at)


def full_values(record: dict[str, Any], entity: RuntimeEntity) -> dict[str, Any]:
    """A record's owner and field values (JSON) as the audit log keeps them."""
    fields = (f for f in entity.compiled.fields if f in record)
    return {"owner_id": record["owner_id"], **{f: record[f] for f in fields}}
