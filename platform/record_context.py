"""What every record write shares: the transaction, the clock, the actor and the language.

A :class:`WriteContext` lives for one transaction. Every row it writes gets the
same timestamp (so the records one delete cascades to share their
``deleted_at``, which is how a restore finds them again), the same actor, and
audit entries in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, RowMapping, select

from formloom.engine.errors import Issue
from formloom.platform.audit import AuditEvent, record_events
from formloom.platform.entity_runtime import RuntimeEntity, load_entity
from formloom.platform.errors import PlatformError
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
    ) -> None:
        self.conn = conn
        self.cache_key = cache_key
        self.env = env
        self.actor_id = actor_id
        self.lang = lang
        self.now = datetime.now(UTC)
        self._entities: dict[str, RuntimeEntity] = {}

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
        error = StaleVersion(message, current=self.json(entity, row))
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
