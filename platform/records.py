"""The records service: read, create, update, delete, restore, purge and bulk-write records.

Each function is one transaction in the environment's namespace, so a record
and its audit entries (and the records an on-delete rule touches) commit
together or not at all. ``principal`` is who acts (a principal, or the credential
an HTTP request presented, authenticated inside that same transaction: see
:mod:`formloom.platform.env_transaction`): their user id becomes
``created_by``/``updated_by``, the default ``owner_id`` and the audit actor, and
their roles decide what they may do (:mod:`formloom.platform.access`, checked
inside the same transaction): records outside their scope are not found,
hidden fields are left out of every answer, and writing a hidden or read-only
field is refused. ``lang`` (``zh`` or ``en``) picks the language of messages.

Checks run before writing (lookups, unique values), but two transactions can
pass them at the same moment; the database constraint then refuses the
second. Such a write is tried once more from the start: its checks now see
the other transaction's row and report the problem as usual (a ``duplicate``
issue), never a raw database error.

Delete is soft (the record goes to the recycle bin, ``deleted_at`` set);
restore brings it back; purge removes a record **from the recycle bin** for
good. Purging is two deliberate steps (delete, then purge), so a single
mistaken request can never destroy data, and the on-delete rules of lookups
run once, at the delete.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.exc import IntegrityError

from formloom.engine.errors import Issue
from formloom.engine.records.schema import record_schema
from formloom.platform import audit, record_transfer
from formloom.platform.access import Access
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.env_transaction import Actor, env_transaction
from formloom.platform.errors import Invalid
from formloom.platform.record_bulk import run_bulk
from formloom.platform.record_children import with_children
from formloom.platform.record_errors import WriteConflict, say
from formloom.platform.record_json import record_to_json
from formloom.platform.record_links import with_links
from formloom.platform.record_writer import RecordWriter

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_PAGE = 500


def cache_key(workspace: Workspace) -> str:
    """What tells this workspace's cached entities apart from another's (its database too)."""
    return workspace.cache_key


def entity_schema(
    workspace: Workspace, *, env: str, entity: str, principal: Actor, lang: str = "en"
) -> dict[str, Any]:
    """The JSON Schema of the entity's records as ``principal`` sees them.

    Hidden fields are left out; read-only ones are marked ``readOnly``.
    """
    with env_transaction(workspace, env, principal, readonly=True, entity=entity) as (
        conn,
        access,
    ):
        access.require(entity, "read", lang=lang)
        runtime = load_entity(conn, namespace=cache_key(workspace), env=env, name=entity)
    schema = record_schema(runtime.compiled, lang=lang)
    properties: dict[str, Any] = schema.get("properties", {})
    for name in access.hidden(entity):
        properties.pop(name, None)
    if "required" in schema:
        schema["required"] = [n for n in schema["required"] if n in properties]
    for name in access.read_only(entity):
        if name in properties:
            properties[name] = {**properties[name], "readOnly": True}
    return schema


def get_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    principal: Actor,
    lang: str = "en",
) -> dict[str, Any]:
    """One record with its child tables' rows; a deleted one is in the recycle bin (404).

    Lists (:mod:`formloom.platform.record_query`) leave child tables out. A
    record outside the principal's read scope is not found.
    """
    with env_transaction(workspace, env, principal, readonly=True, entity=entity) as (
        conn,
        access,
    ):
        reader = _writer(workspace, conn, env, access, lang)
        reader.access.require(entity, "read", lang=lang)
        runtime = reader.entity(entity)
        row = reader.live_row(runtime, record_id, at="")
        reader.check_row(runtime, row, "read", at="")
        record = reader.json(runtime, row)
        record = with_links(reader, runtime, with_children(reader, runtime, record))
        return reader.access.visible(entity, record)


def create_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    payload: Any,
    principal: Actor,
    lang: str = "en",
    confirm_duplicates: bool = False,
) -> dict[str, Any]:
    """Create a record from a JSON payload; every problem is reported together (422).

    Records that ``warn`` duplicate rules find are refused with
    :class:`DuplicateWarning` (409) unless ``confirm_duplicates``.
    """
    return _write(
        workspace,
        env,
        entity,
        principal,
        lang,
        lambda w: w.access.visible(entity, w.create(w.entity(entity), payload)),
        confirm_duplicates=confirm_duplicates,
    )


def update_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    payload: Any,
    version: int | None = None,
    replace: bool = False,
    principal: Actor,
    lang: str = "en",
    confirm_duplicates: bool = False,
) -> dict[str, Any]:
    """Update a record based on ``version`` (or the payload's ``version``).

    ``replace`` False (PATCH) changes the fields sent; True (PUT) sets every field
    but the computed ones, missing ones to null, required ones enforced. Stale →
    :class:`StaleVersion` (409), no version → :class:`VersionRequired` (428),
    duplicates of ``warn`` rules → :class:`DuplicateWarning` (409) unless
    ``confirm_duplicates``.
    """
    return _write(
        workspace,
        env,
        entity,
        principal,
        lang,
        lambda w: w.access.visible(
            entity,
            w.update(w.entity(entity), record_id, payload, version=version, replace=replace),
        ),
        confirm_duplicates=confirm_duplicates,
    )


def delete_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    version: int | None = None,
    principal: Actor,
    lang: str = "en",
) -> dict[str, Any]:
    """Move a record to the recycle bin (lookups' on-delete rules apply); returns it."""
    return _write(
        workspace,
        env,
        entity,
        principal,
        lang,
        lambda w: w.access.visible(entity, w.delete(w.entity(entity), record_id, version=version)),
    )


def restore_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    version: int | None = None,
    principal: Actor,
    lang: str = "en",
) -> dict[str, Any]:
    """Bring a record back from the recycle bin (with what its delete cascaded to)."""
    return _write(
        workspace,
        env,
        entity,
        principal,
        lang,
        lambda w: w.access.visible(entity, w.restore(w.entity(entity), record_id, version=version)),
    )


def purge_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    version: int | None = None,
    principal: Actor,
    lang: str = "en",
) -> None:
    """Delete a record in the recycle bin for good; its audit history is kept."""
    _write(
        workspace,
        env,
        entity,
        principal,
        lang,
        lambda w: w.purge(w.entity(entity), record_id, version=version),
    )


