"""The records service: read, create, update, delete, restore, purge and bulk-write records.

Each function is one transaction in the environment's namespace, so a record
and its audit entries (and the records an on-delete rule touches) commit
together or not at all. ``actor_id`` becomes ``created_by``/``updated_by``, the
default ``owner_id`` and the audit actor (None until access control exists);
``lang`` (``zh`` or ``en``) picks the language of messages.

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

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from formloom.engine.errors import Issue
from formloom.engine.records.schema import record_schema
from formloom.platform import audit
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.environments import require_environment_in
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
    workspace: Workspace, *, env: str, entity: str, lang: str = "en"
) -> dict[str, Any]:
    """The JSON Schema of the entity's records (current published version)."""
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
        runtime = load_entity(conn, namespace=cache_key(workspace), env=env, name=entity)
    return record_schema(runtime.compiled, lang=lang)


def get_record(
    workspace: Workspace, *, env: str, entity: str, record_id: int, lang: str = "en"
) -> dict[str, Any]:
    """One record with its child tables' rows; a deleted one is in the recycle bin (404).

    Lists (:mod:`formloom.platform.record_query`) leave child tables out.
    """
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
        reader = RecordWriter(
            conn, cache_key=cache_key(workspace), env=env, actor_id=None, lang=lang
        )
        runtime = reader.entity(entity)
        record = reader.json(runtime, reader.live_row(runtime, record_id, at=""))
        return with_links(reader, runtime, with_children(reader, runtime, record))


def create_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    payload: Any,
    actor_id: int | None = None,
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
        actor_id,
        lang,
        lambda w: w.create(w.entity(entity), payload),
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
    actor_id: int | None = None,
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
        actor_id,
        lang,
        lambda w: w.update(w.entity(entity), record_id, payload, version=version, replace=replace),
        confirm_duplicates=confirm_duplicates,
    )


def delete_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    version: int | None = None,
    actor_id: int | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """Move a record to the recycle bin (lookups' on-delete rules apply); returns it."""
    return _write(
        workspace,
        env,
        actor_id,
        lang,
        lambda w: w.delete(w.entity(entity), record_id, version=version),
    )


def restore_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    version: int | None = None,
    actor_id: int | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """Bring a record back from the recycle bin (with what its delete cascaded to)."""
    return _write(
        workspace,
        env,
        actor_id,
        lang,
        lambda w: w.restore(w.entity(entity), record_id, version=version),
    )


def purge_record(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    record_id: int,
    version: int | None = None,
    actor_id: int | None = None,
    lang: str = "en",
) -> None:
    """Delete a record in the recycle bin for good; its audit history is kept."""
    _write(
        workspace,
        env,
        actor_id,
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
    actor_id: int | None = None,
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
        actor_id,
        lang,
        lambda w: run_bulk(w, w.entity(entity), create=create, update=update, delete=delete),
        confirm_duplicates=confirm_duplicates,
    )


def recycle_bin(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Deleted records, most recently deleted first; ``next_cursor`` fetches the next page."""
    _check_limit(limit)
    after = _decode_cursor(cursor) if cursor else None
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
        runtime = load_entity(conn, namespace=cache_key(workspace), env=env, name=entity)
        table = runtime.table
        query = (
            select(table)
            .where(table.c.deleted_at.isnot(None))
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
    items = [record_to_json(runtime, cast(Mapping[str, Any], r._mapping)) for r in rows[:limit]]
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
    limit: int = 100,
    cursor: str | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """A record's audit entries, newest first; works for deleted and purged records too."""
    _check_limit(limit)
    before = _history_cursor(cursor) if cursor else None
    with workspace.begin(env, readonly=True) as conn:
        require_environment_in(conn, env)
        reader = RecordWriter(
            conn, cache_key=cache_key(workspace), env=env, actor_id=None, lang=lang
        )
        runtime = reader.entity(entity)
        events = audit.history(
            conn, entity=entity, record_id=record_id, limit=limit + 1, before=before
        )
        if not events and before is None:
            reader.existing_row(runtime, record_id, at="")
    next_cursor = str(events[limit - 1]["id"]) if len(events) > limit else None
    return {"items": events[:limit], "next_cursor": next_cursor}


def _write(
    workspace: Workspace,
    env: str,
    actor_id: int | None,
    lang: str,
    work: Callable[[RecordWriter], T],
    *,
    confirm_duplicates: bool = False,
) -> T:
    """Run ``work`` in a write transaction; a constraint race is retried once (see above)."""
    key = cache_key(workspace)
    for attempt in (1, 2):
        try:
            with workspace.begin(env) as conn:
                require_environment_in(conn, env)
                writer = RecordWriter(
                    conn,
                    cache_key=key,
                    env=env,
                    actor_id=actor_id,
                    lang=lang,
                    confirm_duplicates=confirm_duplicates,
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