def bulk_write(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    create: Sequence[Any] = (),
    update: Sequence[Any] = (),
    delete: Sequence[Any] = (),
    principal: Actor,
    lang: str = "en",
    confirm_duplicates: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Creates, updates (``id`` + ``version`` + fields) and deletes in one transaction.

    All or nothing: :class:`BatchRejected` lists every failing row's problems
    (409 when they are all conflicts, such as unconfirmed duplicate warnings).
    """
    return _write(
        workspace,
        env,
        entity,
        principal,
        lang,
        lambda w: _bulk(w, entity, create=create, update=update, delete=delete),
        confirm_duplicates=confirm_duplicates,
    )


def transfer_owner(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_ids: Sequence[Any],
    owner_id: Any,
    principal: Actor,
    version: int | None = None,
    lang: str = "en",
) -> list[dict[str, Any]]:
    """Give records to another owner (all or nothing; see :mod:`record_transfer`)."""
    return _write(
        workspace,
        env,
        entity,
        principal,
        lang,
        lambda w: record_transfer.transfer_owner(w, entity, record_ids, owner_id, version=version),
    )


def _bulk(
    writer: RecordWriter,
    entity: str,
    *,
    create: Sequence[Any],
    update: Sequence[Any],
    delete: Sequence[Any],
) -> dict[str, list[dict[str, Any]]]:
    """A bulk write: every kind of change it holds must be allowed before any row is tried."""
    for action, rows in (("create", create), ("update", update), ("delete", delete)):
        if rows:
            writer.access.require(entity, action, lang=writer.lang)
    done = run_bulk(writer, writer.entity(entity), create=create, update=update, delete=delete)
    return {
        kind: [writer.access.visible(entity, record) for record in records]
        for kind, records in done.items()
    }


def recycle_bin(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    principal: Actor,
    limit: int = 50,
    cursor: str | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """Deleted records the principal may restore (their delete scope), most recently deleted
    first; ``next_cursor`` fetches the next page."""
    _check_limit(limit)
    after = _decode_cursor(cursor) if cursor else None
    with env_transaction(workspace, env, principal, readonly=True, entity=entity) as (
        conn,
        access,
    ):
        access.require(entity, "delete", lang=lang)
        runtime = load_entity(conn, namespace=cache_key(workspace), env=env, name=entity)
        table = runtime.table
        scope = access.scope_clause(runtime, "delete")
        query = (
            select(table)
            .where(table.c.deleted_at.isnot(None), *([] if scope is None else [scope]))
            .order_by(table.c.deleted_at.desc(), table.c.id.desc())
            .limit(limit + 1)
        )
        if after is not None:
            deleted_at, last_id = after
            query = query.where(
                or_(
                    table.c.deleted_at < deleted_at,
                    and_(table.c.deleted_at == deleted_at, table.c.id < last_id),
                )
            )
        rows = conn.execute(query).all()
    items = [
        access.visible(entity, record_to_json(runtime, cast(Mapping[str, Any], r._mapping)))
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode_cursor(last.deleted_at, last.id)
    return {"items": items, "next_cursor": next_cursor}


def record_history(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    principal: Actor,
    limit: int = 100,
    cursor: str | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """A record's audit entries, newest first; works for deleted and purged records too.

    The principal must be able to read the record (a purged one: to read every
    record of the entity); changes to fields hidden from them are left out.
    """
    _check_limit(limit)
    before = _history_cursor(cursor) if cursor else None
    with env_transaction(workspace, env, principal, readonly=True, entity=entity) as (
        conn,
        access,
    ):
        reader = _writer(workspace, conn, env, access, lang)
        reader.access.require(entity, "read", lang=lang)
        runtime = reader.entity(entity)
        row = reader.row(runtime, record_id)
        if row is not None:
            reader.check_row(runtime, row, "read", at="")
        elif reader.access.owners(entity, "read") is not None:
            raise reader.not_found(entity, record_id, at="")
        events = audit.history(
            conn, entity=entity, record_id=record_id, limit=limit + 1, before=before
        )
        if not events and before is None:
            reader.existing_row(runtime, record_id, at="")
    hidden = reader.access.hidden(entity)
    if hidden:
        for event in events:
            changes = event.get("changes")
            if isinstance(changes, dict):
                event["changes"] = {k: v for k, v in changes.items() if k not in hidden}
    next_cursor = str(events[limit - 1]["id"]) if len(events) > limit else None
    return {"items": events[:limit], "next_cursor": next_cursor}


def _writer(
    workspace: Workspace,
    conn: Connection,
    env: str,
    access: Access,
    lang: str,
    *,
    confirm_duplicates: bool = False,
) -> RecordWriter:
    return RecordWriter(
        conn,
        cache_key=cache_key(workspace),
        env=env,
        actor_id=access.user_id,
        lang=lang,
        confirm_duplicates=confirm_duplicates,
        access=access,
    )


def _write(
    workspace: Workspace,
    env: str,
    entity: str,
    principal: Actor,
    lang: str,
    work: Callable[[RecordWriter], T],
    *,
    confirm_duplicates: bool = False,
) -> T:
    """Run ``work`` on records of ``entity`` in a write transaction; a constraint race is
    retried once (see above)."""
    for attempt in (1, 2):
        try:
            with env_transaction(workspace, env, principal, entity=entity) as (conn, access):
                writer = _writer(
                    workspace, conn, env, access, lang, confirm_duplicates=confirm_duplicates
                )
                return work(writer)
        except IntegrityError as exc:
            if attempt == 2:
                raise WriteConflict(
                    say(
                        lang,
                        "the database refused the write because a concurrent change got there "
                        f"first ({exc.orig}); reload and try again",
                        f"数据库拒绝了本次写入，因为另一个并发修改先完成了（{exc.orig}）；"
                        "请重新加载后再试",
                    )
                ) from None
            log.info("records: constraint race in `%s`, checking again: %s", env, exc.orig)
    raise AssertionError("unreachable")


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        message = f"limit must be between 1 and {MAX_PAGE}, got {limit}"
        raise Invalid(message, issues=[Issue("/limit", "invalid_limit", message)])


def _encode_cursor(deleted_at: datetime, record_id: int) -> str:
    raw = f"{deleted_at.isoformat()}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, record_id = raw.partition("|")
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, int(record_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _bad_cursor(cursor) from None


def _history_cursor(cursor: str) -> int:
    if not cursor.isdigit():
        raise _bad_cursor(cursor)
    return int(cursor)


def _bad_cursor(cursor: str) -> Invalid:
    message = f"cursor {cursor!r} is not one this API returned; pass `next_cursor` unchanged"
    return Invalid(message, issues=[Issue("/cursor", "invalid_cursor", message)])
